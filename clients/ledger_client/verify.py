"""ledger-verify: check a ledger without trusting the server that holds it.

Imports only ``ledger.core`` (with its ``rfc3161_client`` for timestamps),
``httpx``, ``cryptography`` and ``rich``, so a third party can audit with
nothing but this file, the core package and the format contract
(docs/format.md).

    ledger-verify bundle FILE --key KEY [--ledger NAME] [--snapshot FILE] [--tsa-cert FILE] [--json]
    ledger-verify server URL --ledger NAME --key KEY [--state FILE] [--snapshot FILE]
                             [--tsa-cert FILE] [--documents] [--json]
    … [--witness WITNESS_KEY …] [--quorum K] [--witness-wait SECONDS]

``bundle`` checks an export offline (format §5). ``server`` pages
through a live ledger up to the latest signed checkpoint, recomputes the
chain and the Merkle root and compares them with it; with ``--state`` it also
proves the checkpoint consistent with the one remembered from the last run
(step 6: rollback and fork detection) and remembers the new one.
``--snapshot`` recomputes a signed format §6 snapshot from the verified records.
A bundle's source documents (format §4.2) are always rehashed; ``server
--documents`` fetches each document the verified records cite and checks
that its bytes hash to the name the record gives.
``--tsa-cert`` requires an RFC 3161 timestamp (format §8) of the verified tree,
or of a checkpoint shown to be a prefix of it, checked under that authority's
certificate chain, and reports the time it attests.

With ``--witness`` (repeatable; a witness's cosigner verifier key) the
checkpoint trusted must also carry valid cosignatures from ``--quorum`` of
them (default: all): for ``bundle`` its ``witnessed`` member, extended by the
bundle's checkpoint; for ``server`` the server's ``/checkpoint/witnessed``,
which must reach the server's latest checkpoint (the one fetched first)
within ``--witness-wait`` seconds, and against which the records are then
checked: records a quorum never cosigned (a split view) are not trusted.

KEY is a verifier key string (format §3) or a file holding one or a PEM public
key (whose name is taken from what it signed). Exit codes (format §5): 0 valid,
1 invalid (tampered), 2 usage or input error (unreadable file, unknown key,
network).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import dataclasses
import hashlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from ledger.core.checkpoint import SignedCheckpoint
from ledger.core.cosignature import CosignedBy, CosignerKey, require_quorum
from ledger.core.errors import (
    CheckpointInvalid,
    DocumentInvalid,
    TimestampInvalid,
    VerificationError,
)
from ledger.core.records import Record
from ledger.core.signing import VerifierKey
from ledger.core.timestamps import MAX_REPLY_BYTES, TsaTrust, check_timestamped_checkpoint
from ledger.core.verification import (
    KeyTrail,
    LogVerifier,
    SnapshotClaim,
    TrustedKey,
    UnnamedKey,
    VerificationReport,
    check_checkpoint,
    check_consistency,
    check_snapshot,
    key_label,
    verify_bundle,
    witness_checks,
    worker_count,
)
from ledger_client.streams import AtomicFile

__all__ = [
    "UsageError",
    "WitnessPolicy",
    "main",
    "resolve_key",
    "resolve_witness",
    "run",
    "verify_bundle_file",
    "verify_server",
]

EXIT_VALID, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
NDJSON = "application/x-ndjson"
MAX_INPUT_FILE = 64 * 1024 * 1024


class UsageError(Exception):
    """Input we could not read or use: exit code 2."""


Advance = Callable[[int], None]


# -- inputs -----------------------------------------------------------------------


def resolve_key(text: str) -> TrustedKey:
    """A verifier key string, or a file holding one or a PEM public key."""
    candidate = text
    path = Path(text)
    if "+" not in text or path.is_file():
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise UsageError(f"unknown key {text!r}: not a key string, and {e.strerror}") from None
        if b"-----BEGIN" in raw:
            try:
                loaded = serialization.load_pem_public_key(raw)
            except ValueError as e:
                raise UsageError(f"unknown key: {path} is not a PEM public key ({e})") from None
            if not isinstance(loaded, Ed25519PublicKey):
                raise UsageError(f"unknown key: {path} does not hold an Ed25519 public key")
            return UnnamedKey(
                loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            )
        candidate = raw.decode("utf-8", errors="replace")
    try:
        return VerifierKey.from_string(candidate)
    except ValueError as e:
        raise UsageError(f"unknown key: {e}") from None


def read_tsa_trust(path: Path) -> TsaTrust:
    """``--tsa-cert``: the authority's certificate, then its chain up to the trusted root."""
    try:
        return TsaTrust.from_pem(_read_small(path, "TSA certificate file"))
    except ValueError as e:
        raise UsageError(f"the TSA certificate file {path}: {e}") from None


