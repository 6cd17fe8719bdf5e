"""What a notification says, and which notification URLs may be used.

`transition` (alerts/recording.py, re-exported here) turns one rule transition
into the record kept with the alert: title, value, threshold, since when, the
top five processes by CPU and by memory taken from the very sample that caused
it (never a new scan); `link` points to the dashboard. `compose` makes one message of one or several such
records (a group). Which URLs may be used and how they are shown is
alerts.urls' job (`check_url`, `mask`, `scrub`, `mask_line`, re-exported here).
"""

from __future__ import annotations

import re
import time
from urllib.parse import quote

from ..escapes import visible
from .recording import EVIDENCE_ROWS, title, transition  # noqa: F401  (the record's side, re-exported)
from .urls import apprise, check_url, mask, mask_line, scrub, secrets_of  # noqa: F401  (the URL side, re-exported)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_SILENCE = 30 * 86400


def link(public_url: str, transition_id: str | None, ts: float) -> str | None:
    if not public_url:
        return None
    query = f"?alert={quote(transition_id)}" if transition_id else ""
    return f"{public_url.rstrip('/')}/{query}#t={int(ts)}"


# ---- the message ---------------------------------------------------------------------


def _when(ts: float | None) -> str:
    return "?" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _num(value, unit: str) -> str:
    return "?" if value is None else f"{value:g}{' ' + unit if unit else ''}"


def _mib(rss) -> str:
    return "?" if rss is None else f"{rss / 1048576:.0f} MiB"


def _table(rows: list[dict]) -> list[str]:
    """Process rows; a name is whatever its process chose, so its controls and bidi marks are
    shown as escapes (`\\x1b`, `\\u202e`), never passed to a mail client or a chat raw."""
    if not rows:
        return ["  (no process table in that sample)"]
    return [f"  {r.get('pid')!s:>7}  {visible(str(r.get('name'))[:24]):<24} {visible(str(r.get('user'))[:12]):<12}"
            f" cpu {'-' if r.get('cpu') is None else format(r['cpu'], '.1f')}%  mem {_mib(r.get('rss'))}"
            for r in rows]


def details(t: dict) -> list[str]:
    """The full account of one transition, as lines, each with its controls shown as escapes
    (records stored before titles were escaped are covered too)."""
    rule, unit = t["rule"], t["rule"].get("unit") or ""
    lines = [t["title"],
             f"Value: {_num(t.get('value'), unit)} (threshold {rule['op']} {_num(rule['threshold'], unit)})"]
    if t["state"] == "firing":
        lines.append(f"Since: {_when(t.get('since'))}; firing at {_when(t['ts'])}")
    else:
        fired = t.get("fired") or {}
        lines.append(f"Resolved at {_when(t['ts'])}" + (f" ({t['why']})" if t.get("why") else "")
                     + (f"; it fired at {_when(fired.get('ts'))}" if fired else ""))
    ev = (t.get("fired") or {}).get("evidence") if t["state"] == "resolved" else None
    ev = ev or t.get("evidence") or {}
    moment = "when it fired" if t["state"] == "firing" or t.get("fired") else "when it resolved"
    lines.append(f"Top processes by CPU {moment}:")
    lines += _table(ev.get("top_cpu") or [])
    lines.append(f"Top processes by memory {moment}:")
    lines += _table(ev.get("top_mem") or [])
    if t.get("link"):
        lines.append(f"Dashboard: {t['link']}")
    return [visible(line) for line in lines]


def compose(group: list[dict]) -> tuple[str, str]:
    """(title, body) of one message for one or more transitions, oldest first; no line of it
    holds a raw control or bidi character (the body's own line breaks aside)."""
    if len(group) == 1:
        return visible(group[0]["title"]), "\n".join(details(group[0]))
    firing = sum(1 for t in group if t["state"] == "firing")
    hosts = sorted({t["host"] for t in group})
    head = (f"[{len(group)} CHANGES] {firing} firing, {len(group) - firing} resolved on "
            f"{', '.join(hosts[:3])}{' ...' if len(hosts) > 3 else ''}")
    lines = [f"{len(group)} alert transitions, grouped into one message:"]
    lines += [f"- {_when(t['ts'])}  {t['title']}" for t in group[:30]]
    if len(group) > 30:
        lines.append(f"- ... and {len(group) - 30} more")
    latest: dict[tuple, dict] = {}
    for t in group:
        latest[(t["rule"]["id"], t["host"])] = t
    for t in list(latest.values())[-5:]:
        lines += ["", "Latest for this rule:"] + details(t)
    return visible(head), "\n".join(visible(line) for line in lines)


# ---- channel names and durations ------------------------------------------------------------


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError("a channel name is 1 to 32 letters, digits, '.', '_' or '-'")
    return name


def parse_duration(text: str) -> float:
    """'90', '90s', '15m', '2h', '1d' as seconds (at most 30 days)."""
    m = _DURATION.match(text.strip().lower())
    if not m:
        raise ValueError(f"a duration looks like 90s, 15m, 2h or 1d, not {text[:20]!r}")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not 0 < seconds <= MAX_SILENCE:
        raise ValueError("a duration is more than 0 and at most 30 days")
    return seconds
