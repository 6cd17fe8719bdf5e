"""The metrics event's compact form: encode -> decode gives back the sample, it is
at most two thirds of the plain form's bytes, and every reader in the app decodes it."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import time
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import report
from bench.sampler_bench import WIRE_GOAL, plain_json, wire_figures
from dashboard.stream.events import to_json
from dashboard.stream.views import HostView
from dashboard.stream import wire
from dashboard.stream.wire import VERSION, decode, encode
from tests.conftest import TOKEN
from tests.support.browser import open_with_login_link, wait_state
from tests.support.wsclient import Console
from tests.support.sseclient import SSEParser
from tests.support.system import require

AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONFIG = {"HISTORY_SECONDS": 3600, "VIEWER_BACKLOG": 100, "VIEWER_WRITE_TIMEOUT": 5,
          "HEARTBEAT_SECONDS": 15, "SSE_RETRY_MS": 2000, "VIEWER_SEND_BUFFER": 0}


def proc(pid, name="chromium", user="root", cpu=1.5, rss=4096 * 1000):
    return {"pid": pid, "name": name, "user": user, "cpu": cpu, "rss": rss}


def ctr(cid, name, image="localhost/web:1", cpu=12.5, mem=52_428_800):
    return {"id": cid, "name": name, "image": image, "state": "running", "cpu": cpu, "cpu_pct": None if cpu is None else cpu * 4,
            "cpu_limit": 0.5, "mem": mem, "mem_pct": 78.1, "mem_limit": 67_108_864, "cache": 4096,
            "rx_bps": 130.5, "tx_bps": None, "read_bps": 0.0, "write_bps": 0.0, "pids": 3, "restarts": 0,
            "uptime": 61.2}


def host_sample(ts=1796172925.6800675, seq=7):
    """A sample of the sampler's shape, with processes in both lists and in one only."""
    shared = [proc(100 + i, cpu=50.0 - i, rss=10**8 - i) for i in range(5)]
    return {
        "ts": ts, "seq": seq, "host": "vm", "interval": 1.0,
        "cpu": {"percent": 92.1, "per_core": [88.5, 92.5], "count": 2, "user": 47.5, "system": 38.6,
                "iowait": 0.0, "steal": 0.0},
        "load": {"load1": 0.87, "load5": 1.08, "load15": 1.01},
        "memory": {"total": 25276502016, "available": 24394346496, "used": 882155520, "percent": 3.5},
        "swap": {"total": 0, "used": 0, "percent": 0.0},
        "disks": [{"mount": "/", "device": "/dev/vda", "fstype": "ext4", "total": 270553174016,
                   "used": 26793693184, "free": 82150600704, "percent": 24.6, "read_bps": 2272313.2,
                   "write_bps": None}],
        "net": {"rx_bps": 0.0, "tx_bps": 166.2, "interfaces": [
            {"name": "eth0", "rx_bps": 0.0, "tx_bps": 166.2, "rx_bytes": 826004058, "tx_bytes": 4028678},
            {"name": "lo", "rx_bps": 524130.2, "tx_bps": 524130.2, "rx_bytes": 30447804093,
             "tx_bytes": 30447804093}]},
        "uptime": 11960.6,
        "sensors": {"temperatures": [{"chip": "k10temp", "label": "Tctl", "current": 41.5, "high": None,
                                      "critical": None},
                                     {"chip": "nvme", "label": "Composite", "current": 38.9, "high": 84.8,
                                      "critical": 89.8}],
                    "fans": []},
        "processes": {"count": 87,
                      "top_cpu": copy.deepcopy(shared) + [proc(200 + i, "python", cpu=0.0) for i in range(5)],
                      "top_mem": copy.deepcopy(shared[::-1])
                      + [proc(300 + i, "postgres", "postgres", None, 10**9 + i) for i in range(5)]},
        "container": {"cgroup": "v1", "cpu_limit": None, "cpu_cores_used": 1.989, "memory_usage": 46977024},
        "containers": {"engine": "podman 4.3.1", "cgroup": "hybrid", "running": 3, "stopped": 1, "missing": None,
                       "list": [ctr("8bf819207c05", "web"), ctr("65d220dd1ce0", "<b>x</b>", cpu=0.0),
                                ctr("0dcc5ba496ea", "db", "postgres:16", None, 10**9)]},
        "missing": {"sensors": "no temperature or fan sensors reported on this host"},
    }


