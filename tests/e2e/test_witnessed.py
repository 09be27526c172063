"""A ledger server collecting cosignatures from real witness processes: the
witnessed checkpoint, a witness that is down, one killed and restarted, a
witness that already cosigned more than the server knows (409), and what
bundles and ledger-verify make of the quorum."""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.core.checkpoint import SignedCheckpoint
from ledger.core.cosignature import Witness, verified_cosignatures
from ledger.core.signing import VerifierKey
from ledger.core.verification import check_checkpoint
from ledger.core.witnessing import add_checkpoint_body
from ledger.witness.state import WitnessState
from ledger_client.verify import main as verify_main
from tests.conftest import BACKENDS, ORIGIN, backend_database
from tests.e2e.witnessed import append, ledger_key, wait_for, witnessed_size, witnesses_env
from tests.servers import ServerProcess, free_port
from tests.witnesses import RunningWitness, start_witness

pytestmark = pytest.mark.slow
LEDGER = "talks"
LATE = "late"  # a ledger the witnesses do not follow until a test adds it


@dataclass
class Setup:
    server: ServerProcess
    key: str
    w1: RunningWitness
    w2: RunningWitness
    down: str  # the verifier key of a witness nobody runs, at a port with nothing listening

    def witnesses(self, ledger: str = LEDGER) -> dict[str, Any]:
        response = httpx.get(f"{self.server.url}/v1/ledgers/{ledger}/witnesses", timeout=5)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def by_key(self, ledger: str = LEDGER) -> dict[str, dict[str, Any]]:
        return {w["key"]: w for w in self.witnesses(ledger)["witnesses"]}


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One database per backend for the whole module (the collector writes to it)."""
    with backend_database(request.param, tmp_path_factory.mktemp("database")) as url:
        yield url


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("witnessed")
    data_dir = root / "ledger"
    key = ledger_key(data_dir)
    logs = {f"{ORIGIN}/{LEDGER}": [key]}
    w1 = start_witness(root / "w1", logs=logs, name="witness.test/w1")
    w2 = start_witness(root / "w2", logs=logs, name="witness.test/w2")
    down = Witness.generate("witness.test/down").verifier.to_string()
    endpoints = [
        (w1.url, w1.verifier_key),
        (w2.url, w2.verifier_key),
        (f"http://127.0.0.1:{free_port()}", down),
    ]
    server = ServerProcess(
        database_url=database_url,
        data_dir=data_dir,
        env=witnesses_env(endpoints, quorum=2),
    )
    try:
        for name in (LEDGER, LATE):
            httpx.post(f"{server.url}/v1/ledgers", json={"name": name}).raise_for_status()
        yield Setup(server=server, key=key, w1=w1, w2=w2, down=down)
    finally:
        server.stop()
        w1.stop()
        w2.stop()


def witnessed_note(setup: Setup) -> httpx.Response:
    return httpx.get(f"{setup.server.url}/v1/ledgers/{LEDGER}/checkpoint/witnessed", timeout=5)


def run_verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = verify_main([*argv, "--json"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    result: dict[str, Any] = json.loads(captured.out)
    return code, result


def test_appends_are_cosigned_and_served_as_one_witnessed_note(setup: Setup) -> None:
    head = append(setup.server.url, LEDGER, 5)
    wait_for(lambda: witnessed_size(setup.server.url, LEDGER) == head, what="a witnessed head")
    response = witnessed_note(setup)
    assert response.headers["Ledger-Head-Size"] == str(head)
    note = SignedCheckpoint.from_text(response.text)
    check_checkpoint(response.text, [VerifierKey.from_string(setup.key)], ledger=LEDGER)
    cosigned = verified_cosignatures(
        note.checkpoint.body(), note.signatures, [setup.w1.cosigner, setup.w2.cosigner]
    )
    assert set(cosigned) == {setup.w1.cosigner, setup.w2.cosigner}
    witnesses = setup.by_key()
    for witness in (setup.w1, setup.w2):
        state = witnesses[witness.verifier_key]
        assert (state["tree_size"], state["lag"], state["last_error"]) == (head, 0, None)
        assert state["timestamp"] == cosigned[witness.cosigner].timestamp
    down = witnesses[setup.down]
    assert (down["tree_size"], down["lag"]) == (0, head)
    assert "Connect" in down["last_error"]
    assert setup.witnesses()["witnessed_size"] == head


def test_a_killed_witness_neither_fails_nor_slows_appends_and_catches_up(setup: Setup) -> None:
    before = append(setup.server.url, LEDGER, 1)
    wait_for(lambda: witnessed_size(setup.server.url, LEDGER) == before, what="a witnessed head")
    setup.w2.kill()
    started = time.monotonic()
    for _ in range(20):
        head = append(setup.server.url, LEDGER, 1)
    elapsed = time.monotonic() - started
    # Appends never wait for a witness: 20 of them take what 20 appends take
    # (tens of milliseconds), far below one connection timeout (2 s) or interval.
    assert elapsed < 2.0, f"20 appends took {elapsed:.2f}s with a witness down"
    wait_for(lambda: setup.by_key()[setup.w2.verifier_key]["last_error"], what="w2's failure shown")
    wait_for(
        lambda: setup.by_key()[setup.w1.verifier_key]["tree_size"] == head, what="w1 at the head"
    )
    # With w2 down and the third witness never up, no newer checkpoint has two cosignatures.
    assert witnessed_size(setup.server.url, LEDGER) == before
    state = setup.by_key()[setup.w2.verifier_key]
    assert state["tree_size"] == before and state["lag"] == head - before
    setup.w2.restart()
    wait_for(lambda: witnessed_size(setup.server.url, LEDGER) == head, what="catching up")
    assert setup.by_key()[setup.w2.verifier_key]["last_error"] is None


def test_with_every_witness_down_appends_go_on_and_the_lag_is_shown(setup: Setup) -> None:
    before = append(setup.server.url, LEDGER, 1)
    wait_for(lambda: witnessed_size(setup.server.url, LEDGER) == before, what="a witnessed head")
    setup.w1.kill()
    setup.w2.kill()
    started = time.monotonic()
    for _ in range(20):
        head = append(setup.server.url, LEDGER, 1)
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"20 appends took {elapsed:.2f}s with every witness down"
    for witness in (setup.w1, setup.w2):
        wait_for(
            lambda w=witness: setup.by_key()[w.verifier_key]["last_error"],
            what=f"{witness.name}'s failure shown",
        )
    state = setup.witnesses()
    assert (state["head"], state["witnessed_size"]) == (head, before)
    assert all(w["lag"] == head - before for w in state["witnesses"] if w["key"] != setup.down)
    response = witnessed_note(setup)
    assert response.headers["Ledger-Tree-Size"] == str(before)
    assert response.headers["Ledger-Head-Size"] == str(head)
    setup.w1.restart()
    setup.w2.restart()
    wait_for(lambda: witnessed_size(setup.server.url, LEDGER) == head, what="catching up")


def test_a_witness_ahead_of_the_stored_cosignatures_is_resumed_from_its_409(
    setup: Setup,
) -> None:
    url = setup.server.url
    size = append(url, LATE, 3)
    # The witnesses do not follow this ledger yet: each refuses it (404), visibly.
    wait_for(
        lambda: all(w["last_error"] for w in setup.witnesses(LATE)["witnesses"][:2]),
        what="the witnesses' refusals shown",
    )
    assert "404" in setup.by_key(LATE)[setup.w2.verifier_key]["last_error"]
    # w2 follows it now, and cosigns size 3 for someone else than this server.
    state = WitnessState.open(setup.w2.directory)
    try:
        state.add_log(f"{ORIGIN}/{LATE}", VerifierKey.from_string(setup.key))
    finally:
        state.close()
    note = httpx.get(f"{url}/v1/ledgers/{LATE}/checkpoint").text
    direct = httpx.post(f"{setup.w2.url}/add-checkpoint", content=add_checkpoint_body(0, [], note))
    assert direct.status_code == 200, direct.text
    # The server knows of no cosignature by w2 and sends "old 0": w2 answers 409 3,
    # and the server sends the new checkpoint again with a proof from size 3.
    head = append(url, LATE, 2)
    wait_for(
        lambda: setup.by_key(LATE)[setup.w2.verifier_key]["tree_size"] == head,
        what="w2 cosigning after its 409",
    )
    assert size == 3 and setup.by_key(LATE)[setup.w2.verifier_key]["last_error"] is None


def test_witnessed_and_witnesses_are_404_for_an_unknown_ledger(setup: Setup) -> None:
    for path in ("checkpoint/witnessed", "witnesses"):
        response = httpx.get(f"{setup.server.url}/v1/ledgers/nonesuch/{path}")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


def test_a_bundle_carries_the_witnessed_note_and_verifies_with_the_quorum(
    setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = append(setup.server.url, LEDGER, 2)
    wait_for(lambda: witnessed_size(setup.server.url, LEDGER) == head, what="a witnessed head")
    # One batch of two: no checkpoint of size head + 1 is ever stored, so none is
    # cosigned, and a bundle ending there carries a proof from the witnessed size.
    append(setup.server.url, LEDGER, 2)
    bundle = tmp_path / "talks.tar"
    exported = httpx.get(
        f"{setup.server.url}/v1/ledgers/{LEDGER}/export", params={"to_seq": head + 1}
    )
    bundle.write_bytes(exported.content)
    w1, w2 = setup.w1.verifier_key, setup.w2.verifier_key
    base = ("bundle", str(bundle), "--key", setup.key)
    code, result = run_verify(capsys, *base, "--witness", w1, "--witness", w2)
    assert code == 0, result
    assert result["witnessed"]["tree_size"] == head
    assert {c["name"] for c in result["witnessed"]["cosigned_by"]} == {
        "witness.test/w1",
        "witness.test/w2",
    }
    # Without --witness the bundle is as valid as one without the members.
    assert run_verify(capsys, *base)[0] == 0
    # Too few: the third witness never cosigned.
    code, result = run_verify(
        capsys, *base, "--witness", w1, "--witness", w2, "--witness", setup.down
    )
    assert code == 1 and "missing: witness.test/down" in result["reason"]
    # A wrong key: a witness that never cosigned anything, under w1's name.
    impostor = Witness.generate("witness.test/w1").verifier.to_string()
    code, result = run_verify(capsys, *base, "--witness", impostor, "--witness", w2)
    assert code == 1 and "1 of the 2" in result["reason"]
    code, result = run_verify(capsys, *base, "--witness", w1, "--quorum", "3")
    assert code == 2 and "--quorum" in result["error"]
    # The proof is what ties the witnessed note to the bundle's checkpoint.
    forged = tmp_path / "forged.tar"
    rewrite(bundle, forged, {"witnessed.proof": b""})
    code, result = run_verify(capsys, "bundle", str(forged), "--key", setup.key)
    assert code == 1 and result["reason"].startswith("the witnessed checkpoint: fork")
    rewrite(bundle, forged, {"witnessed.proof": None})
    code, result = run_verify(capsys, "bundle", str(forged), "--key", setup.key)
    assert code == 1 and "not followed by witnessed.proof" in result["reason"]


def rewrite(source: Path, target: Path, members: dict[str, bytes | None]) -> None:
    """Copy a bundle, replacing the named members' content (None: leaving them out)."""
    with tarfile.open(source) as old, tarfile.open(target, "w", format=tarfile.USTAR_FORMAT) as new:
        for info in old.getmembers():
            content = old.extractfile(info)
            data = content.read() if content else b""
            if info.name in members:
                replaced = members[info.name]
                if replaced is None:
                    continue
                data = replaced
            info.size = len(data)
            new.addfile(info, io.BytesIO(data))


def test_ledger_verify_server_requires_the_quorum_on_the_checkpoint_it_trusts(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    url = setup.server.url
    head = append(url, LEDGER, 1)
    w1, w2 = setup.w1.verifier_key, setup.w2.verifier_key
    base = ("server", url, "--ledger", LEDGER, "--key", setup.key)
    code, result = run_verify(capsys, *base, "--witness", w1, "--witness", w2, "--quorum", "2")
    assert code == 0, result
    assert result["witnessed"]["tree_size"] >= head
    assert result["to_seq"] == result["witnessed"]["tree_size"]
    checks = result["checks"]
    assert any(check.startswith("cosignature by witness witness.test/w2") for check in checks)
    # The line a person reads names what was checked and who cosigned.
    assert verify_main([*base, "--witness", w1, "--witness", w2]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert printed.startswith("VALID talks")
    assert "witnessed checkpoint (tree size" in printed
    assert "2 witness cosignatures (quorum 2)" in printed
    assert "cosignature by witness witness.test/w1+" in printed
    code, result = run_verify(
        capsys, *base, "--witness", w1, "--witness", setup.down, "--witness-wait", "0.5"
    )
    assert code == 1 and "missing: witness.test/down" in result["reason"]
