"""The ``ledger`` command line (typer + rich)."""

from __future__ import annotations

import base64
import functools
import itertools
import json
import logging
import os
import secrets
import sys
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ledger import demo as demo_data
from ledger.access import Scope, parse_scopes
from ledger.config import Settings
from ledger.core.documents import document_paths, resolve_document_paths
from ledger.core.errors import InputError, LedgerError, NotFound
from ledger.core.identity import default_origin
from ledger.core.jsonvalues import loads_strict
from ledger.core.records import EventDraft
from ledger.core.signing import Signer
from ledger.intake import Intake
from ledger.keyring import KeyFileError, raw_public_key, write_private_key
from ledger.runtime import Runtime
from ledger.service import LedgerService
from ledger.store.database import Database
from ledger.witness.cli import witness_app

__all__ = ["app", "main", "uvicorn_options"]

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
tokens_app = typer.Typer(help="API bearer tokens and their scopes.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
authors_app = typer.Typer(
    help="Desks whose signed events a ledger accepts (format §1.4).", no_args_is_help=True
)
app.add_typer(authors_app, name="authors")
app.add_typer(witness_app, name="witness")

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


def _audit(action: str, **fields: object) -> None:
    """Key and token operations from the command line go to the audit log too."""
    from ledger.audit_log import audit_event, configure_audit_log

    configure_audit_log(Settings().audit_log)
    principal = f"cli:{os.environ.get('USER') or os.getuid()}"
    audit_event(action, principal=principal, outcome="ok", **fields)


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


def _read_drafts(
    path: Path, intake: Intake, upload: Callable[[str], str] | None = None
) -> list[EventDraft]:
    """Each line's event, validated; with ``upload``, a source's ``document_path``
    is uploaded first and replaced by its hash (``resolve_document_paths``)."""
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
                event = loads_strict(raw.rstrip(b"\r\n"))
                if upload is not None and isinstance(event, dict):
                    paths = document_paths(event)
                    hashes = {path: upload(path) for path in paths}
                    event = resolve_document_paths(event, hashes.__getitem__)
                drafts.append(intake.draft(event, strict=True))
            except InputError as e:
                raise _fail(f"{path}:{number}: {e}") from None
    return drafts


def import_events(
    service: LedgerService,
    ledger: str,
    drafts: list[EventDraft],
    *,
    actor: str,
    quiet: bool,
    batches: list[int] | None = None,
) -> int:
    """Append drafts in atomic batches through the service's checks, as HTTP
    appends; returns the head seq afterwards.

    ``batches``: the size of each append, in order (default: as many as
    ``IMPORT_BATCH`` and the configured batch limit allow); a larger one is
    refused as a posted batch would be."""
    try:
        service.get_ledger(ledger)
    except NotFound:
        service.create_ledger(ledger)
        if not quiet:
            console.print(f"created ledger [bold]{ledger}[/]")
    if batches is None:
        most = min(IMPORT_BATCH, service.intake.max_batch)
        batches = [min(most, len(drafts) - s) for s in range(0, len(drafts), most)]
    with _progress(disable=quiet) as progress:
        task = progress.add_task(f"importing into {ledger}", total=len(drafts))
        start = 0
        for size in batches:
            batch = drafts[start : start + size]
            start += size
            service.append_drafts(ledger, batch, actor=actor)
            progress.advance(task, len(batch))
    return service.get_ledger(ledger).size


@app.command("import")
def import_command(
    ledger: Annotated[str, typer.Argument(help="Ledger name (created if absent)")],
    file: Annotated[Path, typer.Argument(help="JSON Lines: one event per line")],
    actor: Annotated[str, typer.Option(help="Recorded as each record's actor")] = "cli",
) -> None:
    """Validate every line (as HTTP would), then append them in atomic batches.

    A source may give ``document_path`` (relative to FILE's folder) instead of
    ``document``: the file is uploaded first, as a source document, and the
    record cites its hash (docs/documents.md)."""
    settings = Settings()
    runtime = _runtime(settings)
    service = runtime.service

    def upload(path: str) -> str:
        try:
            service.get_ledger(ledger)
        except NotFound:
            service.create_ledger(ledger)
        held = service.put_document_file(
            ledger, file.parent / path, max_bytes=settings.max_document_bytes
        )
        return held.sha256

    try:
        drafts = _read_drafts(file, service.intake, upload)
        size = import_events(runtime.service, ledger, drafts, actor=actor, quiet=False)
        console.print(f"imported {len(drafts)} events; {ledger} now holds {size} records")
    except LedgerError as e:
        raise _fail(str(e)) from None
    finally:
        runtime.close()


def load_demo(service: LedgerService, *, quiet: bool = False) -> bool:
    """Load the bundled example ledger unless it exists; True when loaded now.

    Each day's reports are one append, in the order the file gives, so the
    ledger's order (seq, recorded_at) is the order in which they became known.
    """
    try:
        service.get_ledger(DEMO_LEDGER)
        return False
    except NotFound:
        pass
    raw = files("ledger.demo").joinpath(f"{DEMO_LEDGER}.jsonl").read_bytes()
    events = [loads_strict(line) for line in raw.splitlines() if line.strip()]
    drafts = [service.intake.draft(event, strict=True) for event in events]
    days = [demo_data.became_known(event) for event in events]
    if days != sorted(days):
        raise _fail(f"{DEMO_LEDGER}.jsonl is not in the order its reports became known")
    batches = [len(list(group)) for _, group in itertools.groupby(days)]
    service.create_ledger(DEMO_LEDGER, title=demo_data.TITLE, description=demo_data.DESCRIPTION)
    import_events(service, DEMO_LEDGER, drafts, actor="demo", quiet=quiet, batches=batches)
    return True


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How ``ledger serve`` runs uvicorn (the benchmark's baseline apps run alike)."""
    from ledger.api.httpprotocol import connection_cap, guarded_protocol

    proxies = settings.trusted_proxy_list()
    return {
        "http": guarded_protocol(
            header_timeout=settings.header_timeout,
            max_connections=connection_cap(settings.max_connections),
        ),
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise,
        # which would let any local client pick the address it is throttled as.
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
        "timeout_graceful_shutdown": 10,
    }


def _serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from ledger.api.app import create_app

    uvicorn.run(create_app(settings), host=host, port=port, **uvicorn_options(settings))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [LEDGER_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [LEDGER_PORT]")] = None,
) -> None:
    """Run the HTTP API (migrating the schema first)."""
    settings = Settings()
    # Migrate and check the signing identity before uvicorn starts, so a
    # refusal reads as one line rather than an application-startup traceback.
    _runtime(settings).close()
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
        verifier_key = [k for k in runtime.service.list_keys() if k.status == "active"][
            -1
        ].verifier_key
        admin = None
        if settings.auth == "tokens":
            # A fresh token per run: tokens are shown once and stored only as hashes.
            admin, _ = runtime.tokens.create(
                f"demo-admin-{secrets.token_hex(3)}", (Scope("admin"),)
            )
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
    if admin is not None:
        console.print(f"admin token (shown once): {admin}")
    if not serve_after:
        return
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    console.print("\n[bold]Open:[/]")
    console.print(f"  timeline      {base}/ledgers/{DEMO_LEDGER}  (verified in your browser)")
    console.print(f"  API docs      {base}/docs")
    console.print(f"  the ledger    {base}/v1/ledgers/{DEMO_LEDGER}")
    console.print(f"  its records   {base}/v1/ledgers/{DEMO_LEDGER}/events")
    console.print(f"  checkpoint    {base}/v1/ledgers/{DEMO_LEDGER}/checkpoint")
    console.print(f"  keys          {base}/v1/keys")
    console.print(f"  health        {base}/healthz\n")
    _serve(settings, host, port)


@app.command("export")
def export_command(
    ledger: Annotated[str, typer.Argument(help="Ledger name")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The .tar file to write")],
    from_seq: Annotated[int | None, typer.Option(help="First record (default 1)")] = None,
    to_seq: Annotated[int | None, typer.Option(help="Last record (default the head)")] = None,
    without_documents: Annotated[
        bool,
        typer.Option(
            "--without-documents",
            help="List the source documents the records cite, but leave their bytes out "
            "(the manifest says so)",
        ),
    ] = False,
) -> None:
    """Write a format §4 export bundle: records, signed manifest, checkpoint, public key,
    and the source documents the records cite."""
    from ledger.exporter import resolve_range, write_bundle

    runtime = _runtime(Settings())
    # Written beside the target and renamed on success: a reader never sees half a bundle.
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
    try:
        first, last = resolve_range(runtime.service, ledger, from_seq=from_seq, to_seq=to_seq)
        with _progress() as progress, partial.open("wb") as handle:
            # Each record is read twice: hashed for the manifest, then written.
            task = progress.add_task(f"exporting {ledger}", total=2 * (last - first + 1))
            manifest = write_bundle(
                runtime.service,
                ledger,
                handle,
                from_seq=first,
                to_seq=last,
                on_records=functools.partial(progress.advance, task),
                witnessed=runtime.witnessed,
                with_documents=not without_documents,
            )
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(output)
    except LedgerError as e:
        partial.unlink(missing_ok=True)
        raise _fail(str(e)) from None
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise _fail(f"cannot write {output}: {e.strerror}", 2) from None
    finally:
        runtime.close()
    console.print(
        f"exported {manifest.count} records ({manifest.from_seq}..{manifest.to_seq}) of "
        f"{ledger} to {output}: head {manifest.head_hash}, "
        f"root {base64.b64encode(manifest.merkle_root).decode('ascii')}, key {manifest.key_id}",
        highlight=False,
    )
    if manifest.documents:
        carried = "carried" if manifest.documents_included else "listed, their bytes left out"
        console.print(f"{len(manifest.documents)} source documents {carried}", highlight=False)


@keys_app.command("generate")
def keys_generate(
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the PEM")],
    name: Annotated[
        str | None,
        typer.Option(help="Key name shown; default: LEDGER_KEY_NAME, else the origin"),
    ] = None,
) -> None:
    """Write a new Ed25519 private key (PKCS#8 PEM, mode 0600) for LEDGER_SIGNING_KEY."""
    settings = Settings()
    key = Ed25519PrivateKey.generate()
    shown = name or settings.key_name or settings.origin or default_origin(raw_public_key(key))
    signer = Signer(name=shown, private_key=key)
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
    origin: Annotated[
        str | None,
        typer.Option(help="New checkpoint origin; default: LEDGER_ORIGIN, else unchanged"),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="New key name; default: LEDGER_KEY_NAME, else unchanged "
            "(a key named after its origin follows --origin)"
        ),
    ] = None,
) -> None:
    """Make a new key, endorsed by the old one in a key.rotated record in every ledger.

    With --origin or --name it also changes the stored signing identity: the
    one command that does, so verifiers can follow the change.
    """
    settings = Settings()
    # The configuration may already state the new identity (a refused start
    # points here): it is the target of this rotation, not a contradiction.
    runtime = _runtime(settings.model_copy(update={"origin": None, "key_name": None}))
    try:
        rotation = runtime.service.rotate_key(
            actor=actor, origin=origin or settings.origin, name=name or settings.key_name
        )
    except LedgerError as e:
        raise _fail(str(e)) from None
    finally:
        runtime.close()
    _audit("key.rotate", key_id=rotation.new_key.key_id_hex, old_key_id=rotation.old_key.key_id_hex)
    console.print(f"old key: {rotation.old_key.to_string()}")
    console.print(f"new key: {rotation.new_key.to_string()}")
    console.print(f"origin: {rotation.identity.origin} (servers use it from their next start)")
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
    _audit("key.retire", key_id=record.key_id)
    console.print(f"retired {record.key_id} at {record.not_after}")


@projections_app.command("rebuild")
def projections_rebuild(
    ledger: Annotated[str | None, typer.Argument(help="Ledger name; default: every ledger")] = None,
) -> None:
    """Recompute the positions and sources projections from the records alone."""
    import time

    runtime = _runtime(Settings())
    try:
        names = [ledger] if ledger else [i.name for i in runtime.service.list_ledgers()]
        for name in names:
            size = runtime.service.get_ledger(name).size
            kinds = runtime.service.projection_count
            with _progress() as progress:
                task = progress.add_task(f"rebuilding {name}", total=size * kinds)
                started = time.perf_counter()
                count = runtime.service.rebuild_projections(
                    name, progress=functools.partial(progress.advance, task)
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


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Option(help="Becomes the actor of every record it appends")],
    scope: Annotated[
        list[str],
        typer.Option(help="read, read:LEDGER, append, append:PARTY or admin; repeatable"),
    ],
) -> None:
    """Create a token. It is printed once, as the last word of the output: store it now."""
    runtime = _runtime(Settings())
    try:
        token, info = runtime.tokens.create(name, parse_scopes(scope))
    except LedgerError as e:
        raise _fail(str(e)) from None
    finally:
        runtime.close()
    scopes = " ".join(str(s) for s in info.scopes)
    _audit("token.create", token_name=name, scopes=scopes)
    err_console.print(f"created token [bold]{name}[/] ({scopes}); it is not stored, copy it now:")
    print(token)


