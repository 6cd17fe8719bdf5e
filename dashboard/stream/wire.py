"""The metrics event on the wire: a compact form of the sample, and the way back.

The sampler's dict stays what the app works with (alerts, roll-ups, evidence,
the API); only the `metrics` event's data is this form, encoded once per
sample and written as is to every viewer, to Redis and to the event buffer.
It is plain JSON with `"v": 2` and differs from the sample in four ways:

- `processes`: `top_cpu` and `top_mem` share one table of the distinct rows
  of both lists, `{"columns": [...], "rows": [[...], ...]}`, and each list is
  the row indexes, in order (a process in both lists is sent once); a text
  column in which a value repeats (`name`, `user`) is listed once under
  `strings` (`{"user": ["root", ...]}`) and its cells are indexes into it;
- `disks`, `net.interfaces`, `sensors.temperatures` and `sensors.fans`, when
  they have two rows or more of the same keys, are `{"columns", "rows"}` too;
- `containers.list` is `{"columns", "rows"}` (one row or more), with the text
  columns in which a value repeats (`image`, `state`) under `strings` as for
  the processes;
- `ts` is rounded to the millisecond;
- a float with an integer value is written as an integer (`1186`, not
  `1186.0`), and NaN or an infinity as null, as the plain encoder does.

Every other number goes out exactly as the sample has it (the collectors
already round: CPU to 0.1 %, rates to 0.1 B/s, bytes exact), so `decode`
gives back the sample, with `ts` to the millisecond. Data without `v` is the
plain form (events stored before this form existed, or a sample with a dict
shaped like a table where the compact form puts one) and decodes as it is.
"""

from __future__ import annotations

import json
import math
from operator import itemgetter
from typing import Any

from .events import to_json

VERSION = 2
# Lists of rows written as a table (the parent keys, then the list's own key).
TABLES = (("disks",), ("net", "interfaces"), ("sensors", "temperatures"), ("sensors", "fans"))
# The containers' rows: a table with coded strings, however few.
CONTAINERS = ("containers", "list")
# The process lists that share one table of rows.
TOPS = ("top_cpu", "top_mem")
_EXACT = 2.0 ** 53  # integer floats below this are exactly an int


