"""The benchmark's own smoke test: a tiny quick run through the real entry point.

Twenty viewers, one short round, every server this machine can run. Checks the
JSON the run writes, not the machine's speed.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_quick_run_writes_sane_json(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--viewers", "20", "--rounds", "1",
         "--seconds", "2", "--idle", "1", "--settle", "0.5", "--grace", "1", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=55,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Targets" in proc.stdout

    result = json.loads((out / "latest.json").read_text())
    for key in ("mode", "host", "params", "summary", "ratios", "targets", "sampler", "runs", "table"):
        assert key in result, key
    assert result["mode"] == "quick"
    expected = {"ours", "naive"} | ({"node"} if shutil.which("node") else set())
    assert {r["server"] for r in result["runs"]} == expected

    for run in result["runs"]:
        assert "failed" not in run, run
        assert run["viewers"] == 20
        assert run["viewers_connected"] == 20 and run["open_at_end"] == 20, run
        assert run["disconnects"] == 0 and run["errors"] == 0 and run["gaps"] == 0, run
        assert 0.5 <= run["events_per_viewer_s"] <= 1.5, run
        assert 0 <= run["delay_p50_ms"] <= run["delay_p99_ms"] < 5000, run
        assert 0 <= run["server_cpu_percent"] < 200, run
        assert run["rss_mb"] > 5 and run["idle_rss_mb"] > 5, run
        assert 1000 < run["event_bytes_mean"] < 10_000, run  # payloads of comparable size
        if run["server"] != "naive":
            assert run["delivered"] == 1.0, run

    ours = result["summary"]["ours"]["20"]
    assert ours["server_cpu_percent"]["median"] >= 0
    if "node" in expected:
        assert {"cpu_ours_over_node", "p99_ours_over_node"} <= result["ratios"]["20"].keys()
    assert "cpu_naive_over_ours" in result["ratios"]["20"]
    assert result["sampler"]["cpu_ms_mean"] > 0
    assert 0 < result["sampler"]["core_percent_at_1hz"] < 100
    assert {t["status"] for t in result["targets"]} <= {"PASS", "FAIL", "n/a"}
    if result["plot"]:
        assert (out / "fanout.png").stat().st_size > 1000
