"""How a setting's text becomes a value: the parsers settings.py declares each setting with.

Each takes the environment variable's text and returns the value, or raises
ValueError with a message fit for the one line printed at start (the setting's
name and value are added by settings.from_environ).
"""

from __future__ import annotations

import re
import resource
from typing import Any, Callable

def bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected 1/0, true/false, yes/no or on/off")


def list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def words(text: str) -> tuple[str, ...]:
    return tuple(text.replace(",", " ").split())


def networks(text: str) -> tuple[str, ...]:
    """Comma-separated addresses or CIDR networks (10.0.0.0/8, 127.0.0.2, fd00::/8)."""
    import ipaddress

    out = []
    for item in list(text):
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"{item[:40]!r} is not an address or a network such as 10.0.0.0/8") from None
    return tuple(out)


def schemes(text: str) -> tuple[str, ...]:
    out = tuple(item.lower() for item in list(text))
    for item in out:
        if not re.fullmatch(r"[a-z][a-z0-9+.-]{0,19}", item):
            raise ValueError(f"{item[:20]!r} is not a URL scheme such as irc")
    return out


def choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.lower() not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return text.lower()

    return parse


def ranged(kind: Callable[[str], float], low: float, high: float) -> Callable[[str], Any]:
    what = "a whole number" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text.strip())
        except ValueError:
            raise ValueError(f"must be {what} between {low:g} and {high:g}") from None
        if value != value or not low <= value <= high:  # value != value: NaN
            raise ValueError(f"must be between {low:g} and {high:g}")
        return value

    return parse


# A token or key shorter than this is refused at start: it could be guessed.
MIN_SECRET_LENGTH = 16
LOGIN_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,32}")


def secret(text: str) -> str:
    if text and len(text) < MIN_SECRET_LENGTH:
        raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters (it has {len(text)})")
    return text


def named_tokens(text: str) -> tuple[tuple[str, str], ...]:
    """name:token,name:token -> ((name, token), ...); names unique, tokens long enough."""
    out: list[tuple[str, str]] = []
    for i, item in enumerate(t for t in text.split(",") if t.strip()):
        name, sep, token = item.strip().partition(":")
        if not sep or not LOGIN_NAME.fullmatch(name):
            raise ValueError(f"entry {i + 1} must be name:token, the name 1 to 32 letters, digits or . _ @ -")
        if len(token) < MIN_SECRET_LENGTH:
            raise ValueError(f"the token of {name!r} must be at least {MIN_SECRET_LENGTH} characters")
        if any(name == n for n, _ in out):
            raise ValueError(f"the name {name!r} is given twice")
        out.append((name, token))
    return tuple(out)


def default_worker_connections() -> int:
    # gevent hangs connection N+1 silently, so the cap must sit above any real
    # load yet below the open-files limit (each connection is one descriptor).
    # Below it too: 256 for everything else, and the stat files the process
    # table keeps open, sampling/procfs.fd_cap() (at most FD_CACHE, 4,096; a
    # quarter of a lower limit), which this bottom layer cannot import.
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    return max(100, min(soft - 256 - min(4096, soft // 4), 50000))
