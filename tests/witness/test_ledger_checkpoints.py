"""A witness cosigns a real ledger server's checkpoints, with the server's own proofs.

The ledger and the witness are separate processes that share nothing but
what the ledger publishes: its verifier key, its checkpoints and its
consistency proofs over HTTP.
"""

from __future__ import annotations

import base64
import contextlib
from pathlib import Path

import httpx
import pytest

from ledger.core.checkpoint import SignedCheckpoint
from ledger.core.cosignature import verified_cosignatures
from ledger.core.witnessing import add_checkpoint_body, parse_cosignature_lines
from tests.conftest import position
from tests.servers import ServerProcess
from tests.witnesses import start_witness

pytestmark = pytest.mark.slow
LEDGER = "talks"


def test_a_witness_cosigns_a_growing_ledger_and_refuses_its_past(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        ledger = ServerProcess(
            database_url=f"sqlite:///{tmp_path / 'ledger.db'}", data_dir=tmp_path
        )
        stack.callback(ledger.stop)
        http = stack.enter_context(httpx.Client(base_url=ledger.url, timeout=10))
        http.post("/v1/ledgers", json={"name": LEDGER}).raise_for_status()
        key = http.get("/v1/keys").json()["items"][0]["verifier_key"]

        def append(count: int) -> SignedCheckpoint:
            events = [position(party="US") for _ in range(count)]
            http.post(f"/v1/ledgers/{LEDGER}/events", json=events).raise_for_status()
            return SignedCheckpoint.from_text(http.get(f"/v1/ledgers/{LEDGER}/checkpoint").text)

        first = append(3)
        origin = first.checkpoint.origin
        witness = start_witness(tmp_path / "witness", logs={origin: [key]})
        stack.callback(witness.stop)

        def submit(old: int, note: SignedCheckpoint, proof: list[bytes]) -> httpx.Response:
            body = add_checkpoint_body(old, proof, note.to_text())
            return httpx.post(f"{witness.url}/add-checkpoint", content=body, timeout=10)

        answer = submit(0, first, [])
        assert answer.status_code == 200, answer.text
        second = append(4)
        consistency = http.get(
            f"/v1/ledgers/{LEDGER}/proofs/consistency", params={"from": 3, "to": 7}
        ).json()
        proof = [base64.b64decode(h) for h in consistency["proof"]]
        answer = submit(3, second, proof)
        assert answer.status_code == 200, answer.text

        cosignatures = parse_cosignature_lines(answer.content)
        found = verified_cosignatures(
            second.checkpoint.body(),
            [c.to_note_signature() for c in cosignatures],
            [witness.cosigner],
        )
        assert list(found) == [witness.cosigner]
        # The ledger's older checkpoint is behind the witness: from 0 a conflict (409),
        # from the witness's 7 an old size over the checkpoint's (400).
        assert submit(0, first, []).status_code == 409
        assert submit(7, first, []).status_code == 400
