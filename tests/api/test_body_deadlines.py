"""Body reads under a deadline: a trickling client gets 408, on either event
loop, and the one timer a grain serves every read whose deadline falls in it.

What must hold besides: a read that finished is never cancelled later, and
a cancellation that is not the deadline's (a client gone, a shutdown) goes
on up as itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvloop
from starlette.requests import Request

from ledger.api import body
from ledger.api.body import read_json_body
from ledger.core.errors import RequestTimeout

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


@pytest.fixture(params=sorted(LOOPS))
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    loop = LOOPS[request.param]()
    yield loop
    loop.close()


@pytest.fixture(autouse=True)
def short_grain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(body, "_GRAIN", 0.05)


def request_with(receive: Callable[[], Any]) -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-type", b"application/json")],
    }
    return Request(scope, receive)


def trickling() -> Request:
    async def receive() -> dict[str, Any]:
        await asyncio.sleep(10)
        return {"type": "http.request", "body": b"{}", "more_body": False}

    return request_with(receive)


def prompt(payload: bytes = b"{}") -> Request:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": payload, "more_body": False}

    return request_with(receive)


def test_a_body_that_trickles_in_gets_408_within_its_timeout_and_a_grain(
    loop: asyncio.AbstractEventLoop,
) -> None:
    started = time.monotonic()
    with pytest.raises(RequestTimeout, match=r"within 0\.1 seconds"):
        loop.run_until_complete(read_json_body(trickling(), max_bytes=1024, timeout=0.1))
    assert 0.1 <= time.monotonic() - started < 0.1 + 0.05 + 0.5


def test_a_prompt_body_is_read_and_its_task_is_never_cancelled_later(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def read_then_wait() -> bytes:
        raw = await read_json_body(prompt(b'{"a": 1}'), max_bytes=1024, timeout=0.05)
        await asyncio.sleep(0.2)  # well past the deadline the read had
        return raw

    assert loop.run_until_complete(read_then_wait()) == b'{"a": 1}'


def test_a_cancellation_that_is_not_the_deadlines_goes_on_up(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def cancelled_by_its_client() -> None:
        task = asyncio.ensure_future(read_json_body(trickling(), max_bytes=1024, timeout=5))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    loop.run_until_complete(cancelled_by_its_client())


def test_a_cancellation_beside_an_expired_deadline_is_not_turned_into_408(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def both() -> None:
        task = asyncio.ensure_future(read_json_body(trickling(), max_bytes=1024, timeout=0.01))
        await asyncio.sleep(0)  # the read has begun
        deadlines = body._deadlines[asyncio.get_running_loop()]
        # The deadline's cancel and a shutdown's, before the task runs again.
        deadlines._expire(next(iter(deadlines.due)))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    loop.run_until_complete(both())


def test_many_stuck_reads_share_one_deadline_and_each_gets_408(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    grain = 0.5
    monkeypatch.setattr(body, "_GRAIN", grain)

    async def stuck_together() -> list[BaseException | bytes]:
        # Begun just after a grain starts, so all 50 deadlines fall in one grain.
        now = loop.time()
        await asyncio.sleep((now // grain + 1) * grain - now + 0.01)
        reads = [
            asyncio.ensure_future(read_json_body(trickling(), max_bytes=1024, timeout=0.2))
            for _ in range(50)
        ]
        await asyncio.sleep(0)
        due = body._deadlines[loop].due
        assert [len(reads) for reads in due.values()] == [50]  # one grain: one timer
        return await asyncio.gather(*reads, return_exceptions=True)

    outcomes = loop.run_until_complete(stuck_together())
    assert all(isinstance(outcome, RequestTimeout) for outcome in outcomes)
    assert body._deadlines[loop].due == {}
