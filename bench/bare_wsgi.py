"""Baseline: the floor of our server stack for an event stream, gunicorn's gevent worker and nothing else.

A plain WSGI callable (no Flask, no login, no hub) that answers /healthz and
holds /events open after a `: connected` preamble, as our stream begins. Run
by bench/servers.py ("bare") on gunicorn's gevent worker (ours is a subclass
of it), with no config file and no access log, so that bench/open_cost.py can
tell what an open costs the stack from what it costs the app:

    python -m gunicorn -k gevent -b 127.0.0.1:<port> bench.bare_wsgi:app
"""

import gevent

HEADERS = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-store"), ("X-Accel-Buffering", "no")]


def _stream():
    yield b"retry: 3000\n: connected\n\n"
    while True:
        gevent.sleep(15)
        yield b": heartbeat\n\n"


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/events":
        start_response("200 OK", HEADERS)
        return _stream()
    if path == "/healthz":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"status":"ok"}']
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]