@tokens_app.command("list")
def tokens_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Every token's name, scopes and dates (never the token itself)."""
    runtime = _runtime(Settings())
    try:
        infos = runtime.tokens.list()
    finally:
        runtime.close()
    if as_json:
        print(json.dumps([i.to_dict() for i in infos]))
        return
    table = Table("name", "scopes", "author", "created", "revoked")
    for info in infos:
        table.add_row(
            info.name,
            " ".join(str(s) for s in info.scopes),
            info.author or "",
            info.created_at,
            info.revoked_at or "",
        )
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(name: Annotated[str, typer.Argument(help="The token's name")]) -> None:
    """Revoke a token at once; its name stays taken, its records keep their actor."""
    runtime = _runtime(Settings())
    try:
        info = runtime.tokens.revoke(name)
    except LedgerError as e:
        raise _fail(str(e)) from None
    finally:
        runtime.close()
    _audit("token.revoke", token_name=name)
    console.print(f"revoked {name} at {info.revoked_at}")


LedgerOption = Annotated[
    list[str] | None,
    typer.Option("--ledger", help="Only this ledger (repeatable); default: every ledger"),
]


def _ledgers_of(runtime: Runtime, chosen: list[str] | None) -> list[str]:
    names = [info.name for info in runtime.service.list_ledgers()]
    if not chosen:
        return names
    for name in chosen:
        if name not in names:
            raise _fail(f"no ledger named {name!r}")
    return chosen


