# gunicorn settings. Values come from the environment through dashboard.settings
# (one place for names, defaults and help); see docs/settings.md.
import os
import secrets
import sys

from dashboard import logs as _logs
from dashboard import kept_secrets as _kept_secrets
from dashboard import preflight as _preflight
from dashboard import settings as _settings
from dashboard import state_place as _state_place
from dashboard import serving as _serving
from dashboard.web import credentials as _credentials

try:
    _cfg = _settings.load()
    _preflight.check_paths(_cfg)
except _settings.SettingError as _exc:
    # One line naming the setting, the value and what is allowed; no traceback.
    sys.stderr.write(f"error: {_exc}\n")
    sys.exit(2)

# Made here, in the master, when not configured: workers inherit them through
# the environment, so a restarted worker keeps the same login token and the
# same cookie key; and kept in DATA_DIR/secrets.json (0600), so a restarted
# server does too (see dashboard/kept_secrets.py; delete the file to rotate).
_generated = [name for name in ("OPERATOR_TOKEN", "SECRET_KEY") if not _cfg[name]]
if _cfg["OPERATOR_TOKENS"]:
    _generated = [name for name in _generated if name != "OPERATOR_TOKEN"]
try:
    _kept = _kept_secrets.keep(_cfg["DATA_DIR"], _generated, lambda: secrets.token_urlsafe(24))
except _settings.SettingError as _exc:
    sys.stderr.write(f"error: {_exc}\n")
    sys.exit(2)
for _name, _value in _kept.values.items():
    os.environ[_name] = _cfg[_name] = _value
_generated_token = "OPERATOR_TOKEN" in _kept.made
try:
    _credentials.Tokens(_cfg)  # the same token twice, or no operator token at all
except ValueError as _exc:
    sys.stderr.write(f"error: {_exc}\n")
    sys.exit(2)

if _cfg["GRACEFUL_TIMEOUT"] <= _cfg["DRAIN_SECONDS"]:
    sys.stderr.write(f"error: GRACEFUL_TIMEOUT={_cfg['GRACEFUL_TIMEOUT']}: must be more than "
                     f"DRAIN_SECONDS={_cfg['DRAIN_SECONDS']:g} (the worker would be killed mid-drain)\n")
    sys.exit(2)

bind = f"{_cfg['HOST']}:{_cfg['PORT']}"

# One gevent worker serves event streams and WebSockets side by side; this subclass of
# gunicorn's answers the requests gunicorn refuses itself (414, 431, 400) in JSON like the app.
worker_class = "dashboard.serving.Worker"
# gevent silently hangs connection N+1 (health checks included): set it high.
worker_connections = _cfg["WORKER_CONNECTIONS"]
# Heroku sends SIGKILL 30 s after SIGTERM. The worker drains its streams over
# DRAIN_SECONDS (20 s by default), then writes its stores: this must cover both.
graceful_timeout = _cfg["GRACEFUL_TIMEOUT"]
# With gevent this is only the worker's heartbeat to the master, not a request limit.
timeout = 30
# Above Heroku's Router 2.0 idle limit (90 s), as Heroku's own template does (100 s):
# the router must be the side that closes an idle connection, else a request it
# sends just as the app closes is lost (a 5xx). Idle ones are closed when the
# worker leaves (dashboard.serving.Worker), so they never hold a stopping worker.
keepalive = _cfg["KEEPALIVE_SECONDS"]
# gunicorn >= 25.1 opens a control socket under $HOME/.gunicorn; parallel servers
# collide there and the app has no use for it.
control_socket_disable = True

# Without Redis the sampler, the event buffer and console state live in one
# process, so more workers would each show their own copy. With REDIS_URL they
# share everything through Redis and WEB_CONCURRENCY applies.
workers = _cfg["WEB_CONCURRENCY"] if _cfg["REDIS_URL"] else 1
# Said once gunicorn's logging is set up (when_ready), so they come out in LOG_FORMAT like every line.
_warnings = []
if _cfg["WEB_CONCURRENCY"] > 1 and not _cfg["REDIS_URL"]:
    _warnings.append(
        "WEB_CONCURRENCY=%d ignored: without a shared store (REDIS_URL) every worker would keep "
        "its own sampler, buffer and console state; running 1 worker" % _cfg["WEB_CONCURRENCY"])
_state_warning = _state_place.warning(_state_place.describe(_cfg))
if _state_warning:
    _warnings.append(_state_warning)
if _cfg["REDIS_URL"] and _generated:
    _warnings.append(
        "REDIS_URL is set but %s generated here: each dyno or host makes its own, so logins do "
        "not carry over between them; set them in the environment" % " and ".join(_generated))

# Logs to stdout, where platforms collect them, as one JSON object per line
# (LOG_FORMAT). The app logs every request itself, with its request id and
# without its query string (a login URL carries a token there), WebSockets
# included, so gunicorn's own access log stays off.
logconfig_dict = _logs.gunicorn_config(_cfg["LOG_LEVEL"], _cfg["LOG_FORMAT"])
logconfig_dict["loggers"]["gunicorn.access"] = {"level": "CRITICAL", "handlers": [], "propagate": False}
# Trust forwarding headers (scheme) only from these proxies; the app does the same.
forwarded_allow_ips = _cfg["FORWARDED_ALLOW_IPS"]


def when_ready(server):
    for _warning in _warnings + _kept.warnings:
        server.log.warning(_warning)
    if _kept.reused:
        server.log.info("%s not set: using the one%s generated at an earlier start, kept in %s (delete "
                        "it to make new ones)", " and ".join(_kept.reused), "s" if len(_kept.reused) > 1 else "",
                        _kept.path)
    if _generated_token:
        from dashboard import login_url

        server.log.warning(
            "OPERATOR_TOKEN is not set; log in with this URL (printed once): %s",
            login_url(_cfg, _cfg["OPERATOR_TOKEN"]),
        )


def post_worker_init(worker):
    _serving.post_worker_init(worker)
