"""Write the generated pages into docs/, or with --check list those that differ (exit 1).

    python -m docsgen            # settings.md from dashboard/settings.py, performance.md's tables from bench/results/,
                                 # development.md's layers from .importlinter and the docstrings
    python -m docsgen --check    # what the test suite runs
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import layers_page, performance_page, settings_page
from .blocks import fill

DOCS = Path(__file__).resolve().parents[1] / "docs"


def pages() -> dict[Path, str]:
    """Each generated page's path and what it should hold now."""
    perf, dev = DOCS / performance_page.PAGE, DOCS / "development.md"
    return {
        DOCS / settings_page.PAGE: settings_page.render(),
        perf: performance_page.render(perf.read_text()),
        dev: fill(dev.name, dev.read_text(), {"layers": layers_page.table}),
    }


def stale() -> list[str]:
    return [path.name for path, text in pages().items() if not path.exists() or path.read_text() != text]


def main(argv: list[str]) -> int:
    if argv[1:] == ["--check"]:
        names = stale()
        for name in names:
            print(f"docs/{name} is out of date: run python -m docsgen", file=sys.stderr)
        return 1 if names else 0
    for path, text in pages().items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