def resolve_witness(text: str) -> CosignerKey:
    """A witness's cosigner verifier key string, or a file holding one."""
    candidate = text
    path = Path(text)
    if "+" not in text or path.is_file():
        try:
            candidate = path.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise UsageError(f"unknown witness key {text!r}: not a key, and {e.strerror}") from None
    try:
        return CosignerKey.from_string(candidate)
    except ValueError as e:
        raise UsageError(f"unknown witness key {text!r}: {e}") from None


@dataclasses.dataclass(frozen=True, slots=True)
class WitnessPolicy:
    """The witnesses a verification trusts, and how many must have cosigned."""

    witnesses: tuple[CosignerKey, ...]
    quorum: int
    # server mode: how long the witnessed checkpoint may take to reach the latest.
    wait: float = 10.0

    @classmethod
    def from_args(
        cls, keys: Sequence[str], quorum: int | None, wait: float
    ) -> WitnessPolicy | None:
        if not keys:
            if quorum is not None:
                raise UsageError("--quorum needs the witnesses it counts: --witness KEY")
            return None
        witnesses = tuple(resolve_witness(key) for key in keys)
        if len(set(witnesses)) != len(witnesses):
            raise UsageError("--witness names one witness key twice")
        count = len(witnesses) if quorum is None else quorum
        if not 1 <= count <= len(witnesses):
            raise UsageError(f"--quorum must be between 1 and the {len(witnesses)} witnesses given")
        return cls(witnesses=witnesses, quorum=count, wait=wait)


def _read_small(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_INPUT_FILE + 1)
    except OSError as e:
        raise UsageError(f"cannot read the {what} {path}: {e.strerror}") from None
    if len(raw) > MAX_INPUT_FILE:
        raise UsageError(f"the {what} {path} is too large")
    return raw


def read_snapshot(path: Path) -> SnapshotClaim:
    try:
        document = json.loads(_read_small(path, "snapshot"))
    except ValueError as e:
        raise UsageError(f"the snapshot {path} is not JSON: {e}") from None
    try:
        return SnapshotClaim.from_document(document)
    except VerificationError as e:
        raise UsageError(f"the snapshot {path}: {e.reason}") from None


class _SnapshotRecords:
    """Keeps the few records a snapshot's fold depends on (not the whole ledger)."""

    def __init__(self, claim: SnapshotClaim | None) -> None:
        self.claim = claim
        self.records: list[Record] = []

    def __call__(self, record: Record) -> None:
        if self.claim is not None and self.claim.wants(record):
            self.records.append(record)

    def check(
        self, log: LogVerifier, report: VerificationReport, keys: KeyTrail
    ) -> VerificationReport:
        claim = self.claim
        if claim is None or not report.valid or report.ledger is None:
            return report
        key = _snapshot_key(claim, report, keys)
        root = log.roots.get(claim.known_at)
        if root is None:
            raise UsageError(
                f"the snapshot's known_at {claim.known_at} is not within the verified records "
                f"(seq {log.from_seq} to {log.last_seq}); it needs every record from seq 1"
            )
        try:
            check_snapshot(claim, self.records, ledger=report.ledger, root=root, key=key)
        except VerificationError as e:
            return report.failed(e, prefix="snapshot: ")
        return report.checked(f"snapshot recomputed (known_at {claim.known_at})")


