"""gunicorn integration: start work after the fork, end streams on SIGTERM.

gunicorn's gevent worker waits up to `graceful_timeout` for open connections
after SIGTERM, and event streams never finish by themselves. So a greenlet
watches the worker's `alive` flag (cleared by the signal handler) and ends
every stream itself: the process exits in about a second, and EventSource
reconnects with Last-Event-ID to whatever serves next.
"""

from __future__ import annotations

import gevent


def post_worker_init(worker) -> None:
    svc = worker.wsgi.extensions["dashboard"]
    svc.ensure_started()
    gevent.spawn(_end_streams_on_exit, worker, svc)


def _end_streams_on_exit(worker, svc) -> None:
    while worker.alive:
        gevent.sleep(0.2)
    svc.shutdown("server shutting down")
