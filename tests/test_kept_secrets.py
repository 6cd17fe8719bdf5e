"""Generated secrets kept under DATA_DIR: reused at restart, owner-only, rotated by deleting the file."""

import json
import os
import signal
import stat

import pytest

from dashboard import kept_secrets
from dashboard.settings import SettingError
from tests.support.wsclient import login_cookie


def _made():
    _made.n += 1
    return f"generated-secret-number-{_made.n:04d}"


_made.n = 0


def test_made_once_then_reused_from_an_owner_only_file(tmp_path):
    os.umask(0o022)
    first = kept_secrets.keep(str(tmp_path / "data"), ["SECRET_KEY", "OPERATOR_TOKEN"], _made)
    assert first.made == ["SECRET_KEY", "OPERATOR_TOKEN"] and first.reused == [] and first.warnings == []
    assert stat.S_IMODE(os.stat(first.path).st_mode) == 0o600
    again = kept_secrets.keep(str(tmp_path / "data"), ["SECRET_KEY", "OPERATOR_TOKEN"], _made)
    assert again.values == first.values and again.made == [] and again.reused == ["SECRET_KEY", "OPERATOR_TOKEN"]
    # Only the missing one is made; the other stays in the file for a later start without it set.
    only = kept_secrets.keep(str(tmp_path / "data"), ["SECRET_KEY"], _made)
    assert only.values == {"SECRET_KEY": first.values["SECRET_KEY"]}
    assert set(json.loads(open(first.path).read())) == {"SECRET_KEY", "OPERATOR_TOKEN"}


def test_a_file_readable_by_others_is_made_owner_only_and_said(tmp_path):
    path = kept_secrets.keep(str(tmp_path), ["SECRET_KEY"], _made).path
    os.chmod(path, 0o644)
    kept = kept_secrets.keep(str(tmp_path), ["SECRET_KEY"], _made)
    assert kept.reused == ["SECRET_KEY"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert kept.warnings == [f"{path} was readable by others; made owner-only (0600)"]


def test_a_damaged_file_stops_the_start_rather_than_being_overwritten(tmp_path):
    (tmp_path / "secrets.json").write_text("{not json")
    with pytest.raises(SettingError, match="not a JSON object of secrets; delete it"):
        kept_secrets.keep(str(tmp_path), ["SECRET_KEY"], _made)
    assert (tmp_path / "secrets.json").read_text() == "{not json"


def test_a_folder_that_cannot_be_written_keeps_them_in_memory_with_a_warning(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    kept = kept_secrets.keep(str(blocker / "data"), ["SECRET_KEY"], _made)
    assert kept.made == ["SECRET_KEY"] and len(kept.values["SECRET_KEY"]) >= 16
    assert len(kept.warnings) == 1 and "logins end at the next restart" in kept.warnings[0]


def _session(server, cookie):
    status, _, body = server.request("GET", "/api/session", headers={"Cookie": cookie}, auth=False)
    return status, json.loads(body)["authenticated"]


def test_a_restart_keeps_the_generated_token_and_cookies_and_deleting_the_file_rotates_them(start_server):
    env = {"OPERATOR_TOKEN": "", "SECRET_KEY": ""}
    server = start_server(env)
    printed = [line for line in server.log().splitlines() if "URL (printed once): " in line]
    assert len(printed) == 1
    token = json.loads(printed[0])["msg"].split("#token=")[1].strip()
    cookie = login_cookie(server.base, token=token)
    assert _session(server, cookie) == (200, True)
    path = os.path.join(server.env["DATA_DIR"], "secrets.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    assert server.stop(signal.SIGTERM) < 15
    again = start_server(env, port=server.port)
    assert _session(again, cookie) == (200, True)  # the browser is still logged in
    assert _session(again, login_cookie(again.base, token=token)) == (200, True)  # the link still works
    assert again.log().count(token) == 1  # printed by the first start only
    assert "kept in " + path in again.log()

    assert again.stop(signal.SIGTERM) < 15
    os.remove(path)  # rotate
    rotated = start_server(env, port=server.port)
    assert _session(rotated, cookie) == (200, False)
    status, _, _ = rotated.request("POST", "/login", body={"token": token},
                                   headers={"Origin": rotated.base}, auth=False)
    assert status == 401
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
