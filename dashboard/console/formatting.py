"""How console results read as text: values by what their key names (times,
durations, sizes, percentages, booleans, per-host values as a list), tables
fitted to a terminal's width, and `key  value` lines for the rest.

The command-line client prints through this module; the page's console
(static/js/values.js) follows the same rules, so a result reads the same in
both. Every value from the server goes through escapes.visible before it is
laid out: a control or bidi character prints as `\\x1b` or `\\u202e`, never raw,
and the only line feeds are the ones added here.
"""

from __future__ import annotations

import json
import textwrap
import time

from ..escapes import json_visible, visible

NONE = "-"
# Keys whose numbers are moments (epoch seconds), spans of time in seconds, byte counts, percentages.
TIMES = {"ts", "since", "created", "started", "pong", "until", "last_seen", "changed", "at"}
DURATIONS = {"uptime", "hold", "age", "duration", "for"}
SIZES = {"rss", "bytes", "bytes_in", "bytes_out", "memory_usage", "memory_limit"}
PERCENTS = {"cpu", "cpu_avg", "cpu_max"}
GAP = "  "
MIN_COLUMN = 10  # a wrapped column keeps at least this many characters (or its header's)
NESTED_ROWS = 20  # nested tables longer than this are summarised (--json shows them)


def kind_of(key: str) -> str:
    """What a key's numbers are: time, duration, size, percent, or plain."""
    key = str(key).rsplit(".", 1)[-1].lower()
    if key in TIMES:
        return "time"
    if key in DURATIONS:
        return "duration"
    if key in SIZES or key.startswith(("rss_", "bytes_")):
        return "size"
    if key in PERCENTS:
        return "percent"
    return "plain"


def size(n: float) -> str:
    """Binary units as the kernel counts them: 512 B, 1.5 KiB, 80.2 MiB, 150 MiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" or abs(n) >= 100 else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def duration(seconds: float) -> str:
    """2d 3h, 4h 5m, 6m 7s, 8s; under a minute with its fraction (0.25s)."""
    if seconds < 60:
        return f"{seconds:.3g}s" if seconds != int(seconds) else f"{int(seconds)}s"
    s = int(seconds)
    d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
    if d:
        return f"{d}d {h}h"
    if h:
        return f"{h}h {m}m"
    return f"{m}m {s % 60}s"


def moment(ts: float, now: float | None = None) -> str:
    """Local time: HH:MM:SS today, with the date on other days."""
    now = time.time() if now is None else now
    when = time.localtime(ts)
    if time.strftime("%Y-%m-%d", when) == time.strftime("%Y-%m-%d", time.localtime(now)):
        return time.strftime("%H:%M:%S", when)
    return time.strftime("%Y-%m-%d %H:%M:%S", when)


def number(v: float) -> str:
    """Plain numbers: no exponent (1796400000, not 1.7964e+09), no trailing zeros."""
    if isinstance(v, int):
        return str(v)
    if abs(v) >= 1e6:
        return str(int(v))
    return f"{v:.4f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))


def value(key: str, v) -> str:
    """One value as text, by what its key names; always escaped."""
    if v is None:
        return NONE
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        kind = kind_of(key)
        if kind == "time":
            return moment(v)
        if kind == "duration":
            return duration(v)
        if kind == "size":
            return size(v)
        if kind == "percent":
            return f"{v:.1f}%"
        return number(v)
    if isinstance(v, dict):  # a value per host: "web-1=93.2, web-2=12"
        return ", ".join(f"{visible(k)}={value(key, x)}" for k, x in v.items()) or NONE
    if isinstance(v, (list, tuple)):
        return ", ".join(value(key, x) for x in v) or NONE
    return visible(v)


def is_table(result) -> bool:
    return isinstance(result, dict) and "columns" in result and "rows" in result


def fit(widths: list[int], floors: list[int], room: int) -> list[int]:
    """Column widths that fit `room` characters with the gaps between them: the
    widest column gives way first, none below its floor (its header stays whole).
    When even the floors do not fit, the floors (the terminal wraps the rest)."""
    widths = list(widths)
    while sum(widths) + len(GAP) * (len(widths) - 1) > room:
        shrinkable = [i for i, w in enumerate(widths) if w > floors[i]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def wrap(text: str, width: int) -> list[str]:
    """A cell's lines within width: broken at spaces, and inside a word only when
    the word alone is wider than the column."""
    if len(text) <= width:
        return [text]
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def table(result: dict, width: int) -> list[str]:
    cols = [str(c) for c in result["columns"]]
    rows = [[value(c, v) for c, v in zip(cols, row)] for row in result["rows"]]
    heads = [visible(c.upper()) for c in cols]
    natural = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(heads)]
    floors = [min(n, max(len(h), MIN_COLUMN)) for n, h in zip(natural, heads)]
    widths = fit(natural, floors, width)
    lines = [GAP.join(h.ljust(w) for h, w in zip(heads, widths)).rstrip()]
    for r in rows:
        cells = [wrap(text, w) for text, w in zip(r, widths)]
        for k in range(max(len(c) for c in cells)):
            lines.append(GAP.join((c[k] if k < len(c) else "").ljust(w)
                                  for c, w in zip(cells, widths)).rstrip())
    extra = {k: v for k, v in result.items() if k not in ("columns", "rows")}
    if extra:
        lines.append(GAP.join(f"{visible(k)}: {value(k, v)}" for k, v in extra.items()))
    if not rows:
        lines.append("(none)")
    return lines


def render(result, width: int = 100) -> str:
    """A result as text within `width` columns: a table, `key  value` lines (one level
    of nesting as dotted keys, nested tables indented), or JSON for anything else."""
    if is_table(result):
        return "\n".join(table(result, width))
    if not isinstance(result, dict):
        return json_visible(json.dumps(result, indent=2, ensure_ascii=False))
    flat: list[tuple[str, object]] = []
    for key, v in result.items():
        if isinstance(v, dict) and not is_table(v) and v:
            flat += [(visible(f"{key}.{k}"), x) for k, x in v.items()]  # sampler.interval
        else:
            flat.append((visible(key), v))
    keys = max((len(k) for k, v in flat if not is_table(v)), default=0)
    room = max(20, width - keys - len(GAP))
    lines = []
    for key, v in flat:
        if is_table(v) and len(v["rows"]) > NESTED_ROWS:
            lines.append(f"{key}: {len(v['rows'])} rows (--json shows them)")
        elif is_table(v):
            lines.append(f"{key}:")
            lines += ["  " + line for line in table(v, width - 2)]
        else:
            text = wrap(value(key.rsplit(".", 1)[-1], v), room)
            lines.append(f"{key.ljust(keys)}{GAP}{text[0]}".rstrip())
            lines += [" " * (keys + len(GAP)) + more for more in text[1:]]
    return "\n".join(lines)
