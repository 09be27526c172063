"""Who may do what: bearer tokens, their scopes, and the one policy every route asks.

Scopes (a token holds one or more):

    read            read every ledger, public or not
    read:LEDGER     read that ledger (public ledgers need no token at all)
    append          append any event to any ledger (and read)
    append:PARTY    append only events whose ``party`` is PARTY (and read)
    admin           everything: create ledgers, rotate keys, manage tokens

Tokens are random, shown once, and stored only as their SHA-256, so the
database never holds a usable credential.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from ledger.core.errors import (
    AuthorNotAllowed,
    AuthorSignatureRejected,
    Forbidden,
    InvalidParameter,
    Unauthenticated,
)
from ledger.core.records import LEDGER_NAME_PATTERN

__all__ = [
    "ANONYMOUS",
    "PUBLIC",
    "TOKEN_NAME_PATTERN",
    "Principal",
    "Scope",
    "hash_token",
    "new_token",
    "parse_scopes",
]

Action = Literal["read", "append", "admin"]
TOKEN_PREFIX = "lgr_"
# 32 random bytes, URL-safe base64 without padding: 43 characters.
_TOKEN = re.compile(r"\Algr_[A-Za-z0-9_-]{43}\Z")
# A token's name becomes the ``actor`` of every record it appends.
TOKEN_NAME_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_PARTY = re.compile(r"\A[A-Z][A-Z0-9-]{0,31}\Z")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def is_well_formed(token: str) -> bool:
    return _TOKEN.match(token) is not None


@dataclass(frozen=True, slots=True)
class Scope:
    action: Action
    target: str | None = None  # a ledger for read, a party for append

    def __str__(self) -> str:
        return self.action if self.target is None else f"{self.action}:{self.target}"

    @classmethod
    def parse(cls, text: str) -> Scope:
        action, colon, target = text.partition(":")
        if action == "admin" and not colon:
            return cls("admin")
        if action == "read" and (not colon or LEDGER_NAME_PATTERN.match(target)):
            return cls("read", target or None)
        if action == "append" and (not colon or _PARTY.match(target)):
            return cls("append", target or None)
        raise InvalidParameter(
            f"{text!r} is not a scope: use read, read:LEDGER, append, append:PARTY or admin",
            field="scope",
        )


def parse_scopes(texts: Iterable[str]) -> tuple[Scope, ...]:
    """Scopes from repeated or space/comma-separated values, deduplicated, in order."""
    words = [w for text in texts for w in re.split(r"[\s,]+", text) if w]
    if not words:
        raise InvalidParameter("a token needs at least one scope", field="scope")
    return tuple(dict.fromkeys(Scope.parse(w) for w in words))


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a token's name and scopes, or nobody (``PUBLIC``)."""

    name: str
    scopes: tuple[Scope, ...]
    authenticated: bool = True
    # The author (format §1.4) whose signature every event it appends must carry.
    author: str | None = None

    @property
    def is_admin(self) -> bool:
        return any(s.action == "admin" for s in self.scopes)

    def may_read(self, ledger: str, *, public_read: bool) -> bool:
        if public_read or self.is_admin:
            return True
        return any(
            s.action == "append" or (s.action == "read" and s.target in (None, ledger))
            for s in self.scopes
        )

    def may_append(self, party: str | None) -> bool:
        if self.is_admin:
            return True
        return any(
            s.action == "append" and (s.target is None or s.target == party) for s in self.scopes
        )

    def _refuse(self, what: str) -> Exception:
        if not self.authenticated:
            return Unauthenticated(f"{what} needs a bearer token (Authorization: Bearer ...)")
        return Forbidden(f"token {self.name!r} ({self.scope_text}) may not {what}")

    @property
    def scope_text(self) -> str:
        return " ".join(str(s) for s in self.scopes) or "no scopes"

    def require_read(self, ledger: str, *, public_read: bool) -> None:
        if not self.may_read(ledger, public_read=public_read):
            raise self._refuse(f"read ledger {ledger!r}")

    def require_append(self, ledger: str, parties: Iterable[str | None]) -> None:
        """Every event's party must be one this principal may append for."""
        if self.is_admin:
            return
        if not any(s.action == "append" for s in self.scopes):
            raise self._refuse(f"append to ledger {ledger!r}")
        for index, party in enumerate(parties):
            if not self.may_append(party):
                who = f"party {party!r}" if party else "an event without a party"
                raise Forbidden(
                    f"token {self.name!r} ({self.scope_text}) may not append {who} "
                    f"(event [{index}])"
                )

    def require_author(self, authors: Sequence[str | None]) -> None:
        """A token bound to an author appends only events that author signed
        (whether the signature holds is checked where it is sealed)."""
        if self.author is None:
            return
        for index, name in enumerate(authors):
            field = f"[{index}].author" if len(authors) > 1 else "author"
            if name is None:
                raise AuthorSignatureRejected(
                    f"token {self.name!r} is bound to author {self.author!r}: every event "
                    "it appends must carry that author's signature",
                    field=field,
                )
            if name != self.author:
                raise AuthorNotAllowed(
                    f"token {self.name!r} is bound to author {self.author!r}, not {name!r}",
                    field=field,
                )

    def require_admin(self, what: str) -> None:
        if not self.is_admin:
            raise self._refuse(what)


# No token, authentication on: may read public ledgers only.
PUBLIC = Principal("public", (), authenticated=False)
# Authentication off (``LEDGER_AUTH=off``): everyone may do everything, as the actor
# ``anonymous`` of format §1.
ANONYMOUS = Principal("anonymous", (Scope("admin"),))
