"""ledger-verify bundle against real exports and every tampering of them (format §4-5).

Bundles come from ``ledger.exporter.write_bundle`` on a SQLite runtime (the
tampering is of files, so one backend suffices); each tampered variant is a
tar rebuilt with ``tarfile``, and must exit 1 (2 for unreadable input), never
0, never with a traceback, naming the seq at fault where there is one.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledger.config import Settings
from ledger.core.canonical import canonical_bytes
from ledger.core.hashing import leaf_hash, record_hash
from ledger.core.merkle import root_from_leaves
from ledger.core.signing import Signer, VerifierKey
from ledger.exporter import write_bundle
from ledger.runtime import Runtime
from ledger_client.verify import main as verify_main
from tests.conftest import ORIGIN, position

LEDGER = "minerals"
OTHER = "elsewhere"
SIZE = 36
STANCES = ["oppose", "demand", "offer", "reject", "support", "conditional"]

Members = dict[str, bytes]


@dataclass(frozen=True, slots=True)
class Exports:
    full: bytes
    sub: bytes  # from_seq 7, to_seq 25
    other: bytes
    other_checkpoint: bytes
    key: VerifierKey
    signer: Signer
    directory: Path


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exports]:
    directory = tmp_path_factory.mktemp("bundles")
    settings = Settings(
        database_url=f"sqlite:///{directory / 'ledger.db'}", data_dir=directory, origin=ORIGIN
    )
    runtime = Runtime.start(settings)
    try:
        service = runtime.service
        for name in (LEDGER, OTHER):
            service.create_ledger(name)
            events = [
                position(party=["US", "UA"][n % 2], stance=STANCES[n % len(STANCES)])
                for n in range(SIZE)
            ]
            service.append(name, json.dumps(events).encode(), actor="tester")
        bundles = {}
        for name, span in ((LEDGER, (None, None)), ("sub", (7, 25)), (OTHER, (None, None))):
            out = io.BytesIO()
            ledger = OTHER if name == OTHER else LEDGER
            write_bundle(service, ledger, out, from_seq=span[0], to_seq=span[1])
            bundles[name] = out.getvalue()
        yield Exports(
            full=bundles[LEDGER],
            sub=bundles["sub"],
            other=bundles[OTHER],
            other_checkpoint=service.checkpoint(OTHER, size=SIZE).encode(),
            key=runtime.keyring.primary().verifier,
            signer=runtime.keyring.primary(),
            directory=directory,
        )
    finally:
        runtime.close()


# -- tar plumbing ------------------------------------------------------------------


def unpack(bundle: bytes) -> Members:
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        out = {}
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            assert handle is not None
            out[member.name] = handle.read()
    return out


def pack(members: Members | list[tuple[str, bytes]]) -> bytes:
    items = list(members.items()) if isinstance(members, dict) else members
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in items:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def lines(members: Members) -> list[bytes]:
    raw = members["records.jsonl"]
    assert raw.endswith(b"\n")
    return raw[:-1].split(b"\n")


def with_lines(members: Members, new_lines: list[bytes]) -> Members:
    return {**members, "records.jsonl": b"".join(line + b"\n" for line in new_lines)}


def edit(line: bytes, **changes: Any) -> bytes:
    record = json.loads(line)
    record.update(changes)
    return canonical_bytes(record)


def edit_stance(line: bytes) -> bytes:
    record = json.loads(line)
    stance = record["data"]["stance"]
    data = {**record["data"], "stance": "undecided" if stance != "undecided" else "support"}
    return edit(line, data=data)


def rechain(records: list[bytes], start: int) -> list[bytes]:
    """Recompute every prev from index ``start`` on: what an editor without the key can do."""
    out = list(records)
    for index in range(max(start, 1), len(out)):
        out[index] = edit(out[index], prev=record_hash(out[index - 1]))
    return out


# -- running the client ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    code: int
    result: dict[str, Any]


def verify_bytes(
    bundle: bytes,
    exports: Exports,
    capsys: pytest.CaptureFixture[str],
    *extra: str,
    key: str | None = None,
) -> Verdict:
    path = exports.directory / f"bundle-{uuid.uuid4().hex}.tar"
    path.write_bytes(bundle)
    return verify_path(path, exports, capsys, *extra, key=key)


def verify_path(
    path: Path,
    exports: Exports,
    capsys: pytest.CaptureFixture[str],
    *extra: str,
    key: str | None = None,
) -> Verdict:
    argv = ["bundle", str(path), "--key", key or exports.key.to_string(), "--json", *extra]
    code = verify_main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return Verdict(code, json.loads(captured.out))


def assert_invalid(verdict: Verdict, seq: int | None = None, words: str = "") -> None:
    assert verdict.code == 1, verdict.result
    assert verdict.result["valid"] is False
    if seq is not None:
        assert verdict.result.get("failure_seq") == seq, verdict.result
    assert words.lower() in str(verdict.result.get("reason")).lower(), verdict.result


# -- untouched bundles -------------------------------------------------------------


def test_an_untouched_bundle_verifies(exports: Exports, capsys: pytest.CaptureFixture[str]) -> None:
    verdict = verify_bytes(exports.full, exports, capsys, "--ledger", LEDGER)
    assert verdict.code == 0, verdict.result
    assert verdict.result["count"] == SIZE and verdict.result["to_seq"] == SIZE
    assert verdict.result["key_id"] == exports.key.key_id_hex


def test_a_pem_public_key_is_trusted_by_its_bytes(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    pem = exports.directory / "trusted.pem"
    pem.write_bytes(exports.key.public_pem())
    assert verify_bytes(exports.full, exports, capsys, key=str(pem)).code == 0
    other = exports.directory / "other.pem"
    other.write_bytes(Signer.generate(exports.key.name).verifier.public_pem())
    assert_invalid(verify_bytes(exports.full, exports, capsys, key=str(other)), None, "key")


def test_a_key_string_in_a_file_is_accepted(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    path = exports.directory / "key.txt"
    path.write_text(exports.key.to_string() + "\n")
    assert verify_bytes(exports.full, exports, capsys, key=str(path)).code == 0


def test_a_sub_range_bundle_verifies_by_its_head_inclusion_proof(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    verdict = verify_bytes(exports.sub, exports, capsys)
    assert verdict.code == 0, verdict.result
    assert (verdict.result["from_seq"], verdict.result["to_seq"]) == (7, 25)
    assert verdict.result["count"] == 19


def verify_line(
    path: Path, exports: Exports, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """The human-readable verdict, as one line whatever the terminal's width."""
    code = verify_main(["bundle", str(path), "--key", exports.key.to_string()])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return code, " ".join(captured.out.split())


