"""Pure rules of the app: readings, units, freshness, alerts, scheduling, stats, display."""
