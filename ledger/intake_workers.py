"""Large append bodies are parsed in a worker process, on the second core.

The server is one process, and its Python runs one thread at a time: under
a stream of 500-event batches, the event loop, the append groups and the
parsing of the next bodies all take turns on one core while the other waits.
Parsing (``Intake.parse``: JSON, the value rules, each event's schema) is a
fifth of that work and needs nothing from the server, so bodies larger than
``POOL_BODY_BYTES`` go to one worker process instead of a thread.

The worker sends back each event's fields, with ``data`` and ``source`` as
the canonical JSON bytes an ``EventDraft`` holds them as anyway: bytes
unpickle far cheaper than the nested dicts they encode, and the server never
decodes them (the recorder splices them into the record's canonical bytes).
So the drafts are the ones ``Intake.parse`` would have made (ids aside, which
are drawn afresh: the body brought none).

A refusal is not carried back. The worker answers ``None``, and the body is
parsed again in the server, so the error is exactly the one ``Intake.parse``
raises, field name and all. If the worker cannot be reached (it died, or
the machine refused a process), the body is parsed in the server too, and
a fresh worker is started for the next one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Mapping
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from typing import Any, cast

from ledger.core.authors import signed_bytes, signs
from ledger.core.canonical import canonical_bytes
from ledger.core.errors import LedgerError
from ledger.core.records import EventDraft
from ledger.intake import EventSchemas, Intake, ParsedBody

__all__ = ["POOL_BODY_BYTES", "IntakePool"]

log = logging.getLogger("ledger.api")

# Smaller bodies are parsed in the server: the round trip to the worker
# costs more than parsing them (``scripts/bench.sh appends`` measures both).
POOL_BODY_BYTES = 64 * 1024

# One event as the worker sends it: an ``EventDraft``'s fields, in order, as a
# plain tuple (which pickles without naming its class).
_Event = tuple[
    str, str, str, bytes, str | None, str | None, bytes | None, bool, bytes | None, bytes | None
]
# is_batch, events, request hash (when asked for).
_Answer = tuple[bool, list[_Event], str | None]

_worker_intake: Intake | None = None


def _start_worker(max_batch: int, server_pid: int) -> None:
    global _worker_intake
    _worker_intake = Intake(schemas=EventSchemas.bundled(), max_batch=max_batch)
    threading.Thread(target=_end_with, args=(server_pid,), daemon=True).start()


def _end_with(server_pid: int) -> None:
    """End the worker when the server ends, however it ends.

    A server killed outright (SIGKILL, OOM) leaves its worker waiting on a
    task queue whose pipe the worker itself holds open at both ends, so it
    would wait forever, and keep its forkserver alive with it. A pidfd is
    readable once its process has ended; where there is none (Linux < 5.3),
    the pid is polled.
    """
    try:
        pidfd = os.pidfd_open(server_pid)
    except ProcessLookupError:
        os._exit(0)
    except OSError:
        while True:
            time.sleep(1.0)
            try:
                os.kill(server_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # alive, under another user
                continue
    select.select([pidfd], [], [])
    os._exit(0)


def _parse_in_worker(
    body: bytes, with_sha256: bool, ledger: str = "", authors: Mapping[str, bytes] | None = None
) -> _Answer | None:
    """In the worker: ``Intake.parse(body)`` in sendable form, or None if refused.

    With ``authors`` (the registered desks of ``ledger``: name to public key),
    each signed event's signature is verified here, on the worker's core, and
    the key it holds for is noted in its draft (``signature_checked_with``);
    the recorder, under the ledger's lock, then only checks the key is still
    the registered one.
    """
    if _worker_intake is None:  # pragma: no cover - the initializer always ran
        raise RuntimeError("the intake worker was not started")
    try:
        parsed = _worker_intake.parse(body)
    except LedgerError:
        return None
    drafts = parsed.drafts
    if authors:
        drafts = [_checked(draft, ledger, authors) for draft in drafts]
    events = cast("list[_Event]", [tuple(d) for d in drafts])
    sha256 = hashlib.sha256(canonical_bytes(parsed.value)).hexdigest() if with_sha256 else None
    return parsed.is_batch, events, sha256


def _checked(draft: EventDraft, ledger: str, authors: Mapping[str, bytes]) -> EventDraft:
    name = draft.author_name
    key = authors.get(name) if name is not None else None
    if key is None or draft.author_json is None:
        return draft
    if not signs(key, draft.author_json, signed_bytes(draft.signed_members(ledger))):
        return draft  # refused under the lock, with the reason
    return draft._replace(signature_checked_with=key)


def _ready() -> bool:
    return _worker_intake is not None


def _drafts(events: list[_Event]) -> list[EventDraft]:
    make = EventDraft._make
    return [make(event) for event in events]


class IntakePool:
    """One worker process that parses large bodies; ``close`` stops it."""

    def __init__(self, *, max_batch: int) -> None:
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False
        self.bodies_parsed = 0  # by the worker, for tests and curious operators

    def _running(self) -> ProcessPoolExecutor | None:
        """The worker's executor; None while it is being started (from here)."""
        with self._lock:
            if self._executor is not None:
                return self._executor
            # Started on first need (a server that never sees a large body never
            # spawns it); that body is parsed here while the worker starts.
            # forkserver: the server runs threads, which a plain fork would copy
            # in whatever state they hold.
            self._executor = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=_start_worker,
                initargs=(self._max_batch, os.getpid()),
            )
            self._executor.submit(_ready)
            return None

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is executor:
                self._executor = None
        executor.shutdown(wait=False, cancel_futures=True)

    async def parse(
        self,
        body: bytes,
        *,
        with_sha256: bool,
        ledger: str = "",
        authors: Mapping[str, bytes] | None = None,
    ) -> ParsedBody | None:
        """What ``Intake.parse(body)`` gives, parsed in the worker; None when the
        body is refused or the worker is out of reach (parse it here, then).
        ``authors``: see ``_parse_in_worker``."""
        if self._closed:
            return None
        executor = self._running()
        if executor is None:
            return None
        try:
            answer: Any = await asyncio.get_running_loop().run_in_executor(
                executor, _parse_in_worker, body, with_sha256, ledger, authors
            )
        except (BrokenExecutor, OSError, RuntimeError) as e:
            # RuntimeError: the executor was shut down (by close, or by another
            # request that found it broken) after we took it.
            if not self._closed:
                log.warning("the intake worker failed (%s); starting a new one", e)
                self._discard(executor)
            return None
        except Exception:
            # Not a refusal (those answer None): the server's own parse will
            # raise it again, where the request's error handling sees it.
            log.warning("the intake worker raised; parsing in the server", exc_info=True)
            return None
        if answer is None:
            return None
        is_batch, events, sha256 = answer
        self.bodies_parsed += 1
        return ParsedBody(_drafts(events), is_batch=is_batch, value=None, known_sha256=sha256)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
