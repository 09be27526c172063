"""Source documents (docs/documents.md, format §1.3): what a ledger holds as
evidence of a source, how records cite it, and how it is served.

A document is named by the SHA-256 of its bytes, so a record that cites
one (``source.document``) binds exactly those bytes, and the chain and the
Merkle tree cover the binding. Serving headers keep an archived page from
running in the ledger's origin: a page is inert data, never an app.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ledger.core.errors import InvalidDocument, InvalidEvent, UnsupportedMediaType
from ledger.core.jsonvalues import format_path
from ledger.core.records import EventDraft, Record

__all__ = [
    "ACCEPTED",
    "DOCUMENT_MARK",
    "LEADING_BYTES",
    "SHA256_PATTERN",
    "DocumentInfo",
    "check_leading_bytes",
    "cited_documents",
    "document_paths",
    "documents_cited",
    "media_type_for",
    "media_type_of",
    "record_documents",
    "resolve_document_paths",
    "serving_headers",
]

SHA256_PATTERN = re.compile(r"\A[0-9a-f]{64}\Z", re.ASCII)
# The canonical bytes of a record, a source or an event's data hold these
# only where a source cites a document: a string holding them has its quotes
# escaped. Lines without them need not be parsed to find citations.
DOCUMENT_MARK = b'"document":'

# The media types a ledger holds, with the file extension a download gets.
ACCEPTED: dict[str, str] = {
    "text/html": "html",
    "text/plain": "txt",
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "message/rfc822": "eml",
}
# Types whose text a charset parameter says how to read; kept with the type.
_CHARSET_TYPES = frozenset({"text/html", "text/plain"})
_CHARSET = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._:+-]{0,39}\Z", re.ASCII)
_TOKEN = re.compile(r"\A[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+\Z", re.ASCII)

# Formats with a fixed signature: bytes that do not start with it are not
# of the type they were sent as (RFC 8118 §3 for PDF, PNG §5.2, JPEG's SOI
# marker followed by a marker's 0xFF).
_LEADING: dict[str, tuple[bytes, str]] = {
    "application/pdf": (b"%PDF-", "a PDF file starts with %PDF-"),
    "image/png": (b"\x89PNG\r\n\x1a\n", "a PNG image starts with the PNG signature"),
    "image/jpeg": (b"\xff\xd8\xff", "a JPEG image starts with FF D8 FF"),
}
#: How many leading bytes ``check_leading_bytes`` needs.
LEADING_BYTES = max(len(magic) for magic, _ in _LEADING.values())

# Whatever a document is, it loads nothing and runs nothing: no script, no
# plugin, no form, no request to anywhere (an archived page's images and
# styles from other sites stay unloaded, so the page shows what was
# archived and tells no third party who reads it).
_SANDBOX_POLICY = (
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:"
)
# Types a browser would render as an active document (markup, or a message
# whose parts may be markup): a download unless the reader asks to view it,
# and then only in the sandbox above.
_ACTIVE = frozenset({"text/html", "message/rfc822"})
# A year: the bytes behind a hash never change.
_MAX_AGE = 31_536_000


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentInfo:
    """A document a ledger holds: its name (SHA-256, hex), size and media type."""

    sha256: str
    size: int
    media_type: str

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "media_type": self.media_type}

    @property
    def essence(self) -> str:
        """The media type without parameters: ``text/html``."""
        return self.media_type.partition(";")[0]


def media_type_of(content_type: str | None) -> str:
    """The media type a document sent with ``content_type`` is held as:
    lower-case type/subtype, plus a ``charset`` parameter for text; or 415."""
    if not content_type or not content_type.strip():
        raise UnsupportedMediaType(
            f"send the document's media type; accepted: {', '.join(ACCEPTED)}",
            field="Content-Type",
        )
    essence, _, params = content_type.partition(";")
    essence = essence.strip().lower()
    if essence not in ACCEPTED:
        shown = essence if _TOKEN.match(essence) else "this media type"
        raise UnsupportedMediaType(
            f"{shown} is not held; accepted: {', '.join(ACCEPTED)}", field="Content-Type"
        )
    charset = None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() != "charset":
            continue
        value = value.strip().strip('"')
        if not _CHARSET.match(value):
            raise UnsupportedMediaType(
                "the charset parameter must be a charset name such as utf-8",
                field="Content-Type",
            )
        charset = value.lower()
    if charset is not None and essence in _CHARSET_TYPES:
        return f"{essence}; charset={charset}"
    return essence


# A local file's media type, by its name's extension (``document_path`` in
# ``ledger import`` and the client library).
_EXTENSIONS = {
    ".html": "text/html",
    ".htm": "text/html",
    ".txt": "text/plain",
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".eml": "message/rfc822",
}


def media_type_for(filename: str) -> str:
    """The media type a local file is uploaded as, by its extension; or 415."""
    dot = filename.rfind(".")
    media_type = _EXTENSIONS.get(filename[dot:].lower()) if dot >= 0 else None
    if media_type is None:
        raise UnsupportedMediaType(
            f"cannot tell the media type of {filename!r}: name it {', '.join(sorted(_EXTENSIONS))}",
            field="document_path",
        )
    return media_type


def check_leading_bytes(media_type: str, head: bytes) -> None:
    """Refuse (422) bytes that cannot be of ``media_type``: a PDF, PNG or JPEG
    must start with its signature (``head``: the first ``LEADING_BYTES`` or all)."""
    leading = _LEADING.get(media_type.partition(";")[0])
    if leading is not None and not head.startswith(leading[0]):
        raise InvalidDocument(f"the bytes are not {media_type}: {leading[1]}", field="Content-Type")


def cited_documents(drafts: Iterable[EventDraft], *, batch: bool) -> list[tuple[str, str]]:
    """``(field, sha256)`` of every document the events cite: in their
    ``source``, and in the ``source`` a ``record.corrected`` puts in place.
    ``field`` is the path an error names (``[2].source.document``)."""
    cited: list[tuple[str, str]] = []
    for index, draft in enumerate(drafts):
        at: tuple[str | int, ...] = (index,) if batch else ()
        # A cheap test before decoding (see DOCUMENT_MARK).
        if draft.source_json is not None and DOCUMENT_MARK in draft.source_json:
            source = draft.source or {}
            if isinstance(source.get("document"), str):
                cited.append((format_path((*at, "source", "document")), source["document"]))
        if draft.type == "record.corrected" and DOCUMENT_MARK in draft.data_json:
            changes = draft.data.get("changes")
            replaced = changes.get("source") if isinstance(changes, dict) else None
            if isinstance(replaced, dict) and isinstance(replaced.get("document"), str):
                path = (*at, "data", "changes", "source", "document")
                cited.append((format_path(path), replaced["document"]))
    return cited


def record_documents(record: Record) -> list[str]:
    """The documents a stored record cites: in its ``source``, and, for a
    ``record.corrected``, in the ``source`` it puts in place."""
    return documents_cited(record.type, record.source, record.data)


def documents_cited(kind: object, source: object, data: object) -> list[str]:
    """``record_documents`` of a record's ``type``, ``source`` and ``data`` members."""
    cited: list[str] = []
    replaced = None
    if kind == "record.corrected" and isinstance(data, dict):
        changes = data.get("changes")
        replaced = changes.get("source") if isinstance(changes, dict) else None
    for cites in (source, replaced):
        if isinstance(cites, dict) and isinstance(cites.get("document"), str):
            cited.append(cites["document"])
    return cited


