"""The streams of a server share their reads: one page read (and one copy of
its text) for every stream that wants it at once, and a cap on open streams."""

from __future__ import annotations

import asyncio
import json

import pytest

from ledger.api.streamhub import StreamHub
from ledger.core.errors import NotFound, ServerBusy
from ledger.service import LedgerService
from tests.conftest import position


def _fill(service: LedgerService, count: int) -> None:
    service.create_ledger("talks")
    for _ in range(count):
        service.append("talks", json.dumps(position()).encode(), actor="t")


def test_streams_wanting_a_page_at_once_share_one_read(service: LedgerService) -> None:
    _fill(service, 3)

    async def main() -> None:
        hub = StreamHub(service, max_streams=10, read_threads=1)
        pages = await asyncio.gather(*(hub.page("talks", 1) for _ in range(50)))
        assert all(page is pages[0] for page in pages)
        assert (pages[0].after, pages[0].count, pages[0].head) == (1, 2, 3)
        assert pages[0].text.count(b"\nevent: record\n") == 2
        assert pages[0].text.startswith(b"id: 2\n")
        assert await hub.head("talks", max_age=0) == 3

    asyncio.run(main())


def test_a_kept_page_is_read_again_once_the_head_moved_past_an_empty_one(
    service: LedgerService,
) -> None:
    _fill(service, 1)

    async def main() -> None:
        hub = StreamHub(service, max_streams=10, read_threads=1)
        assert (await hub.page("talks", 1)).count == 0
        service.append("talks", json.dumps(position()).encode(), actor="t")
        page = await hub.page("talks", 1)
        assert (page.count, page.head) == (1, 2)

    asyncio.run(main())


def test_a_failed_read_is_not_kept(service: LedgerService) -> None:
    async def main() -> None:
        hub = StreamHub(service, max_streams=10, read_threads=1)
        with pytest.raises(NotFound):
            await hub.head("talks", max_age=60)
        _fill(service, 1)
        assert await hub.head("talks", max_age=60) == 1
        # Names of no ledger leave nothing behind: asking for many costs no memory.
        for n in range(100):
            with pytest.raises(NotFound):
                await hub.head(f"nothing-{n}", max_age=60)
        assert list(hub._heads) == ["talks"]

    asyncio.run(main())


def test_streams_over_the_cap_are_refused_until_one_ends(service: LedgerService) -> None:
    hub = StreamHub(service, max_streams=2, read_threads=1)
    first = hub.admit()
    hub.admit()
    with pytest.raises(ServerBusy, match="2 event streams") as refused:
        hub.admit()
    assert refused.value.retry_after >= 1
    first()
    first()  # counting out twice frees one place, not two
    assert hub.open_streams == 1
    hub.admit()
    with pytest.raises(ServerBusy):
        hub.admit()
