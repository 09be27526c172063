"""The export bundle of format §4: its members, in order, and its manifest.

A bundle is one POSIX tar file holding ``manifest.json`` (RFC 8785 canonical
JSON), ``manifest.sig`` (the raw 64-byte Ed25519 signature of those exact
bytes), ``records.jsonl``, ``checkpoint`` and ``public_key.pem``, then the optional
members of format §4.1, §8 and §4.2 (the source documents the records cite).
The manifest is the one signed statement that binds the rest together, so
``Manifest`` reads untrusted bytes strictly: exactly the format's members,
each of its type, in canonical form, and internally consistent (``count``,
``tree_size``, the documents list).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from ledger.core.canonical import canonical_bytes
from ledger.core.documents import SHA256_PATTERN, DocumentInfo
from ledger.core.errors import BundleInvalid, InputError
from ledger.core.hashing import HASH_SIZE
from ledger.core.jsonvalues import loads_strict
from ledger.core.records import LEDGER_NAME_PATTERN
from ledger.core.signing import KEY_NAME_PATTERN
from ledger.core.times import RECORDED_AT_PATTERN

__all__ = [
    "DOCUMENT_MANIFEST_MEMBERS",
    "FORMAT",
    "FORMATS",
    "FORMAT_ATTESTED",
    "FORMAT_AUTHORED",
    "FORMAT_DOCUMENTED",
    "MANIFEST_MEMBERS",
    "MAX_DOCUMENTED_MANIFEST_BYTES",
    "MAX_MANIFEST_BYTES",
    "MEMBERS",
    "SIGNATURE_SIZE",
    "TIMESTAMP_MEMBERS",
    "WITNESSED_MEMBERS",
    "Manifest",
    "document_member",
    "proof_from_text",
    "proof_text",
]

FORMAT = "ledger-export/1"
# format §10: version 2 is version 1 with room for the witnessed (§4.1) and
# timestamp (§8) members. A bundle carrying either is version 2, so a verifier
# that knows only version 1 refuses it by its format, not by a stray member;
# a bundle carrying neither stays version 1, readable by every verifier.
FORMAT_ATTESTED = "ledger-export/2"
# format §10: version 3 is version 2 whose records may carry author signatures
# (format §1.4). A bundle holding a signed record is version 3, so a verifier
# that knows only versions 1 and 2 refuses it by its format.
FORMAT_AUTHORED = "ledger-export/3"
# format §10: version 4 is version 3 whose records may cite source documents
# (format §1.3), listed in the manifest and carried (or declared left out) as
# ``documents/<sha256>`` members (format §4.2). A bundle whose records cite a
# document is version 4, so an older verifier refuses it by its format.
FORMAT_DOCUMENTED = "ledger-export/4"
FORMATS = (FORMAT, FORMAT_ATTESTED, FORMAT_AUTHORED, FORMAT_DOCUMENTED)
# format §4: the tar members, in this order.
MEMBERS = ("manifest.json", "manifest.sig", "records.jsonl", "checkpoint", "public_key.pem")
# format §4.1: after them, when the ledger has witnesses, the newest checkpoint a
# quorum of them cosigned at or below the bundle's size, and a consistency
# proof from it to the bundle's checkpoint. A bundle without them is as valid.
WITNESSED_MEMBERS = ("witnessed", "witnessed.proof")
# format §8: optional, last (after WITNESSED_MEMBERS when both are present), all
# three or none: the note of the newest timestamped checkpoint at or below the
# bundle's tree size, the consistency proof from it to the bundle's tree, and
# the TSA's reply.
TIMESTAMP_MEMBERS = ("timestamp.checkpoint", "timestamp.consistency", "timestamp.tsr")
MANIFEST_MEMBERS = frozenset(
    {
        "format",
        "ledger",
        "origin",
        "from_seq",
        "to_seq",
        "count",
        "records_sha256",
        "first_prev",
        "head_hash",
        "tree_size",
        "merkle_root",
        "key_id",
        "key_name",
        "created_at",
        "head_inclusion_proof",
    }
)
# format §4.2: the manifest members of version 4, beside MANIFEST_MEMBERS.
DOCUMENT_MANIFEST_MEMBERS = frozenset({"documents", "documents_included"})
SIGNATURE_SIZE = 64
# A manifest is a few hundred bytes plus at most 64 proof hashes.
MAX_MANIFEST_BYTES = 16 * 1024
# ... plus, in version 4, about 150 bytes per document listed.
MAX_DOCUMENTED_MANIFEST_BYTES = 16 * 1024 * 1024
_DOCUMENT_ENTRY = frozenset({"sha256", "size", "media_type"})
_MEDIA_TYPE = re.compile(r"\A[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+(; charset=[a-z0-9._:+-]+)?\Z")
# A proof in a tree of fewer than 2^63 leaves has at most 63 hashes.
_MAX_PROOF = 63
_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
_HEX8 = re.compile(r"\A[0-9a-f]{8}\Z")


def document_member(sha256: str) -> str:
    """The tar member of a source document (format §4.2)."""
    return f"documents/{sha256}"


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _hash_from_b64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise BundleInvalid(f"manifest {what} is not a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise BundleInvalid(f"manifest {what} is not base64") from None
    if len(raw) != HASH_SIZE or _b64(raw) != text:
        raise BundleInvalid(f"manifest {what} is not a 32-byte hash in canonical base64")
    return raw


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    ledger: str
    origin: str
    from_seq: int
    to_seq: int
    records_sha256: str
    first_prev: str
    head_hash: str
    merkle_root: bytes
    key_id: str
    key_name: str
    created_at: str
    head_inclusion_proof: tuple[bytes, ...] = ()
    format: str = FORMAT
    #: format §4.2 (version 4): the documents the records cite, by hash.
    documents: tuple[DocumentInfo, ...] = ()
    #: Whether their ``documents/<sha256>`` members follow (version 4).
    documents_included: bool = True

    @property
    def attested(self) -> bool:
        """Whether the bundle may carry witnessed and timestamp members (version 2 on)."""
        return self.format in (FORMAT_ATTESTED, FORMAT_AUTHORED, FORMAT_DOCUMENTED)

    @property
    def authored(self) -> bool:
        """Whether its records may carry author signatures (version 3 on)."""
        return self.format in (FORMAT_AUTHORED, FORMAT_DOCUMENTED)

    @property
    def documented(self) -> bool:
        """Whether its records may cite source documents (version 4)."""
        return self.format == FORMAT_DOCUMENTED

    @property
    def count(self) -> int:
        return self.to_seq - self.from_seq + 1

    @property
    def tree_size(self) -> int:
        # format §4: the bundle is tied to the tree that ends at its last record.
        return self.to_seq

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "ledger": self.ledger,
            "origin": self.origin,
            "from_seq": self.from_seq,
            "to_seq": self.to_seq,
            "count": self.count,
            "records_sha256": self.records_sha256,
            "first_prev": self.first_prev,
            "head_hash": self.head_hash,
            "tree_size": self.tree_size,
            "merkle_root": _b64(self.merkle_root),
            "key_id": self.key_id,
            "key_name": self.key_name,
            "created_at": self.created_at,
            "head_inclusion_proof": [_b64(h) for h in self.head_inclusion_proof],
            **(
                {
                    "documents": [info.to_dict() for info in self.documents],
                    "documents_included": self.documents_included,
                }
                if self.documented
                else {}
            ),
        }

    def to_bytes(self) -> bytes:
        """The exact bytes of ``manifest.json``: the bytes that are signed."""
        return canonical_bytes(self.to_dict())

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        """Read ``manifest.json`` strictly; raise ``BundleInvalid`` saying what is wrong."""
        if len(raw) > MAX_DOCUMENTED_MANIFEST_BYTES:
            raise BundleInvalid("manifest.json is too large")
        try:
            obj = loads_strict(raw)
        except InputError as e:
            raise BundleInvalid(f"manifest.json is not strict JSON: {e}") from None
        if not isinstance(obj, dict):
            raise BundleInvalid("manifest.json is not a JSON object")
        documented = obj.get("format") == FORMAT_DOCUMENTED
        if len(raw) > MAX_MANIFEST_BYTES and not documented:
            raise BundleInvalid("manifest.json is too large")
        members = MANIFEST_MEMBERS | DOCUMENT_MANIFEST_MEMBERS if documented else MANIFEST_MEMBERS
        missing = sorted(members - obj.keys())
        extra = sorted(obj.keys() - members)
        if missing or extra:
            faults = [
                f"{what} {'members' if len(names) > 1 else 'member'} {', '.join(names)}"
                for what, names in (("lacks the", missing), ("has the unexpected", extra))
                if names
            ]
            raise BundleInvalid(f"manifest.json {' and '.join(faults)}")
        if canonical_bytes(obj) != raw:
            raise BundleInvalid("manifest.json is not RFC 8785 canonical")
        manifest = cls._from_members(obj)
        # Derived members must agree with what they derive from.
        for name in ("count", "tree_size"):
            if obj[name] != getattr(manifest, name):
                raise BundleInvalid(f"manifest {name} {obj[name]} disagrees with from_seq/to_seq")
        return manifest

    @classmethod
    def _from_members(cls, obj: dict[str, Any]) -> Manifest:
        if obj["format"] not in FORMATS:
            raise BundleInvalid(
                f"manifest format is {obj['format']!r}, not one of {', '.join(map(repr, FORMATS))}"
            )
        for name in ("from_seq", "to_seq", "count", "tree_size"):
            value = obj[name]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise BundleInvalid(f"manifest {name} is not a positive integer")
        if obj["to_seq"] < obj["from_seq"]:
            raise BundleInvalid("manifest to_seq is before from_seq")
        strings = ("ledger", "origin", "records_sha256", "first_prev", "head_hash")
        for name in (*strings, "key_id", "key_name", "created_at"):
            if not isinstance(obj[name], str):
                raise BundleInvalid(f"manifest {name} is not a string")
        if not LEDGER_NAME_PATTERN.match(obj["ledger"]):
            raise BundleInvalid("manifest ledger is not a ledger name")
        if not obj["origin"] or "\n" in obj["origin"]:
            raise BundleInvalid("manifest origin is empty or spans lines")
        for name in ("records_sha256", "first_prev", "head_hash"):
            if not _HEX64.match(obj[name]):
                raise BundleInvalid(f"manifest {name} is not 64 lowercase hex digits")
        if not _HEX8.match(obj["key_id"]):
            raise BundleInvalid("manifest key_id is not 8 lowercase hex digits")
        if not KEY_NAME_PATTERN.match(obj["key_name"]):
            raise BundleInvalid("manifest key_name is not a key name")
        if not RECORDED_AT_PATTERN.match(obj["created_at"]):
            raise BundleInvalid("manifest created_at is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
        proof = obj["head_inclusion_proof"]
        if not isinstance(proof, list) or len(proof) > _MAX_PROOF:
            raise BundleInvalid("manifest head_inclusion_proof is not a list of hashes")
        return cls(
            ledger=obj["ledger"],
            origin=obj["origin"],
            from_seq=obj["from_seq"],
            to_seq=obj["to_seq"],
            records_sha256=obj["records_sha256"],
            first_prev=obj["first_prev"],
            head_hash=obj["head_hash"],
            merkle_root=_hash_from_b64(obj["merkle_root"], "merkle_root"),
            key_id=obj["key_id"],
            key_name=obj["key_name"],
            created_at=obj["created_at"],
            format=obj["format"],
            head_inclusion_proof=tuple(
                _hash_from_b64(h, f"head_inclusion_proof[{i}]") for i, h in enumerate(proof)
            ),
            **(_documents_of(obj) if obj["format"] == FORMAT_DOCUMENTED else {}),
        )


def _documents_of(obj: dict[str, Any]) -> dict[str, Any]:
    """format §4.2: ``documents`` (distinct, by hash) and ``documents_included``."""
    listed = obj["documents"]
    if not isinstance(listed, list) or not listed:
        raise BundleInvalid("manifest documents is not a non-empty list")
    documents: list[DocumentInfo] = []
    for index, entry in enumerate(listed):
        where = f"manifest documents[{index}]"
        if not isinstance(entry, dict) or entry.keys() != _DOCUMENT_ENTRY:
            raise BundleInvalid(f"{where} is not an object of sha256, size and media_type")
        sha256, size, media_type = entry["sha256"], entry["size"], entry["media_type"]
        if not isinstance(sha256, str) or not SHA256_PATTERN.match(sha256):
            raise BundleInvalid(f"{where}.sha256 is not 64 lowercase hex digits")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise BundleInvalid(f"{where}.size is not a positive integer")
        if not isinstance(media_type, str) or not _MEDIA_TYPE.match(media_type):
            raise BundleInvalid(f"{where}.media_type is not a media type")
        if documents and sha256 <= documents[-1].sha256:
            raise BundleInvalid(f"{where} is not in ascending order of sha256, without repeats")
        documents.append(DocumentInfo(sha256=sha256, size=size, media_type=media_type))
    included = obj["documents_included"]
    if not isinstance(included, bool):
        raise BundleInvalid("manifest documents_included is not true or false")
    return {"documents": tuple(documents), "documents_included": included}


def proof_text(proof: tuple[bytes, ...] | list[bytes]) -> bytes:
    """A consistency proof member (``witnessed.proof``, ``timestamp.consistency``):
    one base64 hash per line, each ending in a newline."""
    return b"".join(base64.b64encode(node) + b"\n" for node in proof)


def proof_from_text(raw: bytes, member: str = "witnessed.proof") -> list[bytes]:
    """Read a consistency proof ``member`` strictly; ``BundleInvalid`` saying what is wrong."""
    if not raw:
        return []
    if not raw.endswith(b"\n"):
        raise BundleInvalid(f"{member} does not end in a newline")
    lines = raw[:-1].split(b"\n")
    if len(lines) > _MAX_PROOF:
        raise BundleInvalid(f"{member} holds more hashes than any proof")
    proof = []
    for index, line in enumerate(lines, start=1):
        try:
            node = base64.b64decode(line, validate=True)
        except binascii.Error:
            raise BundleInvalid(f"{member} line {index} is not base64") from None
        if len(node) != HASH_SIZE or base64.b64encode(node) != line:
            raise BundleInvalid(f"{member} line {index} is not a hash in canonical base64")
        proof.append(node)
    return proof
