"""Chromium from the distribution, driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def require_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    if os.geteuid() == 0:
        pytest.fail(f"{CHROMIUM} is missing; bin/test installs it (apt-get install chromium)")
    pytest.skip(
        f"SKIPPED LOUDLY: {CHROMIUM} is not installed and this is not root; "
        "run bin/test as root (or apt-get install chromium) to run the browser tests"
    )


def launch(playwright, home: str):
    require_chromium()
    os.makedirs(home, exist_ok=True)
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=ARGS,
        env={**os.environ, "HOME": home},
    )


def cleanup(home: str) -> None:
    shutil.rmtree(home, ignore_errors=True)
