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
from ledger.intake import EventSchemas, Intake
from ledger.service import LedgerService
from ledger.store.database import Database
from ledger.store.recorder import Recorder

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

console = Console()
err_console = Console(stderr=True)


def _service(settings: Settings) -> tuple[Database, LedgerService]:
    database = Database(url=settings.resolved_database_url())
    service = LedgerService(
        recorder=Recorder(database=database),
        intake=Intake(schemas=EventSchemas.bundled(), max_batch=settings.max_batch),
    )
    return database, service


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
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
    ) as progress:
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
    settings = Settings()
    database, service = _service(settings)
    try:
        database.migrate()
        drafts = _read_drafts(file, service.intake)
        size = import_events(service, ledger, drafts, actor=actor, quiet=False)
        console.print(f"imported {len(drafts)} events; {ledger} now holds {size} records")
    except LedgerError as e:
        raise _fail(str(e)) from None
    finally:
        database.dispose()


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
    database, service = _service(settings)
    try:
        database.migrate()
        loaded = load_demo(service)
        info = service.get_ledger(DEMO_LEDGER)
    except LedgerError as e:
        raise _fail(str(e)) from None
    finally:
        database.dispose()
    verb = "loaded" if loaded else "already present:"
    console.print(
        f"{verb} [bold]{DEMO_LEDGER}[/] ({info.size} records, head {info.head_hash[:16]}…)"
    )
    console.print(f"database: {settings.resolved_database_url()}")
    if not serve_after:
        return
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    console.print("\n[bold]Open:[/]")
    console.print(f"  API docs      {base}/docs")
    console.print(f"  the ledger    {base}/v1/ledgers/{DEMO_LEDGER}")
    console.print(f"  its records   {base}/v1/ledgers/{DEMO_LEDGER}/events")
    console.print(f"  health        {base}/healthz\n")
    _serve(settings, host, port)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
