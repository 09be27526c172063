"""The timeline page marks each position its desk signed, having checked the
signature in a real headless Chromium against the key the log registered,
and turns red when the server points it at a record that registers no key."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.core.authors import sign_event
from ledger.core.signing import VerifierKey
from tests.conftest import position
from tests.e2e.browser import ARTIFACTS, badge, launched_chromium, watched_page
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

LEDGER = "talks"
DESK = Ed25519PrivateKey.generate()


def signed(**extra: Any) -> dict[str, Any]:
    event = position(party="UA", occurred_at="2025-02-20T00:00:00Z", id=str(uuid.uuid4()), **extra)
    return {**event, "author": sign_event(DESK, "ua-desk", LEDGER, event)}


@pytest.fixture
def desk_ledger(tmp_path: Path) -> Iterator[tuple[ServerProcess, Path]]:
    """A public ledger: a desk registered (seq 1), an unsigned position (2), a signed one (3)."""
    database = tmp_path / "ledger.db"
    server = ServerProcess(database_url=f"sqlite:///{database}", data_dir=tmp_path)
    try:
        url = f"{server.url}/v1/ledgers/{LEDGER}"
        httpx.post(f"{server.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
        key = VerifierKey.from_public_key("ua-desk", DESK.public_key()).to_string()
        httpx.post(
            f"{url}/authors", json={"name": "ua-desk", "verifier_key": key}
        ).raise_for_status()
        httpx.post(f"{url}/events", json=position(party="US")).raise_for_status()
        httpx.post(f"{url}/events", json=signed()).raise_for_status()
        yield server, database
    finally:
        server.stop()


@pytest.fixture
def page() -> Iterator[Any]:
    with launched_chromium() as browser, watched_page(browser) as opened:
        yield opened


def test_the_page_marks_the_position_its_desk_signed(
    desk_ledger: tuple[ServerProcess, Path], page: Any
) -> None:
    server, _ = desk_ledger
    page.goto(f"{server.url}/ledgers/{LEDGER}")
    text = badge(page, "ok")
    page.screenshot(path=str(ARTIFACTS / "signed-by-desk.png"), full_page=True)
    assert "1 shown record is signed by their desk (ua-desk: 1)" in text, text
    # A small ledger is read whole to recompute the grid: every signature in it is checked.
    assert "Every desk signature among them (1) was checked" in text, text
    marked = page.locator(".signed-by")
    assert marked.count() >= 1
    assert "signed by ua-desk" in marked.first.inner_text()
    assert page.locator('a.mark[data-seq="3"]').first.get_attribute("data-signed-by") == "ua-desk"
    assert page.locator('a.mark[data-seq="2"][data-signed-by]').count() == 0

    page.goto(f"{server.url}/ledgers/{LEDGER}/records/3")
    assert "ua-desk" in page.locator("table.fields").inner_text()
    assert "signed by their desk" in badge(page, "ok")


def test_a_registration_the_server_misplaces_turns_the_badge_red(
    desk_ledger: tuple[ServerProcess, Path], page: Any
) -> None:
    server, database = desk_ledger
    # The server's list of desks only says where to look: point it at the
    # unsigned position, which registers nothing.
    with sqlite3.connect(database) as db:
        db.execute("DROP TRIGGER author_keys_no_update")
        db.execute("UPDATE author_keys SET seq = 2 WHERE seq = 1")
    page.goto(f"{server.url}/ledgers/{LEDGER}")
    text = badge(page, "fail")
    assert (
        "record #2, where the server says desk ua-desk was registered, does not register it" in text
    )
