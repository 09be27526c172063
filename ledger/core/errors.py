"""One exception tree for the whole package.

    LedgerError
    ├── InputError                  the caller sent something we refuse
    │   ├── MalformedJSON           not JSON, or not UTF-8
    │   ├── UnsupportedMediaType    not application/json
    │   ├── BodyTooLarge            over the body cap, refused before parsing
    │   ├── InvalidEvent            JSON, but breaks the format or a schema
    │   └── InvalidParameter        a query parameter or header out of its domain
    ├── Unauthenticated             no, a malformed, unknown or revoked bearer token
    │   └── AuthorSignatureRejected an event's author signature missing or not valid
    ├── Forbidden                   a valid token without the scope (or party) needed
    │   └── AuthorNotAllowed        an unknown or revoked author, or not the token's
    ├── RateLimited                 over the per-principal request rate
    ├── RequestTimeout              the request body arrived too slowly
    ├── ClientDisconnected          the client hung up before its body was read
    ├── NotFound                    unknown ledger or record
    ├── Conflict                    the request clashes with the ledger's state
    │   ├── LedgerExists
    │   ├── DuplicateEventId
    │   ├── HeadMismatch            ``expected_seq`` was not the head
    │   ├── IdempotencyInFlight     the same key is being processed now
    │   └── IdentityMismatch        configured origin or key name is not the stored one
    ├── IdempotencyKeyReused        same key, different body
    ├── StorageUnavailable          the database cannot be reached
    ├── ServerBusy                  at a cap of the server's (connections, event streams)
    ├── WitnessRefusal              a witness will not cosign a submitted checkpoint
    │   ├── SubmissionMalformed     not an add-checkpoint body (C2SP tlog-witness)
    │   ├── UnknownLog              an origin the witness does not follow
    │   ├── UntrustedCheckpoint     no valid signature by a key trusted for the origin
    │   ├── OldSizeMismatch         the old size is not the size last cosigned
    │   └── InconsistentCheckpoint  the checkpoint does not extend the one last cosigned
    └── VerificationError           a record, chain or proof fails a check
        ├── MalformedRecord         not a format §1 record, or not canonical
        ├── ChainBroken             ``seq``/``prev``/``recorded_at`` linkage
        │   └── PrevMismatch        ``prev`` is not the hash of the record before
        ├── ProofInvalid            a Merkle inclusion or consistency proof fails
        ├── CheckpointInvalid       a checkpoint note that does not parse or verify
        ├── ProjectionMismatch      a positions projection row the records do not make
        ├── RotationInvalid         a ``key.rotated`` endorsement that fails
        ├── AuthorSignatureInvalid  a record's author signature or registration that fails
        ├── BundleInvalid           an export bundle's tar layout or manifest
        ├── TimestampInvalid        an RFC 3161 timestamp reply that fails a check
        ├── IntegrityAlarm          a ledger's stored head and last records disagree
        └── WitnessReplyInvalid     a witness's answer the protocol does not allow

HTTP status codes are assigned in exactly one place, ``ledger.api.problems``;
the witness, a program of its own (``ledger.witness``), answers its refusals
with the statuses C2SP tlog-witness fixes, mapped once in ``ledger.witness.http``.
"""

from __future__ import annotations

__all__ = [
    "AuthorNotAllowed",
    "AuthorSignatureInvalid",
    "AuthorSignatureRejected",
    "BodyTooLarge",
    "BundleInvalid",
    "ChainBroken",
    "CheckpointInvalid",
    "ClientDisconnected",
    "Conflict",
    "DocumentInvalid",
    "DuplicateEventId",
    "Forbidden",
    "HeadMismatch",
    "IdempotencyInFlight",
    "IdempotencyKeyReused",
    "IdentityMismatch",
    "InconsistentCheckpoint",
    "InputError",
    "IntegrityAlarm",
    "InvalidDocument",
    "InvalidEvent",
    "InvalidParameter",
    "LedgerError",
    "LedgerExists",
    "MalformedJSON",
    "MalformedRecord",
    "NotFound",
    "OldSizeMismatch",
    "PrevMismatch",
    "ProjectionMismatch",
    "ProofInvalid",
    "RateLimited",
    "RequestTimeout",
    "ServerBusy",
    "StorageUnavailable",
    "SubmissionMalformed",
    "TimestampInvalid",
    "Unauthenticated",
    "UnknownLog",
    "UnsupportedMediaType",
    "UntrustedCheckpoint",
    "VerificationError",
    "WitnessRefusal",
    "WitnessReplyInvalid",
]


class LedgerError(Exception):
    """Base of every error this package raises on purpose."""

    title = "Ledger error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InputError(LedgerError):
    """The request carries input we refuse; ``field`` names the culprit."""

    title = "Invalid input"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.detail}" if self.field else self.detail


class MalformedJSON(InputError):
    title = "Malformed JSON"


class UnsupportedMediaType(InputError):
    title = "Unsupported media type"


class BodyTooLarge(InputError):
    title = "Request body too large"


class InvalidEvent(InputError):
    title = "Invalid event"


class InvalidParameter(InputError):
    title = "Invalid parameter"


