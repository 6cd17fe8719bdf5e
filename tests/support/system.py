"""Programs, packages and modules from outside the repository that some tests need."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest


def _missing(what: str, install: str) -> None:
    """As root a missing prerequisite is a failure (bin/test installs it), as anyone else a loud skip."""
    if os.geteuid() == 0:
        pytest.fail(f"{what} is missing; bin/test installs it ({install})")
    pytest.skip(f"SKIPPED LOUDLY: {what} is not installed and this is not root; run bin/test as root "
                f"(or {install}) to run the tests that need it")


def require(program: str, package: str, *, also: tuple[str, ...] = ()) -> str:
    """The program's path, from the distribution's package."""
    for path in (shutil.which(program), *also):
        if path and os.path.exists(path):
            return path
    _missing(program, f"apt-get install {package}")
    raise AssertionError("unreachable")


def require_path(path: Path, what: str, install: str) -> Path:
    """A file or folder that an installer puts in place (npm packages, for one)."""
    if not path.exists():
        _missing(what, install)
    return path


def require_module(module: str, install: str) -> None:
    """A Python module outside the test requirements (the benchmark's, for one)."""
    if importlib.util.find_spec(module) is None:
        _missing(f"the Python module {module}", install)
