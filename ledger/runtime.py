"""The object graph of a running ledger, built from ``Settings``.

The API's lifespan and the CLI both start a ``Runtime``, so a server and a
command-line import sign with the same keys and check the same rules.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.config import Settings
from ledger.core.times import format_recorded_at
from ledger.intake import EventSchemas, Intake
from ledger.keyring import ActiveSigners, KeyRing
from ledger.service import LedgerService
from ledger.store.database import Database
from ledger.store.keys import KeyRegistry
from ledger.store.projection import PositionsProjection
from ledger.store.proofs import LogReader
from ledger.store.recorder import Recorder
from ledger.store.tokens import TokenStore

__all__ = ["Runtime"]

log = logging.getLogger("ledger")


@dataclass(frozen=True, slots=True, kw_only=True)
class Runtime:
    settings: Settings
    database: Database
    keyring: KeyRing
    registry: KeyRegistry
    service: LedgerService
    tokens: TokenStore

    @classmethod
    def start(cls, settings: Settings, *, migrate: bool = True) -> Runtime:
        database = Database(
            url=settings.resolved_database_url(),
            pool_size=settings.database_pool_size,
            pool_overflow=settings.database_pool_overflow,
            read_connections=settings.read_connections,
        )
        try:
            if migrate:
                database.migrate()
            keyring = KeyRing(
                keys_dir=settings.data_dir / "keys",
                name=settings.resolved_key_name(),
                configured=settings.signing_key,
            )
            registry = KeyRegistry(database=database)
            primary = keyring.primary()
            now = format_recorded_at(datetime.now(UTC))
            if registry.register(primary.verifier, now=now):
                log.warning("registered signing key %s", primary.verifier.to_string())
            intake = Intake(schemas=EventSchemas.bundled(), max_batch=settings.max_batch)
            positions = PositionsProjection(check_correction=intake.check_record)
            recorder = Recorder(
                database=database,
                origin=settings.origin,
                signers=ActiveSigners(keyring=keyring, registry=registry),
                projections=[positions],
            )
            service = LedgerService(
                recorder=recorder,
                intake=intake,
                positions=positions,
                log=LogReader(recorder=recorder),
                keys=registry,
                keyring=keyring,
            )
        except BaseException:
            database.dispose()
            raise
        return cls(
            settings=settings,
            database=database,
            keyring=keyring,
            registry=registry,
            service=service,
            tokens=TokenStore(database=database),
        )

    def close(self) -> None:
        self.tokens.close()
        self.service.recorder.close()
        self.database.dispose()
