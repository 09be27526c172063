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
from dataclasses import dataclass
from datetime import UTC, datetime

import rfc3161_client
from cryptography import x509
from rfc3161_client import HashAlgorithm, PKIStatus, TimestampRequestBuilder, VerifierBuilder

from ledger.core.errors import TimestampInvalid

__all__ = [
    "MAX_REPLY_BYTES",
    "QUERY_MEDIA_TYPE",
    "REPLY_MEDIA_TYPE",
    "Attestation",
    "TimestampRequest",
    "TsaTrust",
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
    if reply.status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        detail = "; ".join(reply.status_string) or "no reason given"
        raise TimestampInvalid(f"the authority refused the timestamp ({detail})")
    return reply


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
        except rfc3161_client.VerificationError as error:
            found = _OPENSSL_REASON.search(str(error))
            reason = found.group(1) if found else str(error)
            raise TimestampInvalid(f"the timestamp does not verify: {reason}") from None
        authority = trust.subject
    else:
        certificates = [x509.load_der_x509_certificate(c) for c in reply.signed_data.certificates]
        signers = list(reply.signed_data.signer_infos)
        for certificate in certificates:
            if signers and certificate.serial_number == signers[0].serial_number:
                authority = certificate.subject.rfc4514_string()
    return Attestation(
        attested_at=format_attested_at(info.gen_time),
        authority=authority,
        serial_number=info.serial_number,
        chain_checked=trust is not None,
    )
