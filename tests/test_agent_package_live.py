"""The agent as a package: a wheel installed with only [agent] into a fresh venv samples and publishes."""

import os
import shutil
import subprocess
import sys
import venv

import redis

from tests.support.server import REPO
from tests.support.waiting import eventually

HEAVY = ("flask", "numpy", "apprise", "werkzeug", "prometheus_client", "gevent", "redis", "ssl", "sqlite3",
         "secrets", "http.client", "argparse")


def test_the_agent_imports_nothing_of_the_web_app():
    code = ("import sys, dashboard.agent; "
            f"print(','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_wheel_with_only_the_agent_extra_publishes_a_host(redis_server, tmp_path):
    # Built from a copy: a build writes its build/ and egg-info next to the sources.
    src = tmp_path / "src"
    shutil.copytree(REPO / "dashboard", src / "dashboard", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(src)],
                   check=True, cwd=tmp_path, timeout=600)
    (wheel,) = wheels.glob("host_dashboard-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", f"{wheel}[agent]"], check=True, cwd=tmp_path,
                   timeout=600)
    for module in ("flask", "numpy", "apprise", "gevent", "redis"):
        probe = subprocess.run([str(py), "-I", "-c", f"import {module}"], capture_output=True, cwd=tmp_path)
        assert probe.returncode != 0, f"{module} was installed with [agent]"
    env = {"PATH": os.environ["PATH"], "REDIS_URL": redis_server.url, "SAMPLE_INTERVAL": "0.5",
           "HOME": str(tmp_path)}
    log = open(tmp_path / "agent.log", "wb")
    # From the venv's console script, outside the checkout: nothing of the repository is on its path.
    agent = subprocess.Popen([str(env_dir / "bin" / "dashboard-agent"), "--host-name", "packaged-1"],
                             cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        r = redis.Redis.from_url(redis_server.url, decode_responses=True)
        eventually(lambda: r.xlen("dash:host:packaged-1") >= 3 and r.hget("dash:fleet", "packaged-1"), 30, 0.2)
        agent.terminate()
        assert agent.wait(15) == 0
    finally:
        agent.kill()
        log.close()
    assert "publishing packaged-1 to Redis" in (tmp_path / "agent.log").read_text()