def encode(sample: dict) -> str:
    """The `metrics` event's data for one sample (the sample is not changed)."""
    if _ambiguous(sample):
        return to_json(sample)  # a shape the compact form would misread: the plain form, as before
    rows = _at(sample, CONTAINERS)
    if isinstance(rows, list) and rows:  # their cells are made short once, as the table is made
        sample = {**sample, "containers": {**sample["containers"], "list": []}}
    out = _short(sample)
    ts = out.get("ts")
    if isinstance(ts, float):
        out["ts"] = _short(round(ts, 3))
    for path in TABLES:
        _to_table(out, path)
    procs = out.get("processes")
    if isinstance(procs, dict):
        out["processes"] = _pack_processes(procs)
    _pack_containers(out, rows)
    return json.dumps({"v": VERSION, **out}, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def decode(data: str | bytes | dict) -> dict:
    """The sample a `metrics` event carries, in either form; ValueError if it is none."""
    obj = json.loads(data) if isinstance(data, (str, bytes, bytearray)) else dict(data)
    if not isinstance(obj, dict):
        raise ValueError("a metrics event is a JSON object")
    version = obj.pop("v", None)
    if version is None:
        return obj  # the plain form
    if version != VERSION:
        raise ValueError(f"metrics event form v{version!r} is not known here (this server reads v{VERSION})")
    try:
        for path in TABLES:
            _from_table(obj, path)
        procs = obj.get("processes")
        if _is_table(procs):
            obj["processes"] = _unpack_processes(procs)
        containers = obj.get("containers")
        if isinstance(containers, dict) and _is_table(containers.get("list")):
            obj["containers"] = {**containers, "list": _decoded(containers["list"])}
    except (TypeError, IndexError, KeyError, AttributeError) as exc:
        raise ValueError(f"malformed metrics event: {type(exc).__name__}: {exc}") from None
    return obj


# ---- encoding -------------------------------------------------------------------------


def _is_table(value: Any) -> bool:
    return isinstance(value, dict) and "columns" in value and "rows" in value


def _at(sample: dict, path: tuple) -> Any:
    value: Any = sample
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _ambiguous(sample: dict) -> bool:
    """Whether the sample has, where the compact form puts a table, a dict that looks like one."""
    return "v" in sample or any(_is_table(_at(sample, path)) for path in TABLES + (("processes",), CONTAINERS))


_KEEP = frozenset((int, str, bool, type(None)))  # written as they are


def _short(value: Any) -> Any:
    """A copy of value with integer floats as ints and NaN or infinities as None."""
    t = type(value)
    if t in _KEEP:
        return value
    if isinstance(value, float):  # the most common call (a row's figures): asked first
        if not math.isfinite(value):
            return None
        if value.is_integer() and -_EXACT < value < _EXACT:
            return int(value)
        return value
    if t is dict:  # most of a sample: leaves are kept without a call each
        return {k: v if type(v) in _KEEP else _short(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [v if type(v) in _KEEP else _short(v) for v in value]
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_short(v) for v in value]
    return value


def _columns(rows: list) -> tuple | None:
    """The keys every row has (all strings), in the first row's order, or None."""
    if not rows or type(rows[0]) is not dict:
        return None
    keys = rows[0].keys()
    if not all(type(k) is str for k in keys):
        return None
    for row in rows:
        if type(row) is not dict or row.keys() != keys:
            return None
    return tuple(keys)


def _to_table(out: dict, path: tuple) -> None:
    parent = out
    for key in path[:-1]:
        parent = parent.get(key)
        if not isinstance(parent, dict):
            return
    rows = parent.get(path[-1])
    if not isinstance(rows, list) or len(rows) < 2:
        return  # one row is no shorter as a table
    columns = _columns(rows)
    if columns is not None:
        parent[path[-1]] = {"columns": list(columns), "rows": [[r[c] for c in columns] for r in rows]}


def _pack_processes(procs: dict) -> dict:
    if "columns" in procs or "rows" in procs or "strings" in procs:
        return procs  # keys the compact form uses: as it is (never both columns and rows here)
    tops = [name for name in TOPS if name in procs]
    if not tops or not all(isinstance(procs[name], list) for name in tops):
        return procs
    columns = _columns([row for name in tops for row in procs[name]])
    if columns is None:
        return procs
    index: dict = {}
    table: list = []

    def ref(row: dict) -> int:
        values = [row[c] for c in columns]
        try:
            key: Any = (tuple(values), tuple(map(type, values)))  # true is not 1 here
            hash(key)
        except TypeError:  # a value that is a list or a dict
            key = json.dumps(values, sort_keys=True)
        i = index.get(key)
        if i is None:
            i = index[key] = len(table)
            table.append(values)
        return i

    out = {k: v for k, v in procs.items() if k not in TOPS}
    refs = {name: [ref(row) for row in procs[name]] for name in tops}
    out["columns"] = list(columns)
    strings = _strings(columns, table)
    if strings:
        out["strings"] = strings
    out["rows"] = table
    out.update(refs)
    return out


def _pack_containers(out: dict, rows) -> None:
    """out's containers list as a table, made from the sample's rows (out holds an empty list).

    Made column by column: each row's cells picked in one C-level call (itemgetter), then each
    column looked at whole (the set of its types): a column of ints, text and None, most of them,
    is taken without a look at each cell, and only a column holding floats (or other values) is
    made short cell by cell. The same table as a pass over each cell gave."""
    if not isinstance(rows, list) or not rows or not isinstance(out.get("containers"), dict):
        return
    picked = _picked(rows)
    if picked is None:  # rows of different keys: as they are
        out["containers"]["list"] = _short(rows)
        return
    columns, cells_by_column = picked
    table_columns = []
    strings: dict = {}
    for name, cells in zip(columns, cells_by_column):
        kinds = set(map(type, cells))
        if not kinds <= _KEEP:  # floats (or more): made short cell by cell, by the one rule
            cells = [v if type(v) in _KEEP else _short(v) for v in cells]
            kinds = set(map(type, cells))
        kinds.discard(type(None))
        if kinds == {str}:
            cells = _coded(name, cells, strings)
        table_columns.append(cells)
    packed: dict = {"columns": list(columns)}
    if strings:
        packed["strings"] = strings
    packed["rows"] = list(map(list, zip(*table_columns))) if table_columns else [[] for _ in rows]
    out["containers"] = {**out["containers"], "list": packed}


def _picked(rows: list) -> tuple[tuple, list] | None:
    """(the columns, as _columns gives them, and the cells column by column), or None when the rows
    do not all have the same keys. Checked with C-level passes: every row a dict with as many keys as
    the first, each of which it has (a KeyError otherwise), has the first's keys."""
    first = rows[0]
    if type(first) is not dict or not all(type(k) is str for k in first):
        return None
    if set(map(type, rows)) != {dict} or set(map(len, rows)) != {len(first)}:
        return None
    columns = tuple(first)
    if len(columns) < 2:  # itemgetter of one key gives the value, not a 1-tuple
        if any(row.keys() != first.keys() for row in rows):
            return None
        return columns, [[row[c] for row in rows] for c in columns]
    try:
        return columns, list(zip(*map(itemgetter(*columns), rows)))
    except KeyError:
        return None


def _coded(name: str, cells, strings: dict):
    """A text column (str and None) with a repeated value as indexes into its distinct values, which go
    to strings[name]; the column as it is when nothing repeats."""
    distinct = list(dict.fromkeys(cells))
    if None in distinct:
        distinct.remove(None)
    if len(distinct) == len(cells) - cells.count(None):
        return cells
    at = {text: i for i, text in enumerate(distinct)}
    strings[name] = distinct
    return list(map(at.get, cells))  # None is not among the keys: it stays None


def _strings(columns: tuple, table: list) -> dict:
    """Each text column with a repeated value, as its distinct values; cells become indexes."""
    strings: dict = {}
    for j, (name, cells) in enumerate(zip(columns, zip(*table))):
        kinds = set(map(type, cells))
        kinds.discard(type(None))
        if kinds != {str}:
            continue
        coded = _coded(name, cells, strings)
        if coded is not cells:
            for row, cell in zip(table, coded):
                row[j] = cell
    return strings


# ---- decoding -------------------------------------------------------------------------


def _rows(columns: list, rows: list) -> list[dict]:
    n = len(columns)
    out = []
    for row in rows:
        if len(row) != n:
            raise IndexError(f"a row of {len(row)} values under {n} columns")
        out.append(dict(zip(columns, row)))
    return out


def _from_table(obj: dict, path: tuple) -> None:
    parent = obj
    for key in path[:-1]:
        parent = parent.get(key)
        if not isinstance(parent, dict):
            return
    table = parent.get(path[-1])
    if _is_table(table):
        parent[path[-1]] = _rows(table["columns"], table["rows"])


def _decoded(table: dict) -> list[dict]:
    """A table's rows as dicts, the text columns under `strings` looked up."""
    columns, rows = table["columns"], table["rows"]
    strings = table.get("strings") or {}
    if strings:
        coded = [(columns.index(name), values) for name, values in strings.items()]
        rows = [list(row) for row in rows]
        for row in rows:
            for j, values in coded:
                if row[j] is not None:
                    row[j] = values[_index(row[j])]
    return _rows(columns, rows)


def _unpack_processes(procs: dict) -> dict:
    rows = _decoded(procs)
    out = {}
    for key, value in procs.items():
        if key in ("columns", "rows", "strings"):
            continue
        if key in TOPS:
            # Each process a dict of its own, as in the sample (no row shared by two lists).
            value = [dict(rows[_index(i)]) for i in value]
        out[key] = value
    return out


def _index(i: Any) -> int:
    if type(i) is not int or i < 0:
        raise IndexError(f"{i!r} is not a row index")
    return i
