"""The house's shape: stages that depend one way, small modules that say their job."""

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "dashboard"


def test_the_layers_contract_is_kept():
    # lint-imports reads .importlinter: the stages, top to bottom, and that
    # nothing below the web layer imports Flask. Type-checking imports count.
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 kept, 0 broken" in out.stdout


def test_no_module_passes_400_lines_and_each_says_its_job():
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        name = path.relative_to(REPO)
        assert source.count("\n") <= 400, f"{name} has {source.count(chr(10))} lines"
        doc = ast.get_docstring(ast.parse(source))
        assert doc and len(doc.split()) >= 4, f"{name} does not open with a comment saying its job"


def test_the_folders_are_the_stages():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == {"sampling", "stream", "alerts", "console", "control", "fleet", "store", "web"}
