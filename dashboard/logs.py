"""Structured logs: one JSON object per line, with the request id when there is one.

Platforms (Heroku's Logplex, Render, Fly) keep stdout; log tools parse JSON.
Every request, stream and console connection gets a request id, taken from the
router's `X-Request-ID` when it sends a sane one (Heroku does) or made here,
and echoed in the response, so a user's report can be traced to its lines.

Fields beyond the message go in `extra={"fields": {...}}`. LOG_FORMAT=text
prints the same records for people reading a terminal.
"""

from __future__ import annotations

import errno
import json
import logging
import re
import sys
import time
import traceback
import uuid
from contextvars import ContextVar

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


def request_id(header: str | None) -> str:
    """The router's id when it looks like one (never user-controlled junk), else a new one."""
    if header and _REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


# The id of the request the running greenlet serves (greenlets each have their
# own context, so concurrent requests never see each other's). A context
# variable costs next to nothing to read, unlike a lookup through Flask's `g`.
current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


# One encoder for every line (json.dumps with options makes a new one per call).
_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


class JsonFormatter(logging.Formatter):
    _second: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second[0]:
            self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        out = {
            "ts": round(record.created, 3),
            "time": f"{self._second[1]}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or current_request_id.get()
        if rid:
            out["request_id"] = rid
        fields = getattr(record, "fields", None)
        if fields:
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return _encode(out)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        rid = getattr(record, "request_id", None) or current_request_id.get()
        fields = dict(getattr(record, "fields", None) or {})
        if rid:
            fields["request_id"] = rid
        if fields:
            text += " " + json.dumps(fields, ensure_ascii=False, default=str)
        return text


def formatter(kind: str) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else TextFormatter()


def configure(level: str, kind: str) -> None:
    """Log to stdout as `kind` unless a server (gunicorn) configured logging already."""
    # No line shows a thread: under gevent, asking for the current thread makes a
    # dummy Thread object per greenlet, for every record (a tenth of a stream
    # open's logging cost, measured with bench/open_cost.py --profile).
    logging.logThreads = logging.logMultiprocessing = False
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(formatter(kind))
        root.addHandler(handler)
        root.setLevel(level.upper())
    logging.getLogger("dashboard").setLevel(level.upper())


def gunicorn_config(level: str, kind: str) -> dict:
    """logconfig_dict for gunicorn: its logs and ours, the same format, on stdout."""
    factory = "dashboard.logs.JsonFormatter" if kind == "json" else "dashboard.logs.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": {"()": factory}},
        "handlers": {
            "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "main"}
        },
        "root": {"level": level.upper(), "handlers": ["stdout"]},
        "filters": {"closed_listener": {"()": "dashboard.logs.ClosedListenerFilter"}},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["stdout"], "propagate": False,
                               "filters": ["closed_listener"]},
            "gunicorn.access": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
        },
    }


class ClosedListenerFilter(logging.Filter):
    """gunicorn 27 asks the listening socket its name for each connection it
    handles; a connection accepted just before a stopping worker closed that
    socket fails there with EBADF and gunicorn logs a traceback. It is the
    shutdown, not a fault: one warning line instead (the client reconnects)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, OSError) and exc.errno == errno.EBADF and exc.__traceback__ is not None \
                and traceback.extract_tb(exc.__traceback__)[-1].name == "getsockname":
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = "a connection accepted as the worker stopped was closed", ()
            record.exc_info = record.exc_text = None
        return True


class Refusals:
    """Clients turned away (over a budget, a body too slow or too big): counted by
    reason for /metrics, and logged once per client, reason and window, so a
    flood costs one log line a minute instead of one per refusal."""

    def __init__(self, window: float = 60.0, logger: logging.Logger | None = None,
                 max_tracked: int = 10_000) -> None:
        self.window = window
        self.log = logger or logging.getLogger("dashboard.refusals")
        self.max_tracked = max_tracked
        self.counts: dict[str, int] = {}
        self._seen: dict[tuple[str, str], list] = {}  # (reason, client) -> [logged at, refused since]

    def note(self, reason: str, client: str, message: str = "") -> bool:
        """Count one refusal; True when it was logged (the first of its window)."""
        self.counts[reason] = self.counts.get(reason, 0) + 1
        now = time.monotonic()
        key = (reason, client)
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.window:
            seen[1] += 1
            return False
        if len(self._seen) >= self.max_tracked:
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.window}
            if len(self._seen) >= self.max_tracked:  # bounded, even under a flood of addresses
                self._seen.clear()
        self.log.warning("refused %s: %s", client, message or reason, extra={"fields": {
            "client": client, "reason": reason,
            "refused_since_last_line": 0 if seen is None else seen[1]}})
        self._seen[key] = [now, 0]
        return True
