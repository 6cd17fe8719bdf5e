"""Containers against a real engine: Debian's Podman as root, its API on a socket of this session's,
containers with known limits (idle, burning half a CPU, holding memory), read by the collector, sent in
the metrics event and /api/snapshot of a live gunicorn server, asked about on the console, alerted on,
and shown on the page in Chromium. Every container a test starts is removed after it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from gevent import sleep as gsleep

from dashboard.sampling import procfs
from dashboard.sampling.containers import Containers
from dashboard.sampling.rates import Rates
from dashboard.stream.wire import decode
from tests.conftest import TOKEN
from tests.support.browser import open_with_login_link, wait_state
from tests.support.podman import BURN, HOLD, Containers as Started, Service, ensure_image, podman, require_podman, wait_running
from tests.support.sseclient import SSEParser
from tests.support.waiting import eventually
from tests.support.wsclient import Console

MiB = 1 << 20


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    """`podman system service` for this test process, stopped at the end of the session."""
    require_podman()
    folder = tmp_path_factory.mktemp("podman")
    ensure_image(folder)
    service = Service(folder)
    yield service.socket
    service.stop()


@pytest.fixture
def started(engine):
    box = Started()
    yield box
    box.remove_all()


@pytest.fixture
def three(started):
    """The idle one, the burner (0.5 CPU) and the holder (64 MiB limit, 40 MiB held, 24 MiB cached)."""
    idle = started.run("idle", "--memory", "32m", "--label", "team=<b>ops</b>")
    burner = started.run("burner", "--cpus", "0.5", "--memory", "32m", command=BURN)
    holder = started.run("holder", "--memory", "64m", "--shm-size", "48m", command=HOLD)
    wait_running([idle, burner, holder])
    return idle, burner, holder


class Sampling:
    def __init__(self, socket: str) -> None:
        self.c = Containers(socket=socket)
        self.rates = Rates()

    def sample(self) -> dict:
        self.rates.begin(time.monotonic())
        out = self.c(self.rates)
        self.rates.end()
        self.c.wait_engine(30)
        return out


def by_name(section: dict) -> dict:
    return {r["name"]: r for r in section.get("list") or ()}


def test_the_collector_reads_each_containers_limits_and_use_and_the_engine_names_them(engine, three):
    idle, burner, holder = three
    s = Sampling(engine)
    seen: dict[str, list] = {burner: [], idle: []}

    def named_with_rates():
        gsleep(0.5)
        rows = by_name(s.sample())
        for name in seen:
            if name in rows and rows[name]["cpu_pct"] is not None:
                seen[name].append(rows[name]["cpu_pct"])
        return len(seen[burner]) >= 4 and rows

    rows = eventually(named_with_rates, timeout=60, what="the three containers named, with rates")
    section = s.sample()
    assert section["engine"].startswith("podman ") and section["missing"] is None and section["cgroup"] == "hybrid"
    b, i, h = rows[burner], rows[idle], rows[holder]
    # CPU on two shared cores varies: ranges. The burner is held to half a CPU by its quota.
    assert b["cpu_limit"] == 0.5 and 30 <= max(seen[burner]) <= 115, seen[burner]
    assert max(seen[idle]) < 5 and i["cpu_limit"] is None
    assert b["cpu"] <= 30  # half a core is a quarter of two
    assert h["mem_limit"] == 64 * MiB and 36 * MiB <= h["mem"] <= 64 * MiB and 55 <= h["mem_pct"] <= 100
    assert h["cache"] >= 8 * MiB  # the file it wrote: reclaimable, counted apart
    assert i["mem"] < 8 * MiB and i["pids"] == 1 and i["image"] == "localhost/busybox:test"
    assert i["state"] == "running" and i["restarts"] == 0 and 0 <= i["uptime"] < 600
    assert i["rx_bps"] is not None and i["tx_bps"] is not None  # from /proc/<pid>/net/dev in its namespace
    details = s.c.details(s.c.find(idle))
    assert details["labels"]["team"] == "<b>ops</b>" and details["pid"] > 1 and details["history"]["rows"]


def test_containers_that_come_go_and_restart_between_samples_break_nothing(engine, started):
    s = Sampling(engine)
    first = started.run("first", "--memory", "16m")
    wait_running([first])
    eventually(lambda: first in by_name(s.sample()), timeout=30, what="the first container listed")
    second = started.run("second", "--memory", "16m")
    started.remove(first)
    wait_running([second])
    rows = eventually(lambda: (r := by_name(s.sample())) and second in r and first not in r and r,
                      timeout=30, what="the second listed, the first gone")
    assert rows[second]["cpu"] is None or rows[second]["cpu"] <= 100  # new: no rate, or a sane one
    podman("restart", "-t", "0", second)
    for _ in range(6):  # the restart falls between samples: nothing breaks, no rate is bogus
        gsleep(0.3)
        row = by_name(s.sample()).get(second)
        assert row is None or row["cpu"] is None or 0 <= row["cpu"] <= 100
        assert row is None or row["rx_bps"] is None or row["rx_bps"] < 10 * MiB


def _kept_of(s: Sampling, name: str) -> dict[str, int]:
    return dict(s.c.known[s.c.find(name)].files.fds)


def _points_at(fd: int, cid: str) -> bool:
    try:
        return cid in os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return False


def test_each_containers_files_stay_open_within_the_budget_are_reopened_and_closed(engine, started, monkeypatch):
    s = Sampling(engine)
    one, two = started.run("keptone", "--memory", "16m"), started.run("kepttwo", "--memory", "16m")
    wait_running([one, two])
    eventually(lambda: {one, two} <= set(by_name(s.sample())) and s.c.engine_missing is None, timeout=30,
               what="both listed and named")
    cid = s.c.find(one)
    files = _kept_of(s, one)
    cgroup = [fd for name, fd in files.items() if name != "net/dev"]
    assert len(cgroup) >= 4 and all(_points_at(fd, cid) for fd in cgroup)  # cpu, memory, io, pids
    assert _points_at(files["net/dev"], f"/{s.c.known[cid].pid}/net/dev")  # its init's network, kept too
    assert procfs.kept_files() >= len(files) + len(_kept_of(s, two))  # counted in the one budget
    rows = by_name(s.sample())
    assert _kept_of(s, one) == files and rows[one]["mem"] > 0 and rows[one]["pids"] >= 1  # the same files, read again

    podman("restart", "-t", "0", one)  # a new cgroup under the same id: the kept files read ENODEV
    eventually(lambda: (r := by_name(s.sample()).get(one)) and r["pids"] >= 1 and len(_kept_of(s, one)) >= 4,
               timeout=30, what="the restarted container read through files opened again", ignoring=(LookupError,))
    for fd in _kept_of(s, one).values():
        assert os.pread(fd, 64, 0)  # its new folder's, not the removed one's
    eventually(lambda: s.sample() and _points_at(_kept_of(s, one).get("net/dev", -1), f"/{s.c.known[cid].pid}/net/dev"),
               timeout=30, what="the new init's network read through a kept file")  # once the engine named it

    # No room: a new container is read by path (0, not what is kept now: containers of other tests
    # that go meanwhile give their files back, which would make room again).
    monkeypatch.setattr(procfs, "_budget", 0)
    three = started.run("keptthree", "--memory", "16m")
    wait_running([three])
    row = eventually(lambda: by_name(s.sample()).get(three), timeout=30, what="the third listed")
    assert _kept_of(s, three) == {} and row["mem"] > 0 and row["pids"] >= 1

    gone = s.c.find(two)
    old, init = _kept_of(s, two), f"/{s.c.known[gone].pid}/net/dev"
    started.remove(two)
    eventually(lambda: two not in by_name(s.sample()), timeout=30, what="the second gone")
    assert gone not in s.c.known and not any(_points_at(fd, gone) for fd in old.values())  # its files closed,
    assert not _points_at(old["net/dev"], init)  # its init's network's too (which would hold the namespace)


def test_a_container_that_comes_as_another_goes_between_samples_is_in_the_next_one(engine, started):
    # The folders are listed again only when their link counts moved, or when one of ours went: one
    # gone and one come between two samples leave the counts as they were.
    s = Sampling(engine)
    first = started.run("goesout", "--memory", "16m")
    wait_running([first])
    eventually(lambda: first in by_name(s.sample()), timeout=30, what="the first listed")
    s.sample()
    started.remove(first)
    second = started.run("comesin", "--memory", "16m")
    wait_running([second])
    out = s.sample()
    ids = [r["id"] for r in out["list"]]
    assert first not in by_name(out) and started.id(second)[:12] in ids and out["running"] == len(ids)


def test_without_the_engine_containers_are_listed_by_id_and_missing_says_why(engine, started):
    idle = started.run("alone", "--memory", "16m")
    wait_running([idle])
    cid = started.id(idle)
    s = Sampling("/nonexistent/engine.sock")
    rows = eventually(lambda: by_name(s.sample()).get(cid[:12]), timeout=30, what="listed by id")
    section = s.sample()
    assert rows["image"] is None and section["engine"] is None and section["stopped"] is None
    assert section["missing"] == "no engine socket at /nonexistent/engine.sock"


def test_the_event_the_snapshot_and_the_console_on_a_live_server(engine, three, start_server):
    idle, burner, holder = three
    server = start_server({"SAMPLE_INTERVAL": "0.5", "CONTAINER_SOCKET": engine, "ALLOW_PROCESS_CONTROL": "1"})

    def snapshot_names():
        status, snap = server.get("/api/snapshot")
        rows = by_name((snap or {}).get("containers") or {})
        return status == 200 and all(n in rows for n in three) and rows[burner]["cpu_pct"] is not None and snap

    snap = eventually(snapshot_names, timeout=60, what="the snapshot naming the three")
    assert isinstance(snap["containers"]["list"], list) and snap["containers"]["engine"].startswith("podman")
    # The stream's event: the compact form, decoded to the same rows.
    import socket as _s
    sock = _s.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
    parser, metrics = SSEParser(), []
    def a_metrics_event() -> list:
        metrics.extend(e for e in parser.feed(sock.recv(65536).decode("utf-8", "replace")) if e.type == "metrics")
        return metrics
    eventually(a_metrics_event, 20, 0, what="a metrics event on the stream")
    sock.close()
    wire = metrics[0].json
    assert wire["v"] == 2 and wire["containers"]["list"]["columns"][:2] == ["id", "name"]
    assert {n for n in three} <= set(by_name(decode(metrics[0].data)["containers"]))

    op = Console(server.port)
    table = op.ok(f"containers {started_prefix(burner)} --sort mem")
    names = [row[0] for row in table["rows"]]
    assert names[0] == holder and set(names) == set(three) and table["running"] >= 3
    assert op.ok(f"containers {started_prefix(burner)}")["rows"][0][0] == burner  # CPU first by default
    details = op.ok(f"container {idle}")
    assert details["labels"] == {"team": "<b>ops</b>"} and details["restart"] == f"container restart {idle}"
    assert op.error("container nosuch-container")["code"] == "not_found"
    before = podman("inspect", "-f", "{{.State.StartedAt}}", idle)
    err = op.error(f"container restart {idle} --wait 0")  # its sleep, as pid 1, ignores SIGTERM
    assert err["code"] == "confirm_required"
    assert op.ok(err["confirm"]) == {"id": details["id"][:12], "name": idle, "restarted": True}
    assert podman("inspect", "-f", "{{.State.StartedAt}}", idle) != before
    lines = [r[4] for r in op.ok("audit 20")["rows"]]
    assert f"container restart {idle} --wait 0" in lines and err["confirm"] in lines

    # A rule fires on the burner alone, with its figures as evidence.
    op.ok(f"alert set container:{burner} cpu > 20 --for 0")
    push = op.wait_push("alert", timeout=30)
    assert push["state"] == "firing" and push["host"].endswith("/" + burner)
    assert push["container"]["name"] == burner and push["container"]["cpu_limit"] == 0.5
    op.close()


def started_prefix(name: str) -> str:
    return name.rsplit("-", 1)[0]


def test_restart_is_off_unless_process_control_is_on(engine, started, start_server):
    idle = started.run("kept", "--memory", "16m")
    wait_running([idle])
    server = start_server({"SAMPLE_INTERVAL": "0.5", "CONTAINER_SOCKET": engine})
    op = Console(server.port)
    eventually(lambda: op.request(f"container {idle}").get("ok"), timeout=60, what="the container known")
    err = op.error(f"container restart {idle}")
    assert err["code"] == "forbidden" and "ALLOW_PROCESS_CONTROL" in err["message"]
    assert op.ok(f"container {idle}")["restart"] is None
    op.close()


SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"  # with the page's others
LEGEND = """(key) => [...document.querySelectorAll(`[data-chart="containers-${key}"] .u-legend .u-series th`)]
  .map((th) => th.textContent).slice(1)"""
ROWS = """() => [...document.querySelectorAll('#containers table.ctable tbody tr')].map((tr) => tr.children[0].textContent)"""


@pytest.mark.parametrize("width", [1400, 390])
def test_the_page_shows_the_containers_sorted_and_the_card(engine, three, start_server, browser, page_errors, width):
    """...and the busiest containers' charts: the burner first by CPU, the holder first by memory."""
    idle, burner, holder = three
    server = start_server({"SAMPLE_INTERVAL": "0.5", "CONTAINER_SOCKET": engine})
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = page_errors(context.new_page())
    open_with_login_link(page, f"{server.base}/?token={TOKEN}")
    wait_state(page, "sse-pill", "open")
    page.wait_for_function(f"({ROWS})().includes({holder!r})", timeout=60000)
    eventually(lambda: by_name(server.get("/api/snapshot")[1]["containers"])[burner]["cpu_pct"] is not None,
               timeout=30, what="the burner's rate", ignoring=(KeyError,))  # named once the engine answers
    Console(server.port).ok("pause")
    snap = server.get("/api/snapshot")[1]
    rows = by_name(snap["containers"])
    page.wait_for_function(f"window.dashboard.stream && ({ROWS})().length === {len(rows)}", timeout=15000)
    for tab, key in (("mem", "mem_pct"), ("cpu", "cpu_pct")):
        page.click(f"[data-csort={tab}]")

        def in_order():  # the paused sample's rows, heaviest share of its limit first (ties in any order)
            shown = page.evaluate(ROWS)
            values = [-1 if rows[n][key] is None else rows[n][key] for n in shown]
            return set(shown) == set(rows) and values == sorted(values, reverse=True) and shown
        eventually(in_order, timeout=15, what=f"rows sorted by {tab}")
        # The charts pick the busiest over the window by the same figure: of this test's three, the
        # holder by memory and the burner by CPU come before the idle one (the host may run others').
        busiest = {"mem": holder, "cpu": burner}[tab]

        def ahead():
            legend = page.evaluate(LEGEND, key)
            return busiest in legend and (idle not in legend or legend.index(busiest) < legend.index(idle)) \
                and len(legend) <= 5 and legend
        eventually(ahead, timeout=15, what=f"the {tab} chart with {busiest} ahead of {idle}")
    assert page.locator('[data-chart="containers-cpu_pct"] canvas').is_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):  # the page's own toggle: charts take the theme's colors again
        if page.evaluate("document.documentElement.dataset.theme") != scheme:
            page.click("#theme-toggle")
        page.wait_for_function(f"document.documentElement.dataset.theme === {scheme!r}")
        page.wait_for_timeout(300)
        page.locator("#containers").screenshot(path=str(SHOTS / f"containers-{width}-{scheme}.png"))
    card = page.locator('[data-card="containers"]')
    eventually(lambda: f"{snap['containers']['running']}\u00a0running" in card.inner_text(), timeout=15,
               what="the card's count")
    assert card.is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.locator("#containers").is_visible()
    # Names are text: a hostile one given to the page's own table code stays text.
    page.evaluate("""async () => {
      const { ContainerTable } = await import('/static/js/containers.js');
      const box = document.querySelector('#containers').cloneNode(true);
      box.querySelector('table.ctable tbody').replaceChildren();
      document.body.append(box);
      const t = new ContainerTable(box, []);
      t.update({containers: {running: 1, stopped: 0, list: [{id: 'x', name: '<img src=x onerror="window.pwned=1">',
        image: '<b>i</b>', cpu_pct: 5, mem_pct: 5, mem: 1, pids: 1, uptime: 1}]}});
      window.hostile = box;
      const { ContainerCharts } = await import('/static/js/container_charts.js');
      const charts = document.createElement('div');
      document.body.append(charts);
      const c = new ContainerCharts(charts, { base: '', hostQuery: 'host=x', seconds: 60 });
      c.data = { ts: [1, 2], containers: [{ id: 'x', name: '<img src=x onerror="window.pwned=1">',
        cpu_pct: [1, 2], mem_pct: [3, 4] }] };
      c.build();
      window.hostileCharts = charts;
    }""")
    assert page.evaluate("window.hostile.querySelectorAll('img, b').length") == 0
    assert page.evaluate("window.hostileCharts.querySelectorAll('img').length") == 0
    assert page.evaluate("window.hostileCharts.querySelector('.u-legend .u-series:nth-child(2) th')"
                         ".textContent").startswith("<img")
    assert page.evaluate("window.hostile.querySelector('table.ctable tbody td').textContent").startswith("<img")
    assert page.evaluate("window.pwned") is None
    context.close()
    assert page_errors.errors == []


