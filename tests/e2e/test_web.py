"""The timeline page in a real headless Chromium against a real server
(``tests.e2e.browser`` installs and starts it; screenshots go under
``test-artifacts/web/``)."""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.demo import TITLE
from tests.conftest import position
from tests.e2e.browser import (
    ARTIFACTS,
    BADGE,
    CHROMIUM,
    TIMEOUT_MS,
    badge,
    ensure_chromium,
    launched_chromium,
    watched_page,
)
from tests.e2e.test_cli import run_ledger
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

LEDGER = "us-ua-minerals-2025"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    """The demo ledger on a server in the default mode (authentication on)."""
    data_dir = tmp_path_factory.mktemp("web")
    database_url = f"sqlite:///{data_dir / 'ledger.db'}"
    loaded = run_ledger("demo", "--no-serve", database_url=database_url, data_dir=data_dir)
    assert loaded.returncode == 0, loaded.stderr
    match = re.search(r"admin token \(shown once\): (lgr_\S+)", loaded.stdout + loaded.stderr)
    assert match, loaded.stdout
    process = ServerProcess(
        database_url=database_url, data_dir=data_dir, env={"LEDGER_AUTH": "tokens"}
    )
    try:
        yield process, match.group(1)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    with watched_page(browser, viewport={"width": 1280, "height": 900}) as opened:
        yield opened


def _url(server: tuple[ServerProcess, str], path: str = f"/ledgers/{LEDGER}") -> str:
    return server[0].url + path


def _cell(page: Any, party: str, topic: str) -> Any:
    return page.locator(f'#grid td[data-party="{party}"][data-topic="{topic}"]')


def _set_as_of(page: Any, day: str) -> None:
    page.fill("#as_of", day)
    page.click("#when button[type=submit]")


def test_the_demo_ledger_loads(server: tuple[ServerProcess, str], page: Any) -> None:
    page.goto(_url(server))
    assert page.locator("h1").inner_text() == TITLE
    assert page.title().startswith(TITLE)
    assert page.locator("#grid tbody tr").count() >= 6
    assert page.locator("#timelines figure.timeline").count() >= 6
    assert page.locator("#live li").count() == 10
    badge(page, "ok")
    page.screenshot(path=str(ARTIFACTS / "timeline.png"), full_page=True)


def test_us_security_guarantees_as_of_24_february_is_opposition(
    server: tuple[ServerProcess, str], page: Any
) -> None:
    page.goto(_url(server))
    _set_as_of(page, "2025-02-24")
    cell = _cell(page, "US", "security-guarantees")
    page.locator('#grid-state:has-text("As of 2025-02-24")').wait_for(timeout=TIMEOUT_MS)
    assert cell.get_attribute("data-stance") == "oppose"
    assert "oppose" in cell.locator(".stance").inner_text()


def test_changing_the_date_changes_a_cell_without_a_reload(
    server: tuple[ServerProcess, str], page: Any
) -> None:
    documents: list[str] = []
    snapshots: list[str] = []
    page.on(
        "request",
        lambda r: (documents if r.resource_type == "document" else snapshots).append(r.url),
    )
    page.goto(_url(server))
    badge(page, "ok")
    loaded = len(documents)
    cell = _cell(page, "UA", "signing")
    _set_as_of(page, "2025-02-20")
    page.locator('#grid td[data-party="UA"][data-topic="signing"][data-stance="reject"]').wait_for(
        timeout=TIMEOUT_MS
    )
    assert "reject" in cell.inner_text()
    page.fill("#as_of", "2025-02-24")
    page.dispatch_event("#as_of", "change")
    page.locator('#grid td[data-party="UA"][data-topic="signing"][data-stance="support"]').wait_for(
        timeout=TIMEOUT_MS
    )
    assert len(documents) == loaded, "the page was reloaded"
    assert any("/snapshot?as_of=2025-02-20" in url for url in snapshots)
    assert page.url.endswith("?as_of=2025-02-24")
    badge(page, "ok")
    page.screenshot(path=str(ARTIFACTS / "as-of-2025-02-24.png"), full_page=True)


