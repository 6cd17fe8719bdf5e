"""The browser benchmark's smoke run (bench/browser_bench.py): our page alone, a
few seconds at 4 Hz, visible then hidden, through the real entry point. Checks
that the figures come out and that the hidden page does less work than the
visible one, by counts of work (samples shown, chart draws, layouts), never by
wall time."""

import json
import subprocess
import sys
from pathlib import Path

from tests.support.browser import require_chromium

REPO = Path(__file__).resolve().parents[1]


def test_browser_bench_figures_and_a_hidden_page_that_rests(tmp_path):
    require_chromium()
    out = tmp_path / "browser.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.browser_bench", "--seconds", "3", "--hidden-seconds", "2", "--rates", "4",
         "--warmup", "1",
         "--glances", "none", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["glances"]["how"] == "not run (--glances none)"
    assert "task % core" in proc.stdout and "not run" in proc.stdout
    ours = result["pages"]["ours"]["4 Hz"]
    visible, hidden = ours["visible"], ours["hidden"]
    assert visible["seconds"] >= 3 and 2 <= hidden["seconds"] < 3
    assert "3 s visible, 2 s hidden" in proc.stdout
    for m in (visible, hidden):
        assert m["task_pct"] >= 0 and m["script_pct"] >= 0
        assert 0.5 < m["heap_mb_start"] < 200 and 0.5 < m["heap_mb_end"] < 200
    # Visible: every sample shown and drawn (at 4 Hz, a few a second).
    assert visible["work"]["samples"] >= 4 and visible["work"]["draws"] >= 4
    # Hidden: nothing shown or drawn, and fewer layouts than while visible.
    assert hidden["work"]["samples"] == 0 and hidden["work"]["draws"] == 0
    assert hidden["layouts_per_s"] < visible["layouts_per_s"]
