"""RFC 3161 trusted timestamps of checkpoints (format §8, docs/timestamps.md).

A time-stamping authority (TSA) signs a token saying that a message imprint,
a hash, existed at its clock's ``genTime``. The message a ledger has
timestamped is a checkpoint's note body (``Checkpoint.body()``: origin, tree
size, root and chain line, the bytes its key signs), hashed with SHA-256.
So a verified token proves that this tree of this log existed no later than
``genTime``, as far as the authority's clock and honesty go.

The ASN.1 and CMS work is ``rfc3161_client``'s; this module decides what is
checked: status granted, the imprint is SHA-256 of the body, the nonce is
the one requested, the signature chains to the trusted root through the
given certificates, and the signing certificate is the configured one with
the critical timeStamping extended key usage.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc3161_client
from cryptography import x509
from rfc3161_client import HashAlgorithm, PKIStatus, TimestampRequestBuilder, VerifierBuilder

from ledger.core.checkpoint import Checkpoint
from ledger.core.errors import ProofInvalid, TimestampInvalid
from ledger.core.merkle import verify_consistency

__all__ = [
    "MAX_REPLY_BYTES",
    "QUERY_MEDIA_TYPE",
    "REPLY_MEDIA_TYPE",
    "Attestation",
    "TimestampCheck",
    "TimestampRequest",
    "TsaTrust",
    "check_timestamped_checkpoint",
    "format_attested_at",
    "read_reply",
    "timestamp_request",
    "verify_reply",
]

QUERY_MEDIA_TYPE = "application/timestamp-query"
REPLY_MEDIA_TYPE = "application/timestamp-reply"
# A reply is a token and a few certificates: a few KiB; anything far larger is refused.
MAX_REPLY_BYTES = 256 * 1024
_SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
# OpenSSL's reason inside the library's error text, which is otherwise a Rust debug dump.
_OPENSSL_REASON = re.compile(r'Verify error: ([^"]+)"')


@dataclass(frozen=True, slots=True, kw_only=True)
class TimestampRequest:
    """A TimeStampReq for one checkpoint body: its DER and the nonce it carries."""

    der: bytes
    nonce: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Attestation:
    """What a checked reply says: when, by whom, under which serial number."""

    #: genTime as RFC 3339 UTC (``YYYY-MM-DDTHH:MM:SS[.fraction]Z``).
    attested_at: str
    #: The signing certificate's subject as RFC 4514, or "" when the reply
    #: carries no certificate and none was given to check it with.
    authority: str
    serial_number: int
    #: Whether the signature was checked up to a trusted root (``trust`` given).
    chain_checked: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class TsaTrust:
    """An authority's signing certificate, its intermediates and the root trusted."""

    certificate: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    root: x509.Certificate

    @classmethod
    def from_pem(cls, pem: bytes) -> TsaTrust:
        """Read a PEM file: the TSA's certificate first, then its chain ending in the root."""
        if _PEM_CERTIFICATE not in pem:
            raise ValueError("the file holds no PEM certificate")
        try:
            certificates = x509.load_pem_x509_certificates(pem)
        except ValueError as error:
            raise ValueError(f"the certificates do not parse: {error}") from None
        if len(certificates) < 2:
            raise ValueError(
                "the file needs the TSA's certificate, then its chain up to the root it is "
                "trusted under (at least two certificates)"
            )
        return cls(
            certificate=certificates[0],
            intermediates=tuple(certificates[1:-1]),
            root=certificates[-1],
        )

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()