@authors_app.command("add")
def authors_add(
    name: Annotated[str, typer.Argument(help="The desk's name, which its signatures carry")],
    verifier_key: Annotated[
        str, typer.Argument(help="Its verifier key string, NAME+<key id>+<base64 key>")
    ],
    ledger: LedgerOption = None,
    token: Annotated[
        str | None,
        typer.Option(help="Bind this token to the author: its appends must be signed by it"),
    ] = None,
    actor: Annotated[str, typer.Option(help="Recorded as the records' actor")] = "cli",
) -> None:
    """Register a desk's key: an author.registered record in each ledger."""
    runtime = _runtime(Settings())
    try:
        if token is not None and token not in {info.name for info in runtime.tokens.list()}:
            raise _fail(f"no token named {token!r}")
        for target in _ledgers_of(runtime, ledger):
            receipt = runtime.service.register_author(
                target, name=name, verifier_key=verifier_key, actor=actor
            )
            console.print(f"  {target}: author.registered at seq {receipt.seq}")
        if token is not None:
            runtime.tokens.bind_author(token, name)
            console.print(f"token {token} now appends only events signed by {name}")
    except LedgerError as e:
        raise _fail(str(e)) from None
    finally:
        runtime.close()
    _audit("author.register", author=name, token_name=token)


