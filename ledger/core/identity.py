"""The signing identity: the origin checkpoints name and the key name they are signed under.

Both are fixed at first start and stored with the key registration. A
verifier trusts a verifier key string, and that string binds the name into
the key id (format §3): were the identity re-derived from the machine at each
start, a recreated container would sign under a name nobody trusts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ledger.core.errors import IdentityMismatch, InvalidParameter
from ledger.core.signing import KEY_NAME_PATTERN

__all__ = ["SigningIdentity", "default_origin", "resolve_identity", "rotation_target"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SigningIdentity:
    origin: str
    name: str


def default_origin(public_key: bytes) -> str:
    """``ledger-<12 hex>`` from the first key's public bytes: stable wherever the
    data directory moves, and distinct between deployments (two servers
    defaulting to one origin would issue checkpoints a verifier confuses)."""
    return "ledger-" + hashlib.sha256(public_key).hexdigest()[:12]


def check_origin(origin: str, *, field: str = "LEDGER_ORIGIN") -> str:
    # The origin is a note's first line and, by default, the key name: one
    # word without '+', so both uses stay well-formed.
    if not KEY_NAME_PATTERN.match(origin):
        raise InvalidParameter("must be non-empty text without spaces or '+'", field=field)
    return origin


def resolve_identity(
    stored: SigningIdentity | None,
    *,
    origin: str | None,
    name: str | None,
    public_key: bytes,
) -> SigningIdentity:
    """The identity to sign with: the stored one, or on first start the
    configured one (``default_origin`` when none is configured).

    A configured value that differs from the stored one is refused rather
    than obeyed or ignored: either would surprise the operator who set it.
    """
    if stored is None:
        chosen = check_origin(origin) if origin else default_origin(public_key)
        return SigningIdentity(
            origin=chosen, name=check_origin(name, field="LEDGER_KEY_NAME") if name else chosen
        )
    differs = []
    if origin and origin != stored.origin:
        differs.append(("LEDGER_ORIGIN", stored.origin, origin, "--origin"))
    if name and name != stored.name:
        differs.append(("LEDGER_KEY_NAME", stored.name, name, "--name"))
    if not differs:
        return stored
    said = "; ".join(
        f"{var} is {new!r} but the stored value is {old!r}" for var, old, new, _ in differs
    )
    command = " ".join(["ledger keys rotate", *(f"{flag} {new}" for _, _, new, flag in differs)])
    raise IdentityMismatch(
        f"the signing identity is fixed in the database (origin {stored.origin!r}, "
        f"key name {stored.name!r}): {said}. Verifiers trust the published key under the "
        f"stored name, so this start is refused. Configure the stored values (or unset "
        f"them), or change the identity on purpose with `{command}`, which records a "
        "key.rotated event in every ledger for verifiers to follow."
    )


def rotation_target(
    current: SigningIdentity, *, origin: str | None, name: str | None
) -> SigningIdentity:
    """The identity a rotation moves to: unchanged parts stay; a key named
    after its origin keeps following the origin."""
    new_origin = check_origin(origin, field="--origin") if origin else current.origin
    if name:
        new_name = check_origin(name, field="--name")
    elif current.name == current.origin:
        new_name = new_origin
    else:
        new_name = current.name
    return SigningIdentity(origin=new_origin, name=new_name)
