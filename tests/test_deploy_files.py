"""Every configuration file the deploy pages show parses, and says what the app reads.

deploy/ holds them (and the repository's root where a platform looks: Procfile,
app.json); docs/deploy/*.md include these very files, so a page cannot show a
file that was not checked here."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from dashboard import settings
from tests.support.nginx import require_nginx

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
PARSED = {".toml", ".yaml", ".yml", ".json", ".conf", ".service", ".agent"}  # .agent: Containerfile.agent
KNOWN = {s.name for s in settings.SETTINGS}


def _procfile_web() -> str:
    entries = dict(line.split(":", 1) for line in (REPO / "Procfile").read_text().splitlines() if line.strip())
    return entries["web"].strip()


def test_every_file_in_deploy_has_a_parser():
    assert {p.suffix for p in DEPLOY.iterdir()} <= PARSED, sorted(p.name for p in DEPLOY.iterdir())


def test_the_procfile_runs_gunicorn_with_the_config():
    assert _procfile_web() == "gunicorn -c gunicorn.conf.py app:app"


def test_fly_toml_is_valid_toml_and_stops_with_sigterm():
    fly = tomllib.loads((DEPLOY / "fly.toml").read_text())
    assert fly["kill_signal"] == "SIGTERM"
    assert set(fly["env"]) <= KNOWN, set(fly["env"]) - KNOWN
    assert str(fly["http_service"]["internal_port"]) == fly["env"]["PORT"]
    assert fly["mounts"]["destination"] == fly["env"]["DATA_DIR"]
    assert fly["http_service"]["checks"][0]["path"] == "/healthz"


def test_render_yaml_is_valid_yaml_and_wires_redis():
    render = yaml.safe_load((DEPLOY / "render.yaml").read_text())
    web = next(s for s in render["services"] if s["type"] == "web")
    assert web["startCommand"] == _procfile_web()
    assert web["healthCheckPath"] == "/healthz"
    keys = {v["key"] for v in web["envVars"]}
    assert keys <= KNOWN, keys - KNOWN
    redis = next(v for v in web["envVars"] if v["key"] == "REDIS_URL")["fromService"]
    assert any(s["type"] == redis["type"] and s["name"] == redis["name"] for s in render["services"])


def test_railway_json_is_valid_json_and_starts_the_procfiles_command():
    railway = json.loads((DEPLOY / "railway.json").read_text())
    assert railway["deploy"]["startCommand"] == _procfile_web()
    assert isinstance(railway["deploy"]["drainingSeconds"], int)  # a string fails Railway's parser


def test_app_json_is_valid_json_and_names_only_real_settings():
    app = json.loads((REPO / "app.json").read_text())
    assert set(app["env"]) <= KNOWN, set(app["env"]) - KNOWN
    assert app["env"]["OPERATOR_TOKEN"]["generator"] == "secret"


def test_prometheus_yml_is_valid_yaml():
    scrape = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"][0]
    assert "credentials" in scrape["authorization"]


@pytest.mark.parametrize("name", sorted(p.name for p in DEPLOY.glob("*.conf")))
def test_nginx_accepts_the_config(tmp_path, name):
    nginx = require_nginx()
    block = (DEPLOY / name).read_text()
    (tmp_path / "nginx.conf").write_text(f"""
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    {block}
}}
""")
    done = subprocess.run([nginx, "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_nginx_refuses_a_broken_config(tmp_path):
    # The check above can fail: the same file with one brace missing is refused.
    nginx = require_nginx()
    broken = (DEPLOY / "nginx-subpath.conf").read_text().rstrip().rstrip("}")
    (tmp_path / "nginx.conf").write_text(f"pid {tmp_path}/n.pid; error_log {tmp_path}/e.log;\n"
                                         f"events {{}}\nhttp {{ {broken} }}\n")
    done = subprocess.run([nginx, "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0


def test_the_agent_s_systemd_unit_parses_and_runs_the_agent_with_its_settings_kept_secret():
    import configparser

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string((DEPLOY / "dashboard-agent.service").read_text())
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    assert service["ExecStart"] == "/opt/dashboard-agent/bin/dashboard-agent"
    assert service["KillSignal"] == "SIGTERM" and service["EnvironmentFile"] == "/etc/dashboard-agent.env"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_agent_s_containerfile_uses_only_known_instructions_and_installs_only_the_agent():
    instructions = {"FROM", "WORKDIR", "COPY", "RUN", "USER", "ENV", "ENTRYPOINT", "CMD", "LABEL", "ARG"}
    text = (DEPLOY / "Containerfile.agent").read_text()
    lines = [line for line in text.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]
    assert all(line.split()[0] in instructions for line in lines if not line.startswith(" ")), lines
    assert "[agent]" in text and '"/opt/agent/bin/dashboard-agent"' in text