def _path_sources(event: dict[str, Any]) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """The sources of ``event`` that give a ``document_path``, with where they are."""
    found: list[tuple[tuple[str, ...], dict[str, Any]]] = []
    source = event.get("source")
    if isinstance(source, dict) and "document_path" in source:
        found.append((("source",), source))
    data = event.get("data")
    if event.get("type") == "record.corrected" and isinstance(data, dict):
        changes = data.get("changes")
        replaced = changes.get("source") if isinstance(changes, dict) else None
        if isinstance(replaced, dict) and "document_path" in replaced:
            found.append((("data", "changes", "source"), replaced))
    return found


def document_paths(event: object) -> list[str]:
    """The local files an event's sources name as ``document_path`` (a member of
    no record: ``ledger import`` and the client library upload the file and put
    its hash in ``document``); 422 for a ``document_path`` that is not a path,
    or given beside ``document``."""
    if not isinstance(event, dict):
        return []
    paths: list[str] = []
    for at, source in _path_sources(event):
        field = format_path((*at, "document_path"))
        path = source["document_path"]
        if not isinstance(path, str) or not path:
            raise InvalidEvent("must be the path of a local file", field=field)
        if "document" in source:
            raise InvalidEvent("give document or document_path, not both", field=field)
        paths.append(path)
    return paths


def resolve_document_paths(event: dict[str, Any], uploaded: Callable[[str], str]) -> dict[str, Any]:
    """``event`` with each ``document_path`` replaced by ``document``: the hash
    ``uploaded(path)`` gives for the file. The caller's event is not changed."""
    if not _path_sources(event):
        return event
    document_paths(event)  # refuses what cannot be resolved

    def resolved(source: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in source.items() if k != "document_path"}
        out["document"] = uploaded(source["document_path"])
        return out

    out = dict(event)
    for at, source in _path_sources(event):
        if at == ("source",):
            out["source"] = resolved(source)
        else:
            data = out["data"]
            changes = {**data["changes"], "source": resolved(source)}
            out["data"] = {**data, "changes": changes}
    return out


def serving_headers(info: DocumentInfo, *, view: bool, private: bool) -> dict[str, str]:
    """The headers a document is served with (docs/documents.md).

    ``view``: the reader asked to see an active document (HTML, a message)
    in the browser rather than download it; it still gets the sandbox.
    ``private``: the ledger is not public, so no shared cache may keep it.
    """
    essence = info.essence
    filename = f"{info.sha256}.{ACCEPTED.get(essence, 'bin')}"
    inline = essence not in _ACTIVE or view
    headers = {
        "ETag": f'"{info.sha256}"',
        "Cache-Control": f"{'private' if private else 'public'}, max-age={_MAX_AGE}, immutable",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{filename}"',
        "Cross-Origin-Resource-Policy": "same-origin",
        "Referrer-Policy": "no-referrer",
        # Chromium's and Firefox's PDF viewers do not run in a sandboxed
        # document; they run outside the page's origin in any case.
        **({} if essence == "application/pdf" else {"Content-Security-Policy": _SANDBOX_POLICY}),
    }
    return headers