def test_the_badge_turns_green_naming_the_key(server: tuple[ServerProcess, str], page: Any) -> None:
    (key,) = httpx.get(_url(server, "/v1/keys")).json()["items"]
    page.goto(_url(server))
    text = badge(page, "ok")
    assert "verified" in text.lower()
    assert key["verifier_key"].split("+")[1] in text
    assert page.locator(BADGE).evaluate("e => getComputedStyle(e).borderColor") == (
        "rgb(26, 127, 55)"
    )
    page.screenshot(path=str(ARTIFACTS / "badge-verified.png"))


def _tamper_proof(route: Any) -> None:
    response = route.fetch()
    proof = response.json()
    first = bytearray(base64.b64decode(proof["proof"][0]))
    first[0] ^= 0x01
    proof["proof"][0] = base64.b64encode(bytes(first)).decode()
    route.fulfill(response=response, body=json.dumps(proof))


def test_a_tampered_proof_turns_the_badge_red(server: tuple[ServerProcess, str], page: Any) -> None:
    page.route("**/proofs/inclusion?*", _tamper_proof)
    page.goto(_url(server))
    text = badge(page, "fail")
    assert "Verification failed" in text
    assert re.search(r"inclusion proof of record #\d+ does not lead to the signed", text), text
    page.screenshot(path=str(ARTIFACTS / "badge-tampered-proof.png"))


def test_a_tampered_checkpoint_turns_the_badge_red(
    server: tuple[ServerProcess, str], page: Any
) -> None:
    def tamper(route: Any) -> None:
        response = route.fetch()
        lines = response.text().split("\n")
        # One byte of the signed root: the signature no longer matches the body.
        lines[2] = ("B" if lines[2][0] != "B" else "C") + lines[2][1:]
        route.fulfill(response=response, body="\n".join(lines))

    page.route("**/checkpoint", tamper)
    page.goto(_url(server))
    text = badge(page, "fail")
    assert re.search(r"checkpoint signature by key \S+ is invalid", text), text


def test_the_page_is_readable_without_javascript(
    server: tuple[ServerProcess, str], browser: Any
) -> None:
    html = httpx.get(_url(server), params={"as_of": "2025-02-24"}).text
    cell = re.search(
        r'<td class="[^"]*" data-party="US" data-topic="security-guarantees"[^>]*>(.*?)</td>',
        html,
        re.S,
    )
    assert cell and "st-oppose" in cell.group(1) and "oppose" in cell.group(1)
    context = browser.new_context(java_script_enabled=False)
    try:
        plain = context.new_page()
        plain.goto(_url(server, f"/ledgers/{LEDGER}?as_of=2025-02-24"))
        assert "oppose" in _cell(plain, "US", "security-guarantees").inner_text()
        plain.screenshot(path=str(ARTIFACTS / "no-javascript.png"), full_page=True)
    finally:
        context.close()


def test_360px_wide_without_horizontal_overflow(
    server: tuple[ServerProcess, str], browser: Any
) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 780}, is_mobile=True)
    try:
        narrow = context.new_page()
        for path in (f"/ledgers/{LEDGER}", f"/ledgers/{LEDGER}/records/17", "/"):
            narrow.goto(_url(server, path))
            if path != "/":
                badge(narrow, "ok")
            widths = narrow.evaluate(
                "[document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]"
            )
            assert max(widths[:2]) <= widths[2] == 360, (path, widths)
        narrow.goto(_url(server))
        badge(narrow, "ok")
        # The grid scrolls inside its own labelled region instead.
        region = narrow.locator(".table-scroll[role=region]")
        assert region.get_attribute("aria-labelledby") == "grid-title"
        narrow.screenshot(path=str(ARTIFACTS / "narrow-360px.png"), full_page=True)
    finally:
        context.close()