def test_the_success_line_names_the_checks_of_a_full_bundle(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    path = exports.directory / "full.tar"
    path.write_bytes(exports.full)
    code, line = verify_line(path, exports, capsys)
    signer = f"{exports.key.name}+{exports.key.key_id_hex}"
    assert code == 0, line
    assert line.startswith(
        f"VALID {LEDGER}: records 1-{SIZE} ({SIZE} checked); checked: "
        f"manifest signature by {signer}, hash chain, author signatures: 0 signed records "
        f"checked against the keys the log registered before them; {SIZE} records unsigned, "
        "records_sha256, "
        f"Merkle root recomputed, checkpoint signature by {signer};"
    ), line
    for not_done in ("inclusion proof", "snapshot", "consistency", "rotation"):
        assert not_done not in line, line


def test_the_success_line_of_a_sub_range_names_the_inclusion_proof(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    path = exports.directory / "sub.tar"
    path.write_bytes(exports.sub)
    code, line = verify_line(path, exports, capsys)
    assert code == 0, line
    assert "records_sha256, head inclusion proof into the root of 25 records, checkpoint" in line
    assert "Merkle root recomputed" not in line


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda m: {k: v for k, v in m.items() if k != "ledger"}, "lacks the member ledger"),
        (
            lambda m: {k: v for k, v in m.items() if k not in ("ledger", "origin")},
            "lacks the members ledger, origin",
        ),
        (lambda m: {**m, "note": "x"}, "has the unexpected member note"),
        (lambda m: {**m, "ledger": 7}, "manifest ledger is not a string"),
        (
            lambda m: {**m, "format": "ledger-export/9"},
            "not one of 'ledger-export/1', 'ledger-export/2'",
        ),
        (lambda m: [m], "manifest.json is not a JSON object"),
    ],
    ids=["missing ledger", "missing two", "extra member", "ledger a number", "format", "array"],
)
def test_a_damaged_manifest_is_reported_by_the_file_it_is_in(
    exports: Exports,
    capsys: pytest.CaptureFixture[str],
    damage: Callable[[dict[str, Any]], Any],
    words: str,
) -> None:
    members = unpack(exports.full)
    manifest = damage(json.loads(members["manifest.json"]))
    path = exports.directory / "damaged.tar"
    path.write_bytes(pack({**members, "manifest.json": canonical_bytes(manifest)}))
    code, line = verify_line(path, exports, capsys)
    assert code == 1, line
    assert line.startswith("INVALID damaged.tar: "), line
    assert words in line, line
    assert "None" not in line and "[" not in line, line


