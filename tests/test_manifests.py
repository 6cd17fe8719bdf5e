"""The deployment files agree with the code."""

import json
import re
from pathlib import Path

from dashboard import settings

ROOT = Path(__file__).resolve().parents[1]


def test_procfile_runs_gunicorn_with_the_config():
    assert (ROOT / "Procfile").read_text().strip() == "web: gunicorn -c gunicorn.conf.py app:app"


def test_app_json_is_a_valid_manifest_of_real_settings():
    manifest = json.loads((ROOT / "app.json").read_text())
    env = manifest["env"]
    assert set(env) <= {s.name for s in settings.SETTINGS}
    for name in ("OPERATOR_TOKEN", "SECRET_KEY"):
        assert env[name]["generator"] == "secret"
    assert env["REDIS_URL"]["required"] is False  # the Redis add-on is optional
    assert "addons" not in manifest  # ...so it is not provisioned by the button
    for name, spec in env.items():
        assert spec["description"]
        if "value" in spec:
            settings.BY_NAME[name].parse(spec["value"])  # a value the app accepts
    assert manifest["formation"]["web"]["quantity"] == 1


def test_requirements_are_pinned():
    for name in ("requirements.txt", "requirements-dev.txt", "requirements-bench.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith(("#", "-r")):
                assert re.fullmatch(r"[A-Za-z0-9_.\[\]-]+==[0-9][0-9A-Za-z.]*", line), (name, line)


def test_python_version_for_the_buildpack():
    version = (ROOT / ".python-version").read_text().strip()
    assert re.fullmatch(r"3\.(1[1-9])", version)
