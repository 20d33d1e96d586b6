"""The HTTP API and live dashboard (§15): `parallel-executor serve`, the optional extra [server]."""
