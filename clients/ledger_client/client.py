"""``Client``: the ledger's HTTP API from Python, blocking, with retries and verified writes."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
import httpx_sse

from ledger.core.checkpoint import SignedCheckpoint
from ledger.core.documents import resolve_document_paths
from ledger.core.records import Record
from ledger.core.signing import VerifierKey
from ledger_client import protocol
from ledger_client.answers import RetryableAnswer, problem, retryable_status
from ledger_client.errors import LedgerClientError, TransportError
from ledger_client.events import (
    Document,
    batches,
    document_content,
    local_documents,
    prepare_event,
)
from ledger_client.protocol import Call, Operation, ledger_path
from ledger_client.receipts import Receipt
from ledger_client.retries import RetryPolicy
from ledger_client.settings import (
    MAX_BATCH,
    MAX_BODY_BYTES,
    ClientSettings,
    headers,
    new_idempotency_key,
    query,
)
from ledger_client.streams import AtomicFile, is_event_stream, streamed_record

__all__ = ["Client"]

T = TypeVar("T")


class Client:
    """A ledger server's API, blocking.

    ``trusted_keys`` are the log's verifier keys (``name+keyid+base64``, as
    ``GET /v1/keys`` and the server's log print them; check them out of
    band); ``verify=True`` trusts nothing else. ``state`` is a file keeping
    the newest checkpoint verified per ledger, so a later one is trusted only
    once proven to extend it: rollback and fork detection across runs and
    processes. Without it the memory lasts as long as the client.

    ``author`` and ``author_key`` (a PEM file of the desk's Ed25519 private
    key) sign every event sent (format §1.4); the ledger must have registered
    the desk's verifier key (``ledger authors add``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        trusted_keys: Iterable[str | VerifierKey] = (),
        state: str | os.PathLike[str] | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        batch_size: int = MAX_BATCH,
        max_body_bytes: int = MAX_BODY_BYTES,
        author: str | None = None,
        author_key: str | os.PathLike[str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = ClientSettings(
            trusted_keys=trusted_keys,
            state=state,
            retry=retry,
            batch_size=batch_size,
            max_body_bytes=max_body_bytes,
            author=author,
            author_key=author_key,
        )
        self._http = httpx.Client(
            base_url=base_url, headers=headers(token), timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- writes ---------------------------------------------------------------------

    def create_ledger(
        self, name: str, *, title: str | None = None, description: str | None = None
    ) -> dict[str, Any]:
        created: dict[str, Any] = self._run(
            protocol.create_ledger(name, title=title, description=description)
        )
        return created

    def upload_document(
        self, ledger: str, document: Document, media_type: str | None = None
    ) -> dict[str, Any]:
        """Upload a source document (docs/documents.md): ``document`` is its bytes
        (with ``media_type``) or a file (its media type from its extension unless
        given). Returns ``{"sha256", "size", "media_type"}``, checked against the
        bytes sent; an event's ``source.document`` cites it by that ``sha256``."""
        content, kind = document_content(document, media_type)
        held: dict[str, Any] = self._run(protocol.upload_document(ledger, content, kind))
        return held

    def _with_documents(self, ledger: str, event: Mapping[str, Any]) -> Mapping[str, Any]:
        """``event`` citing the hash of each file its sources give as ``document_path``,
        uploaded first."""
        paths = local_documents(event)
        if not paths:
            return event
        hashes = {path: str(self.upload_document(ledger, path)["sha256"]) for path in paths}
        return resolve_document_paths(dict(event), hashes.__getitem__)

    def append(self, ledger: str, event: Mapping[str, Any], *, verify: bool = False) -> Receipt:
        """Append one event; with ``verify``, prove its record is in the signed log.
        A source may give ``document_path``: see ``upload_document``."""
        operation = protocol.append(
            ledger,
            [prepare_event(self._with_documents(ledger, event), ledger, self.settings.signer)],
            as_batch=False,
            idempotency_key=new_idempotency_key(),
            trust=self.settings.trust_for(verify),
        )
        return self._run(operation)[0]

    def append_many(
        self, ledger: str, events: Iterable[Mapping[str, Any]], *, verify: bool = False
    ) -> list[Receipt]:
        """Append events in order, in batches the server accepts (each all or none).

        On failure the error's ``committed`` holds the receipts of the batches
        already written; the events after them were not.
        """
        trust = self.settings.trust_for(verify)
        receipts: list[Receipt] = []
        groups = batches(
            (
                prepare_event(self._with_documents(ledger, event), ledger, self.settings.signer)
                for event in events
            ),
            max_events=self.settings.batch_size,
            max_bytes=self.settings.max_body_bytes,
        )
        for group in groups:
            operation = protocol.append(
                ledger,
                [event for event, _ in group],
                as_batch=True,
                idempotency_key=new_idempotency_key(),
                trust=trust,
                encoded=[encoded for _, encoded in group],
            )
            try:
                receipts.extend(self._run(operation))
            except LedgerClientError as error:
                error.committed = tuple(receipts)
                raise
        return receipts

    # -- reads ----------------------------------------------------------------------

    def record(self, ledger: str, seq: int, *, verify: bool = False) -> Record:
        """Record ``seq``; with ``verify``, proven included in the signed log."""
        return self._run(protocol.record(ledger, seq, trust=self.settings.trust_for(verify)))

    def records(
        self, ledger: str, after_seq: int = 0, *, verify: bool = False, page_size: int = MAX_BATCH
    ) -> Iterator[Record]:
        """Every record after ``after_seq`` up to the head, page by page; with
        ``verify``, each proven included before it is handed out."""
        trust = self.settings.trust_for(verify)
        note: SignedCheckpoint | None = None
        cursor: int | None = after_seq
        while cursor is not None:
            page, note = self._run(
                protocol.page(ledger, cursor, limit=page_size, trust=trust, note=note)
            )
            yield from page.records
            cursor = page.next_after_seq

    def checkpoint(self, ledger: str) -> SignedCheckpoint:
        """The latest checkpoint, verified against the trusted keys and the state."""
        trust = self.settings.trust_for(True)
        assert trust is not None
        return self._run(protocol.latest_checkpoint(trust, ledger))

    def snapshot(
        self, ledger: str, as_of: str | None = None, known_at: str | int | None = None
    ) -> dict[str, Any]:
        """The signed positions snapshot (format §6), as the server computed it."""
        return self._document(
            ledger_path(ledger, "snapshot"), query(as_of=as_of, known_at=known_at)
        )

    def history(
        self,
        ledger: str,
        *,
        party: str | None = None,
        topic: str | None = None,
        known_at: str | int | None = None,
    ) -> dict[str, Any]:
        """Every stance change in valid-time order, with its corrections and retractions."""
        params = query(party=party, topic=topic, known_at=known_at)
        return self._document(ledger_path(ledger, "history"), params)

    def diff(
        self, ledger: str, from_: str, to: str, *, known_at: str | int | None = None
    ) -> dict[str, Any]:
        """Per party and topic, the position as of ``from_`` and as of ``to``."""
        params = {"from": from_, "to": to, **query(known_at=known_at)}
        return self._document(ledger_path(ledger, "diff"), params)

    def export(
        self,
        ledger: str,
        path: str | os.PathLike[str],
        *,
        from_seq: int | None = None,
        to_seq: int | None = None,
    ) -> Path:
        """Write the export bundle (format §4) to ``path``, whole or not at all."""
        target = Path(path)
        request = self._http.build_request(
            "GET", ledger_path(ledger, "export"), params=query(from_seq=from_seq, to_seq=to_seq)
        )
        try:
            for attempt in self.settings.retrying():
                with attempt:
                    response = self._http.send(request, stream=True)
                    try:
                        if response.status_code != 200:
                            response.read()
                            if retryable_status(response):
                                raise RetryableAnswer(response)
                            raise problem(response)
                        with AtomicFile(target) as out:
                            for chunk in response.iter_bytes():
                                out.write(chunk)
                    finally:
                        response.close()
        except RetryableAnswer as last:
            raise problem(last.response) from None
        except httpx.TransportError as e:
            raise TransportError(f"GET {request.url}: {e}") from e
        return target

    def follow(self, ledger: str, after_seq: int = 0) -> Iterator[Record]:
        """Every record after ``after_seq``, then each new one as it is appended.

        After a drop the stream resumes from the last record received
        (``Last-Event-ID``), so none is missed or repeated. It never ends by
        itself: stop iterating to stop.
        """
        last = after_seq
        path = ledger_path(ledger, "events", "stream")
        failures = 0
        while True:
            try:
                with httpx_sse.connect_sse(
                    self._http,
                    "GET",
                    path,
                    headers={"Last-Event-ID": str(last)},
                    timeout=httpx.Timeout(self._http.timeout.connect, read=None),
                ) as source:
                    response = source.response
                    if response.status_code != 200 or not is_event_stream(response):
                        response.read()
                        if retryable_status(response):
                            raise RetryableAnswer(response)
                        raise problem(response)
                    for event in source.iter_sse():
                        if event.event == "record":
                            record = streamed_record(ledger, last, event)
                            last, failures = record.seq, 0
                            yield record
                # The stream ended (its timeout, a restart): reconnect at once.
            except (RetryableAnswer, httpx.TransportError) as error:
                failures += 1
                time.sleep(self.settings.retry.wait_after(error, failures, path))

    # -- the driver -----------------------------------------------------------------

    def _document(self, path: str, params: Mapping[str, str | int]) -> dict[str, Any]:
        document: dict[str, Any] = self._run(protocol.json_document(path, params))
        return document

    def _run(self, operation: Operation[T]) -> T:
        try:
            call = next(operation)
            while True:
                call = operation.send(self._send(call))
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            operation.close()

    def _send(self, call: Call) -> httpx.Response:
        request = self._http.build_request(
            call.method, call.path, params=call.params, headers=call.headers, content=call.content
        )
        try:
            for attempt in self.settings.retrying():
                with attempt:
                    response = self._http.send(request)
                    if retryable_status(response):
                        raise RetryableAnswer(response)
                    return response
        except RetryableAnswer as last:
            return last.response
        except httpx.TransportError as e:
            raise TransportError(f"{call.method} {request.url}: {e}") from e
        raise AssertionError("stamina ends with a result or the last error")