def _snapshot_key(claim: SnapshotClaim, report: VerificationReport, keys: KeyTrail) -> VerifierKey:
    """The trusted key the snapshot names, else the checkpoint's signer (whose
    check then fails, saying the snapshot is signed by another key)."""
    assert report.key_name is not None and report.key_id is not None, "a valid report's signer"
    signer = keys.find(report.key_name, report.key_id)
    assert signer is not None, "the signer of a valid report is trusted"
    given = keys.given
    for candidate in (signer, *keys.followed, *([given] if isinstance(given, VerifierKey) else [])):
        if candidate.key_id_hex == claim.document.get("key_id"):
            return candidate
    return signer


# -- bundle mode ------------------------------------------------------------------


# Below this size the workers' start-up (a fresh interpreter each) costs more
# than they save; verify_bundle itself also keeps small bundles in-process.
_POOL_FROM_BYTES = 32 * 1024 * 1024


@contextlib.contextmanager
def _pool_for(path: Path) -> Iterator[Executor | None]:
    """Worker processes for the stateless per-line checks of a large bundle."""
    workers = worker_count()
    try:
        large = path.stat().st_size >= _POOL_FROM_BYTES
    except OSError:
        large = False
    if not workers or not large:
        yield None
        return
    # spawn, not fork: the progress bar runs a thread, and forking with threads is unsafe.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield pool


def verify_bundle_file(
    path: Path,
    key: TrustedKey,
    *,
    ledger: str | None = None,
    snapshot: SnapshotClaim | None = None,
    advance: Advance | None = None,
    witnesses: WitnessPolicy | None = None,
    tsa_trust: TsaTrust | None = None,
) -> VerificationReport:
    keep = _SnapshotRecords(snapshot)
    try:
        with path.open("rb") as handle, _pool_for(path) as executor:
            report, log = verify_bundle(
                handle,
                key,
                ledger=ledger,
                root_sizes=() if snapshot is None else (snapshot.known_at,),
                on_record=keep if snapshot is not None else None,
                on_records=advance,
                executor=executor,
                witnesses=witnesses.witnesses if witnesses else (),
                quorum=witnesses.quorum if witnesses else None,
                tsa_trust=tsa_trust,
            )
    except OSError as e:
        raise UsageError(f"cannot read the bundle {path}: {e.strerror or e}") from None
    if log is None or report.key_name is None:
        return report
    return keep.check(log, report, log.keys if log.keys is not None else KeyTrail(key))


# -- server mode ------------------------------------------------------------------


def _get(http: httpx.Client, path: str, **params: Any) -> httpx.Response:
    try:
        response = http.get(path, params=params or None)
    except httpx.HTTPError as e:
        raise UsageError(f"cannot reach the server: {e}") from None
    if response.status_code != 200:
        raise UsageError(f"GET {path} answered {response.status_code}: {response.text[:200]}")
    return response


def _consistency_proof(http: httpx.Client, ledger: str, size1: int, size2: int) -> list[bytes]:
    response = _get(
        http, f"/v1/ledgers/{ledger}/proofs/consistency", **{"from": size1, "to": size2}
    )
    try:
        body = response.json()
        hashes = body["proof"]
        if not isinstance(hashes, list):
            raise TypeError("proof is not a list")
        return [base64.b64decode(h, validate=True) for h in hashes]
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise UsageError(f"the consistency proof response is unreadable: {e}") from None


def _lines(http: httpx.Client, ledger: str, after_seq: int) -> Iterator[bytes]:
    """Raw NDJSON lines after ``after_seq``: bytes exactly as served, never re-decoded."""
    try:
        with http.stream(
            "GET",
            f"/v1/ledgers/{ledger}/events",
            params={"after_seq": after_seq},
            headers={"Accept": NDJSON},
        ) as response:
            if response.status_code != 200:
                raise UsageError(f"reading records answered {response.status_code}")
            pending = b""
            for chunk in response.iter_bytes():
                parts = (pending + chunk).split(b"\n")
                pending = parts.pop()
                yield from parts
            if pending:
                yield pending
    except httpx.HTTPError as e:
        raise UsageError(f"reading records failed: {e}") from None


