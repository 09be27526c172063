"""``ledger witness``: create, configure and run a witness (docs/witnesses.md)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ledger.core.signing import VerifierKey
from ledger.witness.directory import WitnessDirectoryError, init_witness, open_witness

__all__ = ["witness_app"]

witness_app = typer.Typer(
    help="A witness: cosigns a ledger's checkpoints for others (C2SP tlog-witness).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True, highlight=False)
err_console = Console(stderr=True, soft_wrap=True, highlight=False)

DirectoryArgument = Annotated[
    Path, typer.Argument(help="The witness's directory: its key and its state")
]


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(1)


@witness_app.command("init")
def init(
    directory: DirectoryArgument,
    name: Annotated[
        str, typer.Option(help="The witness's key name, a schema-less URL: example.com/w1")
    ],
) -> None:
    """Create a witness's key and state; print its verifier key (last line)."""
    try:
        witness = init_witness(directory, name)
    except WitnessDirectoryError as e:
        raise _fail(str(e)) from None
    console.print(f"witness {name} created in {directory}; its verifier key:")
    print(witness.verifier.to_string())


@witness_app.command("add-log")
def add_log(
    directory: DirectoryArgument,
    origin: Annotated[str, typer.Option(help="The log's checkpoint origin line")],
    key: Annotated[
        str, typer.Option(help="The log's verifier key (<name>+<key id>+<base64>, type 0x01)")
    ],
) -> None:
    """Witness a log: trust KEY for checkpoints of ORIGIN (repeat for each key it signs with)."""
    if not origin or origin != origin.strip() or any(ord(c) < 0x20 or c == "\x7f" for c in origin):
        raise _fail("the origin is a non-empty line without control characters or outer spaces")
    try:
        verifier = VerifierKey.from_string(key)
    except ValueError as e:
        raise _fail(f"--key: {e}") from None
    try:
        files = open_witness(directory)
    except WitnessDirectoryError as e:
        raise _fail(str(e)) from None
    try:
        added = files.state.add_log(origin, verifier)
    finally:
        files.state.close()
    if added:
        console.print(f"witnessing {origin} with key {verifier.name}+{verifier.key_id_hex}")
    else:
        console.print(f"key {verifier.name}+{verifier.key_id_hex} was already trusted for {origin}")


@witness_app.command("serve")
def serve(
    directory: DirectoryArgument,
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8080,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level")] = "info",
    body_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds a client may take to send a request body")
    ] = 10.0,
) -> None:
    """Serve add-checkpoint and the monitoring checkpoints over HTTP."""
    import uvicorn

    from ledger.witness.http import create_witness_app

    # The witness's own warnings (refused signed checkpoints) go to standard error.
    logging.basicConfig(
        level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s", force=True
    )

    try:
        files = open_witness(directory)
    except WitnessDirectoryError as e:
        raise _fail(str(e)) from None
    console.print(f"witness {files.witness.verifier.to_string()} on http://{host}:{port}")
    try:
        uvicorn.run(
            create_witness_app(files, body_timeout=body_timeout),
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    finally:
        files.state.close()
