"""What the agent costs a host: RSS and CPU at 1 Hz, next to node_exporter and Glances.

    python -m bench.agent_cost [--seconds 60] [--warmup 10] [--redis redis://127.0.0.1:6379/0]
        [--agent-python /path/to/venv/bin/python | --packaged] [--glances auto|none|/path/to/glances]

`bin/bench --agent` runs it as one of its parts with `--packaged` (a wheel of
this checkout installed with only `[agent]` into a fresh virtualenv: the agent
as it ships) and `--glances auto`, judged in its table and kept in latest.json.

Each contender runs alone, one after the other, on this host:

- the agent (`python -m dashboard.agent`, SAMPLE_INTERVAL=1, the process table on,
  publishing to the Redis given, or to a redis-server of its own; by default with
  this interpreter, with --agent-python (a venv of your own), or --packaged);
- prometheus-node-exporter (Debian's package, /usr/bin/prometheus-node-exporter)
  on a loopback port, scraped once a second by this process over HTTP (the
  scrape's cost is the exporter's: it gathers when asked);
- Glances in quiet mode (`glances -q -t 1`): --glances auto uses it from PATH or
  installs it into a temporary virtualenv (as bench/browser_bench.py does).

After --warmup seconds, the CPU time the process used (user + system, its
children included, from /proc) over --seconds of wall time gives CPU as a
percentage of one core, and its RSS is read once a second (mean and peak).
The targets: the agent's RSS at most node_exporter's, and its CPU at most
0.66 times node_exporter's. Prints one JSON object: each contender's
figures, the ratios and whether each target is met.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
CPU_TARGET = 0.66  # the agent's CPU, as a share of node_exporter's
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process and its waited-for children, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime + cutime + cstime) / TICK


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(proc: subprocess.Popen, seconds: float, warmup: float, each_second=None) -> dict:
    """CPU % of one core and RSS of proc over `seconds`, after `warmup`; `each_second()` runs once a second."""
    deadline = time.monotonic() + warmup
    while time.monotonic() < deadline:
        if each_second:
            each_second()
        time.sleep(1.0)
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} during warm-up")
    cpu0, wall0 = cpu_seconds(proc.pid), time.monotonic()
    rss = []
    next_tick = wall0
    while time.monotonic() - wall0 < seconds:
        if each_second:
            each_second()
        rss.append(rss_bytes(proc.pid))
        next_tick += 1.0
        time.sleep(max(0.0, next_tick - time.monotonic()))
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
    cpu1, wall1 = cpu_seconds(proc.pid), time.monotonic()
    return {"cpu_percent": round(100 * (cpu1 - cpu0) / (wall1 - wall0), 3),
            "rss_mb_mean": round(statistics.mean(rss) / 1e6, 1), "rss_mb_peak": round(max(rss) / 1e6, 1),
            "seconds": round(wall1 - wall0, 1)}


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def start_redis(scratch: str) -> tuple[subprocess.Popen, str]:
    """A redis-server of its own on a free loopback port, and its URL (nothing saved to disk)."""
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", scratch],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise TimeoutError("redis-server did not answer within 30 s")


def packaged_agent(scratch: str) -> str:
    """The python of a fresh virtualenv holding this checkout's wheel with only `[agent]`."""
    src, wheels, venv = (Path(scratch) / name for name in ("src", "wheels", "agent-venv"))
    shutil.copytree(REPO / "dashboard", src / "dashboard", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(src)],
                   check=True, cwd=scratch, capture_output=True, timeout=600)
    (wheel,) = wheels.glob("host_dashboard-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[agent]"], check=True, cwd=scratch,
                   capture_output=True, timeout=600)
    return str(venv / "bin" / "python")