def test_keyboard_reaches_the_dates_and_a_cell(
    server: tuple[ServerProcess, str], page: Any
) -> None:
    page.goto(_url(server))
    badge(page, "ok")
    reached: list[str] = []
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "(() => { const e = document.activeElement;"
            " return e.id || (e.closest('#grid') && e.classList.contains('record-link')"
            " ? 'cell:' + e.dataset.seq : e.tagName); })()"
        )
        if not reached or reached[-1] != focused:
            reached.append(focused)
        if focused.startswith("cell:"):
            break
    assert "as_of" in reached and "known_at" in reached
    assert reached[-1].startswith("cell:"), reached
    labels = page.evaluate("[...document.querySelectorAll('label')].map(l => l.htmlFor)")
    assert {"as_of", "known_at"} <= set(labels)
    seq = reached[-1].removeprefix("cell:")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/records/{seq}", timeout=TIMEOUT_MS)
    badge(page, "ok")
    page.screenshot(path=str(ARTIFACTS / "record.png"), full_page=True)


def _head(server: tuple[ServerProcess, str]) -> int:
    size: int = httpx.get(_url(server, f"/v1/ledgers/{LEDGER}/head")).json()["size"]
    return size


def _state(page: Any, text: str) -> None:
    page.locator(f'#grid-state:has-text("{text}")').wait_for(timeout=TIMEOUT_MS)


def test_the_record_slider_shows_what_the_ledger_knew_at_a_record(
    server: tuple[ServerProcess, str], page: Any
) -> None:
    head = _head(server)
    page.goto(_url(server))
    badge(page, "ok")
    assert page.locator("#known_seq").get_attribute("max") == str(head)
    # Record 9: Trump's claim that Kyiv had "essentially agreed" is all the
    # ledger knew of Ukraine; its refusal to sign came in later reports.
    page.locator("#known_seq").fill("9")
    _state(page, f"at record 9 of {head}")
    assert page.locator("#known_seq-value").inner_text() == "9"
    assert _cell(page, "UA", "signing").get_attribute("data-stance") == ""
    assert "Claim by US" in _cell(page, "UA", "revenue-share").inner_text()
    assert page.url.endswith("?known_at=9")
    badge(page, "ok")
    page.screenshot(path=str(ARTIFACTS / "known-at-record-9.png"), full_page=True)
    page.locator("#known_seq").fill("11")
    page.locator('#grid td[data-party="UA"][data-topic="signing"][data-stance="reject"]').wait_for(
        timeout=TIMEOUT_MS
    )
    badge(page, "ok")


def test_a_day_before_anything_was_recorded_is_explained(
    server: tuple[ServerProcess, str], page: Any
) -> None:
    page.goto(_url(server))
    badge(page, "ok")
    page.fill("#known_at", "2025-02-24")
    page.dispatch_event("#known_at", "change")
    note = page.locator("#grid-empty")
    note.wait_for(timeout=TIMEOUT_MS)
    assert "Nothing had been recorded by the end of 2025-02-24" in note.inner_text()
    assert "transaction time" in note.inner_text()
    assert page.locator("#known_seq").input_value() == "0"
    page.screenshot(path=str(ARTIFACTS / "known-at-empty.png"), full_page=True)


def test_a_corrected_cell_is_marked_until_before_the_correction(
    server: tuple[ServerProcess, str], page: Any
) -> None:
    page.goto(_url(server))
    badge(page, "ok")
    cell = _cell(page, "US", "revenue-share")
    assert cell.get_attribute("data-corrected") == "yes"
    note = cell.locator(".fix-note")
    assert "Corrected by record #23" in note.inner_text()
    assert note.locator("a").get_attribute("href") == f"/ledgers/{LEDGER}/records/23"
    assert "New York Times" in cell.inner_text()
    page.locator("#known_seq").fill("22")
    _state(page, "at record 22 of")
    assert cell.locator(".fix-note").count() == 0
    assert cell.get_attribute("data-corrected") == ""
    assert "CNN" in cell.inner_text()
    badge(page, "ok")


