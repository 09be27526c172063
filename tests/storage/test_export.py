"""Export bundles (format §4) written from a stored ledger, on every backend."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from ledger.core import checkpoint as notes
from ledger.core.bundle import MEMBERS, SIGNATURE_SIZE, Manifest
from ledger.core.errors import InvalidParameter, NotFound, VerificationError
from ledger.core.hashing import GENESIS_PREV, leaf_hash, record_hash
from ledger.core.merkle import root_from_leaves, verify_inclusion
from ledger.core.signing import VerifierKey
from ledger.core.times import RECORDED_AT_PATTERN
from ledger.exporter import bundle_chunks, write_bundle
from ledger.service import LedgerService
from tests.storage import sample_events

LEDGER = "talks"


def fill(service: LedgerService, sizes: list[int]) -> list[bytes]:
    # Non-ASCII text: records.jsonl is bytes, never re-encoded.
    return sample_events.fill(service, LEDGER, sizes, summary="Заява #{n}")


@dataclass(frozen=True)
class Bundle:
    raw: bytes
    names: list[str]
    members: dict[str, bytes]
    infos: list[tarfile.TarInfo]

    @property
    def manifest(self) -> Manifest:
        return Manifest.from_bytes(self.members["manifest.json"])


def export(
    service: LedgerService, *, from_seq: int | None = None, to_seq: int | None = None
) -> tuple[Manifest, Bundle]:
    out = io.BytesIO()
    manifest = write_bundle(service, LEDGER, out, from_seq=from_seq, to_seq=to_seq)
    return manifest, read_bundle(out.getvalue())


def read_bundle(raw: bytes) -> Bundle:
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as archive:
        infos = archive.getmembers()
        members = {}
        for info in infos:
            handle = archive.extractfile(info)
            assert handle is not None
            members[info.name] = handle.read()
    return Bundle(raw=raw, names=[i.name for i in infos], members=members, infos=infos)


def signer_key(service: LedgerService, key_id: str) -> VerifierKey:
    (key,) = [k for k in service.list_keys() if k.key_id == key_id]
    return VerifierKey.from_string(key.verifier_key)


def test_a_full_export_holds_the_members_in_order_and_what_the_service_reports(
    service: LedgerService,
) -> None:
    lines = fill(service, [3, 5, 9])
    manifest, bundle = export(service)

    assert bundle.names == list(MEMBERS)
    assert bundle.manifest == manifest
    assert bundle.members["manifest.json"] == manifest.to_bytes()
    # Exactly the stored canonical bytes, one per line, in seq order.
    assert bundle.members["records.jsonl"] == b"".join(line + b"\n" for line in lines)

    info = service.get_ledger(LEDGER)
    assert (manifest.from_seq, manifest.to_seq, manifest.count) == (1, 17, 17)
    assert manifest.tree_size == info.size == 17
    assert manifest.head_hash == info.head_hash == record_hash(lines[-1])
    assert manifest.first_prev == GENESIS_PREV
    assert manifest.merkle_root == root_from_leaves([leaf_hash(line) for line in lines])
    assert manifest.head_inclusion_proof == ()
    assert manifest.records_sha256 == hashlib.sha256(bundle.members["records.jsonl"]).hexdigest()
    assert manifest.origin == "ledger.test/talks"
    assert RECORDED_AT_PATTERN.match(manifest.created_at)

    checkpoint = bundle.members["checkpoint"]
    assert checkpoint.decode() == service.checkpoint(LEDGER, size=17)
    tree = notes.SignedCheckpoint.from_text(checkpoint).checkpoint
    assert (tree.tree_size, tree.root, tree.head_hash) == (17, manifest.merkle_root, info.head_hash)


def test_the_manifest_signature_verifies_with_the_signers_key(service: LedgerService) -> None:
    fill(service, [4])
    manifest, bundle = export(service)
    key = signer_key(service, manifest.key_id)
    assert manifest.key_name == key.name
    signature = bundle.members["manifest.sig"]
    assert len(signature) == SIGNATURE_SIZE
    key.verify(signature, bundle.members["manifest.json"])
    assert VerifierKey.from_pem(key.name, bundle.members["public_key.pem"]) == key
    notes.verify(bundle.members["checkpoint"], [key])
    tampered = bundle.members["manifest.json"].replace(b'"count":4', b'"count":5')
    with pytest.raises(VerificationError):
        key.verify(signature, tampered)


@pytest.mark.parametrize(("from_seq", "to_seq"), [(2, 13), (7, 7), (13, 13), (1, 8), (9, 16)])
def test_a_sub_range_carries_a_head_inclusion_proof(
    service: LedgerService, from_seq: int, to_seq: int
) -> None:
    lines = fill(service, [6, 7, 5])
    manifest, bundle = export(service, from_seq=from_seq, to_seq=to_seq)

    wanted = lines[from_seq - 1 : to_seq]
    assert bundle.members["records.jsonl"] == b"".join(line + b"\n" for line in wanted)
    assert manifest.count == len(wanted)
    assert manifest.tree_size == to_seq
    assert manifest.merkle_root == root_from_leaves([leaf_hash(x) for x in lines[:to_seq]])
    assert manifest.head_hash == record_hash(lines[to_seq - 1])
    expected_prev = record_hash(lines[from_seq - 2]) if from_seq > 1 else GENESIS_PREV
    assert manifest.first_prev == expected_prev
    if from_seq == 1:
        assert manifest.head_inclusion_proof == ()
    else:
        verify_inclusion(
            to_seq - 1,
            to_seq,
            leaf_hash(lines[to_seq - 1]),
            manifest.head_inclusion_proof,
            manifest.merkle_root,
        )
    tree = notes.SignedCheckpoint.from_text(bundle.members["checkpoint"]).checkpoint
    assert (tree.tree_size, tree.root) == (to_seq, manifest.merkle_root)
    signer_key(service, manifest.key_id).verify(
        bundle.members["manifest.sig"], bundle.members["manifest.json"]
    )


def test_a_wrong_proof_would_be_caught(service: LedgerService) -> None:
    # Guards the test above: the proof is checked against the leaf it claims.
    lines = fill(service, [10])
    manifest, _ = export(service, from_seq=3, to_seq=9)
    with pytest.raises(VerificationError):
        verify_inclusion(
            8, 9, leaf_hash(lines[7]), manifest.head_inclusion_proof, manifest.merkle_root
        )


def test_the_tar_is_deterministic_and_readable_by_pythons_tarfile(
    service: LedgerService,
) -> None:
    fill(service, [5])
    manifest, bundle = export(service)
    assert len(bundle.raw) % 512 == 0
    assert bundle.raw.endswith(b"\0" * 1024)
    created = datetime.strptime(manifest.created_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    for info in bundle.infos:
        assert info.isreg()
        assert (info.mode, info.uid, info.gid, info.uname, info.gname) == (0o644, 0, 0, "", "")
        assert info.mtime == int(created.timestamp())
        assert info.size == len(bundle.members[info.name])


def test_the_streamed_chunks_are_the_written_bundle(service: LedgerService) -> None:
    fill(service, [1000, 1000, 500])  # more than one database page and one chunk
    counted: list[int] = []
    manifest, chunks = bundle_chunks(service, LEDGER, from_seq=2, on_records=counted.append)
    hashed = sum(counted)
    raw = b"".join(chunks)
    assert hashed == manifest.count == 2499
    assert sum(counted) == 2 * manifest.count  # hashed, then written
    bundle = read_bundle(raw)
    assert bundle.manifest == manifest
    assert bundle.members["records.jsonl"].count(b"\n") == 2499


def test_range_errors_name_the_parameter(service: LedgerService) -> None:
    service.create_ledger("empty")
    fill(service, [5])
    out = io.BytesIO()
    cases: list[tuple[int | None, int | None, str]] = [
        (0, None, "from_seq"),
        (-3, None, "from_seq"),
        (None, 0, "to_seq"),
        (None, 6, "to_seq"),
        (4, 3, "from_seq"),
        (6, None, "from_seq"),
    ]
    for from_seq, to_seq, field in cases:
        with pytest.raises(InvalidParameter) as caught:
            write_bundle(service, LEDGER, out, from_seq=from_seq, to_seq=to_seq)
        assert caught.value.field == field, (from_seq, to_seq)
    with pytest.raises(InvalidParameter) as caught:
        write_bundle(service, "empty", out)
    assert caught.value.field == "to_seq"
    with pytest.raises(NotFound):
        write_bundle(service, "absent", out)
    assert out.getvalue() == b""  # nothing is written before the range is valid


def test_an_export_during_a_rotation_is_signed_by_the_newest_key(
    service: LedgerService,
) -> None:
    fill(service, [4])
    (old_record,) = service.list_keys()
    old_key = VerifierKey.from_string(old_record.verifier_key)
    rotation = service.rotate_key(actor="admin")

    manifest, bundle = export(service)
    assert manifest.key_id == rotation.new_key.key_id_hex != old_key.key_id_hex
    rotation.new_key.verify(bundle.members["manifest.sig"], bundle.members["manifest.json"])
    with pytest.raises(VerificationError):
        old_key.verify(bundle.members["manifest.sig"], bundle.members["manifest.json"])
    assert bundle.members["public_key.pem"] == rotation.new_key.public_pem()
    # The key.rotated record is the head; its checkpoint carries both keys.
    assert json.loads(bundle.members["records.jsonl"].splitlines()[-1])["type"] == "key.rotated"
    notes.verify(bundle.members["checkpoint"], [rotation.new_key])
    notes.verify(bundle.members["checkpoint"], [old_key])

    service.retire_key(old_key.key_id_hex)
    manifest, bundle = export(service, from_seq=2)
    rotation.new_key.verify(bundle.members["manifest.sig"], bundle.members["manifest.json"])
    assert manifest.key_id == rotation.new_key.key_id_hex


def test_a_range_ending_before_a_rotation_verifies_with_the_newest_key_alone(
    service: LedgerService,
) -> None:
    fill(service, [3, 1])  # one checkpoint stored per append: sizes 3 and 4
    (old_record,) = service.list_keys()
    old_key = VerifierKey.from_string(old_record.verifier_key)
    rotation = service.rotate_key(actor="admin")
    service.retire_key(old_key.key_id_hex)
    # The stored checkpoint of size 3 was signed by the old key only.
    with pytest.raises(VerificationError):
        notes.verify(service.checkpoint(LEDGER, size=3), [rotation.new_key])
    _, bundle = export(service, to_seq=3)
    notes.verify(bundle.members["checkpoint"], [rotation.new_key])
