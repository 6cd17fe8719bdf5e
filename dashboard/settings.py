"""Every setting the app reads, declared once: name, default, help.

Settings come from environment variables (the platform way: Heroku, Dokku and
Render all configure apps this way). `create_app` layers them: these defaults,
then the environment, then a test's dict. The README documents each one; a
test checks that it does.

This module imports nothing heavy so `gunicorn.conf.py` can read it in the
master process before the gevent worker patches the standard library.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from typing import Any, Callable, Mapping


class SettingError(ValueError):
    """A setting's value from the environment could not be used."""


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected 1/0, true/false, yes/no or on/off")


def _list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.lower() not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return text.lower()

    return parse


def _ranged(kind: Callable[[str], float], low: float, high: float) -> Callable[[str], Any]:
    def parse(text: str):
        value = kind(text)
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}")
        return value

    return parse


def _default_worker_connections() -> int:
    # gevent hangs connection N+1 silently, so the cap must sit above any real
    # load yet below the open-files limit (each connection is one descriptor).
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    return max(100, min(soft - 256, 50000))


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str
    secret: bool = False  # never printed or logged


SETTINGS: tuple[Setting, ...] = (
    Setting("HOST", "0.0.0.0", "Address gunicorn binds to. The run script uses 127.0.0.1."),
    Setting("PORT", 8000, "TCP port to listen on; platforms set it.", _ranged(int, 1, 65535)),
    Setting(
        "WEB_CONCURRENCY",
        1,
        "gunicorn worker processes. Above 1 only with REDIS_URL (each would keep its own "
        "sampler, buffer and state otherwise); without it the app warns and runs one worker.",
        _ranged(int, 1, 64),
    ),
    Setting(
        "WORKER_CONNECTIONS",
        _default_worker_connections(),
        "Open connections one gevent worker accepts (streams, sockets and plain requests "
        "together). Default: the open-files limit minus 256.",
        _ranged(int, 10, 1_000_000),
    ),
    Setting(
        "GRACEFUL_TIMEOUT",
        10,
        "Seconds a worker gets to finish after SIGTERM. Streams are ended at once; "
        "Heroku kills at 30 s.",
        _ranged(int, 1, 300),
    ),
    Setting(
        "SAMPLE_INTERVAL",
        1.0,
        "Seconds between samples at start (0.25 to 60). Operators change it at run time.",
        _ranged(float, 0.25, 60.0),
    ),
    Setting(
        "HISTORY_SECONDS",
        3600,
        "How much history the event buffer and charts keep. A reconnecting viewer "
        "resumes without a gap if its last event is younger than this.",
        _ranged(int, 10, 7 * 24 * 3600),
    ),
    Setting(
        "HEARTBEAT_SECONDS",
        15.0,
        "Longest silence on an event stream before a heartbeat comment is sent "
        "(Heroku's router cuts connections idle for 55 s).",
        _ranged(float, 0.05, 50.0),
    ),
    Setting(
        "SSE_RETRY_MS",
        2000,
        "Reconnect delay the event stream asks browsers to use (the `retry:` field).",
        _ranged(int, 100, 600_000),
    ),
    Setting(
        "VIEWER_BACKLOG",
        64,
        "Events a slow viewer may fall behind before its stream is closed. Backlogs "
        "are positions in the shared buffer, never copies.",
        _ranged(int, 1, 100_000),
    ),
    Setting(
        "VIEWER_SEND_BUFFER",
        65536,
        "Kernel send buffer per event stream, in bytes (0: the system's autotuning, up to "
        "megabytes). Bounds what a stalled viewer holds before its backlog starts counting.",
        _ranged(int, 0, 16 * 1024 * 1024),
    ),
    Setting(
        "VIEWER_WRITE_TIMEOUT",
        10.0,
        "Seconds a stalled viewer may block one write before its stream is closed.",
        _ranged(float, 0.1, 600.0),
    ),
    Setting(
        "TOP_PROCESSES",
        10,
        "Processes listed in each sample's top-by-CPU and top-by-memory tables.",
        _ranged(int, 1, 100),
    ),
    Setting(
        "HOST_NAME",
        "",
        "Name this host's metrics are published under. Default: the machine's hostname.",
    ),
    Setting("LOG_LEVEL", "info", "Python log level: debug, info, warning or error."),
    Setting(
        "LOG_FORMAT",
        "json",
        "json: one JSON object per line (request id, fields), for log tools; text: for a terminal.",
        _choice("json", "text"),
    ),
    Setting(
        "ALLOWED_HOSTS",
        (),
        "Comma-separated Host names the app answers to (\".example.com\" allows subdomains; "
        "\"*\" any). Empty: only loopback names when bound to loopback (defeats DNS "
        "rebinding), any host otherwise.",
        _list,
    ),
    Setting(
        "FORWARDED_ALLOW_IPS",
        "127.0.0.1",
        "Proxies (comma-separated IPs, or *) whose X-Forwarded-For/-Proto/-Host/-Prefix "
        "headers are trusted; gunicorn reads it too. Heroku sets *.",
    ),
    Setting(
        "OPERATOR_TOKEN",
        "",
        "Token that logs an operator in (all commands). Unset: one is generated at start "
        "and a login URL printed once.",
        secret=True,
    ),
    Setting(
        "OBSERVER_TOKEN",
        "",
        "Optional token for read-only console access (status, top, ps, audit...).",
        secret=True,
    ),
    Setting(
        "SECRET_KEY",
        "",
        "Key that signs session cookies. Unset: generated at start, so logins end at restart.",
        secret=True,
    ),
    Setting("SESSION_HOURS", 12.0, "How long a login lasts.", _ranged(float, 0.05, 24 * 30)),
    Setting(
        "ALLOWED_ORIGINS",
        (),
        "Comma-separated origins, besides the app's own, whose pages may open the console "
        "(exact match, e.g. https://ops.example.com).",
        _list,
    ),
    Setting(
        "ALLOW_PROCESS_CONTROL",
        False,
        "1 enables the `kill` command (still confirmed and audited).",
        _bool,
    ),
    Setting("AUDIT_DB", "var/audit.sqlite3", "SQLite file of the audit log (WAL mode)."),
    Setting(
        "AUDIT_SYNC",
        "normal",
        "normal: each record survives a killed server; full: also a power cut (waits for the disk).",
        _choice("normal", "full"),
    ),
    Setting("DATA_DIR", "var", "Folder for the embedded store's SQLite files (history, state, audit log). Created if missing."),
    Setting(
        "HISTORY_STORE",
        True,
        "1 keeps chart roll-ups, the event buffer, the interval, pause and alert rules in "
        "DATA_DIR/history.sqlite3 (or Redis), so they survive restarts; 0 keeps them in memory only.",
        _bool,
    ),
    Setting(
        "MINUTE_HISTORY_DAYS",
        30.0,
        "Days of per-minute roll-ups (min, mean, max of each chart series) kept.",
        _ranged(float, 0.01, 3650),
    ),
    Setting(
        "HOUR_HISTORY_DAYS",
        365.0,
        "Days of per-hour roll-ups kept.",
        _ranged(float, 0.1, 36500),
    ),
    Setting("CONSOLE_RATE", 20.0, "Console requests per second per connection.", _ranged(float, 0.1, 100_000)),
    Setting("CONSOLE_BURST", 40, "Console requests a connection may send at once.", _ranged(int, 1, 100_000)),
    Setting(
        "CONSOLE_OUTBOX",
        256,
        "Frames queued for one console before it counts as not reading and is closed (1008).",
        _ranged(int, 8, 100_000),
    ),
    Setting(
        "CONSOLE_MAX_MESSAGE",
        65536,
        "Largest console message in bytes; bigger ones close the socket with 1009.",
        _ranged(int, 1024, 16 * 1024 * 1024),
    ),
    Setting(
        "REDIS_URL",
        "",
        "redis:// or rediss:// URL of a shared Redis. Unset: one process keeps everything "
        "(the embedded default). Set: several workers, dynos and hosts share streams, state "
        "and the audit log through it.",
        secret=True,
    ),
    Setting("REDIS_PREFIX", "dash", "Prefix of every Redis key, to share one Redis between apps."),
    Setting(
        "REDIS_TLS_VERIFY",
        True,
        "0 accepts a rediss:// server's self-signed certificate (Heroku's Redis add-on needs it).",
        _bool,
    ),
    Setting(
        "SAMPLER_LEASE_SECONDS",
        5.0,
        "With Redis, one process per host samples it, under a lease this long; when that "
        "process dies another takes over within about this time.",
        _ranged(float, 1.0, 120.0),
    ),
    Setting(
        "HOST_STALE_SECONDS",
        15.0,
        "A host not heard from for this long (or three of its intervals) is shown as stale.",
        _ranged(float, 1.0, 86400.0),
    ),
    Setting(
        "CONSOLE_PING_SECONDS",
        25.0,
        "WebSocket ping interval (Heroku's router drops sockets idle for 55 s); a missed "
        "pong closes the socket with 1008.",
        _ranged(float, 0.5, 50.0),
    ),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def defaults() -> dict[str, Any]:
    return {s.name: s.default for s in SETTINGS}


def from_environ(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse every setting present in the environment; unknown names are ignored."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.name not in environ:
            continue
        raw = environ[setting.name]
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            shown = "(hidden)" if setting.secret else repr(raw)
            raise SettingError(f"{setting.name}={shown}: {exc}") from None
    return values


def load(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Defaults overlaid with the environment."""
    values = defaults()
    values.update(from_environ(environ))
    return values
