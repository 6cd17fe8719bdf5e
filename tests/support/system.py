"""Programs from the distribution that some tests need."""

from __future__ import annotations

import os
import shutil

import pytest


def require(program: str, package: str, *, also: tuple[str, ...] = ()) -> str:
    """The program's path; as root a missing one is a failure (bin/test installs
    it), as anyone else a loud skip."""
    for path in (shutil.which(program), *also):
        if path and os.path.exists(path):
            return path
    if os.geteuid() == 0:
        pytest.fail(f"{program} is missing; bin/test installs it (apt-get install {package})")
    pytest.skip(f"SKIPPED LOUDLY: {program} is not installed and this is not root; run bin/test as root "
                f"(or apt-get install {package}) to run the tests that need it")
