"""Dexcom Share protocol client (requests + stdlib; no Qt)."""
