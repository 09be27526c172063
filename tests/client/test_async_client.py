"""``ledger_client.AsyncClient``: the same operations as ``Client``, awaited,
against a real server on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ledger_client import AsyncClient, ProblemError, VerificationError
from ledger_client.verify import main as verify_main
from tests.client.proxy import Reply, proxy
from tests.conftest import position
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow


def test_verified_appends_pages_and_reads(
    server: ServerProcess, ledger: str, log_key: str, state_file: Path
) -> None:
    async def scenario() -> None:
        async with AsyncClient(
            server.url, trusted_keys=[log_key], state=state_file, batch_size=4
        ) as client:
            one = await client.append(ledger, position(), verify=True)
            many = await client.append_many(ledger, [position(stance="demand")] * 9, verify=True)
            records = [r async for r in client.records(ledger, verify=True, page_size=3)]
            record = await client.record(ledger, 5, verify=True)
            checkpoint = await client.checkpoint(ledger)
            snapshot = await client.snapshot(ledger)
        assert one.seq == 1 and [r.seq for r in many] == list(range(2, 11))
        assert all(r.verified_in is not None for r in [one, *many])
        assert [r.seq for r in records] == list(range(1, 11)) and records[4] == record
        assert checkpoint.checkpoint.tree_size == 10
        assert snapshot["state"]["US"]["security-guarantees"]["stance"] == "demand"

    asyncio.run(scenario())


def test_problems_and_lies_raise_as_in_the_blocking_client(
    server: ServerProcess, ledger: str, log_key: str
) -> None:
    async def scenario() -> None:
        async with AsyncClient(server.url) as client:
            with pytest.raises(ProblemError) as refused:
                await client.append(ledger, position(stance="shrug"))
            assert refused.value.field == "data.stance"
        with proxy(server.url) as network:
            network.alter = lambda method, path, response: (  # type: ignore[assignment]
                Reply(
                    201,
                    response.content.replace(b'"seq":1', b'"seq":7'),
                    {"Content-Type": "application/json"},
                )
                if method == "POST"
                else None
            )
            async with AsyncClient(network.url, trusted_keys=[log_key]) as client:
                with pytest.raises(VerificationError) as lied:
                    await client.append(ledger, position(), verify=True)
        assert lied.value.check in ("checkpoint", "receipt")

    asyncio.run(scenario())


def test_follow_and_export(
    server: ServerProcess, ledger: str, log_key: str, tmp_path: Path
) -> None:
    async def scenario() -> list[int]:
        async with AsyncClient(server.url) as client:
            await client.append_many(ledger, [position()] * 2)
            seen: list[int] = []

            async def follow() -> None:
                async for record in client.follow(ledger):
                    seen.append(record.seq)
                    if len(seen) == 4:
                        return

            following = asyncio.create_task(follow())
            await asyncio.sleep(0.2)
            await client.append_many(ledger, [position(stance="demand")] * 2)
            await asyncio.wait_for(following, 15)
            await client.export(ledger, tmp_path / "bundle.tar")
            return seen

    assert asyncio.run(scenario()) == [1, 2, 3, 4]
    assert verify_main(["bundle", str(tmp_path / "bundle.tar"), "--key", log_key]) == 0