def _read_state(path: Path) -> tuple[str, SignedCheckpoint] | None:
    """The remembered note, read but not yet trusted: the key that signed it may
    be one the records endorse, which only the walk learns."""
    if not path.exists():
        return None  # the first run trusts what it verifies, and remembers it
    raw = _read_small(path, "state file")
    try:
        return raw.decode("utf-8"), SignedCheckpoint.from_text(raw)
    except (UnicodeDecodeError, VerificationError) as e:
        raise UsageError(f"the state file {path} is not a checkpoint: {e}") from None


def _trust_state(
    path: Path, remembered: tuple[str, SignedCheckpoint], keys: KeyTrail, ledger: str
) -> SignedCheckpoint:
    try:
        return check_checkpoint(remembered[0], keys, ledger=ledger)
    except VerificationError as e:
        raise UsageError(
            f"the state file {path} is not a checkpoint of {ledger} by the trusted key "
            f"(nor by a key it endorsed): {e}"
        ) from None


def write_state(path: Path, note: str) -> None:
    """Replace the state file atomically: a crash leaves the old or the new, never half."""
    with AtomicFile(path) as out:
        out.write(note.encode("utf-8"))


def _signed_by_given(note: SignedCheckpoint, keys: KeyTrail) -> bool:
    signed = {(s.name, s.key_id) for s in note.signatures}
    return any((k.name, k.key_id) in signed for k in keys.for_note(note))


