"""Logouts kept in a real redis-server fail closed: flushed, stopped or restarted
empty, Redis never turns a logged-out cookie back into a login."""

from __future__ import annotations

import json

import redis

from tests.support.waiting import eventually
from tests.support.wsclient import handshake_status, login_cookie


def ask(server, path: str, cookie: str) -> tuple[int, dict]:
    status, _, body = server.request("GET", path, headers={"Cookie": cookie}, auth=False)
    return status, json.loads(body)


def logout(server, cookie: str) -> int:
    status, _, _ = server.request("POST", "/logout", body={}, auth=False,
                                  headers={"Cookie": cookie, "Origin": server.base})
    return status


def test_flushed_or_stopped_redis_never_revives_a_logged_out_cookie(start_server, redis_server):
    server = start_server({"REDIS_URL": redis_server.url})
    out = login_cookie(server.base, name="gone")
    kept = login_cookie(server.base, name="kept")
    # On Redis the host's view serves once it holds what Redis has: a busy machine may take a moment.
    eventually(lambda: ask(server, "/api/snapshot", out)[0] == 200, what="the snapshot served")
    assert logout(server, out) == 200
    assert ask(server, "/api/snapshot", out)[0] == 401
    assert ask(server, "/api/snapshot", kept)[0] == 200

    # Redis loses its data: the revocation is gone, and with it the login generation.
    redis.Redis.from_url(redis_server.url).flushall()
    for cookie in (out, kept):
        status, body = ask(server, "/api/snapshot", cookie)
        assert status == 401 and body["error"]["code"] == "unauthorized"
        assert ask(server, "/api/session", cookie)[1]["authenticated"] is False
        assert handshake_status(server.port, token=None, cookie=cookie, origin=server.base) == 401
    fresh = login_cookie(server.base, name="fresh")
    assert ask(server, "/api/snapshot", fresh)[0] == 200

    # Redis stopped: nothing can be checked, so every cookie is refused, and says why.
    redis_server.stop()
    for cookie in (out, fresh):
        status, body = ask(server, "/api/snapshot", cookie)
        assert status == 503 and body["error"]["code"] == "unavailable", body
        assert "logouts is unreachable" in body["error"]["message"]
        assert handshake_status(server.port, token=None, cookie=cookie, origin=server.base) == 503
    assert logout(server, fresh) == 503  # not recorded, so not claimed

    # Back, empty (no persistence): the logged-out cookie and the ones before are refused.
    redis_server.start()
    for cookie in (out, kept, fresh):
        assert ask(server, "/api/snapshot", cookie)[0] == 401
    assert ask(server, "/api/snapshot", login_cookie(server.base, name="after"))[0] == 200
