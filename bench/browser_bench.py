"""What a dashboard tab costs the browser left open: the renderer's task time and
JS heap over a window, at 1 Hz and 4 Hz, visible and hidden, for this page and,
in the same invocation, Glances' web UI as a baseline when it can be installed.

    python -m bench.browser_bench --seconds 60 --rates 1,4
    python -m bench.browser_bench --seconds 10 --rates 1 --glances none   # ours alone

Chromium from the distribution (/usr/bin/chromium) driven by Playwright over
the DevTools protocol: `Performance.getMetrics` before and after each window
gives TaskDuration (all main-thread work of the page's renderer), ScriptDuration,
LayoutCount and RecalcStyleCount; the JS heap is read after a forced garbage
collection at both ends, so "flat" means live objects, not garbage. Our page
also counts its own work (window.dashboard.work: samples shown, chart draws).

Hidden: headless Chromium keeps `document.visibilityState` "visible" whatever
the protocol does, so the page is told it is hidden the way a browser would:
`visibilityState`/`hidden` overridden and `visibilitychange` fired.

Glances: `--glances auto` uses `glances` from PATH, else installs it with pip
into a temporary virtualenv (removed afterwards) and runs `glances -w` on a
loopback port with `-t` set to the rate; when that fails the report says why
and shows ours alone. Writes the figures as JSON (--out) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from .figures import fmt
from .servers import REPO, Server, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
METRICS = ("TaskDuration", "ScriptDuration", "LayoutCount", "RecalcStyleCount", "JSHeapUsedSize")

HIDE = """() => {
  for (const [name, value] of [["visibilityState", "hidden"], ["hidden", true]]) {
    Object.defineProperty(document, name, { configurable: true, get: () => value });
  }
  document.dispatchEvent(new Event("visibilitychange"));
}"""
SHOW = """() => {
  delete document.visibilityState;
  delete document.hidden;
  document.dispatchEvent(new Event("visibilitychange"));
}"""
WORK = "() => (window.dashboard && window.dashboard.work) ? {...window.dashboard.work} : null"


def metrics(cdp) -> dict:
    raw = cdp.send("Performance.getMetrics")["metrics"]
    return {m["name"]: m["value"] for m in raw if m["name"] in METRICS}


def heap_after_gc(cdp) -> float:
    cdp.send("HeapProfiler.collectGarbage")
    return metrics(cdp)["JSHeapUsedSize"]


def measure(page, cdp, seconds: float, trail: int = 0) -> dict:
    """One window: the renderer's work in it, as shares of a core and counts per second.
    With trail > 0 the heap is also read (after a collection) at that many even
    points in the window, to show whether it grows over a long run; those
    collections count in the window's task time, so trail is 0 unless asked."""
    heap0 = heap_after_gc(cdp)
    work0 = page.evaluate(WORK)
    m0, t0 = metrics(cdp), time.monotonic()
    heaps = []
    for _ in range(max(trail, 1)):
        page.wait_for_timeout(seconds * 1000 / max(trail, 1))
        if trail:
            heaps.append(round(heap_after_gc(cdp) / 2**20, 2))
    m1, t1 = metrics(cdp), time.monotonic()
    work1 = page.evaluate(WORK)
    heap1 = heap_after_gc(cdp)
    wall = t1 - t0
    out = {
        "seconds": round(wall, 2),
        "task_pct": round(100 * (m1["TaskDuration"] - m0["TaskDuration"]) / wall, 3),
        "script_pct": round(100 * (m1["ScriptDuration"] - m0["ScriptDuration"]) / wall, 3),
        "layouts_per_s": round((m1["LayoutCount"] - m0["LayoutCount"]) / wall, 2),
        "style_recalcs_per_s": round((m1["RecalcStyleCount"] - m0["RecalcStyleCount"]) / wall, 2),
        "heap_mb_start": round(heap0 / 2**20, 2),
        "heap_mb_end": round(heap1 / 2**20, 2),
    }
    if heaps:
        out["heap_mb_trail"] = heaps
    if work0 and work1:
        out["work"] = {k: work1[k] - work0.get(k, 0) for k in work1}
    return out


