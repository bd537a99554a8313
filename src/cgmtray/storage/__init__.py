"""Where the app keeps things: paths, settings, credentials, history (no Qt)."""