def test_another_hosts_containers_are_read_and_restarted_through_its_agent(engine, three, start_server,
                                                                          redis_server, tmp_path):
    """`--host` on every container command: lists and details from the agent's samples; a restart
    asked of the agent's sampler over Redis, done only where that agent allows process control."""
    import subprocess
    import sys

    from tests.support.server import REPO

    idle, burner, holder = three
    agents = []
    for name, allow in (("edge-1", "1"), ("edge-2", "0")):
        env = {**os.environ, "REDIS_URL": redis_server.url, "SAMPLE_INTERVAL": "0.5", "SAMPLER_LEASE_SECONDS": "2",
               "CONTAINER_SOCKET": engine, "ALLOW_PROCESS_CONTROL": allow, "PYTHONUNBUFFERED": "1"}
        with open(tmp_path / f"agent-{name}.log", "wb") as log:
            agents.append(subprocess.Popen([sys.executable, "-m", "dashboard.agent", "--host-name", name],
                                           cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        server = start_server({"REDIS_URL": redis_server.url, "SECRET_KEY": "shared-secret-key-of-dynos",
                               "SAMPLE_INTERVAL": "0.5", "HOST_NAME": "front", "CONTAINERS": "off",
                               "ALLOW_PROCESS_CONTROL": "1"})
        op = Console(server.port)

        def listed(host):
            reply = op.request(f"containers {started_prefix(idle)} --host {host}")
            rows = (reply.get("result") or {}).get("rows") or []
            return reply.get("ok") and set(three) <= {r[0] for r in rows} and rows
        for host in ("edge-1", "edge-2"):
            eventually(lambda: listed(host), timeout=60, what=f"{host}'s containers named")
        assert op.error(f"containers --host front")["code"] == "not_found"  # the web's own: CONTAINERS=off

        def watched():
            details = op.ok(f"container {holder} --host edge-1")
            return (details.get("watched") or {}).get("samples", 0) >= 2 and details
        details = eventually(watched, timeout=30, what="the holder's figures over samples")
        assert details["host"] == "edge-1" and details["name"] == holder and details["mem_limit"] == 64 * 2**20
        assert details["history"]["columns"] == ["ts", "cpu_pct", "mem_pct"]
        assert details["history"]["rows"][-1][2] > 30  # by now it holds over half of its limit
        assert details["restart"] == f"container restart {holder} --host edge-1"
        assert op.error("container nosuch-container --host edge-1")["code"] == "not_found"
        assert op.error(f"container {holder} --host nowhere")["code"] == "not_found"

        before = podman("inspect", "-f", "{{.State.StartedAt}}", idle)
        err = op.error(f"container restart {idle} --host edge-1 --wait 0")
        assert err["code"] == "confirm_required" and err["target"]["host"] == "edge-1"
        assert op.ok(err["confirm"]) == {"id": err["target"]["id"], "name": idle, "host": "edge-1",
                                         "restarted": True}
        assert podman("inspect", "-f", "{{.State.StartedAt}}", idle) != before
        lines = [r[4] for r in op.ok("audit 20")["rows"]]
        assert f"container restart {idle} --host edge-1 --wait 0" in lines and err["confirm"] in lines
        # edge-2 did not allow it: the ask is refused there, and nothing restarts.
        before = podman("inspect", "-f", "{{.State.StartedAt}}", idle)
        eventually(lambda: listed("edge-2"), timeout=30, what="the restarted container listed again")
        err = op.error(f"container restart {idle} --host edge-2 --wait 0")
        refused = op.error(err["confirm"])
        assert refused["code"] == "forbidden" and "disabled on edge-2" in refused["message"]
        assert podman("inspect", "-f", "{{.State.StartedAt}}", idle) == before
        op.close()
    finally:
        for agent in agents:
            agent.kill()
            agent.wait(10)