def verify_server(
    http: httpx.Client,
    ledger: str,
    key: TrustedKey,
    *,
    state: Path | None = None,
    snapshot: SnapshotClaim | None = None,
    progress: Progress | None = None,
    witnesses: WitnessPolicy | None = None,
    tsa_trust: TsaTrust | None = None,
    documents: bool = False,
) -> VerificationReport:
    """Verify the ledger up to the latest checkpoint, fetched first.

    Records appended meanwhile are beyond that checkpoint's size and are not
    read, so a busy ledger never fails for being busy. A checkpoint signed by
    the given key is checked before the walk; one signed only by a key the
    given key endorsed (format §3 rotation) after it, once the walk has
    followed the ``key.rotated`` records up to the checkpoint's size.

    With ``witnesses``, the checkpoint checked is the server's witnessed one,
    once it reaches the latest checkpoint's size, and must carry the quorum.
    With ``documents``, every source document the records cite is fetched and
    rehashed (format §1.3).
    """
    note_text = _get(http, f"/v1/ledgers/{ledger}/checkpoint").text
    empty = VerificationReport(valid=False, ledger=ledger)
    keys = KeyTrail(key)
    label = "latest checkpoint: "
    cosigners: tuple[CosignedBy, ...] = ()
    latest_size = 0
    if witnesses is not None:
        label = "witnessed checkpoint: "
        try:
            latest_size = SignedCheckpoint.from_text(note_text).checkpoint.tree_size
            note_text = _witnessed_note(http, ledger, latest_size, witnesses.wait)
            witnessed = SignedCheckpoint.from_text(note_text)
            cosigners = require_quorum(
                witnessed.checkpoint.body(),
                witnessed.signatures,
                witnesses.witnesses,
                witnesses.quorum,
            )
        except VerificationError as e:
            return empty.failed(e, prefix=label)
    try:
        unverified = SignedCheckpoint.from_text(note_text)
        if _signed_by_given(unverified, keys):
            check_checkpoint(note_text, keys, ledger=ledger)
    except VerificationError as e:
        return empty.failed(e, prefix=label)
    checkpoint = unverified.checkpoint
    started = VerificationReport(
        valid=False, ledger=ledger, from_seq=1, to_seq=checkpoint.tree_size
    )
    pending = _read_state(state) if state is not None else None
    remembered: SignedCheckpoint | None = None
    if state is not None and pending is not None and _signed_by_given(pending[1], keys):
        remembered = _trust_state(state, pending, keys, ledger)
    sizes = {checkpoint.tree_size}
    if pending is not None:
        sizes.add(pending[1].checkpoint.tree_size)
    if snapshot is not None:
        sizes.add(snapshot.known_at)
    timestamp = (
        _fetch_timestamp(http, ledger, checkpoint.tree_size) if tsa_trust is not None else None
    )
    if timestamp is not None:
        sizes.add(timestamp.tree_size)
    keep = _SnapshotRecords(snapshot)
    log = LogVerifier(ledger=ledger, root_sizes=sizes, on_record=keep, keys=keys)
    task = (
        progress.add_task(f"verifying {ledger}", total=checkpoint.tree_size) if progress else None
    )
    walked: VerificationError | None = None
    try:
        _stream_into(http, log, checkpoint.tree_size, progress, task)
    except VerificationError as e:
        walked = e
    # What the walk learnt of the keys decides whether the checkpoint and the
    # remembered one are trusted at all; only then are they compared.
    if walked is None:
        try:
            check_checkpoint(note_text, keys, ledger=ledger)
        except VerificationError as e:
            return dataclasses.replace(started, count=log.count).failed(e, prefix=label)
    if state is not None and pending is not None and remembered is None and walked is None:
        remembered = _trust_state(state, pending, keys, ledger)
    # A checkpoint that does not extend the remembered one fails the run, but
    # the records are walked all the same: an edited record also breaks the
    # server's proof (it hashes low subtrees from the records), and the walk
    # names it by its seq.
    fork: VerificationError | None = None
    if remembered is not None:
        size1, size2 = remembered.checkpoint.tree_size, checkpoint.tree_size
        proof = None
        if 0 < size1 < size2:
            proof = _consistency_proof(http, ledger, size1, size2)
        try:
            check_consistency(remembered, unverified, proof)
        except VerificationError as e:
            fork = e
    signer = _signing_key(unverified, keys) if walked is None else None
    if signer is not None:
        started = dataclasses.replace(started, key_id=signer.key_id_hex, key_name=signer.name)
    try:
        if walked is not None:
            raise walked
        log.require_end(
            to_seq=checkpoint.tree_size, head_hash=checkpoint.head_hash, source="the checkpoint"
        )
        if log.root() != checkpoint.root:
            raise CheckpointInvalid("the Merkle root of the records is not the checkpoint's root")
        if remembered is not None:
            old = remembered.checkpoint
            if log.roots.get(old.tree_size, old.root) != old.root:
                raise CheckpointInvalid(
                    f"fork: the records give another root at the remembered tree size "
                    f"{old.tree_size}"
                )
    except VerificationError as e:
        failed = dataclasses.replace(started, count=log.count).failed(e)
        if fork is None:
            return failed
        return dataclasses.replace(failed, reason=f"{failed.reason}; and {fork.reason}")
    if fork is not None:
        return dataclasses.replace(started, count=log.count).failed(fork)
    assert signer is not None, "a walk that passed found the signer"
    report = dataclasses.replace(
        started,
        valid=True,
        count=log.count,
        head_hash=log.head_hash,
        merkle_root=base64.b64encode(checkpoint.root).decode("ascii"),
    ).checked(
        "hash chain",
        log.authors.describe(log.count),
        *(rotation.describe() for rotation in keys.path_to(signer)),
        "Merkle root recomputed",
        f"checkpoint signature by {key_label(signer)}",
    )
    if remembered is not None:
        report = report.checked(
            f"consistency with the remembered checkpoint "
            f"(tree size {remembered.checkpoint.tree_size})"
        )
    if witnesses is not None:
        report = dataclasses.replace(
            report.checked(
                f"witnessed checkpoint (tree size {checkpoint.tree_size}, the server's latest "
                f"was {latest_size}) checked against the records",
                *witness_checks(cosigners, witnesses.quorum),
            ),
            witnessed_size=checkpoint.tree_size,
            cosigners=cosigners,
        )
    if tsa_trust is not None:
        report = _check_timestamp(timestamp, log, keys, report, checkpoint.tree_size, tsa_trust)
    report = _check_documents(http, ledger, log, report, fetch=documents)
    report = keep.check(log, report, keys)
    if report.valid and state is not None:
        try:
            write_state(state, note_text)
        except OSError as e:
            raise UsageError(f"cannot write the state file {state}: {e.strerror}") from None
        if remembered is None:
            report = report.noted(
                f"no remembered checkpoint yet: this one (tree size {checkpoint.tree_size}) "
                f"saved to {state}"
            )
    return report


