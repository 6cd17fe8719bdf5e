"""A local user's process names itself to attack whoever reads the console: the real CLI, against
the real server, prints its name and command line, a broadcast and an error as visible escapes."""

import json
import queue
import re
import subprocess
import sys
import threading
import time

from dashboard.console.client import Session
from tests.support.server import REPO, TOKEN
from tests.support.waiting import eventually

# Sets the window title and holds a raw line feed; the kernel keeps a comm's first 15 bytes as given.
TITLE_NAME = "\x1b]0;pwn\x07\nX"
RLO_NAME = "\u202eabc"  # "cba" on screen, shown right to left
OSC52 = "\x1b]52;c;cm0gLXJmIH4K\x07"  # writes "rm -rf ~" to the clipboard
ARGV = [OSC52, "\x1b[2J\x1b[H", "\u202etxt.exe", "\x9b31m", "a\nFake: line"]
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
HOLD = ("import sys, time\n"
        "open('/proc/self/comm', 'wb').write(sys.argv[1].encode())\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n")


def hostile(name: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, name, *ARGV], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    with open(f"/proc/{proc.pid}/stat", "rb") as f:
        assert name.encode() in f.read()
    return proc


def cli(server, *args) -> subprocess.CompletedProcess:
    env = {"OPERATOR_TOKEN": TOKEN, "PATH": "/usr/bin:/bin", "HOME": str(server.tmp)}
    return subprocess.run([sys.executable, "-m", "dashboard.console", server.base, *args], cwd=REPO,
                          capture_output=True, timeout=60, env=env)


def assert_shown_not_obeyed(raw: bytes) -> None:
    for bad in (b"\x1b", b"\x07", "\u202e".encode(), b"\r"):
        assert bad not in raw, raw
    text = raw.decode()
    assert RAW.search(text) is None, text


def test_hostile_names_arguments_broadcasts_and_errors_reach_the_terminal_as_escapes(start_server):
    server = start_server({"SAMPLE_INTERVAL": "0.5", "ALLOW_PROCESS_CONTROL": "1"})
    procs = [hostile(TITLE_NAME), hostile(RLO_NAME)]
    try:
        for p in procs:  # in the server's process table (a sample or two from now)
            eventually(lambda: cli(server, "-c", f"ps {p.pid}").returncode == 0, 60, 0.2,
                       what=f"the hostile process {p.pid} shown by 'ps'")

        # One command each: a table, the details, an error (kill asks for confirmation; never given).
        outputs = []
        for p, name in zip(procs, (TITLE_NAME, RLO_NAME)):
            table, details, error = (cli(server, "-c", line) for line in (f"ps {p.pid}", f"proc {p.pid}",
                                                                          f"kill {p.pid}"))
            assert table.returncode == 0 and details.returncode == 0, (table.stderr, details.stderr)
            assert error.returncode == 1 and b"error confirm_required" in error.stderr
            outputs += [table.stdout, details.stdout, error.stderr]
            assert len(table.stdout.splitlines()) == 3  # header, one row, total: the name holds no line feed
            # --json keeps the data exactly (escaped the JSON way), and still no raw byte reaches the terminal.
            as_json = cli(server, "-c", f"ps {p.pid}", "--json")
            assert_shown_not_obeyed(as_json.stdout)
            assert json.loads(as_json.stdout)["rows"][0][1] == name
        assert b"\\x1b]0;pwn\\x07\\nX" in outputs[0] and b"\\u202eabc" in outputs[3]
        assert b"\\x1b]52;c;cm0gLXJmIH4K\\x07" in outputs[1] and b"\\x9b31m" in outputs[1]
        assert b"\\x1b]0;pwn\\x07\\nX" in outputs[2]

        # The prompt: a broadcast pushed to it (sent by another console, with line breaks), then
        # an error and a table typed at it.
        prompt = subprocess.Popen([sys.executable, "-m", "dashboard.console", server.base, "--name", "carol"],
                                  cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env={"OPERATOR_TOKEN": TOKEN, "PATH": "/usr/bin:/bin", "HOME": str(server.tmp)})
        lines: queue.Queue = queue.Queue()
        seen = []
        reader = threading.Thread(target=lambda: [lines.put(line) for line in prompt.stdout], daemon=True)
        reader.start()

        def wait_for(marker: bytes) -> None:
            while not any(marker in line for line in seen):
                seen.append(lines.get(timeout=30))

        try:
            wait_for(b"connected to")
            sender = Session(server.base, TOKEN, "dave", on_push=lambda message: None)
            try:
                sent = sender.request('broadcast "deploy done\x1b]0;pwn\x07\nFake: ok\r\n\u202eevil"')
                assert sent["ok"], sent
            finally:
                sender.close()
            wait_for(b"[broadcast from dave]")
            prompt.stdin.write(f"kill {procs[0].pid}\nps {procs[1].pid}\n".encode())
            prompt.stdin.flush()
            wait_for(b"error confirm_required")
            wait_for(b"\\u202eabc")
            prompt.stdin.close()
            assert prompt.wait(30) == 0
            reader.join(30)
            errors = prompt.stderr.read()
        finally:
            if prompt.poll() is None:
                prompt.kill()
        while not lines.empty():
            seen.append(lines.get())
        shown = b"".join(seen) + errors
        assert b"[broadcast from dave] deploy done\\x1b]0;pwn\\x07\n    Fake: ok\n    \\u202eevil\n" in shown
        assert not any(line.startswith(b"Fake") for line in shown.splitlines())
        for raw in outputs + [shown]:
            assert_shown_not_obeyed(raw)
    finally:
        for p in procs:
            p.kill()
            p.wait()
