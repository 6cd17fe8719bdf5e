"""The operator console: its wire protocol, command grammar, commands and sessions.

Plain logic that takes data and returns data; the WebSocket route that feeds
it frames lives with the other blueprints (web/console_socket.py), and the
command-line client is `python -m dashboard.console` (client.py).
"""