def _check_documents(
    http: httpx.Client,
    ledger: str,
    log: LogVerifier,
    report: VerificationReport,
    *,
    fetch: bool,
) -> VerificationReport:
    """The source documents the records cite: fetched and rehashed with ``fetch``,
    else only counted, and the report says which."""
    cited = log.documents.cited
    if not report.valid or not cited:
        return report
    if not fetch:
        return report.checked(
            f"source documents: {len(cited)} cited, NOT fetched (--documents checks them)"
        )
    for sha256, seq in sorted(cited.items(), key=lambda item: item[1]):
        try:
            got = _document_digest(http, f"/v1/ledgers/{ledger}/documents/{sha256}")
        except DocumentInvalid as e:
            return report.failed(DocumentInvalid(f"document {sha256}: {e.reason}", seq=seq))
        if got != sha256:
            return report.failed(
                DocumentInvalid(
                    f"the server's document {sha256} hashes to {got}: not what the record cites",
                    seq=seq,
                )
            )
    return report.checked(
        f"source documents: the {len(cited)} the records cite fetched, each one's bytes "
        "hash to its name"
    )


def _document_digest(http: httpx.Client, path: str) -> str:
    """The SHA-256 of a served document, read as a stream."""
    digest = hashlib.sha256()
    try:
        with http.stream("GET", path) as response:
            if response.status_code == 404:
                raise DocumentInvalid("the server does not hold it")
            if response.status_code != 200:
                raise UsageError(f"GET {path} answered {response.status_code}")
            for chunk in response.iter_bytes():
                digest.update(chunk)
    except httpx.HTTPError as e:
        raise UsageError(f"reading {path} failed: {e}") from None
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class _ServedTimestamp:
    tree_size: int
    reply: bytes
    note: str


def _fetch_timestamp(http: httpx.Client, ledger: str, at_most: int) -> _ServedTimestamp | None:
    """The newest timestamp the server holds at or below ``at_most``, with the
    note of its size; None when it holds none (404)."""
    path = f"/v1/ledgers/{ledger}/checkpoint/timestamp"
    try:
        response = http.get(path, params={"at_most": at_most})
    except httpx.HTTPError as e:
        raise UsageError(f"cannot reach the server: {e}") from None
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise UsageError(f"GET {path} answered {response.status_code}: {response.text[:200]}")
    size_text = response.headers.get("Ledger-Tree-Size", "")
    if not size_text.isdigit() or not 0 < int(size_text) <= at_most:
        raise UsageError(f"GET {path} gave no usable Ledger-Tree-Size ({size_text!r})")
    if len(response.content) > MAX_REPLY_BYTES:
        raise UsageError(f"GET {path} answered more than {MAX_REPLY_BYTES} bytes")
    size = int(size_text)
    note = _get(http, f"/v1/ledgers/{ledger}/checkpoint", size=size).text
    return _ServedTimestamp(tree_size=size, reply=response.content, note=note)


def _check_timestamp(
    served: _ServedTimestamp | None,
    log: LogVerifier,
    keys: KeyTrail,
    report: VerificationReport,
    verified_size: int,
    trust: TsaTrust,
) -> VerificationReport:
    """format §8 for a server: the timestamped note is signed by a trusted key, its
    root is the one records 1..M recompute, and the token covers its body."""
    if not report.valid:
        return report
    try:
        if served is None:
            raise TimestampInvalid(
                f"the server holds no timestamp of a checkpoint at or below tree size "
                f"{verified_size}, and one was asked for"
            )
        try:
            note = check_checkpoint(
                served.note, keys, ledger=log.ledger, tree_size=served.tree_size
            )
        except VerificationError as e:
            raise TimestampInvalid(f"the timestamped checkpoint: {e.reason}") from None
        root = log.roots.get(served.tree_size)
        assert root is not None, "the walk kept the root of the timestamped size"
        check = check_timestamped_checkpoint(
            note.checkpoint, served.reply, trust, tree_size=served.tree_size, root=root
        )
    except VerificationError as e:
        return report.failed(e, prefix="timestamp: ")
    check = dataclasses.replace(check, verified_size=verified_size)
    return dataclasses.replace(report.checked(check.describe()), timestamp=check)


