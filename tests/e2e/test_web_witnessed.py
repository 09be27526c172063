"""The timeline page of a witnessed, timestamped ledger, in a real headless
Chromium: the badge and the list beside it name each witness that cosigned
and the attested time, after the page checked them (two real witness
processes, a real local RFC 3161 authority, a real server)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ORIGIN
from tests.e2e.browser import TIMEOUT_MS, launched_chromium
from tests.e2e.witnessed import append, ledger_key, wait_for, witnessed_size, witnesses_env
from tests.servers import ServerProcess
from tests.tsa import LocalTsa, make_authority
from tests.witnesses import RunningWitness, start_witness

pytestmark = pytest.mark.slow
LEDGER = "talks"


@pytest.fixture(scope="module")
def witnessed_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, list[RunningWitness], str]]:
    root = tmp_path_factory.mktemp("web-witnessed")
    data_dir = root / "ledger"
    key = ledger_key(data_dir)
    logs = {f"{ORIGIN}/{LEDGER}": [key]}
    witnesses = [
        start_witness(root / f"w{i}", logs=logs, name=f"witness.test/w{i}") for i in (1, 2)
    ]
    authority = make_authority(root / "tsa", "Page Test TSA")
    tsa = LocalTsa(authority)
    env = witnesses_env([(w.url, w.verifier_key) for w in witnesses], quorum=2)
    env.update(
        LEDGER_TSA_URL=tsa.url,
        LEDGER_TSA_CERTS=str(authority.chain),
        LEDGER_TSA_INTERVAL="0.2",
        LEDGER_AUTH="off",
    )
    server = ServerProcess(
        database_url=f"sqlite:///{root / 'ledger.db'}", data_dir=data_dir, env=env
    )
    try:
        httpx.post(f"{server.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
        head = append(server.url, LEDGER, 4)
        wait_for(lambda: witnessed_size(server.url, LEDGER) == head, what="a witnessed head")

        def timestamped() -> bool:
            answer = httpx.get(f"{server.url}/v1/ledgers/{LEDGER}/checkpoint/timestamp")
            return answer.status_code == 200 and answer.headers["Ledger-Tree-Size"] == str(head)

        wait_for(timestamped, what="a timestamp of the head")
        yield server, witnesses, tsa.url
    finally:
        server.stop()
        tsa.stop()
        for witness in witnesses:
            witness.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as launched:
        yield launched


def test_the_page_names_the_witnesses_and_the_attested_time_it_checked(
    witnessed_server: tuple[ServerProcess, list[RunningWitness], str], browser: Any
) -> None:
    server, witnesses, authority = witnessed_server
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{server.url}/ledgers/{LEDGER}")
        page.locator("#verify-badge[data-state=ok]").wait_for(timeout=TIMEOUT_MS)
        badge = page.locator("#verify-badge").inner_text()
        items = page.locator("#attestations li").all_inner_texts()
    finally:
        context.close()
    assert not errors, errors
    assert "cosigned by 2 of 2 witnesses (quorum 2)" in badge
    assert f"RFC 3161 timestamp by {authority} attests that the first 4 records" in badge
    assert "not in your browser" in badge  # the token's signature: said, not claimed
    labels = ["+".join(w.verifier_key.split("+", 2)[:2]) for w in witnesses]
    assert [item.split(" cosigned")[0] for item in items[:2]] == [f"Witness {x}" for x in labels]
    assert re.fullmatch(
        rf"Timestamped by {re.escape(authority)}: the first 4 records existed by \S+", items[2]
    )


def test_a_page_without_witnesses_or_timestamps_lists_nothing_beside_the_badge(
    tmp_path_factory: pytest.TempPathFactory, browser: Any
) -> None:
    root = tmp_path_factory.mktemp("web-plain")
    server = ServerProcess(
        database_url=f"sqlite:///{root / 'ledger.db'}", data_dir=root, env={"LEDGER_AUTH": "off"}
    )
    context = browser.new_context()
    try:
        httpx.post(f"{server.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
        append(server.url, LEDGER, 2)
        page = context.new_page()
        page.goto(f"{server.url}/ledgers/{LEDGER}")
        page.locator("#verify-badge[data-state=ok]").wait_for(timeout=TIMEOUT_MS)
        badge = page.locator("#verify-badge").inner_text()
        hidden = page.locator("#attestations").get_attribute("hidden")
    finally:
        context.close()
        server.stop()
    assert "witness" not in badge and "timestamp" not in badge
    assert hidden is not None
