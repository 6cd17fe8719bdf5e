"""The house's shape: stages that depend one way, small modules that say their job."""

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "dashboard"
# The benchmark is held to the app's standards too.
CAPPED = (PACKAGE, REPO / "bench")
MAX_LINES = 400


def test_the_layers_contract_is_kept():
    # lint-imports reads .importlinter: the stages, top to bottom, and that
    # nothing below the web layer imports Flask. Type-checking imports count.
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 kept, 0 broken" in out.stdout


def module_problems(folder: Path) -> list[str]:
    """Modules under folder longer than MAX_LINES or not opening with a docstring of a few words."""
    problems = []
    for path in sorted(folder.rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        source = path.read_text()
        name = path.relative_to(folder.parent)
        lines = source.count("\n")
        if lines > MAX_LINES:
            problems.append(f"{name} has {lines} lines")
        doc = ast.get_docstring(ast.parse(source))
        if not (doc and len(doc.split()) >= 4):
            problems.append(f"{name} does not open with a comment saying its job")
    return problems


def test_no_module_passes_400_lines_and_each_says_its_job():
    for folder in CAPPED:
        assert not module_problems(folder), module_problems(folder)


def test_the_cap_and_the_docstring_rule_catch_an_offending_bench_module(tmp_path):
    # The rule above must be able to fail: a copy of bench/ with one module made
    # too long and one without a docstring is refused, by name.
    bench = tmp_path / "bench"
    bench.mkdir()
    for path in (REPO / "bench").glob("*.py"):
        (bench / path.name).write_text(path.read_text())
    assert module_problems(bench) == []
    (bench / "report.py").write_text((bench / "report.py").read_text() + "\n" * MAX_LINES)
    (bench / "unsaid.py").write_text("X = 1\n")
    problems = module_problems(bench)
    assert len(problems) == 2, problems
    assert problems[0].startswith("bench/report.py has ") and problems[0].endswith(" lines")
    assert problems[1] == "bench/unsaid.py does not open with a comment saying its job"


def test_the_folders_are_the_stages():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == {"sampling", "stream", "alerts", "console", "control", "fleet", "store", "web"}
