"""The ``ledger`` command line (typer + rich)."""

from __future__ import annotations

import logging
import sys
from importlib.resources import files
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ledger.config import Settings
from ledger.core.errors import InputError, LedgerError, NotFound
from ledger.core.jsonvalues import loads_strict
from ledger.core.records import EventDraft
from ledger.core.signing import Signer
from ledger.intake import Intake
from ledger.keyring import KeyFileError, write_private_key
from ledger.runtime import Runtime
from ledger.service import LedgerService
from ledger.store.database import Database

__all__ = ["app", "main"]

DEMO_LEDGER = "us-ua-minerals-2025"
IMPORT_BATCH = 1000

app = typer.Typer(
    name="ledger",
    help="A verifiable audit ledger for negotiations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")
keys_app = typer.Typer(help="Checkpoint signing keys (Ed25519).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
projections_app = typer.Typer(help="Read models built from the records.", no_args_is_help=True)
app.add_typer(projections_app, name="projections")

# soft_wrap: long URLs and keys stay on one line, so they can be copied or grepped.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def _runtime(settings: Settings) -> Runtime:
    try:
        return Runtime.start(settings)
    except (LedgerError, KeyFileError) as e:
        raise _fail(str(e)) from None


def _progress(*, disable: bool = False) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disable,
    )


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    settings = Settings()
    database = Database(url=settings.resolved_database_url())
    try:
        database.migrate(revision)
        console.print(
            f"schema at revision [bold]{database.current_revision()}[/] on "
            f"{database.url.render_as_string(hide_password=True)}"
        )
    except LedgerError as e:
        raise _fail(str(e)) from None
    finally:
        database.dispose()


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the configured database."""
    settings = Settings()
    database = Database(url=settings.resolved_database_url())
    try:
        console.print(database.current_revision() or "(empty: run `ledger db upgrade`)")
    finally:
        database.dispose()


def _read_drafts(path: Path, intake: Intake) -> list[EventDraft]:
    drafts: list[EventDraft] = []
    try:
        handle = path.open("rb")
    except OSError as e:
        raise _fail(f"cannot read {path}: {e.strerror}", 2) from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                drafts.append(intake.draft(loads_strict(raw.rstrip(b"\r\n"))))
            except InputError as e:
                raise _fail(f"{path}:{number}: {e}") from None
    return drafts


def import_events(
    service: LedgerService, ledger: str, drafts: list[EventDraft], *, actor: str, quiet: bool
) -> int:
    """Append drafts in atomic batches; returns the head seq afterwards."""
    try:
        service.get_ledger(ledger)
    except NotFound:
        service.create_ledger(ledger)
        if not quiet:
            console.print(f"created ledger [bold]{ledger}[/]")
    with _progress(disable=quiet) as progress:
        task = progress.add_task(f"importing into {ledger}", total=len(drafts))
        for start in range(0, len(drafts), IMPORT_BATCH):
            batch = drafts[start : start + IMPORT_BATCH]
            service.recorder.append(ledger, batch, actor=actor)
            progress.advance(task, len(batch))
    return service.get_ledger(ledger).size


@app.command("import")
def import_command(
    ledger: Annotated[str, typer.Argument(help="Ledger name (created if absent)")],
    file: Annotated[Path, typer.Argument(help="JSON Lines: one event per line")],
    actor: Annotated[str, typer.Option(help="Recorded as each record's actor")] = "cli",
) -> None:
    """Validate every line (as HTTP would), then append them in atomic batches."""
    runtime = _runtime(Settings())
    try:
        drafts = _read_drafts(file, runtime.service.intake)
        size = import_events(runtime.service, ledger, drafts, actor=actor, quiet=False)
        console.print(f"imported {len(drafts)} events; {ledger} now holds {size} records")
    except LedgerError as e:
        raise _fail(str(e)) from None
    finally:
        runtime.close()


def load_demo(service: LedgerService, *, quiet: bool = False) -> bool:
    """Load the bundled example ledger unless it exists; True when loaded now."""
    try:
        service.get_ledger(DEMO_LEDGER)
        return False
    except NotFound:
        pass
    raw = files("ledger.demo").joinpath(f"{DEMO_LEDGER}.jsonl").read_bytes()
    drafts = [service.intake.draft(loads_strict(line)) for line in raw.splitlines() if line.strip()]
    import_events(service, DEMO_LEDGER, drafts, actor="demo", quiet=quiet)
    return True


def _serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from ledger.api.app import create_app

    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [LEDGER_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [LEDGER_PORT]")] = None,
) -> None:
    """Run the HTTP API (migrating the schema first)."""
    settings = Settings()
    _serve(settings, host or settings.host, port or settings.port)


@app.command()
def demo(
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the server after loading")
    ] = True,
    host: Annotated[str | None, typer.Option(help="Bind address [LEDGER_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [LEDGER_PORT]")] = None,
) -> None:
    """Migrate, load the example ledger if absent, and serve it."""
    settings = Settings()
    host, port = host or settings.host, port or settings.port
    runtime = _runtime(settings)
    try:
        loaded = load_demo(runtime.service)
        info = runtime.service.get_ledger(DEMO_LEDGER)
        verifier_key = runtime.keyring.primary().verifier.to_string()
    except LedgerError as e:
        raise _fail(str(e)) from None
    finally:
        runtime.close()
    verb = "loaded" if loaded else "already present:"
    console.print(
        f"{verb} [bold]{DEMO_LEDGER}[/] ({info.size} records, head {info.head_hash[:16]}…)"
    )
    console.print(f"database: {settings.resolved_database_url()}")
    console.print(f"verifier key: {verifier_key}")
    if not serve_after:
        return
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    console.print("\n[bold]Open:[/]")
    console.print(f"  API docs      {base}/docs")
    console.print(f"  the ledger    {base}/v1/ledgers/{DEMO_LEDGER}")
    console.print(f"  its records   {base}/v1/ledgers/{DEMO_LEDGER}/events")
    console.print(f"  checkpoint    {base}/v1/ledgers/{DEMO_LEDGER}/checkpoint")
    console.print(f"  keys          {base}/v1/keys")
    console.print(f"  health        {base}/healthz\n")
    _serve(settings, host, port)


@keys_app.command("generate")
def keys_generate(
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the PEM")],
    name: Annotated[str | None, typer.Option(help="Key name; default: the origin")] = None,
) -> None:
    """Write a new Ed25519 private key (PKCS#8 PEM, mode 0600) for LEDGER_SIGNING_KEY."""
    settings = Settings()
    signer = Signer.generate(name or settings.resolved_key_name())
    try:
        write_private_key(output, signer.private_key)
    except FileExistsError:
        raise _fail(f"{output} exists; refusing to overwrite a key", 2) from None
    except OSError as e:
        raise _fail(f"cannot write {output}: {e.strerror}", 2) from None
    console.print(f"wrote {output}")
    console.print(f"verifier key: {signer.verifier.to_string()}")


@keys_app.command("show")
def keys_show() -> None:
    """List the registered keys and their verifier key strings."""
    runtime = _runtime(Settings())
    try:
        # One key per line, never truncated: verifier keys are meant to be copied.
        for key in runtime.service.list_keys():
            until = f" until {key.not_after}" if key.not_after else ""
            style = "green" if key.status == "active" else "dim"
            console.print(
                f"[{style}]{key.key_id} {key.status}[/] from {key.not_before}{until}\n"
                f"  {key.verifier_key}",
                highlight=False,
            )
    finally:
        runtime.close()


@keys_app.command("rotate")
def keys_rotate(
    actor: Annotated[str, typer.Option(help="Recorded as the key.rotated records' actor")] = "cli",
) -> None:
    """Make a new key, endorsed by the old one in a key.rotated record in every ledger."""
    runtime = _runtime(Settings())
    try:
        rotation = runtime.service.rotate_key(actor=actor)
    except LedgerError as e:
        raise _fail(str(e)) from None
    finally:
        runtime.close()
    console.print(f"old key: {rotation.old_key.to_string()}")
    console.print(f"new key: {rotation.new_key.to_string()}")
    for ledger, receipt in rotation.receipts.items():
        console.print(f"  {ledger}: key.rotated at seq {receipt.seq}")
    console.print("Checkpoints now carry both signatures; `ledger keys retire OLD_KEY_ID` ends it.")


@keys_app.command("retire")
def keys_retire(key: Annotated[str, typer.Argument(help="Key id (8 hex) or verifier key")]) -> None:
    """Stop signing with a key (it stays listed as retired)."""
    runtime = _runtime(Settings())
    try:
        record = runtime.service.retire_key(key)
    except LedgerError as e:
        raise _fail(str(e)) from None
    finally:
        runtime.close()
    console.print(f"retired {record.key_id} at {record.not_after}")


@projections_app.command("rebuild")
def projections_rebuild(
    ledger: Annotated[str | None, typer.Argument(help="Ledger name; default: every ledger")] = None,
) -> None:
    """Recompute the positions projection from the records alone."""
    import functools
    import time

    from ledger.store.projection import rebuild

    runtime = _runtime(Settings())
    try:
        names = [ledger] if ledger else [i.name for i in runtime.service.list_ledgers()]
        for name in names:
            size = runtime.service.get_ledger(name).size
            with _progress() as progress:
                task = progress.add_task(f"rebuilding {name}", total=size)
                started = time.perf_counter()
                count = rebuild(
                    runtime.database, name, progress=functools.partial(progress.advance, task)
                )
                elapsed = time.perf_counter() - started
            rate = count / elapsed if elapsed else float("inf")
            console.print(f"{name}: {count} records in {elapsed:.2f} s ({rate:,.0f}/s)")
    except LedgerError as e:
        raise _fail(str(e)) from None
    finally:
        runtime.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Migration chatter on every command hides the output people came for.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
