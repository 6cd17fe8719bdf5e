"""The console over a real WebSocket against gunicorn + gevent."""

import json
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import websocket

from tests.support.sseclient import SSEClient
from tests.support.wsclient import OBSERVER, TOKEN, Console, handshake_status, login_cookie


@pytest.fixture
def server(start_server):
    # Up to 51 consoles of one bearer login, from one address (the push test).
    return start_server({"SAMPLE_INTERVAL": "0.5", "ALLOWED_ORIGINS": "https://ops.example.com",
                         "MAX_CONSOLES_PER_LOGIN": "100"})


def test_auth_and_origin_matrix(server):
    port, base = server.port, server.base
    assert handshake_status(port, token=None) == 401
    assert handshake_status(port, token="wrong") == 401
    assert handshake_status(port, token=TOKEN) == 101
    cookie = login_cookie(base, name="alice")
    assert handshake_status(port, token=None, cookie=cookie, origin=base) == 101
    assert handshake_status(port, token=None, cookie=cookie) == 401  # no Origin: bearer only
    assert handshake_status(port, token=None, cookie=cookie, origin="https://ops.example.com") == 101
    for origin in (
        "http://evil.example",
        f"{base}.evil.example",  # look-alike
        f"https://127.0.0.1:{port}",  # other scheme
        f"http://127.0.0.1:{port + 1}",  # other port
        "https://ops.example.com.evil.example",
        "null",
    ):
        assert handshake_status(port, token=TOKEN, origin=origin) == 403, origin
        assert handshake_status(port, token=None, cookie=cookie, origin=origin) == 403, origin
    c = Console(port, token=None, cookie=cookie, origin=base)
    assert (c.welcome["operator"], c.welcome["role"], c.welcome["via"]) == ("alice", "operator", "cookie")
    assert {cmd["name"] for cmd in c.welcome["commands"]} >= {"help", "status", "kill", "alert set"}
    c.close()


def test_every_error_code_over_the_wire(server):
    op = Console(server.port)
    obs = Console(server.port, token=OBSERVER)
    op.ws.send("{not json")
    assert op.recv()["error"]["code"] == "bad_json"
    op.ws.send(json.dumps({"line": "status"}))
    assert op.recv() == {"id": None, "ok": False, "error": {
        "code": "bad_request", "message": '"id" must be a string (at most 128 characters) or a number'}}
    op.ws.send_binary(b"\x01\x02")
    assert op.recv()["error"]["code"] == "bad_request"
    for frame in ({"id": "x" * 129, "line": "status"}, {"id": [1], "line": "status"}, {"id": True, "line": "status"},
                  {"id": 7, "line": 5}, {"id": 7, "line": "broadcast " + "x" * 4090},
                  {"id": 7, "line": "status", "extra": 1}, {"id": 7, "line": "   "}, [7, "status"]):
        op.ws.send(json.dumps(frame))
        reply = op.recv()
        assert reply["ok"] is False and reply["error"]["code"] == "bad_request", (frame, reply)
    unknown = op.error("stauts")
    assert unknown["code"] == "unknown_command" and unknown["suggestions"] == ["status"]
    bad = op.error("top nine")
    assert bad["code"] == "bad_args" and bad["usage"].startswith("top") and "n:" in bad["message"]
    assert obs.error("pause")["code"] == "forbidden"
    assert op.error("kill 999999")["code"] == "forbidden"  # process control is off here
    assert op.error("alert clear a404")["code"] == "not_found"
    assert op.error("confirm ABCDEF")["code"] == "not_found"
    assert op.ok("status")["consoles"] == 2
    op.close()
    obs.close()


def test_an_oversized_frame_closes_with_1009_and_others_carry_on(server):
    big = Console(server.port)
    other = Console(server.port)
    big.ws.send(json.dumps({"id": 1, "line": "broadcast " + "x" * 70000}))
    assert big.close_code() == 1009
    assert other.ok("status")["version"]
    other.close()


def test_a_flood_gets_rate_limited_then_closed_1008(start_server):
    server = start_server({"CONSOLE_RATE": "5", "CONSOLE_BURST": "10"})
    flood = Console(server.port)
    bystander = Console(server.port)
    for i in range(200):
        try:
            flood.ws.send(json.dumps({"id": i, "line": "whoami"}))
        except (websocket.WebSocketException, OSError):
            break
    codes, close, waits = [], None, []
    flood.ws.settimeout(10)
    try:
        while close is None:
            frame = flood.ws.recv_frame()  # raw frames, so the close frame is seen, not answered
            if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                close = int.from_bytes(frame.data[:2], "big")
            elif frame.opcode == websocket.ABNF.OPCODE_TEXT:
                error = json.loads(frame.data).get("error", {})
                codes.append(error.get("code", "ok"))
                if "retry_after" in error:
                    waits.append(error["retry_after"])
    except (websocket.WebSocketException, OSError) as exc:
        raise AssertionError(f"the connection ended without a close frame after {codes}") from exc
    assert codes[:10] == ["ok"] * 10
    assert "rate_limited" in codes[10:] and set(codes[10:]) <= {"ok", "rate_limited"}
    assert len(waits) == codes.count("rate_limited") and all(0 < w <= 1 / 5 for w in waits)  # 5 a second
    assert close == 1008
    assert bystander.ok("whoami")["operator"] == "cli"
    bystander.close()