class InvalidDocument(InputError):
    """A source document's bytes that cannot be what they are sent as, or none."""

    title = "Invalid document"


class Unauthenticated(LedgerError):
    title = "Authentication required"


class Forbidden(LedgerError):
    title = "Forbidden"


class AuthorSignatureRejected(Unauthenticated):
    """An event without the author signature its token requires, or whose
    signature is not its author's over the event (format §1.4)."""

    title = "Author signature rejected"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field


class AuthorNotAllowed(Forbidden):
    """An event signed by an author the ledger does not know (or no longer
    does), with another key than the registered one, or by another author
    than the one its token is bound to."""

    title = "Author not allowed"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field


class RateLimited(LedgerError):
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class RequestTimeout(LedgerError):
    title = "Request timeout"


class ClientDisconnected(LedgerError):
    """No one is left to answer: not the server's failure, nor a refusal."""

    title = "Client closed the connection"


class NotFound(LedgerError):
    title = "Not found"


class Conflict(LedgerError):
    title = "Conflict"


class LedgerExists(Conflict):
    title = "Ledger already exists"


class DuplicateEventId(Conflict):
    title = "Event id already used"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field


class HeadMismatch(Conflict):
    title = "Ledger head is not at the expected seq"

    def __init__(self, detail: str, *, expected_seq: int, head_seq: int) -> None:
        super().__init__(detail)
        self.expected_seq = expected_seq
        self.head_seq = head_seq


class IdempotencyInFlight(Conflict):
    title = "A request with this Idempotency-Key is in progress"


class IdentityMismatch(Conflict):
    title = "Signing identity mismatch"


class IdempotencyKeyReused(LedgerError):
    title = "Idempotency-Key reused with a different body"


class StorageUnavailable(LedgerError):
    title = "Storage unavailable"


class ServerBusy(LedgerError):
    """The server holds as many of something as it is configured to (connections,
    event streams); ``retry_after`` seconds is a fair wait before trying again."""

    title = "Server busy"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class WitnessRefusal(LedgerError):
    """A witness refuses to cosign a submitted checkpoint (C2SP tlog-witness)."""

    title = "Checkpoint not cosigned"


class SubmissionMalformed(WitnessRefusal):
    title = "Malformed add-checkpoint request"


class UnknownLog(WitnessRefusal):
    title = "Unknown log origin"


class UntrustedCheckpoint(WitnessRefusal):
    """No signature by a key trusted for the origin, or one such signature fails."""

    title = "Checkpoint not signed by a trusted log key"


class OldSizeMismatch(WitnessRefusal):
    """The request's old size is not ``size``, the size of the latest cosigned checkpoint."""

    title = "Old size is not the latest cosigned size"

    def __init__(self, detail: str, *, size: int) -> None:
        super().__init__(detail)
        self.size = size


class InconsistentCheckpoint(WitnessRefusal):
    """The checkpoint is not proved to extend the latest cosigned one."""

    title = "Checkpoint inconsistent with the latest cosigned one"


class VerificationError(LedgerError):
    """A check failed; ``seq`` is the first record at fault, when there is one."""

    title = "Verification failed"

    def __init__(self, reason: str, *, seq: int | None = None) -> None:
        super().__init__(reason)
        self.seq = seq
        self.reason = reason

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.reason}" if self.seq is not None else self.reason


class MalformedRecord(VerificationError):
    title = "Malformed record"


class ChainBroken(VerificationError):
    title = "Hash chain broken"


class PrevMismatch(ChainBroken):
    """``seq`` is the record whose ``prev`` failed; the record before it may be the one altered."""


class ProofInvalid(VerificationError):
    title = "Proof invalid"


class CheckpointInvalid(VerificationError):
    title = "Checkpoint invalid"


class ProjectionMismatch(VerificationError):
    title = "Positions projection differs from the records"


class BundleInvalid(VerificationError):
    title = "Export bundle invalid"


class TimestampInvalid(VerificationError):
    """An RFC 3161 reply that does not parse, or does not vouch for the checkpoint body."""

    title = "Timestamp invalid"


class RotationInvalid(VerificationError):
    """A ``key.rotated`` record from a trusted key whose endorsement is not that key's."""

    title = "Key rotation not endorsed"


class AuthorSignatureInvalid(VerificationError):
    """A signed record the log's author registry does not vouch for (format §1.4):
    an unknown or revoked author, another key, or a signature that fails; or an
    ``author.*`` record that breaks the registry's rules."""

    title = "Author signature invalid"


class DocumentInvalid(VerificationError):
    """A source document whose bytes are not what its name (their SHA-256) and
    its size say, or a record citing a document that is neither there nor
    declared left out (docs/documents.md)."""

    title = "Source document invalid"


class IntegrityAlarm(VerificationError):
    """The head row and the last stored records of a ledger disagree (tampering,
    or a restore gone wrong): appends to it are refused rather than chained on."""

    title = "Ledger integrity alarm"


class WitnessReplyInvalid(VerificationError):
    """A witness answered with a body the tlog-witness protocol does not allow."""

    title = "Witness reply invalid"
