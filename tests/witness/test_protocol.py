"""C2SP tlog-witness against a real ``ledger witness serve`` process.

One witness serves the module; each test uses a log (origin) of its own, so
the order of tests does not matter.
"""

from __future__ import annotations

import base64
import itertools
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledger.core.checkpoint import NoteSignature
from ledger.core.cosignature import Cosignature, verified_cosignatures
from ledger.core.signing import Signer
from ledger.core.witnessing import (
    CheckpointNote,
    add_checkpoint_body,
    parse_cosignature_lines,
    parse_size_body,
)
from tests.witnesses import RunningWitness, TestLog, origin_hash, start_witness

pytestmark = pytest.mark.slow

_ORIGINS = itertools.count()
LOG_COUNT = 40


def _log(number: int) -> TestLog:
    origin = f"log.test/{number}"
    return TestLog(origin=origin, signer=Signer.generate(origin))


@pytest.fixture(scope="module")
def logs() -> list[TestLog]:
    return [_log(n) for n in range(LOG_COUNT)]


@pytest.fixture(scope="module")
def witness(
    tmp_path_factory: pytest.TempPathFactory, logs: list[TestLog]
) -> Iterator[RunningWitness]:
    directory: Path = tmp_path_factory.mktemp("witness") / "w1"
    running = start_witness(
        directory, logs={log.origin: [log.verifier_key] for log in logs}, body_timeout=0.5
    )
    yield running
    running.stop()


@pytest.fixture
def log(logs: list[TestLog]) -> TestLog:
    """A log the module's witness follows and no other test has submitted to."""
    return logs[next(_ORIGINS)]


@pytest.fixture(scope="module")
def client(witness: RunningWitness) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=witness.url, timeout=10) as http:
        yield http


