"""Debian's Chromium for the browser tests, driven by Playwright.

The setup installs what it needs: Debian's ``chromium`` (apt-get, when
missing) and the ``playwright`` Python package (the ``dev`` extra), driven
with ``executable_path`` so no browser is downloaded. Screenshots go under
``test-artifacts/web/``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
TIMEOUT_MS = 20_000


def ensure_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("Debian's chromium is missing and cannot be installed (needs root and apt-get)")
    # Test workers (pytest -n) install at most once between them: a second
    # apt-get would fail on dpkg's lock while the first one runs.
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS.parent / "chromium-install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if CHROMIUM.exists():
            return
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "chromium"],
        ):
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
            if result.returncode != 0:
                pytest.skip(f"cannot install chromium: {' '.join(command)}: {result.stderr[-500:]}")
    if not CHROMIUM.exists():
        pytest.skip("apt-get installed chromium but /usr/bin/chromium is missing")


@contextmanager
def launched_chromium() -> Iterator[Any]:
    """A headless Chromium, installed first if need be, closed on exit."""
    ensure_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as driver:
        # Root (as in CI) cannot use Chromium's sandbox.
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


BADGE = "#verify-badge"


@contextmanager
def watched_page(browser: Any, **context: Any) -> Iterator[Any]:
    """A page of ``browser`` in a context of its own (``context``: its options,
    a viewport say); on exit, any script error the page raised fails the test."""
    opened_context = browser.new_context(**context)
    opened = opened_context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        opened_context.close()
    assert not errors, errors


def badge(page: Any, state: str) -> str:
    """The verification badge's text, once it shows ``state`` (ok, fail or pending)."""
    page.locator(f"{BADGE}[data-state={state}]").wait_for(timeout=TIMEOUT_MS)
    text: str = page.locator(BADGE).inner_text()
    return text