def table(out: dict) -> str:
    """The contenders side by side, and the two targets judged."""
    lines = [f"Agent cost at 1 Hz, process table on ({out['seconds']:g} s each, one after the other; "
             f"bench/agent_cost.py, agent: {out.get('agent_how', '?')}):",
             f"  {'process':<16} {'CPU % of a core':>16} {'RSS MB (mean)':>14}"]
    for name in ("agent", "node_exporter", "glances"):
        m = out.get(name)
        if m:
            lines.append(f"  {name:<16} {m['cpu_percent']:>16.2f} {m['rss_mb_mean']:>14.1f}")
    if "rss_ratio" in out:
        lines.append(f"  RSS at most node_exporter's: {out['rss_ratio']:.2f}x: "
                     f"{'PASS' if out['rss_target_met'] else 'FAIL'}")
        cpu = "n/a" if out["cpu_ratio"] is None else f"{out['cpu_ratio']:.2f}x"
        lines.append(f"  CPU at most {CPU_TARGET}x node_exporter's: {cpu}: {'PASS' if out['cpu_target_met'] else 'FAIL'}")
    else:
        lines.append("  no node_exporter here (apt-get install prometheus-node-exporter): nothing to judge against")
    if out.get("glances_how"):
        lines.append(f"  Glances: {out['glances_how']}")
    return "\n".join(lines)


def run_agent(python: str, redis_url: str, seconds: float, warmup: float, scratch: str) -> dict:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": scratch, "REDIS_URL": redis_url,
           "SAMPLE_INTERVAL": "1", "HOST_NAME": "bench-agent", "LOG_LEVEL": "warning"}
    cwd = REPO if python == sys.executable else scratch  # a venv's agent runs from its own install
    if python == sys.executable:
        env["PYTHONPATH"] = str(REPO)
    with open(os.path.join(scratch, "agent.log"), "wb") as log:
        proc = subprocess.Popen([python, "-m", "dashboard.agent"], cwd=cwd, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        return measure(proc, seconds, warmup)
    finally:
        stop(proc)


def run_node_exporter(seconds: float, warmup: float) -> dict:
    port = free_port()
    proc = subprocess.Popen([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/metrics"
    scraped = {"bytes": 0, "count": 0}

    def scrape() -> None:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                scraped["bytes"] += len(resp.read())
                scraped["count"] += 1
        except OSError:
            pass  # still starting

    try:
        out = measure(proc, seconds, warmup, scrape)
        return {**out, "scrapes": scraped["count"]}
    finally:
        stop(proc)


def run_glances(glances: str, seconds: float, warmup: float, scratch: str) -> dict:
    env = {**os.environ, "HOME": scratch}
    proc = subprocess.Popen([glances, "-q", "-t", "1"], cwd=scratch, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        return measure(proc, seconds, warmup)
    finally:
        stop(proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agent_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--redis", help="redis:// URL on loopback for the agent (default: a redis-server of "
                        "its own)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--agent-python", default=sys.executable)
    parser.add_argument("--packaged", action="store_true",
                        help="the agent as it ships: this checkout's wheel with only [agent], in a fresh venv")
    parser.add_argument("--glances", default="auto", help="auto (PATH, else a temporary venv), none, or a path")
    args = parser.parse_args(argv)
    from .browser_bench import find_glances

    out: dict = {"seconds": args.seconds, "cores": os.cpu_count(),
                 "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="agent-cost-") as scratch:
        server, url = start_redis(scratch) if not args.redis else (None, args.redis)
        try:
            python = packaged_agent(scratch) if args.packaged else args.agent_python
            out["agent_how"] = ("the [agent] wheel in a fresh venv" if args.packaged else
                                "this interpreter" if python == sys.executable else python)
            out["agent"] = run_agent(python, url, args.seconds, args.warmup, scratch)
        finally:
            if server is not None:
                stop(server)
        if os.path.exists(NODE_EXPORTER):
            out["node_exporter"] = run_node_exporter(args.seconds, args.warmup)
        glances, out["glances_how"] = find_glances(args.glances, Path(scratch))
        if glances:
            out["glances"] = run_glances(glances, args.seconds, args.warmup, scratch)
    ne = out.get("node_exporter")
    if ne:
        agent = out["agent"]
        out["rss_ratio"] = round(agent["rss_mb_mean"] / ne["rss_mb_mean"], 3)
        out["cpu_ratio"] = round(agent["cpu_percent"] / ne["cpu_percent"], 3) if ne["cpu_percent"] else None
        out["rss_target_met"] = agent["rss_mb_mean"] <= ne["rss_mb_mean"]
        out["cpu_target_met"] = out["cpu_ratio"] is not None and out["cpu_ratio"] <= CPU_TARGET
    print(table(out))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