def test_a_flood_ends_with_close_code_1008(start_server):
    server = start_server({"CONSOLE_RATE": "5", "CONSOLE_BURST": "10"})
    flood = Console(server.port)
    for i in range(40):
        flood.send_line("whoami")
    replies = 0
    flood.ws.settimeout(5)
    while True:
        frame = flood.ws.recv_frame()
        if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
            assert int.from_bytes(frame.data[:2], "big") == 1008
            assert b"rate limit" in frame.data
            break
        replies += 1
    assert 10 < replies < 40


def test_fifty_concurrent_pushes_arrive_whole(server):
    listener = Console(server.port, name="listener")
    senders = [Console(server.port, name=f"s{i}") for i in range(50)]
    payload = "p" * 900  # big enough that frames interleaving would show

    def send(c, i):
        c.ok(f"broadcast {i} {payload}")

    threads = [threading.Thread(target=send, args=(c, i)) for i, c in enumerate(senders)]
    for t in threads:
        t.start()
    # the listener keeps talking while pushes pour in
    for _ in range(20):
        assert listener.ok("ping")["pong"]
    for t in threads:
        t.join(10)
    seen = set()

    def take(msg):
        if msg.get("type") == "notice":
            number, text = msg["message"].split(" ", 1)
            assert text == payload
            seen.add(int(number))

    for msg in listener.pushes:  # the ones that arrived during the pings
        take(msg)
    listener.ws.settimeout(5)
    while len(seen) < 50:
        take(listener.recv())  # json.loads on every frame: a corrupt one would raise
    assert seen == set(range(50))
    for c in senders + [listener]:
        c.close()


