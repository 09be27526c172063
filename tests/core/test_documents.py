"""Source documents in the core (docs/documents.md): the media types held, the
leading bytes a type demands, the documents events cite, and the headers a
document is served with."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core.documents import (
    ACCEPTED,
    DocumentInfo,
    check_leading_bytes,
    cited_documents,
    document_paths,
    media_type_for,
    media_type_of,
    resolve_document_paths,
    serving_headers,
)
from ledger.core.errors import InvalidDocument, InvalidEvent, UnsupportedMediaType
from ledger.core.records import EventDraft

SHA = "ab" * 32
OTHER = "cd" * 32


@pytest.mark.parametrize(
    ("sent", "held"),
    [
        ("text/html", "text/html"),
        ("TEXT/HTML; Charset=UTF-8", "text/html; charset=utf-8"),
        ('text/plain; format=flowed; charset="ISO-8859-1"', "text/plain; charset=iso-8859-1"),
        ("application/pdf; charset=utf-8", "application/pdf"),
        ("image/png", "image/png"),
        (" image/jpeg ", "image/jpeg"),
        ("message/rfc822", "message/rfc822"),
    ],
)
def test_an_accepted_type_is_held_lower_case_with_a_text_charset_only(sent: str, held: str) -> None:
    assert media_type_of(sent) == held


@pytest.mark.parametrize(
    "sent",
    [None, "", "  ", "application/json", "image/svg+xml", "text/html+x", "application/x-pdf"],
)
def test_any_other_type_is_refused_naming_the_header(sent: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as refused:
        media_type_of(sent)
    assert refused.value.field == "Content-Type"


def test_a_charset_that_is_no_charset_name_is_refused() -> None:
    with pytest.raises(UnsupportedMediaType, match="charset"):
        media_type_of("text/html; charset=<script>")


@pytest.mark.parametrize(
    ("media_type", "head"),
    [
        ("application/pdf", b"%PDF-1.7\n"),
        ("image/png", b"\x89PNG\r\n\x1a\n\x00\x00"),
        ("image/jpeg", b"\xff\xd8\xff\xe0"),
        ("text/html", b"anything"),
        ("message/rfc822", b"From: a@example.org"),
    ],
)
def test_bytes_that_start_as_their_type_demands_pass(media_type: str, head: bytes) -> None:
    check_leading_bytes(media_type, head)


@given(head=st.binary(max_size=16), media_type=st.sampled_from(["application/pdf", "image/png"]))
def test_a_pdf_or_png_must_start_with_its_signature(head: bytes, media_type: str) -> None:
    signature = b"%PDF-" if media_type == "application/pdf" else b"\x89PNG\r\n\x1a\n"
    if head.startswith(signature):
        check_leading_bytes(media_type, head)
    else:
        with pytest.raises(InvalidDocument):
            check_leading_bytes(media_type, head)


def draft(source: dict[str, object] | None, *, kind: str = "position.stated") -> EventDraft:
    return EventDraft.of(
        id="0193f0c2-5a1e-7c4d-8b2a-3e4f5a6b7c8e",
        type=kind,
        occurred_at="2025-02-24T00:00:00Z",
        data={"stance": "demand", "summary": "s"},
        source=source,
    )


def correction(source: dict[str, object]) -> EventDraft:
    return EventDraft.of(
        id="0193f0c2-5a1e-7c4d-8b2a-3e4f5a6b7c8f",
        type="record.corrected",
        occurred_at="2025-02-25T00:00:00Z",
        data={"target_seq": 1, "reason": "r", "changes": {"source": source}},
    )


def test_the_documents_events_cite_are_found_with_the_field_an_error_names() -> None:
    cited = {"name": "NYT", "kind": "media", "document": SHA}
    assert cited_documents([draft(cited)], batch=False) == [("source.document", SHA)]
    batch = [
        draft(None),
        draft({"name": "x", "kind": "document"}),
        correction({**cited, "document": OTHER}),
        draft(cited),
    ]
    assert cited_documents(batch, batch=True) == [
        ("[2].data.changes.source.document", OTHER),
        ("[3].source.document", SHA),
    ]


@given(name=st.text(max_size=40))
def test_text_that_spells_the_member_is_not_a_citation(name: str) -> None:
    source = {"name": f'"document":{name}"document": "{SHA}"', "kind": "document"}
    assert cited_documents([draft(source), correction(source)], batch=True) == []


def info(media_type: str) -> DocumentInfo:
    return DocumentInfo(sha256=SHA, size=10, media_type=media_type)


def test_html_is_a_sandboxed_download_unless_the_reader_asks_to_view_it() -> None:
    headers = serving_headers(info("text/html; charset=utf-8"), view=False, private=False)
    assert headers["Content-Disposition"] == f'attachment; filename="{SHA}.html"'
    assert headers["Content-Security-Policy"].startswith("sandbox;")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "script" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["ETag"] == f'"{SHA}"'
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    viewed = serving_headers(info("text/html"), view=True, private=True)
    assert viewed["Content-Disposition"].startswith("inline;")
    assert viewed["Content-Security-Policy"] == headers["Content-Security-Policy"]
    assert viewed["Cache-Control"].startswith("private,")


@pytest.mark.parametrize("media_type", sorted(ACCEPTED))
def test_every_type_but_pdf_is_served_in_the_sandbox(media_type: str) -> None:
    headers = serving_headers(info(media_type), view=False, private=False)
    assert ("Content-Security-Policy" in headers) == (media_type != "application/pdf")
    inline = media_type not in ("text/html", "message/rfc822")
    assert headers["Content-Disposition"].startswith("inline" if inline else "attachment")
    assert headers["Content-Disposition"].endswith(f'.{ACCEPTED[media_type]}"')


def test_document_paths_are_replaced_by_the_hashes_of_the_files_uploaded() -> None:
    event = {"type": "position.stated", "source": {"name": "AP", "document_path": "a.html"}}
    fix = {
        "type": "record.corrected",
        "data": {"changes": {"source": {"name": "AP", "document_path": "b.pdf"}}},
        "source": {"name": "AP", "document_path": "c.txt"},
    }
    assert document_paths(event) == ["a.html"]
    assert document_paths(fix) == ["c.txt", "b.pdf"]
    uploaded = {"a.html": SHA, "b.pdf": OTHER, "c.txt": SHA}.__getitem__
    assert resolve_document_paths(event, uploaded) == {
        "type": "position.stated",
        "source": {"name": "AP", "document": SHA},
    }
    resolved = resolve_document_paths(fix, uploaded)
    assert resolved["data"]["changes"]["source"] == {"name": "AP", "document": OTHER}
    assert resolved["source"] == {"name": "AP", "document": SHA}
    # The caller's events are left as they were.
    assert event["source"] == {"name": "AP", "document_path": "a.html"}
    assert "document_path" in fix["data"]["changes"]["source"]  # type: ignore[index]
    plain = {"type": "position.stated", "source": {"name": "AP"}}
    assert resolve_document_paths(plain, uploaded) is plain


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ({"document_path": ""}, "path of a local file"),
        ({"document_path": 7}, "path of a local file"),
        ({"document_path": "a.pdf", "document": SHA}, "not both"),
    ],
)
def test_a_document_path_that_cannot_be_resolved_is_refused(
    source: dict[str, object], words: str
) -> None:
    with pytest.raises(InvalidEvent, match=words) as refused:
        document_paths({"type": "position.stated", "source": source})
    assert refused.value.field == "source.document_path"


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("a.HTML", "text/html"),
        ("x.htm", "text/html"),
        ("s.jpeg", "image/jpeg"),
        ("m.eml", "message/rfc822"),
    ],
)
def test_a_local_file_s_media_type_comes_from_its_extension(name: str, media_type: str) -> None:
    assert media_type_for(name) == media_type


@pytest.mark.parametrize("name", ["notes.docx", "README", "archive.html.gz"])
def test_a_file_of_no_held_type_is_refused(name: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        media_type_for(name)