def test_the_revenue_history_shows_the_terms_change(
    server: tuple[ServerProcess, str], page: Any
) -> None:
    page.goto(_url(server))
    badge(page, "ok")
    figure = page.locator('#timelines figure[data-topic="revenue-share"]')
    figure.locator("details summary").click()
    row = figure.locator("ol.events li", has_text="record #17")
    assert "share_percent: 50 → 100" in row.inner_text()
    mark = figure.locator('a.mark[data-seq="17"]')
    assert "share_percent: 50 → 100" in (mark.get_attribute("aria-label") or "")
    figure.screenshot(path=str(ARTIFACTS / "terms-change.png"))


def test_headless_capture_finishes_with_the_live_stream_open(
    server: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    """Archiving tools run the page in headless Chromium and dump the DOM once
    a virtual time budget is spent; a stream that holds that clock would make
    them wait forever. The real binary, as those tools run it."""
    ensure_chromium()
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--dump-dom",
        "--virtual-time-budget=15000",
        _url(server),
    ]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=90)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    # Verified in the capture, and the stream had opened before it ended.
    assert re.search(r'id="verify-badge"[^>]*data-state="ok"', dom), dom[:2000]
    assert "Live: new records appear here" in dom
    assert f"<h1>{TITLE}</h1>" in dom
    assert elapsed < 60


def _append(server: tuple[ServerProcess, str], event: dict[str, Any]) -> int:
    response = httpx.post(
        _url(server, f"/v1/ledgers/{LEDGER}/events"),
        json=event,
        headers={"Authorization": f"Bearer {server[1]}"},
    )
    assert response.status_code == 201, response.text
    seq: int = response.json()["seq"]
    return seq


