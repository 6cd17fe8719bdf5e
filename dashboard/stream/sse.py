"""Server-sent events framing (WHATWG HTML, "Server-sent events").

Pure functions from text to bytes. The rules that matter for safety: `id` and
`event` may not contain CR, LF (a line break would start a new field) or NUL
(the client would ignore the id); `data` may contain anything, and each of its
lines (split at CRLF, CR or LF, exactly the breaks the parser recognizes) gets
its own `data:` line, so the client rebuilds the same text joined with LF.
"""

from __future__ import annotations

import re

_BREAK = re.compile(r"\r\n|\r|\n")
_FORBIDDEN_IN_FIELD = re.compile(r"[\r\n\x00]")


def _field_value(name: str, value: str) -> str:
    if _FORBIDDEN_IN_FIELD.search(value):
        raise ValueError(f"SSE {name} may not contain CR, LF or NUL: {value!r}")
    return value


def frame(data: str, event: str | None = None, id: str | None = None) -> bytes:
    """One event: optional id and event lines, one data line per line of data."""
    lines = []
    if id is not None:
        lines.append("id: " + _field_value("id", id))
    if event is not None:
        lines.append("event: " + _field_value("event", event))
    for line in _BREAK.split(data):
        lines.append("data: " + line)
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def comment(text: str = "") -> bytes:
    """A comment block: ignored by clients, keeps proxies and routers from idling out."""
    return "".join(": " + line + "\n" for line in _BREAK.split(text)).encode("utf-8") + b"\n"


def retry(milliseconds: int) -> bytes:
    """The reconnect delay field, on its own line (no blank line: it dispatches nothing)."""
    return b"retry: %d\n" % int(milliseconds)


def chunk(payload: bytes) -> bytes:
    """HTTP/1.1 chunked transfer framing of payload (for writes that bypass the server)."""
    return b"%X\r\n%s\r\n" % (len(payload), payload)