def test_an_unreadable_manifest_is_reported_by_the_file_it_is_in(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(exports.full)
    path = exports.directory / "garbled.tar"
    path.write_bytes(pack({**members, "manifest.json": b"{not json"}))
    code, line = verify_line(path, exports, capsys)
    assert code == 1 and line.startswith("INVALID garbled.tar: manifest.json is not strict JSON")
    assert "None" not in line, line


# -- tampered records --------------------------------------------------------------


@pytest.mark.parametrize("seq", [1, SIZE // 2, SIZE])
def test_an_edited_field_is_named_at_the_record_edited(
    exports: Exports, capsys: pytest.CaptureFixture[str], seq: int
) -> None:
    members = unpack(exports.full)
    records = lines(members)
    records[seq - 1] = edit_stance(records[seq - 1])
    assert_invalid(verify_bytes(pack(with_lines(members, records)), exports, capsys), seq)


@pytest.mark.parametrize("seq", [8, 16, 25])
def test_an_edited_field_in_a_sub_range_is_named(
    exports: Exports, capsys: pytest.CaptureFixture[str], seq: int
) -> None:
    members = unpack(exports.sub)
    records = lines(members)
    records[seq - 7] = edit_stance(records[seq - 7])
    assert_invalid(verify_bytes(pack(with_lines(members, records)), exports, capsys), seq)


def test_an_edited_prev_of_the_first_record_in_a_sub_range_is_named(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(exports.sub)
    records = lines(members)
    records[0] = edit(records[0], prev="0" * 64)
    assert_invalid(verify_bytes(pack(with_lines(members, records)), exports, capsys), 7, "prev")


def test_a_deleted_record_is_named_by_the_first_seq_out_of_place(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(exports.full)
    records = lines(members)
    del records[11]
    assert_invalid(verify_bytes(pack(with_lines(members, records)), exports, capsys), 12)


def test_swapped_records_are_named_by_the_first_seq_out_of_place(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(exports.full)
    records = lines(members)
    records[4], records[5] = records[5], records[4]
    assert_invalid(verify_bytes(pack(with_lines(members, records)), exports, capsys), 5)


def test_an_inserted_record_is_named(exports: Exports, capsys: pytest.CaptureFixture[str]) -> None:
    members = unpack(exports.full)
    records = lines(members)
    forged = edit(edit_stance(records[9]), id=str(uuid.uuid4()))  # a plausible seq 10
    records.insert(9, forged)
    # The forgery links to record 9, so the first record out of place is the real seq 10.
    assert_invalid(verify_bytes(pack(with_lines(members, records)), exports, capsys), 11)


def test_a_record_appended_past_to_seq_is_named(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(exports.full)
    records = lines(members)
    extra = edit(records[-1], seq=SIZE + 1, prev=record_hash(records[-1]), id=str(uuid.uuid4()))
    assert_invalid(
        verify_bytes(pack(with_lines(members, [*records, extra])), exports, capsys), SIZE + 1
    )


def test_a_truncated_tail_is_named_by_the_first_missing_seq(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(exports.full)
    records = lines(members)[:-5]
    assert_invalid(verify_bytes(pack(with_lines(members, records)), exports, capsys), SIZE - 4)


def test_a_rechained_tail_fails_at_the_head(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(exports.full)
    records = lines(members)
    records[19] = edit_stance(records[19])
    records = rechain(records, 20)
    # The chain is whole again; only the signed head hash betrays it.
    assert_invalid(verify_bytes(pack(with_lines(members, records)), exports, capsys), SIZE, "head")


def test_a_rechained_tail_with_a_rewritten_manifest_fails_the_signature(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(exports.full)
    records = lines(members)
    records[19] = edit_stance(records[19])
    records = rechain(records, 20)
    tampered = with_lines(members, records)
    manifest = json.loads(members["manifest.json"])
    manifest["head_hash"] = record_hash(records[-1])
    manifest["records_sha256"] = hashlib.sha256(tampered["records.jsonl"]).hexdigest()
    tampered["manifest.json"] = canonical_bytes(manifest)
    assert_invalid(verify_bytes(pack(tampered), exports, capsys), None, "signature")


def test_a_non_canonical_record_is_named(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(exports.full)
    records = lines(members)
    records[2] = records[2].replace(b'"seq":3', b'"seq": 3')
    verdict = verify_bytes(pack(with_lines(members, records)), exports, capsys)
    assert_invalid(verdict, 3, "canonical")


def test_records_of_another_ledger_are_named_at_the_first(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(exports.full)
    spliced = {**members, "records.jsonl": unpack(exports.other)["records.jsonl"]}
    assert_invalid(verify_bytes(pack(spliced), exports, capsys), 1, "ledger")


def test_records_cut_at_random_bytes_name_the_cut_line(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(exports.full)
    data = members["records.jsonl"]
    rng = random.Random(20250224)
    offsets = {0, len(data) - 1, *rng.sample(range(1, len(data) - 1), 22)}
    for offset in sorted(offsets):
        cut = {**members, "records.jsonl": data[:offset]}
        verdict = verify_bytes(pack(cut), exports, capsys)
        assert_invalid(verdict, 1 + data[:offset].count(b"\n"))


# -- tampered manifest, signature, checkpoint, layout ------------------------------


def edited_manifest(members: Members, **changes: Any) -> Members:
    manifest = json.loads(members["manifest.json"])
    manifest.update(changes)
    return {**members, "manifest.json": canonical_bytes(manifest)}


@pytest.mark.parametrize(
    "changes",
    [
        {"created_at": "2020-01-01T00:00:00.000000Z"},
        {"head_hash": "ab" * 32},
        {"records_sha256": "00" * 32},
        {"origin": "evil.example/minerals"},
    ],
    ids=["created_at", "head_hash", "records_sha256", "origin"],
)
def test_an_edited_manifest_fails_its_signature(
    exports: Exports, capsys: pytest.CaptureFixture[str], changes: dict[str, Any]
) -> None:
    tampered = edited_manifest(unpack(exports.full), **changes)
    assert_invalid(verify_bytes(pack(tampered), exports, capsys), None, "signature")


def test_a_shortened_manifest_range_fails_its_signature(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    tampered = edited_manifest(unpack(exports.full), to_seq=SIZE - 1, count=SIZE - 1)
    tampered["manifest.json"] = tampered["manifest.json"].replace(
        b'"tree_size":36', b'"tree_size":35'
    )
    assert_invalid(verify_bytes(pack(tampered), exports, capsys), None, "signature")


def test_a_non_canonical_manifest_is_refused(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(exports.full)
    spaced = json.dumps(json.loads(members["manifest.json"]), indent=1).encode()
    verdict = verify_bytes(pack({**members, "manifest.json": spaced}), exports, capsys)
    assert_invalid(verdict, None, "canonical")


def test_a_removed_signature_is_refused(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(exports.full)
    del members["manifest.sig"]
    assert_invalid(verify_bytes(pack(members), exports, capsys), None, "manifest.sig")
    emptied = {**unpack(exports.full), "manifest.sig": b""}
    assert_invalid(verify_bytes(pack(emptied), exports, capsys), None, "64")


def test_a_signature_by_another_key_is_refused(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(exports.full)
    impostor = Signer.generate(exports.key.name)
    forged = {**members, "manifest.sig": impostor.sign(members["manifest.json"])}
    assert_invalid(verify_bytes(pack(forged), exports, capsys), None, "signature")


def test_a_bundle_re_signed_by_another_key_is_not_trusted(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(exports.full)
    impostor = Signer.generate(exports.key.name)
    resigned = edited_manifest(members, key_id=impostor.verifier.key_id_hex)
    resigned["manifest.sig"] = impostor.sign(resigned["manifest.json"])
    assert_invalid(verify_bytes(pack(resigned), exports, capsys), None, "trusted key")


def test_a_checkpoint_of_another_ledger_is_refused(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    members = {**unpack(exports.full), "checkpoint": exports.other_checkpoint}
    assert_invalid(verify_bytes(pack(members), exports, capsys), None, "origin")


def test_a_checkpoint_signed_by_another_key_is_refused(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(exports.full)
    note = members["checkpoint"].decode()
    body = note.split("\n\n")[0] + "\n"
    impostor = Signer.generate(exports.key.name)
    blob = base64.b64encode(impostor.verifier.key_id + impostor.sign(body.encode())).decode()
    forged = f"{body}\n\u2014 {impostor.name} {blob}\n".encode()
    assert_invalid(verify_bytes(pack({**members, "checkpoint": forged}), exports, capsys))


def test_a_bundle_of_another_ledger_is_refused_when_a_ledger_is_expected(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    verdict = verify_bytes(exports.other, exports, capsys, "--ledger", LEDGER)
    assert_invalid(verdict, None, "ledger")
    # Without the expectation it is what it says: a valid bundle of the other ledger.
    assert verify_bytes(exports.other, exports, capsys).result["ledger"] == OTHER


def re_signed(exports: Exports, members: Members, **changes: Any) -> Members:
    """A manifest edited and signed again with the real key: the checks past the signature."""
    edited = edited_manifest(members, **changes)
    return {**edited, "manifest.sig": exports.signer.sign(edited["manifest.json"])}


def test_a_false_inclusion_proof_fails_even_when_signed(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(exports.sub)
    proof = json.loads(members["manifest.json"])["head_inclusion_proof"]
    proof[0] = base64.b64encode(bytes(32)).decode()
    tampered = re_signed(exports, members, head_inclusion_proof=proof)
    assert_invalid(verify_bytes(pack(tampered), exports, capsys), 25, "inclusion proof")


def test_a_false_merkle_root_fails_even_when_signed(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    tampered = re_signed(
        exports, unpack(exports.full), merkle_root=base64.b64encode(bytes(32)).decode()
    )
    assert_invalid(verify_bytes(pack(tampered), exports, capsys), None, "merkle")


def test_a_checkpoint_of_another_size_fails_even_when_signed(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(exports.full)
    records = lines(members)[:-1]
    shorter = with_lines(members, records)
    tampered = re_signed(
        exports,
        shorter,
        to_seq=SIZE - 1,
        count=SIZE - 1,
        tree_size=SIZE - 1,
        head_hash=record_hash(records[-1]),
        records_sha256=hashlib.sha256(shorter["records.jsonl"]).hexdigest(),
        merkle_root=base64.b64encode(merkle_root(records)).decode(),
    )
    assert_invalid(verify_bytes(pack(tampered), exports, capsys), None, "tree size")


def merkle_root(records: list[bytes]) -> bytes:
    return root_from_leaves([leaf_hash(line) for line in records])


LayoutEdit = Callable[[Members], list[tuple[str, bytes]]]
LAYOUTS: dict[str, LayoutEdit] = {
    "reordered": lambda m: [(n, m[n]) for n in reversed(list(m))],
    "duplicated": lambda m: [*m.items(), ("checkpoint", m["checkpoint"])],
    "extra member": lambda m: [*m.items(), ("notes.txt", b"hello")],
    "missing pem": lambda m: [(n, c) for n, c in m.items() if n != "public_key.pem"],
    "missing checkpoint": lambda m: [(n, c) for n, c in m.items() if n != "checkpoint"],
    "renamed": lambda m: [("./" + n, c) for n, c in m.items()],
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_tar_layout_other_than_the_spec_is_refused(
    exports: Exports, capsys: pytest.CaptureFixture[str], layout: str
) -> None:
    members = LAYOUTS[layout](unpack(exports.full))
    assert_invalid(verify_bytes(pack(members), exports, capsys))


def test_a_linked_member_is_refused(exports: Exports, capsys: pytest.CaptureFixture[str]) -> None:
    members = unpack(exports.full)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if name == "checkpoint":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
                continue
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    assert_invalid(verify_bytes(out.getvalue(), exports, capsys), None, "regular file")


@pytest.mark.parametrize("garbage", [b"", b"not a tar at all" * 100, bytes(4096)])
def test_garbage_is_invalid_not_a_crash(
    exports: Exports, capsys: pytest.CaptureFixture[str], garbage: bytes
) -> None:
    assert_invalid(verify_bytes(garbage, exports, capsys))


def test_a_truncated_tar_file_is_invalid(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    for size in (100, 700, 3000, len(exports.full) // 2, len(exports.full) - 1100):
        assert_invalid(verify_bytes(exports.full[:size], exports, capsys))


# -- input errors ------------------------------------------------------------------


def test_unreadable_input_is_a_usage_error(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    for path in (exports.directory / "missing.tar", exports.directory):
        verdict = verify_path(path, exports, capsys)
        assert verdict.code == 2 and verdict.result["valid"] is None


def test_an_unknown_key_is_a_usage_error(
    exports: Exports, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in ("not-a-key", "name+00000000+AAAA", str(exports.directory / "nope.pem")):
        verdict = verify_bytes(exports.full, exports, capsys, key=key)
        assert verdict.code == 2 and "key" in verdict.result["error"]


def test_the_console_script_exits_without_a_traceback(exports: Exports) -> None:
    script = Path(sys.executable).parent / "ledger-verify"
    members = unpack(exports.full)
    records = lines(members)
    records[3] = edit_stance(records[3])
    path = exports.directory / "tampered.tar"
    path.write_bytes(pack(with_lines(members, records)))
    key = exports.key.to_string()
    done = subprocess.run(
        [str(script), "bundle", str(path), "--key", key], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert "seq 4" in " ".join(done.stdout.split())
    good = exports.directory / "good.tar"
    good.write_bytes(exports.full)
    done = subprocess.run(
        [str(script), "bundle", str(good), "--key", key], capture_output=True, text=True
    )
    assert done.returncode == 0 and "VALID" in done.stdout
    done = subprocess.run([str(script), "bundle"], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
