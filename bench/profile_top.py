"""Where the time goes, from py-spy's raw (collapsed) stacks.

`python -m bench --profile` records our worker with `py-spy record --format
raw` during each measured window. This reads such files and prints the
functions with the most samples, by self time (the frame on top of the stack)
and by inclusive time (anywhere on the stack), as shares of all samples:

    python -m bench.profile_top bench/results/profiles/profile-ours-5000-r1.txt [--top 15]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


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


def render(result: dict) -> str:
    lines = [f"{result['samples']} samples"]
    for key, title in (("self", "self time (on top of the stack)"),
                       ("inclusive", "inclusive time (anywhere on the stack)")):
        lines.append(f"  {title}:")
        for func, pct in result[key]:
            lines.append(f"    {pct:5.1f}%  {func}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="top functions in py-spy raw profiles")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args(argv)
    print(render(top(args.files, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
