"""The README's promise tables name their tests, and those tests exist.

Every table in README.md whose last column is `test` (error codes, close
codes, endpoints, faults and abuse, settings) must name, on each row, at least one test
as `test_file::test_name` (or `same`, for the row above's), and each named
test must be a function in that file under tests/."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
README = TESTS.parent / "README.md"
REF = re.compile(r"`(test_\w+)(?:::(test_\w+))?`")
EXPECTED = {"error code", "close code", "endpoint", "case", "name"}


def _tables() -> dict[str, list[tuple[int, list[str]]]]:
    """Each table whose header ends in `test`, by its first header: (line number, cells) per row."""
    tables, current = {}, None
    lines = README.read_text().splitlines()
    for number, line in enumerate(lines, 1):
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
            current.append((number, cells))
    return tables


def _functions(module: str) -> set[str]:
    path = TESTS / f"{module}.py"
    if not path.exists():
        return set()
    return {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)}


def test_each_promise_table_names_an_existing_test_on_every_row():
    tables = _tables()
    assert EXPECTED <= set(tables), f"tables with a test column: {sorted(tables)}"
    problems = []
    for title, rows in tables.items():
        previous: list = []
        for number, cells in rows:
            cell = cells[-1]
            refs = previous if cell.startswith("same") else REF.findall(cell)
            if not refs:
                problems.append(f"README.md:{number} ({title} table) names no test: {cell!r}")
            for module, name in refs:
                if not name:
                    problems.append(f"README.md:{number}: `{module}` names a file, not a test")
                elif name not in _functions(module):
                    problems.append(f"README.md:{number}: no test {module}::{name}")
            previous = refs
    assert not problems, "\n".join(problems)