@authors_app.command("revoke")
def authors_revoke(
    name: Annotated[str, typer.Argument(help="The desk's name")],
    ledger: LedgerOption = None,
    reason: Annotated[str | None, typer.Option(help="Why, recorded in the log")] = None,
    actor: Annotated[str, typer.Option(help="Recorded as the records' actor")] = "cli",
) -> None:
    """Revoke a desk's key: an author.revoked record in each ledger that registered it."""
    runtime = _runtime(Settings())
    try:
        for target in _ledgers_of(runtime, ledger):
            if not ledger and not any(
                a.name == name and a.revoked_seq is None for a in runtime.service.authors(target)
            ):
                continue
            receipt = runtime.service.revoke_author(target, name=name, actor=actor, reason=reason)
            console.print(f"  {target}: author.revoked at seq {receipt.seq}")
    except LedgerError as e:
        raise _fail(str(e)) from None
    finally:
        runtime.close()
    _audit("author.revoke", author=name)


@authors_app.command("list")
def authors_list(
    ledger: Annotated[str, typer.Argument(help="Ledger name")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """The desks a ledger registered, with their keys and status."""
    runtime = _runtime(Settings())
    try:
        entries = runtime.service.authors(ledger)
    except LedgerError as e:
        raise _fail(str(e)) from None
    finally:
        runtime.close()
    if as_json:
        print(json.dumps([entry.to_dict() for entry in entries]))
        return
    table = Table("name", "key id", "status", "registered", "revoked")
    for entry in entries:
        row = entry.to_dict()
        table.add_row(
            entry.name,
            entry.key_id,
            row["status"],
            str(entry.registered_seq),
            "" if entry.revoked_seq is None else str(entry.revoked_seq),
        )
    console.print(table)


def _completed(progress: Progress, task: TaskID, done: int) -> None:
    progress.update(task, completed=done)


@app.command("verify")
def verify_command(
    ledger: Annotated[str | None, typer.Argument(help="Ledger name; default: every ledger")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Audit the stored records, Merkle tree, checkpoints and positions projection;
    exit 1 if anything is off."""
    from ledger.integrity import check_ledger

    runtime = _runtime(Settings())
    reports = []
    try:
        names = [ledger] if ledger else [i.name for i in runtime.service.list_ledgers()]
        for name in names:
            size = runtime.service.get_ledger(name).size
            with _progress(disable=as_json) as progress:
                task = progress.add_task(f"auditing {name}", total=size)
                report = check_ledger(
                    runtime,
                    name,
                    # The audit reports how many records it has walked so far.
                    on_records=functools.partial(_completed, progress, task),
                )
            reports.append(report)
    except LedgerError as e:
        raise _fail(str(e), code=2) from None
    finally:
        runtime.close()
    for report in reports:
        if as_json:
            print(json.dumps(report.to_dict()))
        elif report.valid:
            console.print(
                f"[bold green]VALID[/] {report.ledger}: {report.count} records; chain, tree, "
                "checkpoints, positions, sources and author registry projections agree; "
                + "".join(f"{check}; " for check in report.checks)
                + f"head {report.head_hash}, root {report.merkle_root}"
            )
        else:
            where = f" at seq {report.failure_seq}" if report.failure_seq is not None else ""
            console.print(f"[bold red]INVALID[/] {report.ledger}{where}: {report.reason}")
    if not all(r.valid for r in reports):
        raise typer.Exit(1)