def test_the_stream_delivers_a_new_record(server: tuple[ServerProcess, str]) -> None:
    head = httpx.get(_url(server, f"/v1/ledgers/{LEDGER}/head")).json()["size"]
    appended: list[int] = []
    timer = threading.Timer(
        0.5, lambda: appended.append(_append(server, position(party="UA", stance="undecided")))
    )
    seen: list[str] = []
    with httpx.stream(
        "GET",
        _url(server, f"/v1/ledgers/{LEDGER}/events/stream"),
        params={"after_seq": head, "timeout": 10},
        timeout=15,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        timer.start()
        for line in response.iter_lines():
            if line.startswith("id: "):
                seen.append(line[4:])
            if line.startswith("data: "):
                record = json.loads(line[6:])
                break
    timer.join()
    assert seen == [str(head + 1)] == [str(s) for s in appended]
    assert record["seq"] == head + 1 and record["data"]["stance"] == "undecided"


def test_new_records_appear_live(server: tuple[ServerProcess, str], page: Any) -> None:
    page.goto(_url(server))
    badge(page, "ok")
    seq = _append(
        server,
        position(
            party="US",
            topic="signing",
            stance="offer",
            occurred_at="2025-02-27",
            data={"stance": "offer", "summary": "Live: the US offers a signing date."},
        ),
    )
    page.locator(f'#live li[data-seq="{seq}"]').wait_for(timeout=TIMEOUT_MS)
    page.locator('#grid td[data-party="US"][data-topic="signing"][data-stance="offer"]').wait_for(
        timeout=TIMEOUT_MS
    )
    assert page.locator("#head-count").inner_text() == str(seq)
    badge(page, "ok")
    page.screenshot(path=str(ARTIFACTS / "live-tail.png"), full_page=True)


def test_an_open_stream_does_not_hold_up_shutdown(tmp_path: Path) -> None:
    process = ServerProcess(database_url=f"sqlite:///{tmp_path / 'l.db'}", data_dir=tmp_path)
    try:
        httpx.post(process.url + "/v1/ledgers", json={"name": "talks"}).raise_for_status()
        with httpx.stream(
            "GET", process.url + "/v1/ledgers/talks/events/stream", timeout=30
        ) as response:
            assert response.status_code == 200
            started = time.monotonic()
            process.process.terminate()
            # The stream ends by itself: the server does not wait out a timeout.
            for _ in response.iter_lines():
                pass
            process.process.wait(timeout=8)
            assert time.monotonic() - started < 5
        # uvicorn re-raises the SIGTERM it caught once it has shut down cleanly.
        assert process.process.returncode in (0, -15)
        assert "graceful shutdown exceeded" not in process.log_path.read_text()
    finally:
        process.stop()


# -- the positions grid, recomputed in the browser ------------------------------

FORGED_SUMMARY = "Forged: the US drops its revenue demand"


def _demo_server(
    data_dir: Path, *, forge: bool, env: dict[str, str] | None = None
) -> ServerProcess:
    """The demo on its own server; ``forge``: a projection row edited in the database first."""
    database_url = f"sqlite:///{data_dir / 'ledger.db'}"
    loaded = run_ledger("demo", "--no-serve", database_url=database_url, data_dir=data_dir)
    assert loaded.returncode == 0, loaded.stderr
    if forge:
        # An attacker with database access, past the guard (migration 0010):
        # US revenue-share (the corrected seq 17) now reads as support.
        where = "WHERE target_seq = 17 AND known_from = 23"
        with sqlite3.connect(data_dir / "ledger.db") as conn:
            (stored,) = conn.execute(f"SELECT cell FROM position_versions {where}").fetchone()
            cell = {**json.loads(stored), "stance": "support", "summary": FORGED_SUMMARY}
            conn.execute("DROP TRIGGER position_versions_no_update")
            conn.execute(f"UPDATE position_versions SET cell = ? {where}", (json.dumps(cell),))
    return ServerProcess(database_url=database_url, data_dir=data_dir, env=env)


def test_the_badge_says_the_grid_was_recomputed(
    server: tuple[ServerProcess, str], page: Any
) -> None:
    page.goto(_url(server))
    text = badge(page, "ok")
    # The module's server: other tests append to it, so 23 or more records.
    assert re.search(
        r"grid was recomputed in your browser from the \d\d verified records and matches", text
    ), text
    assert "not recomputed" not in text


def test_a_forged_projection_row_turns_the_badge_red_naming_the_cell(
    tmp_path: Path, page: Any
) -> None:
    process = _demo_server(tmp_path, forge=True)
    try:
        # The server signs the forgery: the snapshot alone cannot tell.
        snapshot = httpx.get(process.url + f"/v1/ledgers/{LEDGER}/snapshot").json()
        assert snapshot["state"]["US"]["revenue-share"]["summary"] == FORGED_SUMMARY
        page.goto(process.url + f"/ledgers/{LEDGER}")
        text = badge(page, "fail")
        assert "Verification failed" in text
        assert "the positions grid differs from the verified records" in text, text
        assert 'party US, topic revenue-share, stance: the grid shows "support"' in text, text
        assert page.locator(BADGE).evaluate("e => getComputedStyle(e).borderColor") != (
            "rgb(26, 127, 55)"
        )
        page.screenshot(path=str(ARTIFACTS / "badge-forged-grid.png"))
    finally:
        process.stop()


def test_above_the_limit_the_badge_says_the_grid_is_signed_not_recomputed(
    tmp_path: Path, page: Any
) -> None:
    process = _demo_server(tmp_path, forge=False, env={"LEDGER_WEB_RECOMPUTE_LIMIT": "22"})
    try:
        page.goto(process.url + f"/ledgers/{LEDGER}")
        text = badge(page, "ok")
        assert "not recomputed" in text and "more than 22 records" in text, text
        assert "ledger-verify" in text and "--snapshot" in text, text
    finally:
        process.stop()
