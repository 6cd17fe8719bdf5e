"""Login, logout, sessions and Origin checks through Flask's test client."""

import pytest

from dashboard.web.auth import Tokens
from tests.conftest import OBSERVER, TOKEN

HERE = "http://localhost"


def login(client, token=TOKEN, name=None, origin=HERE):
    body = {"token": token} | ({"name": name} if name else {})
    headers = {"Origin": origin} if origin else {}
    return client.post("/login", json=body, headers=headers)


def test_login_sets_a_strict_httponly_signed_cookie(client):
    r = login(client, name="alice")
    assert r.status_code == 200 and r.json == {"authenticated": True, "operator": "alice", "role": "operator"}
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("dashboard_session=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert TOKEN not in cookie
    assert client.get("/api/session").json == {"authenticated": True, "operator": "alice", "role": "operator"}


def test_observer_token_gets_the_observer_role(client):
    assert login(client, OBSERVER).json["role"] == "observer"


@pytest.mark.parametrize("token", ["wrong", "", TOKEN + "x", TOKEN[:-1], None, 5])
def test_wrong_tokens_are_refused(client, token):
    r = client.post("/login", json={"token": token})
    assert r.status_code == 401 and r.json["error"]["code"] == "bad_token"
    assert client.get("/api/session").json == {"authenticated": False}


def test_login_refuses_forms_other_origins_and_bad_names(client):
    r = client.post("/login", data={"token": TOKEN})
    assert r.status_code == 415  # a cross-site form cannot send JSON
    r = login(client, origin="http://evil.example")
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden_origin"
    r = login(client, name="<b>x</b>")
    assert r.status_code == 400


def test_logout_revokes_the_session_even_if_the_cookie_is_replayed(client, svc):
    login(client)
    stolen = client.get_cookie("dashboard_session").value
    r = client.post("/logout", json={}, headers={"Origin": HERE})
    assert r.json["authenticated"] is False
    client.set_cookie("dashboard_session", stolen)
    assert client.get("/api/session").json == {"authenticated": False}
    assert svc.audit.is_revoked(svc.audit.revoked().pop())


def test_logout_from_another_origin_is_refused(client):
    login(client)
    r = client.post("/logout", json={}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    assert client.get("/api/session").json["authenticated"] is True


def test_login_and_logout_are_audited_without_the_token(client, svc):
    login(client, "nope")
    login(client, name="alice")
    client.post("/logout", json={}, headers={"Origin": HERE})
    rows = svc.audit.latest(10)
    assert [(r["action"], r["outcome"]) for r in rows] == [("login", "bad_token"), ("login", "ok"), ("logout", "ok")]
    assert all(TOKEN not in str(r) and "nope" not in str(r) for r in rows)


UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


def test_console_handshake_is_refused_before_the_upgrade(client):
    r = client.get("/console", headers={"Origin": HERE, **UPGRADE})
    assert r.status_code == 401 and r.json["error"]["code"] == "unauthorized"
    r = client.get("/console", headers={"Origin": "http://evil.example", **UPGRADE})
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden_origin"
    login(client)
    r = client.get("/console", headers=UPGRADE)  # a cookie but no Origin: not a browser
    assert r.status_code == 401 and "Bearer" in r.json["error"]["message"]
    r = client.get("/console")  # not a WebSocket request at all
    assert r.status_code == 400


def test_tokens_compare_by_digest():
    t = Tokens("abc", "obs")
    assert t.role_for("abc") == "operator" and t.role_for("obs") == "observer"
    assert t.role_for("ab") is None and t.role_for("") is None and t.role_for(None) is None
    with pytest.raises(ValueError):
        Tokens("")


def test_pages_never_send_a_referrer(client):
    assert client.get("/").headers["Referrer-Policy"] == "no-referrer"