_WITNESSED_POLL = 0.25


def _witnessed_note(http: httpx.Client, ledger: str, at_least: int, wait: float) -> str:
    """The server's witnessed note once its tree size reaches ``at_least``.

    Raises ``CheckpointInvalid`` when it does not within ``wait`` seconds: the
    records after the witnessed size are then unwitnessed (a split view, or
    witnesses that lag or are down), or there is no witnessed note at all.
    """
    path = f"/v1/ledgers/{ledger}/checkpoint/witnessed"
    deadline = time.monotonic() + wait
    while True:
        try:
            response = http.get(path)
        except httpx.HTTPError as e:
            raise UsageError(f"cannot reach the server: {e}") from None
        if response.status_code == 200:
            text = response.text
            size = SignedCheckpoint.from_text(text).checkpoint.tree_size
            if size >= at_least:
                return text
            reason = (
                f"the newest checkpoint a quorum of witnesses cosigned is of tree size {size}, "
                f"short of the server's latest {at_least}: records {size + 1}-{at_least} are "
                "not witnessed (a split view, or witnesses that lag or are down)"
            )
        elif response.status_code == 404:
            reason = f"the server serves no witnessed checkpoint ({_problem_detail(response)})"
        else:
            raise UsageError(f"GET {path} answered {response.status_code}: {response.text[:200]}")
        if time.monotonic() >= deadline:
            raise CheckpointInvalid(f"{reason}; waited {wait:g}s")
        time.sleep(_WITNESSED_POLL)


def _problem_detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail) if detail else response.text[:200]


def _signing_key(note: SignedCheckpoint, keys: KeyTrail) -> VerifierKey:
    """The trusted key that signed ``note`` (already verified): the given one if it did."""
    signed = {(s.name, s.key_id) for s in note.signatures}
    for candidate in keys.for_note(note):
        if (candidate.name, candidate.key_id) in signed:
            return candidate
    raise CheckpointInvalid("no signature from a trusted key")


def _stream_into(
    http: httpx.Client,
    log: LogVerifier,
    tree_size: int,
    progress: Progress | None,
    task: Any,
) -> None:
    """Feed records 1..tree_size, resuming after the last one if a stream ends early."""
    while log.last_seq < tree_size:
        before = log.last_seq
        for line in _lines(http, log.ledger, before):
            if log.last_seq >= tree_size:
                break  # appended after the checkpoint we verify against
            log.add_line(line)
            if progress is not None and task is not None and log.last_seq % 1000 == 0:
                progress.update(task, completed=log.last_seq)
        if log.last_seq == before:
            break  # the server has nothing more: require_end names the first missing seq
    if progress is not None and task is not None:
        progress.update(task, completed=log.last_seq)


# -- the command line -------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ledger-verify", description="Verify a negotiation ledger without trusting its server."
    )
    modes = parser.add_subparsers(dest="mode", required=True)
    bundle = modes.add_parser("bundle", help="verify an export bundle offline")
    bundle.add_argument("file", type=Path, help="the bundle (.tar)")
    bundle.add_argument("--ledger", help="the ledger the bundle must be of")
    server = modes.add_parser("server", help="verify a live server's ledger")
    server.add_argument("url", help="server base URL, e.g. http://127.0.0.1:8000")
    server.add_argument("--ledger", required=True, help="ledger name")
    server.add_argument("--state", type=Path, help="file remembering the last trusted checkpoint")
    server.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout in seconds")
    server.add_argument(
        "--token",
        default=os.environ.get("LEDGER_TOKEN"),
        help="bearer token for a private ledger [LEDGER_TOKEN]; trust still comes from --key",
    )
    for sub in (bundle, server):
        sub.add_argument(
            "--key", required=True, help="verifier key string, or a file with one or a PEM key"
        )
        sub.add_argument("--snapshot", type=Path, help="a signed snapshot to recompute and check")
        sub.add_argument(
            "--tsa-cert",
            type=Path,
            help="PEM: an RFC 3161 authority's certificate, then its chain up to the root "
            "trusted; requires a timestamp of the verified tree and reports its time",
        )
        sub.add_argument("--json", action="store_true", help="machine-readable result")
        sub.add_argument(
            "--witness",
            action="append",
            default=[],
            metavar="WITNESS_KEY",
            help="a witness's verifier key (or a file with one) whose cosignature counts; "
            "repeatable",
        )
        sub.add_argument(
            "--quorum",
            type=int,
            help="cosignatures from the --witness keys required (default: all of them)",
        )
    server.add_argument(
        "--documents",
        action="store_true",
        help="fetch every source document the records cite and check its hash",
    )
    server.add_argument(
        "--witness-wait",
        type=float,
        default=10.0,
        help="seconds to wait for the witnessed checkpoint to reach the latest (default 10)",
    )
    return parser


