"""The object graph of a running ledger, built from ``Settings``.

The API's lifespan and the CLI both start a ``Runtime``, so a server and a
command-line import sign with the same keys and check the same rules.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ledger.config import Settings
from ledger.core.identity import SigningIdentity, resolve_identity
from ledger.core.signing import VerifierKey
from ledger.core.times import format_recorded_at
from ledger.core.timestamps import TsaTrust
from ledger.cosignature_collector import CosignatureCollector
from ledger.intake import EventSchemas, Intake
from ledger.keyring import ActiveSigners, KeyRing, primary_key, raw_public_key
from ledger.service import LedgerService
from ledger.store.authors import AuthorsProjection
from ledger.store.cosignatures import CosignatureStore, WitnessedReader
from ledger.store.database import Database
from ledger.store.documents import DocumentCitations
from ledger.store.keys import KeyRegistry
from ledger.store.positions import PositionsProjection
from ledger.store.proofs import LogReader
from ledger.store.recorder import Recorder
from ledger.store.sources import SourcesProjection
from ledger.store.tokens import TokenStore
from ledger.timestamping import Timestamper

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
    cosignatures: CosignatureStore
    witnessed: WitnessedReader
    # Started by the server's lifespan; idle when no witness is configured.
    collector: CosignatureCollector
    #: Set with LEDGER_TSA_URL; the API's lifespan starts and stops it.
    timestamper: Timestamper | None = None

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
            keys_dir = settings.data_dir / "keys"
            registry = KeyRegistry(database=database)
            identity = _signing_identity(settings, registry, keys_dir)
            keyring = KeyRing(
                keys_dir=keys_dir, name=identity.name, configured=settings.signing_key
            )
            intake = Intake(schemas=EventSchemas.bundled(), max_batch=settings.max_batch)
            positions = PositionsProjection(check_correction=intake.check_record)
            recorder = Recorder(
                database=database,
                origin=identity.origin,
                signers=ActiveSigners(keyring=keyring, registry=registry),
                # Positions first: it validates fixes before the sources projection
                # reads them. Authors checks signatures and keeps the author registry.
                projections=[
                    positions,
                    SourcesProjection(),
                    AuthorsProjection(),
                    DocumentCitations(),
                ],
            )
            service = LedgerService(
                recorder=recorder,
                intake=intake,
                positions=positions,
                log=LogReader(recorder=recorder),
                keys=registry,
                keyring=keyring,
            )
            timestamper = _timestamper(settings, service)
        except BaseException:
            database.dispose()
            raise
        cosignatures = CosignatureStore(database=database)
        return cls(
            settings=settings,
            database=database,
            keyring=keyring,
            registry=registry,
            service=service,
            tokens=TokenStore(database=database),
            cosignatures=cosignatures,
            witnessed=WitnessedReader(
                store=cosignatures,
                witnesses=tuple(w.key for w in settings.witnesses),
                quorum=settings.quorum(),
            ),
            collector=CosignatureCollector(
                store=cosignatures,
                witnesses=settings.witnesses,
                interval=settings.witness_interval,
                prove=lambda ledger, old, new: (
                    service.consistency(ledger, size1=old, size2=new).proof
                ),
            ),
            timestamper=timestamper,
        )

    @property
    def identity(self) -> SigningIdentity:
        return SigningIdentity(origin=self.service.recorder.origin, name=self.keyring.name)

    def close(self) -> None:
        if self.timestamper is not None:
            self.timestamper.stop()
        self.tokens.close()
        self.service.recorder.close()
        self.database.dispose()


def _timestamper(settings: Settings, service: LedgerService) -> Timestamper | None:
    """The RFC 3161 timestamping task when an authority is configured (not started)."""
    if settings.tsa_url is None or settings.tsa_certs is None:
        return None
    try:
        trust = TsaTrust.from_pem(settings.tsa_certs.read_bytes())
    except (OSError, ValueError) as error:
        raise ValueError(f"LEDGER_TSA_CERTS {settings.tsa_certs}: {error}") from None
    return Timestamper(
        service=service, url=settings.tsa_url, trust=trust, interval=settings.tsa_interval
    )


def _signing_identity(settings: Settings, registry: KeyRegistry, keys_dir: Path) -> SigningIdentity:
    """The stored identity (refusing a configuration that contradicts it), with
    the primary key registered under it; on first start, stored now."""
    key = primary_key(keys_dir, settings.signing_key)
    public = raw_public_key(key)
    stored = registry.identity()
    identity = resolve_identity(
        stored, origin=settings.origin, name=settings.key_name, public_key=public
    )
    verifier = VerifierKey(identity.name, public)
    now = format_recorded_at(datetime.now(UTC))
    if registry.register(verifier, origin=identity.origin, now=now):
        log.warning(
            "registered signing key %s for origin %s", verifier.to_string(), identity.origin
        )
    if stored is None:
        # Two first starts at once: whichever registered first fixed the identity.
        return registry.identity() or identity
    return identity
