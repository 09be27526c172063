"""Author signatures (format §1.4): a desk's Ed25519 signature over the event it
sent, kept in the record's ``author`` member, and the registry of desks' keys
that ``author.registered`` and ``author.revoked`` records keep in the log.

The signed bytes are ``SIGNATURE_CONTEXT`` followed by the RFC 8785 form of
the record's members minus those the server assigns or that carry the
signature (``UNSIGNED_MEMBERS``): the ledger, the event id, type,
occurred_at, data and the optional party, topic and source. The ledger's
name and the id are among them, so a signature cannot be replayed as another
event, in this ledger or another one.

The server, every verifier and the snapshot fold apply the same rules here,
each record in seq order: an author is known from its ``author.registered``
record on until its ``author.revoked`` record, a name is registered at most
once at a time, and a signed record must name a known author, that author's
key id, and carry its key's signature over the record's signed bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.core.canonical import canonical_bytes
from ledger.core.signing import VerifierKey

__all__ = [
    "AUTHOR_NAME_PATTERN",
    "AUTHOR_REGISTERED",
    "AUTHOR_REVOKED",
    "AUTHOR_TYPES",
    "SIGNATURE_CONTEXT",
    "UNSIGNED_MEMBERS",
    "AuthorMark",
    "AuthorRegistry",
    "AuthorRuleBroken",
    "Registration",
    "sign_event",
    "signed_bytes",
    "signs",
]

AUTHOR_REGISTERED = "author.registered"
AUTHOR_REVOKED = "author.revoked"
AUTHOR_TYPES = frozenset({AUTHOR_REGISTERED, AUTHOR_REVOKED})
# Separates these signatures from every other use of a desk's key.
SIGNATURE_CONTEXT = b"negotiation-ledger author signature v1\n"
# A record's members that are not signed: the server assigns the first four,
# and ``author`` carries the signature itself.
UNSIGNED_MEMBERS = frozenset({"seq", "recorded_at", "actor", "prev", "author"})
# A desk's name: also the name of its verifier key (format §3), and written in
# every record it signs, so kept short and plain.
AUTHOR_NAME_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_KEY_ID = re.compile(r"\A[0-9a-f]{8}\Z")
SIGNATURE_SIZE = 64

Refusal = Literal["malformed", "unknown", "revoked", "key", "signature", "registered"]


class AuthorRuleBroken(Exception):
    """A record (or an event about to become one) breaks a rule of format §1.4.

    ``kind`` says which, so the server can answer with the right status and a
    verifier report it at the record's seq.
    """

    def __init__(self, kind: Refusal, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def signed_bytes(record: Mapping[str, Any]) -> bytes:
    """The bytes an author signs for ``record`` (a format §1 record or the event
    about to become one, with its ``ledger``): ``SIGNATURE_CONTEXT`` and the
    canonical form of its signed members."""
    signed = {name: value for name, value in record.items() if name not in UNSIGNED_MEMBERS}
    return SIGNATURE_CONTEXT + canonical_bytes(signed)


@dataclass(frozen=True, slots=True)
class AuthorMark:
    """A record's ``author`` member: who signed, with which key, and the signature."""

    name: str
    key_id: str  # 8 lowercase hex digits, format §3
    sig: bytes

    @classmethod
    def from_value(cls, value: Any) -> AuthorMark:
        """Read an ``author`` member; ``AuthorRuleBroken("malformed")`` names what is wrong."""

        def bad(why: str) -> AuthorRuleBroken:
            return AuthorRuleBroken("malformed", f"author {why}")

        if not isinstance(value, dict):
            raise bad("must be an object")
        if set(value) != {"name", "key_id", "sig"}:
            raise bad("must have exactly the members key_id, name and sig")
        name, key_id, sig = value["name"], value["key_id"], value["sig"]
        if not isinstance(name, str) or not AUTHOR_NAME_PATTERN.match(name):
            raise bad("name must be 1-64 letters, digits, '.', '_' or '-'")
        if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
            raise bad("key_id must be 8 lowercase hex digits")
        if not isinstance(sig, str):
            raise bad("sig must be a string")
        try:
            raw = base64.b64decode(sig, validate=True)
        except binascii.Error:
            raise bad("sig is not base64") from None
        if len(raw) != SIGNATURE_SIZE or base64.b64encode(raw).decode("ascii") != sig:
            raise bad(f"sig must be the padded base64 of {SIGNATURE_SIZE} bytes")
        return cls(name=name, key_id=key_id, sig=raw)

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "key_id": self.key_id,
            "sig": base64.b64encode(self.sig).decode("ascii"),
        }


def signs(public_key: bytes, author: bytes, message: bytes) -> bool:
    """Whether the ``author`` member (its canonical bytes) carries ``public_key``'s
    signature of ``message``: the check without the registry, for a pass that
    runs apart from it (the intake worker)."""
    try:
        mark = AuthorMark.from_value(orjson.loads(author))
        Ed25519PublicKey.from_public_bytes(public_key).verify(mark.sig, message)
    except (AuthorRuleBroken, InvalidSignature, ValueError):
        return False
    return True


