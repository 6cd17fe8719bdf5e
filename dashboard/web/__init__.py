"""The HTTP surface: one blueprint per module (page, API, stream, console socket, auth, /metrics)."""
