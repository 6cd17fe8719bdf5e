"""Login, logout, sessions and Origin checks through Flask's test client."""

import pytest

from dashboard.web.credentials import Tokens, fingerprint
from tests.conftest import ALICE, METRICS, OBSERVER, TOKEN, VIEWER

HERE = "http://localhost"


@pytest.fixture
def client(anon):
    # These tests log in themselves (or must not be logged in).
    return anon


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
    assert client.get("/api/session").json == {"authenticated": True, "operator": "alice", "role": "operator",
                                               "access": "login"}


def test_observer_token_gets_the_observer_role(client):
    assert login(client, OBSERVER).json["role"] == "observer"


@pytest.mark.parametrize("token", ["wrong", "", TOKEN + "x", TOKEN[:-1], None, 5])
def test_wrong_tokens_are_refused(client, token):
    r = client.post("/login", json={"token": token})
    assert r.status_code == 401 and r.json["error"]["code"] == "bad_token"
    assert client.get("/api/session").json == {"authenticated": False, "access": "login"}


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
    assert client.get("/api/session").json["authenticated"] is False
    assert client.get("/api/snapshot").status_code == 401
    assert svc.audit.is_revoked(svc.audit.revoked().pop())


def test_a_lost_audit_file_ends_every_login_and_revives_no_logged_out_one(app, tmp_path):
    """The logouts are in the audit file; so is the login generation the cookies carry."""
    import os

    from dashboard import create_app

    config = {k: app.config[k] for k in ("SECRET_KEY", "OPERATOR_TOKEN", "AUDIT_DB", "DATA_DIR")}
    config.update(TESTING=True, MAX_CONNECTIONS_PER_CLIENT=1_000_000)
    out, kept = app.test_client(), app.test_client()
    login(out)
    login(kept)
    stolen = out.get_cookie("dashboard_session").value
    assert out.post("/logout", json={}, headers={"Origin": HERE}).json["authenticated"] is False
    app.extensions["dashboard"].shutdown("restart")
    for suffix in ("", "-wal", "-shm"):  # the file is lost with its revocations
        if os.path.exists(config["AUDIT_DB"] + suffix):
            os.remove(config["AUDIT_DB"] + suffix)
    again = create_app(config)
    try:
        for cookie in (stolen, kept.get_cookie("dashboard_session").value):
            c = again.test_client()
            c.set_cookie("dashboard_session", cookie)
            assert c.get("/api/snapshot").status_code == 401
            assert c.get("/api/session").json["authenticated"] is False
        fresh = again.test_client()
        assert login(fresh).status_code == 200
        assert fresh.get("/api/session").json["authenticated"] is True
    finally:
        again.extensions["dashboard"].shutdown("test finished")


