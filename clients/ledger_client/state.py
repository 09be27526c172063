"""The client's memory: per ledger, the newest checkpoint it verified.

A later checkpoint is trusted only once it is proven an extension of this
one (format §5, rollback and fork detection), so the memory must never move
to a checkpoint that was not checked against what it replaces. ``replace``
is therefore a compare-and-swap: it writes only when the file still holds
the checkpoint the caller checked against, under an exclusive lock, so
several processes may share one state file. The file is replaced atomically
(write, fsync, rename): a crash leaves the old or the new, never half.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ledger_client.errors import StateFileError
from ledger_client.streams import AtomicFile

__all__ = ["CheckpointState"]

_FORMAT = "ledger-client-state/1"


class CheckpointState:
    """Checkpoint notes by ledger name, in the JSON file at ``path``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(f".{self.path.name}.lock")
        self._threads = threading.Lock()

    def get(self, ledger: str) -> str | None:
        """The note remembered for ``ledger``, or None before the first verification."""
        with self._locked(exclusive=False):
            return self._read().get(ledger)

    def replace(self, ledger: str, *, expected: str | None, note: str) -> bool:
        """Remember ``note`` if the file still holds ``expected`` for ``ledger``.

        False (nothing written) when another client moved it meanwhile: the
        caller then checks its checkpoint against that one instead.
        """
        with self._locked(exclusive=True):
            notes = self._read()
            if notes.get(ledger) != expected:
                return False
            if expected == note:
                return True
            notes[ledger] = note
            self._write(notes)
            return True

    @contextmanager
    def _locked(self, *, exclusive: bool) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._threads, open(self._lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self) -> dict[str, str]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            document = json.loads(raw)
        except ValueError as e:
            raise StateFileError(f"{self.path} is not JSON: {e}") from None
        notes = document.get("checkpoints") if isinstance(document, dict) else None
        if (
            not isinstance(document, dict)
            or document.get("format") != _FORMAT
            or not isinstance(notes, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in notes.items())
        ):
            raise StateFileError(f"{self.path} is not a {_FORMAT} file")
        return dict(notes)

    def _write(self, notes: dict[str, str]) -> None:
        document = {"format": _FORMAT, "checkpoints": dict(sorted(notes.items()))}
        with AtomicFile(self.path) as out:
            out.write(json.dumps(document, indent=2).encode("utf-8") + b"\n")