def test_console_commands_steer_what_sse_viewers_see(server):
    op = Console(server.port, name="alice")
    with SSEClient(server.port) as viewer:
        viewer.read_events(2)
        op.ok("interval 0.25")
        viewer.wait_for(lambda c: c.events_of("config"), timeout=5)
        config = viewer.events_of("config")[0].json
        assert (config["interval"], config["by"], config["change"]) == (0.25, "alice", "interval 0.25")
        start = len(viewer.events_of("metrics"))
        viewer.read_events(start + 8)
        ts = [e.json["ts"] for e in viewer.events_of("metrics")[start:start + 8]]
        gaps = [b - a for a, b in zip(ts, ts[1:])]
        assert 0.15 < sorted(gaps)[len(gaps) // 2] < 0.4  # the new cadence

        op.ok("broadcast deploy at 5: expect\na blip")
        viewer.wait_for(lambda c: c.events_of("notice"), timeout=5)
        notice = viewer.events_of("notice")[0].json
        assert notice["message"] == "deploy at 5: expect\na blip" and notice["by"] == "alice"

        op.ok("alert set cpu >= 0")
        viewer.wait_for(lambda c: c.events_of("alert"), timeout=5)
        alert = viewer.events_of("alert")[0].json
        assert alert["state"] == "firing" and alert["rule"]["metric"] == "cpu"
        assert op.wait_push("alert")["state"] == "firing"

        op.ok("pause")
        time.sleep(0.5)
        before = len(viewer.events_of("metrics"))
        time.sleep(1.0)
        viewer.pump(0.2)
        assert len(viewer.events_of("metrics")) == before
        op.ok("resume")
        viewer.read_events(before + 2)
    assert not viewer.parser.anomalies
    op.close()


def test_kill_with_confirmation_against_a_real_process(start_server):
    server = start_server({"ALLOW_PROCESS_CONTROL": "1", "SAMPLE_INTERVAL": "0.5"})
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        op = Console(server.port)
        other = Console(server.port)
        err = op.error(f"kill {victim.pid} --signal TERM")
        assert err["code"] == "confirm_required" and err["target"]["pid"] == victim.pid
        assert victim.poll() is None
        assert other.error(err["confirm"])["code"] == "not_found"  # only where it was asked
        assert op.ok(err["confirm"]) == {"pid": victim.pid, "name": err["target"]["name"],
                                         "signal": "SIGTERM", "sent": True}
        assert victim.wait(5) == -signal.SIGTERM
        assert other.wait_push("audit")["record"]["line"] == err["confirm"]
        assert op.error("kill 1")["code"] == "forbidden"
        assert op.error(f"kill {server.proc.pid}")["code"] == "forbidden"  # gunicorn's master
        assert op.error(f"kill {server.worker().pid}")["code"] == "forbidden"
        lines = [row[4] for row in op.ok("audit 10")["rows"]]
        assert f"kill {victim.pid} --signal TERM" in lines and err["confirm"] in lines
    finally:
        victim.kill()


def test_logout_closes_that_operators_sockets_and_the_cookie_stops_working(server):
    cookie = login_cookie(server.base, name="alice")
    mine = Console(server.port, token=None, cookie=cookie, origin=server.base)
    theirs = Console(server.port, name="bob")
    status, _, body = server.request("POST", "/logout", body={},
                                     headers={"Cookie": cookie, "Origin": server.base})
    assert status == 200 and json.loads(body)["closed_consoles"] == 1
    assert mine.close_code() == 1000
    assert handshake_status(server.port, token=None, cookie=cookie, origin=server.base) == 401
    assert theirs.ok("whoami")["operator"] == "bob"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_audit_records_survive_a_restart_and_a_kill_9(start_server, tmp_path, sig):
    db = str(tmp_path / f"audit-{sig}.sqlite3")
    server = start_server({"AUDIT_DB": db})
    op = Console(server.port)
    acknowledged = []
    for i in range(30):
        op.ok(f"broadcast message {i}")
        acknowledged.append(f"broadcast message {i}")
    if sig == signal.SIGKILL:
        server.kill()  # the whole process group, no chance to flush anything
    else:
        assert server.stop(sig) < 10
    again = start_server({"AUDIT_DB": db})
    lines = [row[4] for row in Console(again.port).ok("audit 100")["rows"]]
    assert [line for line in lines if line.startswith("broadcast")] == acknowledged


def test_shutdown_closes_consoles_with_1001(start_server):
    server = start_server()
    consoles = [Console(server.port) for _ in range(3)]
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    assert [c.close_code() for c in consoles] == [1001, 1001, 1001]
    stopper.join(20)
    assert server.proc.returncode == 0


def test_command_line_client_one_shot_and_exit_codes(server):
    def cli(*args, token=TOKEN):
        env = {"OPERATOR_TOKEN": token, "PATH": "/usr/bin:/bin"}
        return subprocess.run([sys.executable, "-m", "dashboard.console", server.base, *args],
                              capture_output=True, text=True, timeout=30, env=env)

    done = cli("-c", "top 3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split() == ["PID", "NAME", "USER", "CPU", "RSS"]
    assert len(done.stdout.splitlines()) == 5  # header, three rows, sort line
    done = cli("-c", "status", "--json")
    assert json.loads(done.stdout)["version"]
    done = cli("-c", "stauts")
    assert done.returncode == 1 and "unknown_command" in done.stderr and "status" in done.stderr
    done = cli("-c", "status", token="wrong")
    assert done.returncode == 2 and "the token was not accepted (401)" in done.stderr


def test_command_line_client_interactive(server):
    env = {"OPERATOR_TOKEN": TOKEN, "PATH": "/usr/bin:/bin", "HOME": str(server.tmp)}
    done = subprocess.run(
        [sys.executable, "-m", "dashboard.console", server.base, "--name", "carol"],
        input="whoami\nps python\nnot-a-command\n", capture_output=True, text=True, timeout=30, env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "connected to" in done.stdout and re.search(r"operator +carol$", done.stdout, re.M)
    assert "error unknown_command" in done.stdout


def test_without_a_token_one_is_generated_and_a_login_url_printed_once(start_server):
    server = start_server({"OPERATOR_TOKEN": ""})
    lines = [json.loads(line) for line in server.log().splitlines() if "token=" in line]
    assert len(lines) == 1 and lines[0]["level"] == "warning"
    url = lines[0]["msg"].split("URL (printed once): ")[1].strip()
    # The token rides in the fragment, which browsers never send: no access log or Referer holds it.
    assert url.startswith(f"http://127.0.0.1:{server.port}/#token=") and "?" not in url
    token = url.split("#token=")[1]
    assert len(token) >= 32
    assert Console(server.port, token=token).ok("whoami")["role"] == "operator"
    server.request("GET", f"/?token={token}")  # an older link's form still reaches the page
    assert server.log().count(token) == 1  # the request line was logged without it


def test_permessage_deflate_is_never_negotiated(server):
    import base64
    import os
    import socket

    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall((
            f"GET /console HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            f"Authorization: Bearer {TOKEN}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
    head = head.split(b"\r\n\r\n")[0].decode().lower()
    assert head.startswith("http/1.1 101")
    assert "sec-websocket-extensions" not in head
