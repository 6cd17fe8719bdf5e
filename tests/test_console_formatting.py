"""The console's text formatting (dashboard/console/formatting.py): values by what
their key names, tables fitted to 80 and 120 columns, and the command-line client
printing real results from a real server within its terminal's width."""

import os
import re
import subprocess
import sys
import time

import pytest

from dashboard.console import formatting
from tests.support.server import REPO, TOKEN
from tests.support.waiting import eventually

HELP = {
    "columns": ["usage", "role", "help"],
    "rows": [
        ["alert set <metric> <op> <value> [--for <seconds>]", "operator",
         "Alert when a metric crosses a threshold for a while."],
        ["proc <pid>", "observer", "Look into one process of this host: command line, user, status, threads, "
         "files, connections, children, and its CPU and memory while it was watched."],
        ["notify add <url> [--name <name>]", "operator", "Send alerts to an Apprise URL (mailto://, slack://, "
         "ntfy://, tgram://, json://...); kept across restarts."],
    ],
}


def test_values_read_as_times_durations_sizes_booleans_and_lists():
    now = time.time()
    v = formatting.value
    assert re.fullmatch(r"\d\d:\d\d:\d\d", v("created", now))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", v("ts", now - 3 * 86400))
    assert v("uptime", 93784) == "1d 2h" and v("uptime", 11.6) == "11.6s" and v("hold", 0) == "0s"
    assert v("rss", 84_000_000) == "80.1 MiB" and v("watched.rss_max", 2048) == "2.0 KiB"
    assert v("paused", False) == "no" and v("sampler.here", True) == "yes"
    assert v("values", {"vm": 23.4, "web-2": None}) == "vm=23.4, web-2=-"
    assert v("anything", 1796395012.5) == "1796395012"  # never 1.79639e+09
    assert v("cpu_avg", 0.5) == "0.5%" and v("threshold", 90.0) == "90"
    assert v("name", "evil\x1b[2Jname") == "evil\\x1b[2Jname"  # escaped, as ever


@pytest.mark.parametrize("width", [80, 120])
def test_a_wide_table_fits_the_width_with_whole_headers_and_whole_words(width):
    out = formatting.render(HELP, width)
    lines = out.splitlines()
    assert all(len(line) <= width for line in lines), out
    assert lines[0].split() == ["USAGE", "ROLE", "HELP"]
    words = " ".join(line.strip() for line in lines[1:]).split()
    for row in HELP["rows"]:
        for word in row[2].split():
            assert word in words, (word, out)  # wrapped at spaces, not inside a word
    if width == 120:
        assert len(lines) < 8  # room to spare: fewer, longer lines


@pytest.mark.parametrize("width", [80, 120])
def test_key_value_lines_wrap_under_their_value(width):
    cmd = "/usr/bin/python3 -m gunicorn " + " ".join(f"--option-{i} value-{i}" for i in range(12))
    out = formatting.render({"pid": 7, "cmdline": cmd, "started": time.time()}, width)
    lines = out.splitlines()
    assert all(len(line) <= width for line in lines), out
    assert lines[1].startswith("cmdline  /usr/bin/python3")
    assert all(line.startswith(" " * 9) for line in lines[2:-1])
    assert " ".join(line[9:].strip() for line in lines[1:-1]) == cmd


def cli(server, line, columns):
    env = {**os.environ, "COLUMNS": str(columns)}
    proc = subprocess.run([sys.executable, "-m", "dashboard.console", server.base, "--token", TOKEN, "-c", line],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("columns", [80, 120])
def test_the_cli_prints_real_results_formatted_within_its_terminal(start_server, columns):
    server = start_server()
    created = cli(server, "alert set cpu >= 0", columns)
    assert re.search(r"^created\s+\d\d:\d\d:\d\d$", created, re.M), created
    assert "e+09" not in created
    cli(server, "alert set memory > 1 --for 5", columns)
    status = cli(server, "status", columns)
    assert re.search(r"^uptime\s+\d+(\.\d+)?s$|^uptime\s+\d+m \d+s$", status, re.M), status
    assert re.search(r"^sampler\.paused\s+no$", status, re.M) and "False" not in status
    for line in ("help", "alert list", "audit 20", "ps python", "proc 1"):
        out = cli(server, line, columns)
        assert all(len(row) <= columns for row in out.splitlines()), (line, out)
    # Per-host values show once a sample has been checked against the rules (a second or so).
    def with_values():
        out = cli(server, "alert list", columns)
        return out if re.search(r"=\d", out) else None

    listing = eventually(with_values, what="alert list shows per-host values")
    assert "{" not in listing
