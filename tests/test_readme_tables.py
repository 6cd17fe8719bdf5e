"""The promise tables name their tests, and those tests exist.

Every table in README.md and in the pages under docs/ whose last column is
`test` (error codes, close codes, endpoints, faults and abuse, settings) must
name, on each row, at least one test as `test_file::test_name` (or `same`, for
the row above's), and each named test must be a function in that file under
tests/. Both places are read: the tables live in docs/, and a table added to
the README before its page is written is checked too."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
DOCS = REPO / "docs"
REF = re.compile(r"`(test_\w+)(?:::(test_\w+))?`")
EXPECTED = {"error code", "close code", "endpoint", "case", "name"}


def _sources() -> list[Path]:
    """README.md and every Markdown page of the site."""
    return [REPO / "README.md"] + sorted(DOCS.rglob("*.md"))


def _tables(sources: list[Path] | None = None) -> dict[str, list[tuple[str, list[str]]]]:
    """Each table whose header ends in `test`, by its first header: (file:line, cells) per row.

    A table found in several files (README.md and its page in docs/) has the
    rows of all of them."""
    tables: dict[str, list] = {}
    for source in sources or _sources():
        _read(source, tables)
    return tables


def _read(source: Path, tables: dict) -> None:
    current = None
    where = source.relative_to(REPO)
    for number, line in enumerate(source.read_text().splitlines(), 1):
        if not line.startswith("|"):
            current = None
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if current is None:
            if cells and cells[-1] == "test":
                current = tables.setdefault(cells[0], [])
            else:
                current = False
            continue
        if current is not False and not set(line) <= set("|-: "):
            current.append((f"{where}:{number}", cells))


def _functions(module: str) -> set[str]:
    path = TESTS / f"{module}.py"
    if not path.exists():
        return set()
    return {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)}


def test_each_promise_table_names_an_existing_test_on_every_row():
    tables = _tables()
    assert EXPECTED <= set(tables), f"tables with a test column: {sorted(tables)}"
    assert not _problems(tables), "\n".join(_problems(tables))


def test_the_tables_are_found_in_docs_alone():
    # The README is the short front page: the tables live in docs/, and every
    # one must be found there, with rows.
    tables = _tables(_sources()[1:])
    assert EXPECTED <= set(tables), f"tables with a test column in docs/: {sorted(tables)}"
    assert all(tables[title] for title in EXPECTED)


def test_a_row_naming_a_missing_test_is_caught(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("| error code | when | test |\n|---|---|---|\n"
                    "| `x` | never | `test_api::test_no_such_test_anywhere` |\n| `y` | also | nothing named |\n")
    global REPO
    saved, REPO = REPO, tmp_path
    try:
        problems = _problems(_tables([page]))
    finally:
        REPO = saved
    assert problems == ["page.md:3: no test test_api::test_no_such_test_anywhere",
                        "page.md:4 (error code table) names no test: 'nothing named'"]


def _problems(tables: dict) -> list[str]:
    problems = []
    for title, rows in tables.items():
        previous: list = []
        for where, cells in rows:
            cell = cells[-1]
            refs = previous if cell.startswith("same") else REF.findall(cell)
            if not refs:
                problems.append(f"{where} ({title} table) names no test: {cell!r}")
            for module, name in refs:
                if not name:
                    problems.append(f"{where}: `{module}` names a file, not a test")
                elif name not in _functions(module):
                    problems.append(f"{where}: no test {module}::{name}")
            previous = refs
    return problems