def expected(sample: dict, compact: bool = True) -> dict:
    """What a reader of the plain form got, with `ts` to the millisecond in the compact form."""
    out = json.loads(to_json(sample))  # the plain encoder: what the event was before v2
    if compact and isinstance(out.get("ts"), float):
        out["ts"] = round(out["ts"], 3)
    return out


def same(a, b) -> bool:
    """Equal as the page and the API see it: numbers by value (1 and 1.0 alike), but
    true is not 1, and containers hold the same keys and items in the same order."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None or isinstance(a, str):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)):
        return isinstance(b, (int, float)) and not isinstance(b, bool) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and set(a) == set(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return False


def test_a_host_sample_comes_back_whole_in_at_most_two_thirds_of_the_bytes():
    sample = host_sample()
    before = copy.deepcopy(sample)
    data = encode(sample)
    assert sample == before  # the app's dict is not touched
    wire = json.loads(data)
    assert wire["v"] == VERSION and data.startswith('{"v":2,')
    assert wire["ts"] == 1796172925.68 and wire["seq"] == 7 and '"interval":1,' in data
    procs = wire["processes"]
    assert procs["columns"] == ["pid", "name", "user", "cpu", "rss"]
    assert len(procs["rows"]) == 15  # 5 in both lists, 5 in each alone
    assert procs["top_cpu"] == list(range(10)) and procs["top_mem"] == [4, 3, 2, 1, 0] + list(range(10, 15))
    assert procs["strings"] == {"name": ["chromium", "python", "postgres"], "user": ["root", "postgres"]}
    assert wire["net"]["interfaces"]["columns"][0] == "name"
    assert wire["sensors"]["temperatures"]["rows"][0] == ["k10temp", "Tctl", 41.5, None, None]
    assert isinstance(wire["disks"], list)  # one row: no shorter as a table
    containers = wire["containers"]["list"]
    assert containers["columns"][:3] == ["id", "name", "image"] and len(containers["rows"]) == 3
    assert containers["strings"] == {"image": ["localhost/web:1", "postgres:16"], "state": ["running"]}
    assert containers["rows"][1][1] == "<b>x</b>"  # a name that does not repeat goes as it is
    assert wire["containers"]["running"] == 3 and wire["containers"]["engine"] == "podman 4.3.1"
    back = decode(data)
    assert same(back, expected(sample)) and "v" not in back
    assert back["processes"]["top_cpu"][0] is not back["processes"]["top_mem"][4]  # a dict each
    assert len(data.encode()) <= 2 / 3 * len(to_json(sample).encode())


def test_the_apps_own_samples_come_back_and_meet_the_goal(svc):
    for _ in range(3):
        svc.sampler.tick()
        sample = svc.local.latest
        data = encode(sample)
        assert same(decode(data), expected(sample))
        assert len(data.encode()) <= 2 / 3 * len(to_json(sample).encode())
        time.sleep(0.05)


def test_nan_and_infinities_are_null_as_in_the_plain_form():
    sample = host_sample()
    sample["cpu"]["percent"] = math.nan
    sample["processes"]["top_cpu"][0]["cpu"] = math.inf
    back = decode(encode(sample))
    assert back["cpu"]["percent"] is None and back["processes"]["top_cpu"][0]["cpu"] is None
    assert same(back, expected(sample))


def test_the_plain_form_decodes_as_it_is_and_unknown_or_broken_forms_are_refused():
    sample = host_sample()
    assert decode(to_json(sample)) == json.loads(to_json(sample))  # events stored before v2
    with pytest.raises(ValueError, match="v3"):
        decode('{"v":3,"seq":1}')
    wire = json.loads(encode(sample))
    for broken in (
        {**wire, "processes": {**wire["processes"], "top_cpu": [99]}},
        {**wire, "processes": {**wire["processes"], "top_mem": [-1]}},
        {**wire, "processes": {**wire["processes"], "rows": [[1, 2]]}},
        {**wire, "net": {"interfaces": {"columns": ["name"], "rows": 5}}},
        {**wire, "containers": {**wire["containers"], "list": {"columns": ["id"], "rows": [[1, 2]]}}},
        {**wire, "containers": {"list": {"columns": ["image"], "strings": {"image": ["a"]}, "rows": [[3]]}}},
    ):
        with pytest.raises(ValueError, match="malformed"):
            decode(json.dumps(broken))
    for not_json in ("", "[1,2]", "nope"):
        with pytest.raises(ValueError):
            decode(not_json)


def test_a_dict_shaped_like_a_table_where_one_goes_sends_the_plain_form():
    sample = host_sample()
    sample["disks"] = {"columns": ["a"], "rows": [[1]]}  # not rows: the compact form would misread it
    assert encode(sample) == to_json(sample) and decode(encode(sample)) == json.loads(to_json(sample))
    sample = host_sample()
    sample["containers"]["list"] = {"columns": ["a"], "rows": [[1]]}
    assert encode(sample) == to_json(sample) and decode(encode(sample)) == json.loads(to_json(sample))


def test_rows_of_other_shapes_go_out_as_they_are():
    sample = host_sample()
    sample["processes"]["top_mem"][0]["extra"] = 1  # keys differ between rows
    sample["net"]["interfaces"][1] = {"name": "lo"}
    wire = json.loads(encode(sample))
    assert isinstance(wire["processes"]["top_cpu"][0], dict) and isinstance(wire["net"]["interfaces"], list)
    assert same(decode(encode(sample)), expected(sample))


# ---- any sample: encode -> decode is the identity (ts to the millisecond) -------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
numbers = st.one_of(st.none(), st.integers(-2**60, 2**60), finite,
                    st.integers(0, 10**6).map(lambda n: n / 10), st.sampled_from([0.0, 1.0, -0.0, 1e300, 2.0**60]))
texts = st.one_of(st.none(), st.sampled_from(["root", "www-data", "chromium", "", "é ✓", '"quoted"']),
                  st.text(max_size=8))
scalars = st.one_of(numbers, texts, st.booleans())
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)), max_leaves=8)
common = st.sampled_from(["chromium", "python", "postgres", "root", None])  # names that repeat
rows = st.fixed_dictionaries({"pid": st.integers(0, 2**22), "name": st.one_of(common, texts),
                              "user": st.one_of(common, common, texts), "cpu": numbers,
                              "rss": st.one_of(st.integers(0, 2**40), numbers)})
odd_rows = st.one_of(rows, st.dictionaries(st.sampled_from(["pid", "name", "cpu", "x"]), scalars, max_size=4),
                     scalars, st.fixed_dictionaries({"pid": json_values, "name": json_values}))


@st.composite
def processes(draw):
    pool = draw(st.lists(draw(st.sampled_from([rows, rows, rows, odd_rows])), min_size=0, max_size=12))
    pick = st.lists(st.sampled_from(pool), max_size=10) if pool else st.just([])
    out = {"count": draw(st.integers(0, 5000))}
    for name in draw(st.sampled_from([("top_cpu", "top_mem"), ("top_cpu", "top_mem"), ("top_mem",), ()])):
        out[name] = copy.deepcopy(draw(pick))
    extra = [(), (), (), (), ("other",), ("columns",), ("rows",), ("strings",), ("columns", "rows")]
    for key in draw(st.sampled_from(extra)):  # the compact form's own keys among them
        out[key] = draw(json_values)
    return out


containers_rows = st.fixed_dictionaries(
    {"id": st.text("0123456789abcdef", min_size=12, max_size=12), "name": st.one_of(common, texts),
     "image": st.one_of(st.sampled_from(["web:1", "postgres:16", None]), texts),
     "state": st.sampled_from(["running", "paused", None]), "cpu": numbers, "cpu_pct": numbers,
     "mem": st.one_of(st.integers(0, 2**40), numbers), "rx_bps": numbers, "restarts": numbers})


@st.composite
def containers_section(draw):
    rows = draw(st.lists(draw(st.sampled_from([containers_rows, containers_rows, odd_rows])), max_size=8))
    out = {"running": draw(st.integers(0, 500)), "stopped": draw(st.one_of(st.none(), st.integers(0, 50))),
           "engine": draw(st.one_of(st.none(), texts)), "missing": draw(st.one_of(st.none(), texts)),
           "list": copy.deepcopy(rows)}
    if draw(st.booleans()):
        out[draw(st.sampled_from(["columns", "rows", "strings", "other"]))] = draw(json_values)
    return out


def table_of(keys):
    return st.lists(st.fixed_dictionaries({k: scalars for k in keys}), max_size=4)


samples = st.fixed_dictionaries(
    {"ts": st.one_of(st.floats(0, 4e9), st.integers(0, 4 * 10**9)), "seq": st.integers(0, 2**40), "host": st.text(max_size=10),
     "interval": st.sampled_from([0.25, 1.0, 2.5, 60.0]),
     "cpu": st.dictionaries(st.sampled_from(["percent", "user", "per_core"]), json_values),
     "disks": st.one_of(table_of(["mount", "total", "read_bps"]), st.lists(odd_rows, max_size=3), json_values,
                        st.fixed_dictionaries({"columns": json_values, "rows": json_values})),
     "net": st.one_of(st.fixed_dictionaries({"rx_bps": numbers, "interfaces": table_of(["name", "rx_bps"])}),
                      json_values),
     "sensors": st.one_of(st.none(), st.fixed_dictionaries({"temperatures": table_of(["chip", "current"]),
                                                            "fans": table_of(["chip", "rpm"])})),
     "processes": st.one_of(processes(), processes(), processes(), json_values),
     "missing": st.dictionaries(st.text(max_size=6), st.text(max_size=10), max_size=2)},
    optional={"extra": json_values,
              "containers": st.one_of(containers_section(), containers_section(), json_values,
                                      st.fixed_dictionaries({"list": st.fixed_dictionaries(
                                          {"columns": json_values, "rows": json_values})}))})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples)
def test_encode_then_decode_gives_back_any_sample(sample):
    before = copy.deepcopy(sample)
    data = encode(sample)
    assert same(sample, before)
    compact = "v" in json.loads(data)  # if not, the plain form (a dict like a table where one goes)
    assert compact or data == to_json(sample)
    assert same(decode(data), expected(sample, compact))
    assert same(decode(data.encode()), expected(sample, compact))


@settings(max_examples=300, deadline=None)
@given(containers_section())
def test_any_container_rows_come_back_in_order_with_every_row(section):
    sample = {**host_sample(), "containers": section}
    data = encode(sample)
    compact = "v" in json.loads(data)
    assert compact  # a list of rows is never mistaken for a table
    assert same(decode(data), expected(sample, compact))


class Floaty(float):
    """A float of another type: made short like any float, as _short does (isinstance)."""


def cell_by_cell(out: dict, rows) -> None:
    """The containers' table made the plain way, a pass over each cell: what wire._pack_containers,
    made column by column, must give byte for byte."""
    if not isinstance(rows, list) or not rows or not isinstance(out.get("containers"), dict):
        return
    columns = wire._columns(rows)
    if columns is None:
        out["containers"]["list"] = wire._short(rows)
        return
    table = [[wire._short(r[c]) for c in columns] for r in rows]
    packed: dict = {"columns": list(columns)}
    strings = wire._strings(columns, table)
    if strings:
        packed["strings"] = strings
    packed["rows"] = table
    out["containers"] = {**out["containers"], "list": packed}


odd_cells = st.one_of(scalars, st.floats(), st.floats().map(Floaty), json_values, st.sampled_from(["web", "web"]))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(
    containers_rows,
    st.fixed_dictionaries({"id": odd_cells, "image": odd_cells, "cpu": odd_cells, "uptime": odd_cells}),
    st.fixed_dictionaries({"image": odd_cells}), st.fixed_dictionaries({}),
    st.dictionaries(st.sampled_from(["id", "image", "cpu", "uptime", "x"]), odd_cells, max_size=4), scalars),
    min_size=1, max_size=8))
def test_container_rows_made_column_by_column_are_the_cell_by_cell_table_byte_for_byte(rows):
    sample = {**host_sample(), "containers": {"running": len(rows), "list": rows}}
    fast = encode(sample)
    with mock.patch.object(wire, "_pack_containers", cell_by_cell):
        assert encode(sample) == fast


@settings(max_examples=300, deadline=None)
@given(processes())
def test_any_process_lists_come_back_in_order_with_every_row(procs):
    sample = {**host_sample(), "processes": procs}
    data = encode(sample)
    compact = "v" in json.loads(data)
    assert same(decode(data), expected(sample, compact))


# ---- the page's decoder (static/js/wire.js) gives back the same sample ------------------------

WIRE_JS = Path(__file__).resolve().parents[1] / "static" / "js" / "wire.js"
# For each [compact, plain]: the page's decode of the first, deep-compared with JSON.parse of the
# second (numbers by value, objects by their own keys, arrays in order); prints the indexes that differ.
NODE_CHECK = """
import { decodeMetrics } from %s;
const same = (a, b) => {
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]));
  if (a !== null && typeof a === "object") {
    if (b === null || typeof b !== "object" || Array.isArray(b)) return false;
    const ka = Object.keys(a), kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && same(a[k], b[k]));
  }
  return a === b;
};
let text = "";
process.stdin.on("data", (d) => { text += d; });
process.stdin.on("end", () => {
  const bad = JSON.parse(text).map(([wire, plain], i) => {
    try { return same(decodeMetrics(JSON.parse(wire)), JSON.parse(plain)) ? -1 : i; } catch (e) { return i; }
  }).filter((i) => i >= 0);
  console.log(JSON.stringify(bad));
});
"""


def page_decodes(batch: list[dict]) -> list[int]:
    """Indexes of the samples that the page's decoder does not give back (node runs wire.js)."""
    node = require("node", "nodejs")
    pairs = []
    for sample in batch:
        data = encode(sample)
        pairs.append([data, to_json(expected(sample, '"v":' in data[:6]))])
    out = subprocess.run([node, "--input-type=module", "-e", NODE_CHECK % json.dumps(WIRE_JS.as_uri())],
                         input=json.dumps(pairs), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_page_decodes_a_host_sample_and_the_apps_own(svc):
    svc.sampler.tick()
    assert page_decodes([host_sample(), svc.local.latest]) == []
    broken = host_sample()
    broken["processes"]["top_cpu"][0]["pid"] = 1  # a check that can fail: a row the page must not get
    data = json.loads(encode(broken))
    data["processes"]["top_cpu"][0] = 5
    assert subprocess.run([require("node", "nodejs"), "--input-type=module", "-e", NODE_CHECK % json.dumps(WIRE_JS.as_uri())],
                          input=json.dumps([[json.dumps(data), to_json(expected(broken))]]),
                          capture_output=True, text=True, timeout=30).stdout.strip() == "[0]"


def test_the_page_decodes_any_sample_as_the_server_does():
    batch: list[dict] = []

    @settings(max_examples=300, deadline=None, database=None)
    @given(st.one_of(samples, processes().map(lambda p: {**host_sample(), "processes": p}),
                     containers_section().map(lambda c: {**host_sample(), "containers": c})))
    def collect(sample):
        batch.append(copy.deepcopy(sample))

    collect()  # drawn by hypothesis, then decoded by one node process
    bad = page_decodes(batch)
    assert bad == [], [batch[i] for i in bad[:3]]


ROWS = """() => [...document.querySelectorAll('#procs tbody tr')].map(
  (tr) => [Number(tr.dataset.pid), ...[...tr.children].slice(1, 4).map((td) => td.textContent)])"""


def test_the_page_shows_the_servers_own_sample_in_chromium(start_server, browser, page_errors):
    server = start_server({"SAMPLE_INTERVAL": "0.5"})
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = page_errors(context.new_page())
    open_with_login_link(page, f"{server.base}/?token={TOKEN}")
    wait_state(page, "sse-pill", "open")
    page.evaluate("window.dashboard.stream.addEventListener('metrics', (e) => { window.lastSample = e.detail; })")
    page.wait_for_function("window.lastSample && window.lastSample.seq >= 3", timeout=15000)
    Console(server.port).ok("pause")  # the latest sample stays the latest
    status, snap = server.get("/api/snapshot")
    assert status == 200 and "v" not in snap
    page.wait_for_function(f"window.lastSample.seq === {snap['seq']}", timeout=10000)
    shown = page.evaluate("window.lastSample")  # what the cards, charts and tables were given
    assert same(shown, {**snap, "ts": round(snap["ts"], 3)}), (shown, snap)
    for tab, key in (("cpu", "top_cpu"), ("mem", "top_mem")):
        page.click(f"[data-sort={tab}]")
        want = [[p["pid"], p["name"], p["user"], "—" if p["cpu"] is None else f"{p['cpu']:.1f} %"]
                for p in snap["processes"][key]]
        page.wait_for_function(f"({ROWS})().length === {len(want)}")
        assert page.evaluate(ROWS) == want
    context.close()
    assert page_errors.errors == []


# ---- every reader in the app decodes it once -----------------------------------------------

def test_a_view_fed_the_wire_form_keeps_the_sample_and_serves_the_plain_json():
    view = HostView("db-1", CONFIG)
    now = int(time.time() * 1000) + 1000
    sample = host_sample(ts=now / 1000)
    frame = view.ingest("metrics", encode(sample), key=(now, 0))  # as from Redis
    assert frame is not None and same(view.latest, expected(sample))
    assert len(view.history) == 1
    body = view.snapshot_json()
    assert same(json.loads(body), expected(sample)) and '"v"' not in body
    assert view.snapshot_json() is body  # encoded once per sample

    again = HostView("db-1", CONFIG)  # the stored buffer read back at start, old events too
    seq = again.restore([((now - 1000, 0), "metrics", to_json(host_sample(ts=now / 1000 - 1, seq=6))),
                         ((now, 0), "metrics", encode(sample)),
                         ((now + 1, 0), "metrics", '{"v":9}')])
    assert seq == 7 and same(again.latest, expected(sample)) and len(again.history) == 2


def test_the_stream_sends_the_compact_form_and_the_api_keeps_its_shape(client, svc):
    svc.sampler.tick()
    sample = svc.local.latest
    frame = svc.hub.head
    data = frame.wire.split(b"data: ", 1)[1].split(b"\n", 1)[0].decode()
    assert data == encode(sample) and same(decode(data), expected(sample))
    snap = client.get("/api/snapshot")
    assert snap.status_code == 200 and snap.get_data(as_text=True) == to_json(sample)
    assert isinstance(snap.json["processes"]["top_cpu"][0], dict) and "v" not in snap.json
    r = client.get("/events", buffered=False)
    parser = SSEParser()
    it = iter(r.response)
    parser.feed(next(it).decode())
    (ev,) = parser.feed(next(it).decode())
    assert ev.type == "metrics" and ev.json["v"] == VERSION and ev.json["seq"] >= sample["seq"]
    assert all(isinstance(p, dict) for p in decode(ev.data)["processes"]["top_mem"])
    r.close()


# ---- the benchmark's figures -----------------------------------------------------------

def test_the_benchmark_weighs_both_forms_on_the_apps_own_samples(svc):
    samples = []
    for _ in range(3):
        svc.sampler.tick()
        samples.append(svc.local.latest)
        time.sleep(0.05)
    for sample in samples:
        assert plain_json(sample) == to_json(sample)  # the baseline is the plain form, byte for byte
        assert same(decode(encode(sample)), expected(sample))
    figures = wire_figures(samples, encode)
    assert figures["pass"] and figures["ratio_max"] <= WIRE_GOAL, figures
    assert figures["new_frame_bytes_mean"] - figures["new_bytes_mean"] == \
        figures["old_frame_bytes_mean"] - figures["old_bytes_mean"]  # the same framing around both
    assert figures["old_encode_cpu_ms_mean"] > 0 and figures["new_encode_cpu_ms_mean"] > 0


def test_the_bench_table_prints_both_forms_and_the_target():
    wire = wire_figures([host_sample(), host_sample(ts=1796172926.5, seq=8)], encode)
    sampler = {"cpu_ms_mean": 6.5, "cpu_ms_p50": 6.4, "cpu_ms_min": 6, "cpu_ms_max": 9,
               "encode_cpu_ms_mean": 0.1, "sample_bytes": 1500, "core_percent_at_1hz": 0.65, "wire": wire}
    rows = report.targets({}, {}, sampler)
    (row,) = [r for r in rows if r["target"] == "bytes per metrics event"]
    assert row["status"] == "PASS" and f"{wire['ratio']}x" in row["measured"]
    text = report.table({}, {}, rows, sampler, None, 1)
    assert "Metrics event, same 2 samples, plain JSON -> compact form" in text
    assert f"SSE frame {wire['old_frame_bytes_mean']:.0f} -> {wire['new_frame_bytes_mean']:.0f} bytes" in text
    old = report.targets({}, {}, {k: v for k, v in sampler.items() if k != "wire"})
    assert [r["status"] for r in old if r["target"] == "bytes per metrics event"] == ["n/a"]