def timestamp_request(body: bytes) -> TimestampRequest:
    """The query for ``body``: SHA-256 imprint, a fresh random nonce, certReq set."""
    request = (
        TimestampRequestBuilder()
        .data(body)
        .hash_algorithm(HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    nonce = request.nonce
    assert nonce is not None, "a nonce was requested"
    return TimestampRequest(der=request.as_bytes(), nonce=nonce)


def format_attested_at(moment: datetime) -> str:
    """genTime as RFC 3339 UTC, with only as many fraction digits as it has."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    fraction = f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def read_reply(der: bytes) -> rfc3161_client.TimeStampResponse:
    """Parse a TimeStampResp; refuse one too large, malformed, or not granted."""
    if len(der) > MAX_REPLY_BYTES:
        raise TimestampInvalid(f"the timestamp reply is larger than {MAX_REPLY_BYTES} bytes")
    try:
        reply = rfc3161_client.decode_timestamp_response(der)
    except ValueError as error:
        raise TimestampInvalid(f"the timestamp reply does not parse: {error}") from None
    # Only plain "granted": a token granted with modifications is not the one asked for.
    if reply.status != PKIStatus.GRANTED:
        detail = "; ".join(reply.status_string) or "no reason given"
        raise TimestampInvalid(f"the authority refused the timestamp ({detail})")
    return reply


def _embedded_signer(reply: rfc3161_client.TimeStampResponse) -> str:
    """The subject of the certificate the reply names as its signer, if it carries it."""
    signers = list(reply.signed_data.signer_infos)
    if len(signers) != 1:
        return ""
    for der in reply.signed_data.certificates:
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError:
            continue
        if (certificate.issuer, certificate.serial_number) == (
            signers[0].issuer,
            signers[0].serial_number,
        ):
            return certificate.subject.rfc4514_string()
    return ""


def verify_reply(
    der: bytes, body: bytes, trust: TsaTrust | None, *, nonce: int | None = None
) -> Attestation:
    """Check a TimeStampResp over a checkpoint ``body``; return what it attests.

    The imprint must be SHA-256 of ``body`` and, when ``nonce`` is given, the
    token's nonce must be it. With ``trust``, the signature must chain from
    the given TSA certificate to the given root, and that certificate must
    carry the critical timeStamping extended key usage; without it (a stored
    row checked where no chain is configured) only the parse, status and
    imprint are checked, and ``chain_checked`` says so.
    """
    reply = read_reply(der)
    info = reply.tst_info
    imprint = info.message_imprint
    if imprint.hash_algorithm != _SHA256_OID:
        raise TimestampInvalid("the timestamp's message imprint is not SHA-256")
    if imprint.message != hashlib.sha256(body).digest():
        raise TimestampInvalid("the timestamp is of another message than this checkpoint body")
    if nonce is not None and info.nonce != nonce:
        raise TimestampInvalid("the timestamp's nonce is not the one requested")
    authority = ""
    if trust is not None:
        builder = VerifierBuilder().tsa_certificate(trust.certificate)
        for certificate in trust.intermediates:
            builder = builder.add_intermediate_certificate(certificate)
        verifier = builder.add_root_certificate(trust.root).build()
        try:
            verifier.verify_message(reply, body)
        except (rfc3161_client.VerificationError, ValueError) as error:
            found = _OPENSSL_REASON.search(str(error))
            reason = found.group(1) if found else str(error)
            raise TimestampInvalid(f"the timestamp does not verify: {reason}") from None
        authority = trust.subject
    else:
        authority = _embedded_signer(reply)
    return Attestation(
        attested_at=format_attested_at(info.gen_time),
        authority=authority,
        serial_number=info.serial_number,
        chain_checked=trust is not None,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TimestampCheck:
    """What checking a timestamp of a verified tree proved (for reports)."""

    #: The tree size of the checkpoint the token covers.
    tree_size: int
    #: The verified tree it was shown to be a prefix of (equal when the same).
    verified_size: int
    attested_at: str
    authority: str
    chain_checked: bool

    def describe(self) -> str:
        prefix = (
            ""
            if self.tree_size == self.verified_size
            else f", consistent with {self.verified_size}"
        )
        by = f" by {self.authority}" if self.authority else ""
        if not self.chain_checked:
            by += " (certificate chain not checked: no TSA certificates given)"
        return (
            f"RFC 3161 timestamp of the checkpoint of tree size {self.tree_size}{prefix}: "
            f"existed by {self.attested_at}{by}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "verified_size": self.verified_size,
            "attested_at": self.attested_at,
            "authority": self.authority,
            "chain_checked": self.chain_checked,
        }


def check_timestamped_checkpoint(
    checkpoint: Checkpoint,
    reply: bytes,
    trust: TsaTrust | None,
    *,
    tree_size: int,
    root: bytes,
    proof: Sequence[bytes] = (),
) -> TimestampCheck:
    """Check a token over ``checkpoint``'s body against a tree already verified.

    ``checkpoint`` is a note body the caller has verified with a trusted key;
    ``tree_size`` and ``root`` are the verified tree's. A timestamped
    checkpoint of the same size must have that root; a smaller one must be
    proved a prefix of it by the consistency ``proof`` (RFC 9162 §2.1.4).
    Then the token must verify over the body (``verify_reply``).
    """
    size = checkpoint.tree_size
    if size > tree_size:
        raise TimestampInvalid(
            f"the timestamped checkpoint's tree size {size} is beyond the verified {tree_size}"
        )
    if size == tree_size and checkpoint.root != root:
        raise TimestampInvalid("the timestamped checkpoint's root is not the verified root")
    if size < tree_size:
        try:
            verify_consistency(size, tree_size, proof, checkpoint.root, root)
        except ProofInvalid as error:
            raise TimestampInvalid(
                f"the timestamped checkpoint of tree size {size} is not a prefix of the "
                f"verified tree of {tree_size}: {error.reason}"
            ) from None
    attestation = verify_reply(reply, checkpoint.body(), trust)
    return TimestampCheck(
        tree_size=size,
        verified_size=tree_size,
        attested_at=attestation.attested_at,
        authority=attestation.authority,
        chain_checked=attestation.chain_checked,
    )
