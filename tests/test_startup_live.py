"""Starting the real server (gunicorn) with bad settings: one line naming the setting, exit code 2;
and the lines it does print at start follow LOG_FORMAT."""

import json
import subprocess
import sys
import threading

import pytest

from tests.support.server import REPO, TOKEN, free_port


def gunicorn(tmp_path, env: dict, timeout: float = 30.0) -> subprocess.CompletedProcess:
    full = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PORT": str(free_port()), "HOST": "127.0.0.1",
            "OPERATOR_TOKEN": TOKEN, "SECRET_KEY": "a-secret-key-for-startup-tests",
            "AUDIT_DB": str(tmp_path / "a.sqlite3"), "DATA_DIR": str(tmp_path / "data"), **env}
    return subprocess.run([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app"], cwd=REPO,
                          env=full, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("env, says", [
    ({"SAMPLE_INTERVAL": "0.1"}, "SAMPLE_INTERVAL='0.1': must be between 0.25 and 60"),
    ({"SAMPLE_INTERVAL": "fast"}, "SAMPLE_INTERVAL='fast': must be a number between 0.25 and 60"),
    ({"PORT": "abc"}, "PORT='abc': must be a whole number between 1 and 65535"),
    ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY='0': must be between 1 and 64"),
    ({"HEARTBEAT_SECONDS": "-1"}, "HEARTBEAT_SECONDS='-1': must be between 0.05 and 50"),
    ({"HEARTBEAT_SECONDS": "nan"}, "HEARTBEAT_SECONDS='nan': must be between 0.05 and 50"),
    ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL='verbose': must be one of debug, info, warning, error"),
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml': must be one of json, text"),
    ({"ALLOW_PROCESS_CONTROL": "maybe"}, "ALLOW_PROCESS_CONTROL='maybe': expected 1/0"),
    ({"AUDIT_DB": "{file}/audit.sqlite3"},
     "AUDIT_DB='{file}/audit.sqlite3': must be a path this server can create and write; not a directory"),
    ({"DATA_DIR": "{file}/data"},
     "DATA_DIR='{file}/data': must be a path this server can create and write; not a directory"),
    ({"AUDIT_DB": "{dir}"}, "AUDIT_DB='{dir}': must be a path this server can create and write; is a directory"),
])
def test_a_bad_setting_stops_the_start_with_one_line_and_exit_code_2(tmp_path, env, says):
    # A path below a regular file can be created by no one, root included.
    plain = tmp_path / "plain-file"
    plain.write_text("")
    (tmp_path / "a-folder").mkdir()
    subst = {"file": str(plain), "dir": str(tmp_path / "a-folder")}
    env = {k: v.format(**subst) for k, v in env.items()}
    out = gunicorn(tmp_path, env)
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert out.returncode == 2, lines
    assert len(lines) == 1 and lines[0].startswith(f"error: {says.format(**subst)}"), lines


def test_the_one_worker_warning_and_every_start_line_are_json(tmp_path):
    env = {"WEB_CONCURRENCY": "3", "LOG_FORMAT": "json", "SAMPLE_INTERVAL": "0.25"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app"], cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PORT": str(free_port()), "HOST": "127.0.0.1",
             "OPERATOR_TOKEN": TOKEN, "SECRET_KEY": "a-secret-key-for-startup-tests",
             "AUDIT_DB": str(tmp_path / "a.sqlite3"), "DATA_DIR": str(tmp_path / "data"), **env},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    watchdog = threading.Timer(30, proc.terminate)  # a server that never says it started is stopped
    watchdog.start()
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "sampling " in line:  # the worker started: every start line has been printed
                break
    finally:
        watchdog.cancel()
        proc.terminate()
        rest, _ = proc.communicate(timeout=20)
    lines += [line for line in rest.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # each one a JSON object, or this fails
    warning = [r for r in records if "WEB_CONCURRENCY=3 ignored" in r["msg"]]
    assert any("sampling " in r["msg"] for r in records), lines
    assert len(warning) == 1 and warning[0]["level"] == "warning", lines
    assert proc.returncode == 0
