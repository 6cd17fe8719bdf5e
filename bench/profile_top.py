"""Where the time goes, from py-spy's raw (collapsed) stacks.

`python -m bench --profile` records our worker with `py-spy record --format
raw` during each measured window. This reads such files and prints the
functions with the most samples, by self time (the frame on top of the stack)
and by inclusive time (anywhere on the stack), as shares of all samples:

    python -m bench.profile_top bench/results/profiles/profile-ours-5000-r1.txt [--top 15]
    python -m bench.profile_top bench/results/profiles/profile-console-ours-r1.txt --console 285

`--console` also sorts a console profile's samples into groups (audit SQLite
write, audit log line, reply path, request path, the command itself, the
sampler, the rest) and, given the server's CPU microseconds per command from
an unprofiled run, prints what each group costs per command.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


_PLUMBING = ("greenlet::", "0x", "run (_gevent_cgreenlet", "<module>", "_start (", "__libc_start",
             "Py_RunMain", "pymain_", "_PyEval_EvalFrameDefault")


def _name(frame: str) -> str:
    """`func (path/to/file.py:123)` -> `func (file.py)`: lines of one function together."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    return f"{m['func']} ({Path(m['file']).name})"


def load(paths) -> tuple[Counter, Counter, int]:
    self_time: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    for path in paths:
        for line in Path(path).read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = [_name(f) for f in stack.split(";") if f.strip()]
            # py-spy may put the thread first ("thread (0x...)"): not a function.
            frames = [f for f in frames if not f.startswith(("thread (", "process "))]
            if not frames:
                continue
            total += n
            self_time[frames[-1]] += n
            for f in set(frames):
                # --native stacks start with greenlet and gevent plumbing that is
                # on every stack; it says nothing about where the time goes.
                if not f.startswith(_PLUMBING):
                    inclusive[f] += n
    return self_time, inclusive, total


def top(paths, n: int = 15) -> dict:
    self_time, inclusive, total = load(paths)
    share = (lambda c: round(100.0 * c / total, 1)) if total else (lambda c: 0.0)
    return {
        "samples": total,
        "self": [(f, share(c)) for f, c in self_time.most_common(n)],
        "inclusive": [(f, share(c)) for f, c in inclusive.most_common(n)],
    }


# Where a console command's time goes: each sample goes to the first group
# with one of its frames anywhere on the stack (so the log line, which runs
# inside AuditLog.append, is counted before the SQLite write). Frames as
# `_name` prints them; a prefix matches.
CONSOLE_GROUPS = (
    ("audit: JSON log line (asdict, json.dumps, logging, write to stdout)",
     ("Logger.info", "asdict (", "Record.public")),
    ("audit: SQLite INSERT + commit (WAL writes, checkpoints)", ("AuditLog.append", "AuditLog.settle")),
    ("reply: writer greenlet, wsproto frame, sendall (send() on loopback)", ("ConsoleSession._write_loop",)),
    ("request: reader greenlet, recv() + wsproto parse", ("Base._thread",)),
    ("request: hand-off to the socket loop (ws.receive, Event, Timeout)", ("Base.receive",)),
    ("command: envelope, rate limit, line, `status`, reply JSON", ("ConsoleSession.handle",)),
    ("sampler (1 Hz)", ("Sampler.",)),
)
OTHER = "gevent hub, timers, everything else"


def groups(paths, rules=CONSOLE_GROUPS) -> dict:
    """Share of samples per group (first match wins), largest first."""
    counts = {name: 0 for name, _ in rules}
    counts[OTHER] = 0
    total = 0
    for path in paths:
        for line in Path(path).read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = [_name(f) for f in stack.split(";") if f.strip()]
            for name, prefixes in rules:
                if any(f.startswith(prefixes) for f in frames):
                    counts[name] += n
                    break
            else:
                counts[OTHER] += n
    shares = {k: round(100.0 * v / total, 1) if total else 0.0 for k, v in counts.items()}
    return {"samples": total, "shares": dict(sorted(shares.items(), key=lambda kv: -kv[1]))}


def render_groups(result: dict, us_per_unit: float | None = None, unit: str = "cmd") -> str:
    lines = [f"{result['samples']} samples, by group"
             + (f" (us/{unit}: share x {us_per_unit:g} us of server CPU per {unit})" if us_per_unit else "")]
    for name, pct in result["shares"].items():
        us = f"{pct / 100 * us_per_unit:6.0f} us/{unit}  " if us_per_unit else ""
        lines.append(f"    {pct:5.1f}%  {us}{name}")
    return "\n".join(lines)


def render(result: dict) -> str:
    lines = [f"{result['samples']} samples"]
    for key, title in (("self", "self time (on top of the stack)"),
                       ("inclusive", "inclusive time (anywhere on the stack)")):
        lines.append(f"  {title}:")
        for func, pct in result[key]:
            lines.append(f"    {pct:5.1f}%  {func}")
    return "\n".join(lines)


def print_profiles(runs: list[dict]) -> None:
    for r in runs:
        prof = r.get("profile")
        if not prof or not Path(prof["raw"]).exists():
            continue
        print(f"\npy-spy, ours at {r['viewers']} viewers, round {r['round']} "
              f"({r.get('server_cpu_percent')}% CPU with the profiler attached): {prof['raw']}")
        print(render(top([prof["raw"]], 12)))


def print_console_profiles(runs: list[dict]) -> None:
    for r in runs:
        prof = r.get("profile")
        if not prof:
            continue
        if not Path(prof["raw"]).exists():
            log = Path(prof["log"]).read_text(errors="replace").strip() if Path(prof["log"]).exists() else ""
            print(f"\npy-spy recorded nothing in console round {r['round']} (exit {prof['returncode']}): {log[-300:]}")
            continue
        load = r.get("load") or {}
        us = load.get("server_cpu_us_per_command")
        print(f"\npy-spy --native, ours under {load.get('consoles_connected')} consoles, round {r['round']} "
              f"({load.get('commands_per_s')} cmd/s, {us} us CPU per command, with the profiler "
              f"attached): {prof['raw']}")
        print(render(top([prof["raw"]], 25)))
        print(render_groups(groups([prof["raw"]]), us))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="top functions in py-spy raw profiles")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--console", type=float, nargs="?", const=0.0, metavar="US_PER_CMD",
                   help="also group a console profile's samples by what they do per command "
                        "(with the server's CPU us per command: the us each group costs)")
    args = p.parse_args(argv)
    print(render(top(args.files, args.top)))
    if args.console is not None:
        print(render_groups(groups(args.files), args.console or None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
