"""Where the memory of an open event stream goes, in the real server.

Starts our server (gunicorn + gevent, as bin/bench does) with a probe in its
worker: Python's tracemalloc, started just before N viewers connect and read
once they are all caught up. Prints, per viewer, the worker's RSS growth, what
tracemalloc saw allocated (by source file, largest first) and the rest, which
tracemalloc cannot see (memory mapped directly: each greenlet's Python frame
stack on Python 3.11+, libev's watchers, malloc's own overhead). Compare two
versions of the app with --app-ref:

    python -m bench.viewer_memory --viewers 2000
    python -m bench.viewer_memory --viewers 2000 --app-ref <ref before the change>

The RSS growth comes from a run without tracemalloc (its bookkeeping would
count), the breakdown from a second run with it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from .clients import ClientGroup
from .servers import Server

# Read by the worker: gunicorn.conf.py of the app under test, plus the probe.
PROBE_CONF = '''
exec(open("gunicorn.conf.py").read())
_app_post_worker_init = post_worker_init


def post_worker_init(worker):
    _app_post_worker_init(worker)
    import json, os, tracemalloc
    import gevent

    def probe():
        while True:
            gevent.sleep(0.2)
            if os.path.exists(FLAG + ".start"):
                os.unlink(FLAG + ".start")
                tracemalloc.start(1)
            if os.path.exists(FLAG + ".snap"):
                os.unlink(FLAG + ".snap")
                by_file = {}
                for stat in tracemalloc.take_snapshot().statistics("filename"):
                    by_file[stat.traceback[0].filename] = stat.size
                tracemalloc.stop()
                with open(FLAG + ".tmp", "w") as f:
                    json.dump(by_file, f)
                os.rename(FLAG + ".tmp", FLAG + ".json")

    gevent.spawn(probe)
'''


def _wait(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the probe did not answer in {timeout:g}s")
        time.sleep(0.1)


def _short(filename: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1]
    if "/dashboard/" in filename:
        return "dashboard/" + filename.split("/dashboard/", 1)[1]
    if "/lib/python3" in filename:
        return "stdlib " + filename.rsplit("/", 1)[1]
    return filename


def _run(viewers: int, app_dir: Path | None, settle: float, traced: bool) -> tuple[int, dict]:
    """One server, N viewers: the worker's RSS growth, and tracemalloc's view if traced."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    (scratch / "logs").mkdir()
    flag = scratch / "probe"
    conf = scratch / "probe.conf.py"
    conf.write_text(f"FLAG = {str(flag)!r}\n" + PROBE_CONF)
    server = Server("ours", scratch / "logs", scratch, **({"app_dir": app_dir} if app_dir else {}))
    server.command = lambda: [sys.executable, "-m", "gunicorn", "-c", str(conf), "app:app"]  # type: ignore
    group = None
    by_file: dict = {}
    try:
        server.start()
        time.sleep(2)
        worker = server.tree()[-1]
        if traced:
            flag.with_suffix(".start").touch()
        time.sleep(1)
        rss0 = worker.memory_info().rss
        group = ClientGroup(server.port, viewers, 2500, 3000, scratch / "logs")
        group.start()
        group.wait_connected(timeout=viewers / 1000 + 60)
        time.sleep(settle)
        rss1 = worker.memory_info().rss
        if traced:
            flag.with_suffix(".snap").touch()
            out_path = flag.with_suffix(".json")
            _wait(out_path, 60)
            by_file = json.loads(out_path.read_text())
    finally:
        if group is not None:
            group.stop()
        server.stop()
    return rss1 - rss0, by_file


def measure(viewers: int, app_dir: Path | None, settle: float) -> dict:
    # RSS from a run without tracemalloc (its own bookkeeping would count), the
    # breakdown from a second run with it.
    rss, _ = _run(viewers, app_dir, settle, traced=False)
    _, by_file = _run(viewers, app_dir, settle, traced=True)
    traced = sum(by_file.values())
    top = sorted(by_file.items(), key=lambda kv: -kv[1])[:12]
    return {
        "viewers": viewers,
        "rss_per_viewer_kib": round(rss / viewers / 1024, 2),
        "traced_per_viewer_kib": round(traced / viewers / 1024, 2),
        "untraced_per_viewer_kib": round((rss - traced) / viewers / 1024, 2),
        "by_file_bytes_per_viewer": {_short(f): round(b / viewers) for f, b in top},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--viewers", type=int, default=2000)
    p.add_argument("--settle", type=float, default=5.0, help="seconds after the last connect")
    p.add_argument("--app-ref", metavar="REF", help="measure the app as committed at this git ref")
    args = p.parse_args(argv)
    app_dir = None
    if args.app_ref:
        from .__main__ import export_app

        app_dir = export_app(args.app_ref, Path(tempfile.mkdtemp(prefix="bench-app-")))
    result = measure(args.viewers, app_dir, args.settle)
    result["app"] = args.app_ref or "working tree"
    print(f"{result['app']}: {args.viewers} viewers: RSS +{result['rss_per_viewer_kib']} KiB per viewer, "
          f"of which tracemalloc saw {result['traced_per_viewer_kib']} KiB "
          f"(the rest, {result['untraced_per_viewer_kib']} KiB, is mapped memory it cannot see)")
    for name, size in result["by_file_bytes_per_viewer"].items():
        print(f"  {size:>7} B  {name}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