def _add(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post("/add-checkpoint", content=body)


def _cosigned(witness: RunningWitness, log: TestLog, response: httpx.Response) -> Cosignature:
    """The answer's cosignature, verified over the checkpoint's body with the witness key."""
    assert response.status_code == 200, response.text
    assert response.text.startswith("\u2014 ") and response.text.endswith("\n")
    (cosignature,) = parse_cosignature_lines(response.content)
    found = verified_cosignatures(log.body(), [cosignature.to_note_signature()], [witness.cosigner])
    assert found == {witness.cosigner: cosignature}
    return cosignature


def test_first_checkpoint_from_old_size_zero_is_cosigned(
    witness: RunningWitness, client: httpx.Client, log: TestLog
) -> None:
    log.grow(5)
    cosignature = _cosigned(witness, log, _add(client, log.request(0)))
    assert cosignature.timestamp > 1_700_000_000


def test_growing_log_is_cosigned_with_proofs_and_served_for_monitors(
    witness: RunningWitness, client: httpx.Client, log: TestLog
) -> None:
    sizes = [1, 2, 3, 4, 7, 8, 9, 16, 17, 100]
    previous = 0
    for size in sizes:
        log.grow(size - log.size)
        response = _add(client, log.request(previous))
        cosignature = _cosigned(witness, log, response)
        previous = size
    # Resubmitting the same checkpoint (old size = size, empty proof) is cosigned again.
    _cosigned(witness, log, _add(client, log.request(previous)))

    monitored = client.get(f"/{origin_hash(log.origin)}/checkpoint")
    assert monitored.status_code == 200
    note = CheckpointNote.parse(monitored.text)
    assert (note.size, note.root, note.body) == (100, log.root(), log.body())
    log_line, witness_line = note.signatures
    assert log_line.name == log.signer.name
    log.signer.verifier.verify(log_line.signature, note.body)
    latest = Cosignature.from_note_signature(witness_line)
    witness.cosigner.verify(latest, note.body)
    assert latest.timestamp >= cosignature.timestamp


def test_old_size_not_the_latest_is_409_with_the_latest_size(
    client: httpx.Client, log: TestLog
) -> None:
    log.grow(10)
    assert _add(client, log.request(0)).status_code == 200
    log.grow(5)
    for stale in (0, 3, 14):
        response = _add(client, log.request(stale))
        assert response.status_code == 409
        assert response.headers["content-type"] == "text/x.tlog.size"
        assert response.content == b"10\n"
        assert parse_size_body(response.content) == 10
    assert _add(client, log.request(10)).status_code == 200


def test_unknown_origin_is_404(client: httpx.Client) -> None:
    stranger = TestLog(origin="log.test/unknown", signer=Signer.generate("log.test/unknown"))
    stranger.grow(3)
    response = _add(client, stranger.request(0))
    assert response.status_code == 404


def test_checkpoint_without_a_trusted_signature_is_403(client: httpx.Client, log: TestLog) -> None:
    log.grow(4)
    impostor = TestLog(origin=log.origin, signer=Signer.generate(log.signer.name))
    impostor.grow(4)
    # Same name, another key (another key id): an unknown key, so no trusted signature.
    assert _add(client, impostor.request(0)).status_code == 403
    # A trusted key's line whose signature fails (made over other bytes): 403.
    forged = NoteSignature(
        name=log.signer.name,
        key_id=log.signer.verifier.key_id,
        signature=log.signer.sign(b"something else\n"),
    )
    note = log.body().decode() + "\n" + forged.to_line()
    assert _add(client, add_checkpoint_body(0, [], note)).status_code == 403
    # The same failing line beside a good one still makes the note malformed.
    both = log.note() + forged.to_line()
    assert _add(client, add_checkpoint_body(0, [], both)).status_code == 403
    # Unknown keys' lines beside the trusted one are ignored.
    other = Signer.generate("someone.else/key")
    extra = NoteSignature(
        name=other.name, key_id=other.verifier.key_id, signature=other.sign(log.body())
    )
    assert _add(client, add_checkpoint_body(0, [], log.note() + extra.to_line())).status_code == 200


def test_old_size_over_size_is_400(client: httpx.Client, log: TestLog) -> None:
    log.grow(3)
    assert _add(client, add_checkpoint_body(4, [], log.note())).status_code == 400


def test_bad_proof_is_422_and_does_not_move_the_state(client: httpx.Client, log: TestLog) -> None:
    log.grow(6)
    assert _add(client, log.request(0)).status_code == 200
    log.grow(5)
    proof = log.proof(6)
    broken = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    for bad in (broken, proof[:-1], [*proof, proof[0]], []):
        response = _add(client, add_checkpoint_body(6, bad, log.note()))
        assert response.status_code == 422, bad
    # Still at 6: the good proof from 6 is accepted.
    assert _add(client, log.request(6)).status_code == 200


def test_proof_with_old_size_zero_is_422(client: httpx.Client, log: TestLog) -> None:
    log.grow(4)
    body = add_checkpoint_body(0, log.proof(2), log.note())
    assert _add(client, body).status_code == 422


def test_same_size_different_root_is_422_a_fork_is_never_cosigned(
    witness: RunningWitness, client: httpx.Client, log: TestLog
) -> None:
    log.grow(8)
    assert _add(client, log.request(0)).status_code == 200
    fork = TestLog(origin=log.origin, signer=log.signer, fork="fork")
    fork.grow(8)
    assert _add(client, fork.request(8)).status_code == 422
    fork.grow(4)
    # A larger fork with a proof from its own 8 does not extend the cosigned 8.
    assert _add(client, fork.request(8)).status_code == 422
    monitored = client.get(f"/{origin_hash(log.origin)}/checkpoint")
    assert CheckpointNote.parse(monitored.text).root == log.root()
    # The refused fork, signed by the log, is kept in the witness's log as evidence.
    assert fork.note() in witness.server.log_path.read_text()


def test_size_zero_needs_the_empty_root(client: httpx.Client, log: TestLog) -> None:
    wrong = log.note(0, root=b"\x01" * 32)
    assert _add(client, add_checkpoint_body(0, [], wrong)).status_code == 422
    assert _add(client, log.request(0)).status_code == 200


def test_checkpoints_with_extension_lines_are_cosigned_over_the_whole_body(
    witness: RunningWitness, client: httpx.Client, logs: list[TestLog]
) -> None:
    log = logs[next(_ORIGINS)]
    log.extensions = ("chain " + "ab" * 32, "another extension")
    log.grow(3)
    _cosigned(witness, log, _add(client, log.request(0)))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"old 0\n",
        b"new 0\n\n",
        b"old 00\n\nx\n",
        b"old -1\n\n",
        b"old 18446744073709551616\n\n",
        b"old 0\nnot base64!\n\n",
        b"old 0\n" + base64.b64encode(b"short") + b"\n\n",
        b"old 0\n" + b"".join(base64.b64encode(bytes(32)) + b"\n" for _ in range(64)) + b"\n",
        b"old 0\n\n\xff\xfe\n",
        b"old 0\n\nlog.test/0\n1\n",
        b"old 0\n\nlog.test/0\n01\n"
        + base64.b64encode(bytes(32))
        + b"\n\n\xe2\x80\x94 a AAAAAAA=\n",
        b"old 0\n\nlog.test/0\n1\n" + base64.b64encode(bytes(32)) + b"\n\nno dash\n",
        b"old 0\n\nlog.test/0\n1\n" + base64.b64encode(bytes(32)) + b"\n\n\xe2\x80\x94 a AA==\n",
        b"old 0\n\nlog.test/0\x01\n1\n"
        + base64.b64encode(bytes(32))
        + b"\n\n\xe2\x80\x94 a AAAAAAA=\n",
    ],
    ids=lambda body: repr(body[:40]),
)
def test_malformed_requests_are_400(client: httpx.Client, body: bytes) -> None:
    response = _add(client, body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/plain")


def test_oversized_bodies_are_413_declared_or_streamed(client: httpx.Client) -> None:
    big = b"old 0\n\n" + b"x" * 200_000
    assert _add(client, big).status_code == 413

    def chunks() -> Iterator[bytes]:
        yield b"old 0\n\n"
        for _ in range(100):
            yield b"y" * 4096

    # No Content-Length: chunked, refused once the cap is passed.
    assert client.post("/add-checkpoint", content=chunks()).status_code == 413


def test_wrong_methods_and_paths_are_4xx(client: httpx.Client) -> None:
    assert client.get("/add-checkpoint").status_code == 405
    assert client.put("/add-checkpoint", content=b"old 0\n\n").status_code == 405
    assert client.post("/health").status_code == 405
    assert client.get("/nothing-here").status_code == 404
    assert client.get("/" + "0" * 64 + "/checkpoint").status_code == 404
    assert client.get("/NOT-A-HASH/checkpoint").status_code == 404


def test_monitoring_checkpoint_is_404_before_any_cosignature(
    client: httpx.Client, log: TestLog
) -> None:
    assert client.get(f"/{origin_hash(log.origin)}/checkpoint").status_code == 404


def test_health_names_the_witness(witness: RunningWitness, client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.text == f"ok {witness.name}\n"


def test_a_log_added_while_serving_is_followed_at_once(
    witness: RunningWitness, client: httpx.Client
) -> None:
    late = TestLog(origin="log.test/late", signer=Signer.generate("log.test/late"))
    late.grow(2)
    assert _add(client, late.request(0)).status_code == 404
    witness.add_log(late.origin, late.verifier_key)
    _cosigned(witness, late, _add(client, late.request(0)))
    # A rotated key, added beside the first, is trusted too.
    rotated = TestLog(origin=late.origin, signer=Signer.generate("log.test/late"))
    rotated.grow(5)
    witness.add_log(late.origin, rotated.verifier_key)
    _cosigned(witness, rotated, _add(client, rotated.request(2)))


def test_a_body_slower_than_the_deadline_is_408(witness: RunningWitness) -> None:
    with socket.create_connection(("127.0.0.1", witness.port), timeout=5) as sock:
        sock.sendall(
            b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: 100\r\n\r\nold 0\n"
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
