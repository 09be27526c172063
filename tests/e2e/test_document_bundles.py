"""Source documents in export bundles (format §4.2), through ``ledger-verify``:
carried and rehashed, or declared left out, and every tampering named.

Bundles come from ``ledger.exporter.write_bundle`` on a SQLite runtime (the
tampering is of files); ``tests/storage/test_documents.py`` holds the store
to the same bytes on both databases.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ledger.config import Settings
from ledger.core.bundle import FORMAT_AUTHORED, FORMAT_DOCUMENTED
from ledger.core.canonical import canonical_bytes
from ledger.core.documents import DocumentInfo
from ledger.core.signing import Signer, VerifierKey
from ledger.exporter import write_bundle
from ledger.integrity import check_ledger
from ledger.runtime import Runtime
from ledger.store.documents import PART_BYTES
from tests.conftest import ORIGIN, position
from tests.e2e.test_tamper_bundle import Exports, assert_invalid, pack, unpack, verify_bytes

LEDGER = "archive"
PAGE = b"<!doctype html><p>Washington wants half of the revenue.</p>"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * (PART_BYTES // 128)  # two parts and more
SHA_PAGE = hashlib.sha256(PAGE).hexdigest()
SHA_PDF = hashlib.sha256(PDF).hexdigest()


@dataclass(frozen=True, slots=True)
class Bundles:
    carried: bytes
    left_out: bytes
    before_citations: bytes  # records 1-2: no citation yet
    exports: Exports


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bundles]:
    directory = tmp_path_factory.mktemp("document-bundles")
    settings = Settings(
        database_url=f"sqlite:///{directory / 'ledger.db'}", data_dir=directory, origin=ORIGIN
    )
    runtime = Runtime.start(settings)
    try:
        service = runtime.service
        service.create_ledger(LEDGER)
        for data, media_type in ((PAGE, "text/html"), (PDF, "application/pdf")):
            info = DocumentInfo(
                sha256=hashlib.sha256(data).hexdigest(), size=len(data), media_type=media_type
            )
            parts = [data[at : at + PART_BYTES] for at in range(0, len(data), PART_BYTES)]
            service.put_document(LEDGER, info, parts)
        cite = {"name": "The New York Times", "kind": "media"}
        events = [
            position(),
            position(party="UA"),
            position(source={**cite, "document": SHA_PAGE}),  # seq 3
            position(party="UA", source={**cite, "document": SHA_PAGE}),
            {
                "type": "record.corrected",
                "occurred_at": "2025-02-25",
                "data": {
                    "target_seq": 3,
                    "reason": "the PDF is the full text",
                    "changes": {"source": {**cite, "document": SHA_PDF}},
                },
            },  # seq 5
        ]
        for event in events:
            service.append(LEDGER, json.dumps(event).encode(), actor="tester")
        report = check_ledger(runtime, LEDGER)
        assert report.valid, report.reason
        assert any("2 source documents rehashed" in check for check in report.checks)
        made = {}
        for name, to_seq, with_documents in (
            ("carried", None, True),
            ("left_out", None, False),
            ("before", 2, True),
        ):
            out = io.BytesIO()
            write_bundle(service, LEDGER, out, to_seq=to_seq, with_documents=with_documents)
            made[name] = out.getvalue()
        signer: Signer = runtime.keyring.primary()
        key: VerifierKey = signer.verifier
        yield Bundles(
            carried=made["carried"],
            left_out=made["left_out"],
            before_citations=made["before"],
            exports=Exports(
                full=made["carried"],
                sub=made["before"],
                other=made["left_out"],
                other_checkpoint=b"",
                key=key,
                signer=signer,
                directory=Path(directory),
            ),
        )
    finally:
        runtime.close()


def manifest_of(bundle: bytes) -> dict[str, object]:
    manifest: dict[str, object] = json.loads(unpack(bundle)["manifest.json"])
    return manifest


def resign(members: dict[str, bytes], signer: Signer, **changes: object) -> dict[str, bytes]:
    """The manifest with ``changes``, signed again by the ledger's own key: what
    only the server could make, to reach the checks after the signature."""
    manifest = {**json.loads(members["manifest.json"]), **changes}
    raw = canonical_bytes(manifest)
    return {**members, "manifest.json": raw, "manifest.sig": signer.sign(raw)}


def test_a_bundle_citing_documents_carries_them_and_verifies(
    bundles: Bundles, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = manifest_of(bundles.carried)
    assert manifest["format"] == FORMAT_DOCUMENTED
    assert manifest["documents_included"] is True
    assert manifest["documents"] == sorted(
        [
            {"sha256": SHA_PAGE, "size": len(PAGE), "media_type": "text/html"},
            {"sha256": SHA_PDF, "size": len(PDF), "media_type": "application/pdf"},
        ],
        key=lambda entry: entry["sha256"],
    )
    members = unpack(bundles.carried)
    assert list(members)[-2:] == [f"documents/{sha}" for sha in sorted((SHA_PAGE, SHA_PDF))]
    assert members[f"documents/{SHA_PDF}"] == PDF
    verdict = verify_bytes(bundles.carried, bundles.exports, capsys)
    assert verdict.code == 0, verdict.result
    assert any(
        "the 2 the records cite are listed" in check and "hash to its name" in check
        for check in verdict.result["checks"]
    ), verdict.result["checks"]


def test_documents_left_out_are_listed_and_the_verdict_says_they_were_not_checked(
    bundles: Bundles, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = manifest_of(bundles.left_out)
    assert manifest["documents_included"] is False
    assert len(manifest["documents"]) == 2  # type: ignore[arg-type]
    assert not any(name.startswith("documents/") for name in unpack(bundles.left_out))
    verdict = verify_bytes(bundles.left_out, bundles.exports, capsys)
    assert verdict.code == 0, verdict.result
    assert any("NOT checked" in check for check in verdict.result["checks"])


def test_a_range_citing_nothing_stays_an_older_version(bundles: Bundles) -> None:
    manifest = manifest_of(bundles.before_citations)
    assert manifest["format"] != FORMAT_DOCUMENTED
    assert "documents" not in manifest


def test_an_edited_document_is_named_at_the_first_record_citing_it(
    bundles: Bundles, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(bundles.carried)
    name = f"documents/{SHA_PAGE}"
    members[name] = members[name].replace(b"half", b"none")
    assert_invalid(verify_bytes(pack(members), bundles.exports, capsys), 3, "hash to")
    members[name] = PAGE + b" "
    assert_invalid(verify_bytes(pack(members), bundles.exports, capsys), 3, "bytes")


def test_a_missing_extra_or_reordered_document_member_is_refused(
    bundles: Bundles, capsys: pytest.CaptureFixture[str]
) -> None:
    members = list(unpack(bundles.carried).items())
    assert_invalid(verify_bytes(pack(members[:-1]), bundles.exports, capsys), None, "expected")
    swapped = [*members[:-2], members[-1], members[-2]]
    assert_invalid(verify_bytes(pack(swapped), bundles.exports, capsys), None, "expected")
    extra = [*members, ("documents/" + "0" * 64, b"x")]
    assert_invalid(verify_bytes(pack(extra), bundles.exports, capsys), None, "unexpected")
    left_out = list(unpack(bundles.left_out).items())
    smuggled = [*left_out, members[-1]]
    assert_invalid(verify_bytes(pack(smuggled), bundles.exports, capsys), None, "unexpected")


def test_a_manifest_that_lists_other_documents_than_the_records_cite_is_invalid(
    bundles: Bundles, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(bundles.carried)
    listed = manifest_of(bundles.carried)["documents"]
    assert isinstance(listed, list)
    page = next(entry for entry in listed if entry["sha256"] == SHA_PAGE)
    without_page = [entry for entry in listed if entry["sha256"] != SHA_PAGE]
    tampered = resign(members, bundles.exports.signer, documents=without_page)
    del tampered[f"documents/{SHA_PAGE}"]
    assert_invalid(verify_bytes(pack(tampered), bundles.exports, capsys), 3, "does not list")
    stray = {"sha256": "f" * 64, "size": 1, "media_type": "text/plain"}
    listing = sorted([page, *without_page, stray], key=lambda entry: str(entry["sha256"]))
    tampered = resign(members, bundles.exports.signer, documents=listing)
    assert_invalid(verify_bytes(pack(tampered), bundles.exports, capsys), None, "no record")


def test_a_citation_in_an_older_format_is_refused(
    bundles: Bundles, capsys: pytest.CaptureFixture[str]
) -> None:
    members = unpack(bundles.left_out)
    manifest = json.loads(members["manifest.json"])
    del manifest["documents"], manifest["documents_included"]
    raw = canonical_bytes({**manifest, "format": FORMAT_AUTHORED})
    older = {**members, "manifest.json": raw, "manifest.sig": bundles.exports.signer.sign(raw)}
    assert_invalid(verify_bytes(pack(older), bundles.exports, capsys), 3, "only version 4")
