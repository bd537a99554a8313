"""A faithful imitation of the Dexcom Share service on loopback (stdlib http.server; no Qt)."""
