"""ledger-verify: check a ledger without trusting the server that holds it.

Imports only ``ledger.core``, ``httpx``, ``cryptography`` and ``rich``, so a
third party can audit with nothing but this file, the core package and the
format contract (SPEC.md).

    ledger-verify server URL --ledger NAME [--json]

pages through the live ledger's records and checks SPEC §5 steps 2-3: every
record is canonical, belongs to NAME, runs gap-free in ``seq`` with
non-decreasing ``recorded_at``, and links to its predecessor's hash, up to the
head the server states. Exit codes (SPEC §5): 0 valid, 1 invalid (tampered),
2 usage or input error (network, unreadable response).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from ledger.core.chain import ChainVerifier
from ledger.core.errors import VerificationError

__all__ = ["Outcome", "main", "run", "verify_server"]

EXIT_VALID, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Input we could not read: exit code 2."""


@dataclass(frozen=True, slots=True)
class Outcome:
    valid: bool
    ledger: str
    checked: int
    head_hash: str | None = None
    seq: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"valid": self.valid, "ledger": self.ledger, "checked": self.checked}
        for name in ("head_hash", "seq", "reason"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


def _get_json(http: httpx.Client, path: str) -> Any:
    try:
        response = http.get(path)
    except httpx.HTTPError as e:
        raise UsageError(f"cannot reach the server: {e}") from None
    if response.status_code != 200:
        raise UsageError(f"GET {path} answered {response.status_code}: {response.text[:200]}")
    try:
        return response.json()
    except ValueError:
        raise UsageError(f"GET {path} did not return JSON") from None


def verify_server(http: httpx.Client, ledger: str, *, progress: Progress | None = None) -> Outcome:
    """Stream the ledger up to the head stated now and verify the chain."""
    head = _get_json(http, f"/v1/ledgers/{ledger}/head")
    if not isinstance(head, dict) or not isinstance(head.get("size"), int):
        raise UsageError("the server's /head response is not {size, head_hash}")
    size: int = head["size"]
    stated_head: str = str(head.get("head_hash"))
    verifier = ChainVerifier(ledger=ledger)
    task = progress.add_task(f"verifying {ledger}", total=size) if progress else None
    try:
        with http.stream(
            "GET", f"/v1/ledgers/{ledger}/events", headers={"Accept": "application/x-ndjson"}
        ) as response:
            if response.status_code != 200:
                raise UsageError(f"reading records answered {response.status_code}")
            for line in response.iter_lines():
                if verifier.count_seen >= size:
                    break  # records appended after we read the head
                verifier.add_line(line.encode("utf-8"))
                if progress is not None and task is not None:
                    progress.advance(task)
    except VerificationError as e:
        return Outcome(False, ledger, verifier.count_seen, seq=e.seq, reason=e.reason)
    except httpx.HTTPError as e:
        raise UsageError(f"reading records failed: {e}") from None
    if verifier.count_seen < size:
        return Outcome(
            False,
            ledger,
            verifier.count_seen,
            seq=verifier.next_seq,
            reason=f"the server states {size} records but served {verifier.count_seen}",
        )
    if verifier.head_hash != stated_head:
        return Outcome(
            False,
            ledger,
            size,
            seq=size,
            reason="the head hash the server states does not match its records",
        )
    return Outcome(True, ledger, size, head_hash=verifier.head_hash)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ledger-verify", description="Verify a negotiation ledger without trusting its server."
    )
    modes = parser.add_subparsers(dest="mode", required=True)
    server = modes.add_parser("server", help="verify a live server's ledger")
    server.add_argument("url", help="server base URL, e.g. http://127.0.0.1:8000")
    server.add_argument("--ledger", required=True, help="ledger name")
    server.add_argument("--json", action="store_true", help="machine-readable result")
    server.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout in seconds")
    return parser


def _report(outcome: Outcome, *, as_json: bool, console: Console) -> None:
    if as_json:
        print(json.dumps(outcome.to_dict()))
    elif outcome.valid:
        console.print(
            f"[bold green]VALID[/] {outcome.ledger}: {outcome.checked} records, "
            f"chain intact, head {outcome.head_hash}"
        )
    else:
        where = f" at seq {outcome.seq}" if outcome.seq is not None else ""
        console.print(f"[bold red]INVALID[/] {outcome.ledger}{where}: {outcome.reason}")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on usage errors, 0 on --help
        return int(e.code or 0)
    console = Console(stderr=False)
    err = Console(stderr=True)
    try:
        with (
            httpx.Client(base_url=args.url, timeout=args.timeout) as http,
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=err,
                disable=args.json,
                transient=True,
            ) as progress,
        ):
            outcome = verify_server(http, args.ledger, progress=progress)
    except UsageError as e:
        if args.json:
            print(json.dumps({"valid": None, "error": str(e)}))
        else:
            err.print(f"[bold yellow]ERROR[/] {e}")
        return EXIT_USAGE
    _report(outcome, as_json=args.json, console=console)
    return EXIT_VALID if outcome.valid else EXIT_INVALID


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
