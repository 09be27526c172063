"""The background task that has checkpoints timestamped by an RFC 3161 authority.

With ``LEDGER_TSA_URL`` set, a thread of its own wakes once per
``LEDGER_TSA_INTERVAL`` and, for each ledger whose newest checkpoint has no
timestamp yet, sends that checkpoint's body to the authority, checks the
reply against ``LEDGER_TSA_CERTS`` (``ledger.core.timestamps``) and stores
it. Appends never wait for it: it reads stored checkpoints and writes one
small row, on its own thread, and a slow or absent authority costs only
this thread's time. A reply that fails a check is logged and dropped; an
authority that cannot be reached is asked again at the next pass.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import httpx

from ledger.core import checkpoint as notes
from ledger.core.errors import LedgerError
from ledger.core.times import format_recorded_at
from ledger.core.timestamps import (
    MAX_REPLY_BYTES,
    QUERY_MEDIA_TYPE,
    TsaTrust,
    timestamp_request,
    verify_reply,
)
from ledger.service import LedgerService
from ledger.store.timestamps import StoredTimestamp, insert_timestamp, newest_timestamp

__all__ = ["Timestamper"]

log = logging.getLogger("ledger.timestamping")

# Seconds one request to the authority may take: a slow authority delays
# only the next pass, never an append.
_REQUEST_TIMEOUT = 10.0
# Seconds ``stop`` waits for a pass to end: a request still in flight then is
# abandoned with the daemon thread rather than holding up a shutdown.
_STOP_WAIT = 1.0


class Timestamper:
    """Timestamps each ledger's newest checkpoint at most once per ``interval``."""

    def __init__(
        self,
        *,
        service: LedgerService,
        url: str,
        trust: TsaTrust,
        interval: float,
    ) -> None:
        self.service = service
        self.url = url
        self.trust = trust
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run passes on a daemon thread until ``stop``; the first pass starts now."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ledger-timestamps", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the thread: at once between passes; a pass in flight gets ``_STOP_WAIT``
        seconds to end, then its daemon thread is left to die with the process."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=_STOP_WAIT)
            self._thread = None

    def _run(self) -> None:
        with httpx.Client(timeout=_REQUEST_TIMEOUT) as client:
            while not self._stop.is_set():
                try:
                    self.run_pass(client)
                except Exception:
                    # The thread outlives any one failure (the database down, say).
                    log.exception("timestamping pass failed; retrying in %.0f s", self.interval)
                self._stop.wait(self.interval)

    def run_pass(self, client: httpx.Client) -> list[StoredTimestamp]:
        """One pass over every ledger: what was stored."""
        stored = []
        for info in self.service.list_ledgers():
            if self._stop.is_set():
                break
            if info.size == 0:
                continue
            newest = newest_timestamp(self.service.recorder.db, info.name)
            if newest is not None and newest.tree_size >= info.size:
                continue
            timestamp = self.timestamp(client, info.name, info.size)
            if timestamp is not None:
                stored.append(timestamp)
        return stored

    def timestamp(self, client: httpx.Client, ledger: str, size: int) -> StoredTimestamp | None:
        """Have the checkpoint of ``size`` timestamped and store the checked reply."""
        note = self.service.checkpoint(ledger, size=size)
        body = notes.SignedCheckpoint.from_text(note).checkpoint.body()
        request = timestamp_request(body)
        try:
            response = client.post(
                self.url, content=request.der, headers={"Content-Type": QUERY_MEDIA_TYPE}
            )
        except httpx.HTTPError as error:
            log.warning("timestamp authority %s unreachable: %s", self.url, error)
            return None
        if response.status_code != 200:
            log.warning("timestamp authority %s answered HTTP %d", self.url, response.status_code)
            return None
        if len(response.content) > MAX_REPLY_BYTES:
            log.warning("timestamp authority %s sent an oversized reply", self.url)
            return None
        try:
            attestation = verify_reply(response.content, body, self.trust, nonce=request.nonce)
        except LedgerError as error:
            log.error(
                "timestamp of %s at size %d from %s refused: %s", ledger, size, self.url, error
            )
            return None
        timestamp = StoredTimestamp(
            tree_size=size,
            response=response.content,
            attested_at=attestation.attested_at,
            authority=self.url,
            received_at=format_recorded_at(datetime.now(UTC)),
        )
        if not insert_timestamp(self.service.recorder.db, ledger, timestamp):
            return None
        log.info(
            "checkpoint %s/%d timestamped by %s at %s",
            ledger,
            size,
            attestation.authority,
            attestation.attested_at,
        )
        return timestamp