def _report(report: VerificationReport, *, source: str, as_json: bool, console: Console) -> None:
    """The verdict; ``source`` names what was verified while the ledger is unknown."""
    if as_json:
        print(json.dumps(report.to_dict()))
        return
    subject = report.ledger or source
    if report.valid:
        console.print("VALID", style="bold green", end=" ")
        text = (
            f"{subject}: records {report.from_seq}-{report.to_seq} ({report.count} checked); "
            f"checked: {', '.join(report.checks)}; "
            f"head {report.head_hash}, root {report.merkle_root}"
        )
        text += "".join(f"; {note}" for note in report.notes)
    else:
        console.print("INVALID", style="bold red", end=" ")
        where = f" at seq {report.failure_seq}" if report.failure_seq is not None else ""
        text = f"{subject}{where}: {report.reason}"
    # One line however narrow the terminal: auditors grep and diff verdicts.
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _progress(console: Console, *, disable: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        disable=disable,
        transient=True,
    )


def _run(args: argparse.Namespace, err: Console) -> VerificationReport:
    key = resolve_key(args.key)
    snapshot = read_snapshot(args.snapshot) if args.snapshot is not None else None
    tsa_trust = read_tsa_trust(args.tsa_cert) if args.tsa_cert is not None else None
    witnesses = WitnessPolicy.from_args(
        args.witness, args.quorum, getattr(args, "witness_wait", 0.0)
    )
    with _progress(err, disable=args.json) as progress:
        if args.mode == "bundle":
            task = progress.add_task(f"verifying {args.file.name}", total=None)

            def advance(count: int) -> None:
                progress.update(task, completed=count)

            return verify_bundle_file(
                args.file,
                key,
                ledger=args.ledger,
                snapshot=snapshot,
                advance=advance,
                witnesses=witnesses,
                tsa_trust=tsa_trust,
            )
        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        with httpx.Client(base_url=args.url, timeout=args.timeout, headers=headers) as http:
            return verify_server(
                http,
                args.ledger,
                key,
                state=args.state,
                snapshot=snapshot,
                progress=progress,
                witnesses=witnesses,
                tsa_trust=tsa_trust,
                documents=args.documents,
            )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on usage errors, 0 on --help
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    console = Console(stderr=False)
    err = Console(stderr=True)
    try:
        report = _run(args, err)
    except UsageError as e:
        return _usage(str(e), as_json=args.json, err=err)
    except KeyboardInterrupt:
        return _usage("interrupted", as_json=args.json, err=err)
    except Exception as e:  # never a traceback: an auditor's tool must end in a verdict
        return _usage(f"unexpected {type(e).__name__}: {e}", as_json=args.json, err=err)
    source = args.file.name if args.mode == "bundle" else args.ledger
    _report(report, source=source, as_json=args.json, console=console)
    return EXIT_VALID if report.valid else EXIT_INVALID


def _usage(message: str, *, as_json: bool, err: Console) -> int:
    one_line = " ".join(message.split())
    if as_json:
        print(json.dumps({"valid": None, "error": one_line}))
    else:
        err.print("ERROR", style="bold yellow", end=" ")
        err.print(one_line, markup=False, highlight=False)
    return EXIT_USAGE


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