def test_logout_from_another_origin_is_refused(client):
    login(client)
    r = client.post("/logout", json={}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    assert client.get("/api/session").json["authenticated"] is True


def test_login_and_logout_are_audited_without_the_token_and_failures_only_counted(client, svc):
    login(client, "nope-not-a-token")
    login(client, name="alice")
    client.post("/logout", json={}, headers={"Origin": HERE})
    rows = svc.audit.latest(10)
    # A failed login is counted (and logged per address), not written as a row each.
    assert [(r["action"], r["outcome"]) for r in rows] == [("login", "ok"), ("logout", "ok")]
    assert svc.throttle.failures_total == 1
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


def test_on_the_console_a_known_token_without_the_right_gets_403_an_unknown_one_401(anon):
    # A valid credential that may not open the console is forbidden (403), whatever its kind;
    # only a token the server does not know (or none) is unauthorized (401).
    for origin in ({}, {"Origin": HERE}):
        for token, status, code in ((METRICS, 403, "forbidden"), (VIEWER, 403, "forbidden"),
                                    ("not-a-real-token-at-all", 401, "bad_token")):
            r = anon.get("/console", headers={"Authorization": f"Bearer {token}", **origin, **UPGRADE})
            assert (r.status_code, r.json["error"]["code"]) == (status, code), (token, origin)
    r = anon.get("/console", headers={"Authorization": f"Bearer {METRICS}", **UPGRADE})
    assert "observer or operator" in r.json["error"]["message"]


def test_tokens_compare_by_digest_and_know_their_names():
    t = Tokens({"OPERATOR_TOKEN": "a" * 16, "OBSERVER_TOKEN": "o" * 16, "VIEWER_TOKEN": "v" * 16,
                "OPERATOR_TOKENS": (("bob", "b" * 16),), "METRICS_TOKEN": "m" * 16})
    assert [t.role_for(x * 16) for x in "aovbm"] == ["operator", "observer", "viewer", "operator", "metrics"]
    assert t.match("b" * 16).name == "bob" and t.match("a" * 16).name is None
    assert t.role_for("a" * 15) is None and t.role_for("") is None and t.role_for(None) is None
    assert t.by_id(fingerprint("b" * 16)).name == "bob" and t.by_id(fingerprint("x" * 16)) is None
    assert "b" * 16 not in fingerprint("b" * 16)
    with pytest.raises(ValueError, match="operator token is required"):
        Tokens({"VIEWER_TOKEN": "v" * 16})
    with pytest.raises(ValueError, match="same token"):
        Tokens({"OPERATOR_TOKEN": "a" * 16, "VIEWER_TOKENS": (("eve", "a" * 16),)})


def test_pages_never_send_a_referrer(client):
    assert client.get("/").headers["Referrer-Policy"] == "no-referrer"


# ---- who sees what ----------------------------------------------------------------

ENDPOINTS = ["/events?probe=1", "/api/snapshot", "/api/hosts", "/api/history", "/api/alerts", "/metrics"]
ANYONE = ["/", "/api/session", "/healthz", "/static/css/dashboard.css", "/favicon.ico"]


def _status(client, path, headers):
    if path.startswith("/events"):
        r = client.get(path, headers=headers, buffered=False)
        status = r.status_code
        r.close()
        return status
    return client.get(path, headers=headers).status_code


@pytest.mark.parametrize("who, headers, want", [
    ("anonymous", {}, {"/metrics": 401, "*": 401}),
    ("viewer bearer", {"Authorization": f"Bearer {VIEWER}"}, {"*": 200}),
    ("observer bearer", {"Authorization": f"Bearer {OBSERVER}"}, {"*": 200}),
    ("operator bearer", {"Authorization": f"Bearer {TOKEN}"}, {"*": 200}),
    ("named operator bearer", {"Authorization": f"Bearer {ALICE}"}, {"*": 200}),
    ("metrics token", {"Authorization": f"Bearer {METRICS}"}, {"/metrics": 200, "*": 403}),
    ("wrong bearer", {"Authorization": "Bearer not-a-real-token-at-all"}, {"*": 401}),
    ("not a bearer", {"Authorization": "Basic dXNlcjpwYXNz"}, {"*": 401}),
])
def test_access_matrix_by_bearer(svc, client, who, headers, want):
    svc.sampler.tick()  # a sample to show
    for path in ENDPOINTS:
        expected = want.get(path.split("?")[0], want["*"])
        assert _status(client, path, headers) == expected, (who, path)
    for path in ANYONE:
        assert client.get(path, headers=headers).status_code in (200, 204), (who, path)


@pytest.mark.parametrize("token, role", [(VIEWER, "viewer"), (OBSERVER, "observer"), (TOKEN, "operator")])
def test_access_matrix_by_cookie(svc, client, token, role):
    svc.sampler.tick()
    assert login(client, token).json["role"] == role
    for path in ENDPOINTS:
        assert _status(client, path, {}) == 200, (role, path)
    page = client.get("/").get_data(as_text=True)
    assert "data-locked" not in page
    if role == "viewer":  # sees the dashboards, opens no console (the others: test_console_live)
        console = client.get("/console", headers={"Origin": HERE, **UPGRADE})
        assert console.status_code == 403 and "observer or operator" in console.json["error"]["message"]


def test_metrics_token_cannot_log_in(client):
    r = login(client, METRICS)
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    assert client.get("/api/session").json["authenticated"] is False


def test_anonymous_visitor_gets_the_login_form_and_nothing_of_the_host(client, svc):
    r = client.get("/")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and 'data-locked="1"' in page and 'id="login-form"' in page
    assert svc.host not in page
    r = client.get("/api/snapshot")
    assert r.status_code == 401 and r.json["error"]["code"] == "unauthorized"
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="dashboard"'
    health = client.get("/healthz?details=1")
    assert set(health.json) == {"status"}
    assert set(client.get("/healthz", headers={"Authorization": f"Bearer {VIEWER}"}).json) > {"status", "sampler"}


def test_public_access_opens_the_dashboard_but_not_the_console(tmp_path):
    from dashboard import create_app

    app = create_app({"TESTING": True, "DASHBOARD_ACCESS": "public", "OPERATOR_TOKEN": TOKEN,
                      "SECRET_KEY": "test-secret-key-of-length", "AUDIT_DB": str(tmp_path / "a.sqlite3"),
                      "DATA_DIR": str(tmp_path / "data")})
    try:
        c = app.test_client()
        assert c.get("/api/snapshot").status_code in (200, 503)  # 503: no sample yet
        assert c.get("/api/hosts").status_code == 200
        assert app.extensions["dashboard"].host in c.get("/").get_data(as_text=True)
        r = c.get("/console", headers={"Origin": HERE, **UPGRADE})
        assert r.status_code == 401
    finally:
        app.extensions["dashboard"].shutdown()


def test_a_named_token_names_its_holder_whatever_is_claimed(client, svc):
    assert login(client, ALICE, name="mallory").json == {"authenticated": True, "operator": "alice",
                                                          "role": "operator"}
    from dashboard.web.auth import bearer  # the same rule for scripts
    with client.application.test_request_context(
            "/api/hosts", headers={"Authorization": f"Bearer {ALICE}", "X-Operator-Name": "mallory"}):
        op, refused = bearer()
        assert refused is None and op.name == "alice"
    with client.application.test_request_context(
            "/api/hosts", headers={"Authorization": f"Bearer {TOKEN}", "X-Operator-Name": "carol"}):
        assert bearer()[0].name == "carol"  # a shared token: the name is claimed


def test_a_changed_token_ends_the_logins_made_with_the_old_one(client, svc):
    login(client, OBSERVER)
    assert client.get("/api/session").json["authenticated"] is True
    svc.tokens = Tokens({**svc.config, "OBSERVER_TOKEN": "a-brand-new-observer-token"})
    assert client.get("/api/session").json["authenticated"] is False
    assert client.get("/api/hosts").status_code == 401


def test_guessing_is_throttled_per_address_and_a_good_token_works_after_the_wait(client, svc):
    allowed = svc.config["LOGIN_FAILURES_ALLOWED"]
    clock = [1000.0]
    svc.throttle.clock = lambda: clock[0]
    for _ in range(allowed):
        assert login(client, "wrong-token-guess-1").status_code == 401
    assert login(client, "wrong-token-guess-2").status_code == 401  # this one starts the wait
    r = login(client, TOKEN)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert client.get("/api/hosts", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 429
    # Another address is not locked out.
    other = client.post("/login", json={"token": TOKEN}, environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other.status_code == 200
    clock[0] += 1.01
    assert login(client, "wrong-token-guess-3").status_code == 401
    assert login(client, TOKEN).headers["Retry-After"] == "2"  # the wait grows
    clock[0] += 2.01
    assert login(client, TOKEN).status_code == 200
    assert login(client, "wrong-token-guess-4").status_code == 401  # counting starts over


def test_failures_from_all_addresses_past_the_minute_ceiling_stop_everyone_until_it_ends():
    from dashboard.web.throttle import Throttle

    now = [5000.0]
    throttle = Throttle(allowed=5, clock=lambda: now[0], ceiling=3)
    for addr in ("10.0.0.1", "10.0.0.2"):
        throttle.failed(addr)
    assert throttle.retry_after("10.0.0.9") is None and not throttle.everyone_waits()
    now[0] += 20
    throttle.failed("10.0.0.3")  # the third within the minute that began 20 s ago
    assert throttle.everyone_waits()
    assert throttle.retry_after("10.0.0.9") == 40  # until that minute is over, whoever asks
    assert throttle.ceiling_refused_total == 1
    now[0] += 39.5
    assert throttle.retry_after("10.0.0.1") == 1
    now[0] += 0.5
    assert throttle.retry_after("10.0.0.9") is None and not throttle.everyone_waits()
    throttle.failed("10.0.0.4")  # a new minute starts its own count
    assert throttle.retry_after("10.0.0.9") is None


def test_every_endpoint_says_who_may_see_it(app):
    """A new endpoint is public only if it is added here on purpose: everything that shows
    the host is in auth.NEEDS (the console's socket is guarded by guard_console)."""
    from dashboard.web.auth import NEEDS

    public = {"api.healthz", "auth.login", "auth.logout", "auth.whoami", "console.console_socket",
              "fleet.page", "pages.favicon", "pages.index", "static"}
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - public <= set(NEEDS), endpoints - public - set(NEEDS)