def sign_event(
    private_key: Ed25519PrivateKey,
    name: str,
    ledger: str,
    event: Mapping[str, Any],
    *,
    key_id: str | None = None,
) -> dict[str, str]:
    """The ``author`` member desk ``name`` adds to ``event`` before posting it to ``ledger``.

    ``event`` must hold its ``id`` and state ``occurred_at`` as the record
    will (``YYYY-MM-DDTHH:MM:SSZ``): the signature covers the record's bytes,
    which is what a verifier recomputes.
    """
    if key_id is None:  # a signer of many events works it out once and passes it
        key_id = VerifierKey.from_public_key(name, private_key.public_key()).key_id_hex
    message = signed_bytes({**event, "ledger": ledger})
    return AuthorMark(name=name, key_id=key_id, sig=private_key.sign(message)).to_dict()


@dataclass(frozen=True, slots=True)
class Registration:
    """One registered author: its key, from the record that registered it on."""

    key: VerifierKey
    seq: int
    revoked_seq: int | None = None
    # The key loaded once: loading it cost as much as a verification.
    public: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        public = Ed25519PublicKey.from_public_bytes(self.key.public_key)
        object.__setattr__(self, "public", public)


def registered_key(data: Mapping[str, Any]) -> VerifierKey:
    """The key an ``author.registered`` record's ``data`` registers;
    ``AuthorRuleBroken("malformed")`` when it registers none."""
    name, text = data.get("name"), data.get("verifier_key")
    if not isinstance(name, str) or not AUTHOR_NAME_PATTERN.match(name):
        raise AuthorRuleBroken("malformed", "author.registered names no valid author name")
    if not isinstance(text, str):
        raise AuthorRuleBroken("malformed", "author.registered carries no verifier_key string")
    try:
        key = VerifierKey.from_string(text)
    except ValueError as e:
        raise AuthorRuleBroken("malformed", f"author.registered verifier_key: {e}") from None
    if key.name != name:
        raise AuthorRuleBroken(
            "malformed", f"author.registered verifier_key is named {key.name!r}, not {name!r}"
        )
    return key


class AuthorRegistry:
    """The authors of one ledger as its records up to some seq register them.

    Feed it every record in seq order (``see``); ``check`` a signed record
    before ``see`` of it. Holds one entry per author name ever registered.
    """

    def __init__(self) -> None:
        self.authors: dict[str, Registration] = {}

    def register(self, key: VerifierKey, seq: int) -> None:
        known = self.authors.get(key.name)
        if known is not None and known.revoked_seq is None:
            raise AuthorRuleBroken(
                "registered",
                f"author {key.name!r} is already registered (seq {known.seq}); "
                "revoke it before registering a new key",
            )
        self.authors[key.name] = Registration(key=key, seq=seq)

    def revoke(self, name: str, seq: int) -> None:
        known = self.authors.get(name)
        if known is None or known.revoked_seq is not None:
            raise AuthorRuleBroken("unknown", f"author {name!r} is not registered")
        self.authors[name] = Registration(key=known.key, seq=known.seq, revoked_seq=seq)

    def see(self, seq: int, type: str, data: Mapping[str, Any]) -> None:
        """Apply the record of ``type`` at ``seq`` (registrations and revocations count)."""
        if type == AUTHOR_REGISTERED:
            self.register(registered_key(data), seq)
        elif type == AUTHOR_REVOKED:
            name = data.get("name")
            if not isinstance(name, str):
                raise AuthorRuleBroken("malformed", "author.revoked names no author")
            self.revoke(name, seq)

    def key_for(self, mark: AuthorMark) -> Registration:
        """The registration ``mark`` signs under; ``AuthorRuleBroken`` if none holds now."""
        known = self.authors.get(mark.name)
        if known is None:
            raise AuthorRuleBroken("unknown", f"author {mark.name!r} is not registered")
        if known.revoked_seq is not None:
            raise AuthorRuleBroken(
                "revoked", f"author {mark.name!r} was revoked (seq {known.revoked_seq})"
            )
        if known.key.key_id_hex != mark.key_id:
            raise AuthorRuleBroken(
                "key",
                f"author {mark.name!r} is registered with key {known.key.key_id_hex}, "
                f"not {mark.key_id}",
            )
        return known

    def check(
        self,
        mark: AuthorMark,
        message: bytes | Callable[[], bytes],
        *,
        checked_with: bytes | None = None,
    ) -> Registration:
        """``mark`` is a known author's signature over ``message`` (or what it
        returns, asked only when needed); else ``AuthorRuleBroken``.

        ``checked_with``: a public key the signature was already verified with,
        over the same message, elsewhere (``signs``); when it is the registered
        key, the verification is not repeated.
        """
        known = self.key_for(mark)
        if checked_with is not None and checked_with == known.key.public_key:
            return known
        if callable(message):
            message = message()
        try:
            known.public.verify(mark.sig, message)
        except InvalidSignature:
            raise AuthorRuleBroken(
                "signature",
                f"the signature is not author {mark.name!r}'s over the event's signed bytes",
            ) from None
        return known
