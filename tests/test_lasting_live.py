"""A real gunicorn restart on the embedded store: viewers resume, operators find their settings."""

import signal
import time

from tests.conftest import TOKEN
from tests.support.sseclient import SSEClient
from tests.support.wsclient import Console

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_a_restart_is_invisible_to_viewers_and_operators(start_server):
    env = {"SAMPLE_INTERVAL": "0.5", "SECRET_KEY": "kept-across-restarts"}
    server = start_server(env)
    console = Console(server.port, name="alice")
    console.ok("interval 0.25")
    console.ok("alert set cpu > 1000 --for 5")
    console.ok("broadcast before the restart")
    console.ws.close()
    with SSEClient(server.port, headers=AUTH) as viewer:
        before = viewer.read_events(6)
    last_id, last_seq = before[-1].last_event_id, before[-1].json["seq"]
    stopped_at = time.time()
    assert server.stop(signal.SIGTERM) < 15 and server.proc.returncode == 0
    time.sleep(2)  # the downtime, seen as a gap in time

    started = time.monotonic()
    again = start_server(env, port=server.port)
    took = time.monotonic() - started
    with SSEClient(again.port, headers={**AUTH, "Last-Event-ID": last_id}) as viewer:
        viewer.wait_for(lambda c: len(c.events_of("metrics")) >= 3, timeout=15)
        events = viewer.parser.events
    assert "resync" not in [e.type for e in events]
    seqs = [e.json["seq"] for e in events if e.type == "metrics"]
    # Samples taken after the viewer's last one (before SIGTERM) come first, then the new
    # process goes on numbering: no gap, no duplicate.
    assert seqs[0] > last_seq and seqs == list(range(seqs[0], seqs[0] + len(seqs))), (last_seq, seqs)
    status, health = again.get("/healthz")
    assert health["history"]["state"] == "ok" and health["sampler"]["interval"] == 0.25
    console = Console(again.port, name="bob")
    rules = console.ok("alert list")
    assert any("cpu" in str(row) and "1000" in str(row) for row in rules["rows"]), rules
    console.ws.close()
    status, _headers, raw = again.request("GET", "/api/history?seconds=120", headers=AUTH)
    import json
    cols = json.loads(raw)["columns"]
    assert status == 200 and last_seq in cols["seq"]
    # The downtime is a row of nulls between the last sample before and the first after.
    gap = [i for i, s in enumerate(cols["seq"]) if s is None]
    assert gap and all(cols["cpu"][i] is None for i in gap)
    assert any(cols["ts"][i - 1] <= stopped_at + 1 for i in gap)
    print(f"restart: ready in {took:.2f}s")


def test_a_corrupt_store_at_start_is_one_log_line_and_live_data_flows(start_server, tmp_path):
    data = tmp_path / "data-app"
    data.mkdir()
    (data / "history.sqlite3").write_bytes(b"not a database at all " * 500)
    server = start_server({"SAMPLE_INTERVAL": "0.5"})
    status, health = server.get("/healthz")
    assert status == 200 and health["history"]["state"] == "unavailable"
    assert "history.sqlite3" in health["history"]["error"]
    with SSEClient(server.port, headers=AUTH) as viewer:
        assert len(viewer.read_events(2)) >= 2
    lines = [line for line in server.log().splitlines() if "history store" in line]
    assert len(lines) == 1 and "serving live data without lasting history" in lines[0], lines
