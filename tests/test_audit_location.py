"""The audit log follows DATA_DIR unless AUDIT_DB names its own file.

A platform's disk is wiped on restart; an operator who mounts one volume at
DATA_DIR must find the audit log there too, not in var/ beside the code."""

import sqlite3
from pathlib import Path

from dashboard import create_app, preflight, settings
from tests.support.waiting import eventually

TOKEN = "operator-token-for-tests"


def _lines(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT action, outcome FROM audit ORDER BY id").fetchall()


def test_audit_db_defaults_to_a_file_in_data_dir():
    values = settings.load({"DATA_DIR": "/srv/dashboard"})
    assert values["AUDIT_DB"] == ""
    assert settings.audit_db(values) == "/srv/dashboard/audit.sqlite3"
    assert settings.audit_db({**values, "AUDIT_DB": "/elsewhere/a.sqlite3"}) == "/elsewhere/a.sqlite3"


def test_preflight_creates_the_audit_file_in_data_dir(tmp_path):
    data = tmp_path / "mounted"
    preflight.check_paths({**settings.defaults(), "DATA_DIR": str(data)})
    assert (data / "audit.sqlite3").exists()
    assert (data / "notify.sqlite3").exists()


def test_the_app_writes_its_audit_log_under_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("AUDIT_DB", raising=False)
    monkeypatch.chdir(tmp_path)  # a stray relative var/ would land here
    data = tmp_path / "data"
    app = create_app({"TESTING": True, "OPERATOR_TOKEN": TOKEN, "SECRET_KEY": "test-secret-key-of-length",
                      "DATA_DIR": str(data)})
    try:
        assert app.config["AUDIT_DB"] == str(data / "audit.sqlite3")
        answer = app.test_client().post("/login", json={"token": TOKEN, "name": "ann"})
        assert answer.status_code == 200, answer.get_json()
        eventually(lambda: ("login", "ok") in _lines(data / "audit.sqlite3"), 10, what="the login recorded")
        assert not (tmp_path / "var").exists()
    finally:
        app.extensions["dashboard"].shutdown("test finished")


def test_the_real_server_keeps_its_audit_log_in_data_dir(start_server, tmp_path):
    server = start_server({"AUDIT_DB": ""})
    status, _headers, _body = server.request("POST", "/login", body={"token": TOKEN, "name": "ann"},
                                             auth=False, headers={"Origin": server.base})
    assert status == 200
    db = Path(server.env["DATA_DIR"]) / "audit.sqlite3"
    eventually(lambda: db.exists() and ("login", "ok") in _lines(db), 10, what="the login recorded in DATA_DIR")
