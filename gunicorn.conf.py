# gunicorn settings. Values come from the environment through dashboard.settings
# (one place for names, defaults and help); see the README's settings table.
import logging

from dashboard import settings as _settings
from dashboard import serving as _serving

_cfg = _settings.load()

bind = f"{_cfg['HOST']}:{_cfg['PORT']}"

# One gevent worker serves event streams and WebSockets side by side.
worker_class = "gevent"
# gevent silently hangs connection N+1 (health checks included): set it high.
worker_connections = _cfg["WORKER_CONNECTIONS"]
# Heroku sends SIGKILL 30 s after SIGTERM; streams are ended at once anyway.
graceful_timeout = _cfg["GRACEFUL_TIMEOUT"]
# With gevent this is only the worker's heartbeat to the master, not a request limit.
timeout = 30
keepalive = 5
# gunicorn >= 25.1 opens a control socket under $HOME/.gunicorn; parallel servers
# collide there and the app has no use for it.
control_socket_disable = True

# The sampler, the event buffer and console state live in each process, so more
# workers would each show their own copy. Scaling out needs a shared store.
workers = 1
if _cfg["WEB_CONCURRENCY"] > 1:
    logging.getLogger("gunicorn.error").warning(
        "WEB_CONCURRENCY=%d ignored: without a shared store every worker would keep its own "
        "sampler, buffer and console state; running 1 worker",
        _cfg["WEB_CONCURRENCY"],
    )

# Access and error logs to stdout, where platforms collect them.
accesslog = "-"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"}
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
        }
    },
    "root": {"level": _cfg["LOG_LEVEL"].upper(), "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
    },
}


def post_worker_init(worker):
    _serving.post_worker_init(worker)
