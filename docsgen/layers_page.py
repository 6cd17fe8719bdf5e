"""The development page's table of layers, made from .importlinter and each module's docstring.

The layers are the order .importlinter states (tests/test_layers.py holds the
code to it); each module's job is the first sentence of its own docstring, the
one place it is written. A module added, moved or re-described changes the
table the next time `python -m docsgen` runs."""

from __future__ import annotations

import ast
import configparser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def layers() -> list[list[str]]:
    """The layers contract's modules, top layer first, siblings of a layer together."""
    config = configparser.ConfigParser()
    config.read(REPO / ".importlinter")
    lines = config["importlinter:contract:layers"]["layers"].strip().splitlines()
    return [[name.strip() for name in line.split("|")] for line in lines if line.strip()]


def _job(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    end = first.find(". ")
    return (first if end < 0 else first[:end + 1]).replace("|", "\\|")


def _files(module: str) -> list[Path]:
    base = REPO.joinpath(*module.split("."))
    if base.is_dir():
        return sorted(base.rglob("*.py"), key=lambda p: (p.name != "__init__.py", str(p)))
    return [base.with_suffix(".py")]


def table() -> str:
    rows = ["| layer (top to bottom) | module | its job, from its docstring |", "|---|---|---|",
            f"| the package | `__init__.py` | {_job(REPO / 'dashboard' / '__init__.py')} `create_app` wires the layers. |"]
    for layer in layers():
        label = ", ".join(f"`{m.split('.', 1)[1]}`" for m in layer)
        for module in layer:
            for path in _files(module):
                rows.append(f"| {label} | `{path.relative_to(REPO / 'dashboard')}` | {_job(path)} |")
                label = ""
    return "\n".join(rows) + "\n"