def run_page(browser, url: str, seconds: float, warmup: float, ready: str | None, trail: int = 0,
             hidden_seconds: float | None = None) -> dict:
    """The page at url, visible for one window, then hidden for one (the same length unless given)."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_load_state("load")
        if ready:
            page.wait_for_function(ready, timeout=30000)
        page.wait_for_timeout(warmup * 1000)
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
        visible = measure(page, cdp, seconds, trail)
        page.evaluate(HIDE)
        page.wait_for_timeout(500)
        hidden = measure(page, cdp, seconds if hidden_seconds is None else hidden_seconds, trail)
        page.evaluate(SHOW)
        return {"visible": visible, "hidden": hidden}
    finally:
        context.close()


# Ours is ready once the live stream has shown a few samples.
OURS_READY = "() => window.dashboard && window.dashboard.charts && window.dashboard.charts.store.ts.length >= 3"


def run_ours(browser, rate: float, seconds: float, warmup: float, work_dir: Path, trail: int = 0,
             hidden_seconds: float | None = None) -> dict:
    server = Server("ours", work_dir, work_dir, env={"SAMPLE_INTERVAL": f"{1 / rate:g}"})
    server.start()
    try:
        return run_page(browser, f"http://127.0.0.1:{server.port}/?token={server.token}",
                        seconds, warmup, OURS_READY, trail, hidden_seconds)
    finally:
        server.stop()


# ---- Glances, the baseline -------------------------------------------------------


def find_glances(choice: str, work_dir: Path) -> tuple[str | None, str]:
    """(path of a glances executable or None, what happened)."""
    if choice == "none":
        return None, "not run (--glances none)"
    if choice != "auto":
        return (choice, "given") if os.access(choice, os.X_OK) else (None, f"{choice} is not executable")
    found = shutil.which("glances")
    if found:
        return found, "from PATH"
    venv = work_dir / "glances-venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
        pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "glances", "fastapi", "uvicorn",
                              "jinja2"], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"could not make a virtualenv for it: {exc}"
    if pip.returncode != 0:
        return None, "pip install glances failed: " + (pip.stderr.strip().splitlines() or ["?"])[-1][:200]
    return str(venv / "bin" / "glances"), "installed with pip into a temporary virtualenv"


def glances_version(exe: str) -> str:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    return (out.split("\n")[0].split("\t")[-1] or "?").strip()


def run_glances(browser, exe: str, rate: float, seconds: float, warmup: float, work_dir: Path,
                trail: int = 0, hidden_seconds: float | None = None) -> dict:
    port = free_port()
    log = open(work_dir / f"glances-{port}.log", "ab")
    proc = subprocess.Popen([exe, "-w", "--disable-autodiscover", "-B", "127.0.0.1", "-p", str(port),
                             "-t", f"{1 / rate:g}"], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ,
                                                                                  "HOME": str(work_dir)})
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"glances exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("glances -w did not answer within 60 s") from None
                time.sleep(0.2)
        return run_page(browser, f"http://127.0.0.1:{port}/", seconds, warmup, None, trail, hidden_seconds)
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(5)
        log.close()


# ---- the run and its table ----------------------------------------------------------


def run(args) -> dict:
    from playwright.sync_api import sync_playwright

    work_dir = Path(tempfile.mkdtemp(prefix="browser-bench-"))
    result = {"seconds": args.seconds, "hidden_seconds": args.hidden_seconds or args.seconds,
              "rates": args.rates, "pages": {}, "glances": None}
    try:
        exe, how = find_glances(args.glances, work_dir)
        result["glances"] = {"how": how, "version": glances_version(exe) if exe else None}
        with sync_playwright() as pw:
            (work_dir / "home").mkdir()
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                         env={**os.environ, "HOME": str(work_dir / "home")})
            try:
                for rate in args.rates:
                    key = f"{rate:g} Hz"
                    result["pages"].setdefault("ours", {})[key] = run_ours(
                        browser, rate, args.seconds, args.warmup, work_dir, args.heap_trail, args.hidden_seconds)
                    if exe:
                        try:
                            result["pages"].setdefault("glances", {})[key] = run_glances(
                                browser, exe, rate, args.seconds, args.warmup, work_dir, args.heap_trail,
                                args.hidden_seconds)
                        except (RuntimeError, TimeoutError) as exc:
                            result["glances"]["error"] = str(exc)
            finally:
                browser.close()
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return result


def table(result: dict) -> str:
    heads = ["page", "rate", "state", "task % core", "script %", "layouts/s", "styles/s",
             "heap MB start-end", "draws", "samples shown"]
    rows = []
    for name, by_rate in result["pages"].items():
        for rate, states in by_rate.items():
            for state, m in states.items():
                work = m.get("work") or {}
                rows.append([name, rate, state, fmt(m["task_pct"], ".2f"), fmt(m["script_pct"], ".2f"),
                             fmt(m["layouts_per_s"], ".1f"), fmt(m["style_recalcs_per_s"], ".1f"),
                             f"{m['heap_mb_start']:.2f}-{m['heap_mb_end']:.2f}",
                             fmt(work.get("draws")), fmt(work.get("samples"))])
    widths = [max(len(str(r[i])) for r in [heads, *rows]) for i in range(len(heads))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [heads, *rows]]
    g = result.get("glances") or {}
    note = f"Glances {g.get('version')}: {g.get('how')}" if g.get("version") else f"Glances: {g.get('how')}"
    if g.get("error"):
        note += f" (failed: {g['error']})"
    hidden = result.get("hidden_seconds", result["seconds"])
    windows = (f"{result['seconds']:g} s per window" if hidden == result["seconds"]
               else f"{result['seconds']:g} s visible, {hidden:g} s hidden")
    return "\n".join(lines + ["", f"{windows}; " + note])


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench.browser_bench", description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=30.0, help="measured window per page and state (default 30)")
    p.add_argument("--rates", default="1,4", help="sampling rates in Hz, comma-separated (default 1,4)")
    p.add_argument("--hidden-seconds", type=float, default=None,
                   help="the hidden window's length (default: --seconds); a long visible run for the heap "
                        "need not wait as long again hidden")
    p.add_argument("--heap-trail", type=int, default=0,
                   help="also read the JS heap at this many points in each window (a long run's growth; "
                        "default 0: the collections would count in the window's task time)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds after the page is live (default 3)")
    p.add_argument("--glances", default="auto",
                   help="auto (PATH, else a temporary virtualenv), a path to glances, or none")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "browser.json",
                   help="where the figures go as JSON (default bench/results/browser.json)")
    args = p.parse_args(argv)
    try:
        args.rates = [float(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        p.error("--rates takes comma-separated numbers, e.g. 1,4")
    if not args.rates or any(not 1 / 60 <= r <= 4 for r in args.rates) or args.seconds < 1 \
            or (args.hidden_seconds is not None and args.hidden_seconds < 1):
        p.error("--rates between 1/60 and 4 Hz (the app samples every 0.25 to 60 s); --seconds and --hidden-seconds >= 1")
    if not os.access(CHROMIUM, os.X_OK):
        p.error(f"{CHROMIUM} is missing: apt-get install chromium (a downloaded browser is never used)")
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
