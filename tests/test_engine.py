"""The engine client's HTTP over a unix socket, against a scripted server: every way an answer can come."""

import json
import socket
import threading

import pytest

from dashboard.sampling import engine
from dashboard.sampling.engine import Engine, EngineError


@pytest.fixture
def answering(tmp_path):
    """A unix socket that answers each connection with the bytes given (then closes); the requests it read."""
    path = str(tmp_path / "engine.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    requests: list[bytes] = []
    answers: list[bytes] = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                got = b""
                while b"\r\n\r\n" not in got:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    got += chunk
                requests.append(got)
                conn.sendall(answers.pop(0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def answer(*raw: bytes) -> Engine:
        answers.extend(raw)
        return Engine(path, timeout=5)

    yield answer, requests
    server.shutdown(socket.SHUT_RDWR)  # wakes the accept (a close alone does not)
    server.close()
    thread.join(5)


def _ok(body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers) or f"Content-Length: {len(body)}\r\n"
    return f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{head}\r\n".encode() + body


def test_a_list_read_with_a_length_or_in_chunks_gives_the_same_containers(answering):
    answer, requests = answering
    listed = [{"Id": "abc", "Names": ["/web"], "Image": "busybox", "Labels": {"a": "b"}, "State": "running"}]
    body = json.dumps(listed).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:])) + b"0\r\n\r\n"
    e = answer(_ok(body), _ok(chunked, "Transfer-Encoding: chunked"))
    expected = [{"id": "abc", "name": "web", "image": "busybox", "labels": {"a": "b"}, "state": "running"}]
    assert e.containers() == expected
    assert e.containers() == expected
    assert requests[0].startswith(b"GET /containers/json?all=1 HTTP/1.1\r\n")
    assert b"\r\nhost: localhost\r\n" in requests[0].lower()


def test_a_restart_is_a_post_without_a_body_and_an_error_answer_gives_the_engines_message(answering):
    answer, requests = answering
    e = answer(b"HTTP/1.1 204 No Content\r\n\r\n",
               b'HTTP/1.1 404 Not Found\r\nContent-Length: 30\r\n\r\n{"message": "no such   thing"}')
    e.restart("a/b", wait=3)
    assert requests[0].startswith(b"POST /containers/a%2Fb/restart?t=3 HTTP/1.1\r\n")
    with pytest.raises(EngineError, match="engine answered 404 to the restart: no such thing"):
        e.restart("x")


def test_an_answer_cut_short_garbled_or_too_long_is_one_engine_error(answering, monkeypatch):
    answer, _ = answering
    monkeypatch.setattr(engine, "MAX_BODY", 10)
    e = answer(b"", b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n[1,", b"SSH-2.0-not http\r\n\r\n",
               _ok(b"[" + b"1," * 20 + b"1]"))
    with pytest.raises(EngineError, match="did not answer: RemoteProtocolError"):
        e.containers()
    with pytest.raises(EngineError, match="did not answer: RemoteProtocolError"):
        e.containers()
    with pytest.raises(EngineError, match="did not answer: RemoteProtocolError"):
        e.containers()
    with pytest.raises(EngineError, match="sent more than 10 bytes for /containers/json"):
        e.containers()


def test_no_socket_is_said_plainly(tmp_path):
    with pytest.raises(EngineError, match=f"no engine socket at {tmp_path}/none.sock"):
        Engine(str(tmp_path / "none.sock")).containers()
