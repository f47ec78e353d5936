"""/healthz and the worker heartbeat it reports."""
