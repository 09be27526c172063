"""The timeline page's badge follows a key rotation, in a real headless Chromium.

The page trusts the first key the server published (the one a reader had
before any rotation) and a later key only through that key's endorsement in
a ``key.rotated`` record it proves is in the signed log. After ``ledger keys
rotate`` and ``ledger keys retire OLD`` the checkpoint is signed by the new key
alone, and the badge must still turn green, naming both keys.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from ledger.core.signing import Signer
from tests.conftest import position
from tests.e2e.browser import ARTIFACTS, badge, launched_chromium, watched_page
from tests.e2e.test_cli import run_ledger
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow


LEDGER = "talks"


def _append(server: ServerProcess, stances: list[str]) -> None:
    events = [
        position(party="US", topic="minerals", stance=stance, occurred_at=f"2025-03-0{n + 1}")
        for n, stance in enumerate(stances)
    ]
    httpx.post(f"{server.url}/v1/ledgers/{LEDGER}/events", json=events).raise_for_status()


@pytest.fixture
def rotated(tmp_path: Path) -> Iterator[tuple[ServerProcess, str, str, int, str]]:
    """A public ledger whose key was rotated and the old key retired, then appended to."""
    database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    server = ServerProcess(database_url=database_url, data_dir=tmp_path)
    try:
        httpx.post(f"{server.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
        _append(server, ["oppose", "demand"])
        (published,) = httpx.get(f"{server.url}/v1/keys").json()["items"]
        done = run_ledger("keys", "rotate", database_url=database_url, data_dir=tmp_path)
        assert done.returncode == 0, done.stderr
        seq = int(done.stdout.split(f"{LEDGER}: key.rotated at seq ")[1].split()[0])
        new_key = done.stdout.split("new key: ")[1].split()[0]
        old_id = str(published["verifier_key"]).split("+")[1]
        retired = run_ledger("keys", "retire", old_id, database_url=database_url, data_dir=tmp_path)
        assert retired.returncode == 0, retired.stderr
        _append(server, ["offer", "support"])
        yield server, str(published["verifier_key"]), new_key, seq, database_url
    finally:
        server.stop()


@pytest.fixture
def page() -> Iterator[Any]:
    with launched_chromium() as browser, watched_page(browser) as opened:
        yield opened


def _label(verifier_key: str) -> str:
    return "+".join(verifier_key.split("+")[:2])


def test_the_badge_follows_a_rotation_from_the_first_published_key(
    rotated: tuple[ServerProcess, str, str, int, str], page: Any
) -> None:
    server, old_key, new_key, seq, _ = rotated
    note = httpx.get(f"{server.url}/v1/ledgers/{LEDGER}/checkpoint").text
    assert f"\u2014 {_label(new_key).split('+')[0]} " in note and note.count("\u2014 ") == 1
    page.goto(f"{server.url}/ledgers/{LEDGER}")
    text = badge(page, "ok")
    page.screenshot(path=str(ARTIFACTS / "rotated.png"), full_page=True)
    assert f"checkpoint signed by key {_label(new_key)}" in text, text
    assert f"which key {_label(old_key)} endorsed in record #{seq}" in text, text


def test_a_published_key_no_rotation_endorses_turns_the_badge_red(
    rotated: tuple[ServerProcess, str, str, int, str], page: Any
) -> None:
    """The server swaps the endorsement for one by a key of its own: the page refuses it."""
    server, old_key, _, seq, database_url = rotated
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TRIGGER records_no_update"))
            row = conn.execute(
                sa.text("SELECT canonical FROM records WHERE seq = :seq"), {"seq": seq}
            ).one()
            record = json.loads(bytes(row.canonical))
            forged = Signer.generate("impostor").sign(record["data"]["new_key"].encode())
            edited = bytes(row.canonical).replace(
                record["data"]["endorsement"].encode(), base64.b64encode(forged)
            )
            conn.execute(
                sa.text("UPDATE records SET canonical = :c WHERE seq = :seq"),
                {"c": edited, "seq": seq},
            )
    finally:
        engine.dispose()
    page.goto(f"{server.url}/ledgers/{LEDGER}")
    text = badge(page, "fail")
    assert f"record #{seq}" in text and "endorse" in text, text
    assert _label(old_key) in text, text
