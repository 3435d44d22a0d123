"""``onsei serve``: one process serving the web UI, the OpenAI-compatible HTTP API and the
streaming WebSocket, on models loaded once and shared."""
