"""``ledger-client``: post events from a JSON Lines file, and follow a ledger.

    ledger-client post LEDGER FILE.jsonl [--verify] [--url URL] [--token T] [--key KEY …]
                       [--author NAME --author-key PEM]
    ledger-client tail LEDGER [--after-seq N]
    ledger-client keygen NAME --out PEM

``post`` is resumable: an event without an ``id`` gets one derived from its
line number and its canonical bytes, so a rerun of the same file gives each
event the same id, and events whose id the log already holds are skipped.
Exit codes: 0 done, 1 a verification failed, 2 bad input or usage, 3 the
server refused or could not be reached.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ledger.core.canonical import canonical_bytes
from ledger.core.signing import VerifierKey
from ledger_client.client import Client
from ledger_client.errors import LedgerClientError, VerificationError
from ledger_client.receipts import Receipt

__all__ = ["app", "main"]

EXIT_VERIFICATION, EXIT_USAGE, EXIT_REFUSED = 1, 2, 3
# The namespace of ids derived from a file's lines (uuid5): fixed, so reruns agree.
_LINE_IDS = uuid.UUID("5d2c7a1e-8f1b-4c55-9a59-2a3f0c6e4b17")

app = typer.Typer(
    name="ledger-client",
    help="Post events to a ledger server and follow it, verifying what it acknowledges.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)

Url = Annotated[str, typer.Option("--url", envvar="LEDGER_URL", help="The server's base URL.")]
Token = Annotated[
    str | None, typer.Option("--token", envvar="LEDGER_TOKEN", help="A bearer token.")
]
Keys = Annotated[
    list[str] | None,
    typer.Option(
        "--key",
        envvar="LEDGER_TRUSTED_KEY",
        help="A verifier key of the log (name+keyid+base64); repeatable.",
    ),
]
State = Annotated[
    Path | None,
    typer.Option("--state", help="File keeping the newest checkpoint verified per ledger."),
]
Author = Annotated[
    str | None,
    typer.Option("--author", envvar="LEDGER_AUTHOR", help="Sign each event as this desk."),
]
AuthorKey = Annotated[
    Path | None,
    typer.Option(
        "--author-key",
        envvar="LEDGER_AUTHOR_KEY",
        exists=True,
        dir_okay=False,
        help="The desk's Ed25519 private key, PEM (ledger-client keygen).",
    ),
]


def read_events(path: Path) -> list[dict[str, Any]]:
    """The file's events, one JSON object per non-blank line, each with an id."""
    events: list[dict[str, Any]] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                event = json.loads(raw)
            except ValueError as e:
                raise typer.BadParameter(f"line {number} is not JSON: {e}") from None
            if not isinstance(event, dict):
                raise typer.BadParameter(f"line {number} is not a JSON object")
            if "id" not in event:
                derived = canonical_bytes(event).decode("utf-8")
                event["id"] = str(uuid.uuid5(_LINE_IDS, f"{number}\n{derived}"))
            events.append(event)
    return events


@app.command()
def post(
    ledger: Annotated[str, typer.Argument(help="The ledger to append to.")],
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Events, one JSON object per line.")
    ],
    url: Url = "http://127.0.0.1:8000",
    token: Token = None,
    key: Keys = None,
    state: State = None,
    verify: Annotated[
        bool, typer.Option(help="Prove every record is in a checkpoint signed by --key.")
    ] = False,
    author: Author = None,
    author_key: AuthorKey = None,
) -> None:
    """Append the file's events in order, in batches, skipping those the log holds."""
    events = read_events(file)
    with _client(url, token, key, state, verify, author, author_key) as client:
        held = {record.id for record in client.records(ledger)}
        todo = [event for event in events if event["id"] not in held]
        if len(todo) < len(events):
            err.print(f"{len(events) - len(todo)} event(s) already in the log: skipped")
        receipts: list[Receipt] = []
        with _progress() as progress:
            task = progress.add_task("posting", total=len(todo))
            step = client.settings.batch_size
            for start in range(0, len(todo), step):
                group = todo[start : start + step]
                receipts.extend(client.append_many(ledger, group, verify=verify))
                progress.advance(task, len(group))
    if receipts:
        checked = (
            f", each proven in the checkpoint of size {receipts[-1].verified_in}" if verify else ""
        )
        err.print(
            f"posted {len(receipts)} event(s): seq {receipts[0].seq}-{receipts[-1].seq}{checked}"
        )
    else:
        err.print("nothing to post")


@app.command()
def tail(
    ledger: Annotated[str, typer.Argument(help="The ledger to follow.")],
    url: Url = "http://127.0.0.1:8000",
    token: Token = None,
    after_seq: Annotated[int, typer.Option(min=0, help="Start after this seq.")] = 0,
) -> None:
    """Print every record after --after-seq, then each new one: one canonical JSON line each."""
    out = sys.stdout.buffer
    with _client(url, token, None, None, False) as client:
        for record in client.follow(ledger, after_seq):
            out.write(record.canonical() + b"\n")
            out.flush()


@app.command()
def keygen(
    name: Annotated[str, typer.Argument(help="The desk's name, which its signatures carry.")],
    out: Annotated[
        Path, typer.Option("--out", dir_okay=False, help="Where to write the private key (PEM).")
    ],
) -> None:
    """Make a desk's Ed25519 key: the private key to --out (mode 0600), and its
    verifier key string, to register with `ledger authors add`, on standard output."""
    private = Ed25519PrivateKey.generate()
    try:
        verifier = VerifierKey.from_public_key(name, private.public_key())
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise typer.BadParameter(f"{out} exists: a key is never overwritten") from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    err.print(f"wrote the private key of {name} to {out}; its verifier key:")
    print(verifier.to_string())


def _client(
    url: str,
    token: str | None,
    keys: list[str] | None,
    state: Path | None,
    verify: bool,
    author: str | None = None,
    author_key: Path | None = None,
) -> Client:
    if verify and not keys:
        raise typer.BadParameter("--verify needs the log's verifier key: --key")
    try:
        return Client(
            url,
            token=token,
            trusted_keys=keys or (),
            state=state,
            author=author,
            author_key=author_key,
        )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def main() -> None:
    # typer answers usage errors itself (exit code 2); what the server or a
    # check says ends here.
    try:
        app()
    except VerificationError as e:
        err.print(f"[red]INVALID[/red] {e}")
        raise SystemExit(EXIT_VERIFICATION) from None
    except LedgerClientError as e:
        committed = f" ({len(e.committed)} event(s) were appended before it)" if e.committed else ""
        err.print(f"[red]refused[/red] {e}{committed}")
        raise SystemExit(EXIT_REFUSED) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
