"""Settings, read from ``LEDGER_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.core.cosignature import CosignerKey

__all__ = ["Settings", "WitnessEndpoint"]


class WitnessEndpoint(BaseModel):
    """One entry of ``LEDGER_WITNESSES``: where a witness listens and its key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="The witness's submission prefix (http or https).")
    key: str = Field(description="Its verifier key, <name>+<key id>+<base64(0x04 || key)>.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or len(value) < 10:
            raise ValueError("a witness url is an http:// or https:// address")
        return value.rstrip("/")

    @field_validator("key")
    @classmethod
    def _cosigner_key(cls, value: str) -> str:
        return CosignerKey.from_string(value).to_string()

    def verifier(self) -> CosignerKey:
        return CosignerKey.from_string(self.key)


class Settings(BaseSettings):
    """Every knob of the service; the README's configuration table lists them."""

    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore")

    data_dir: Path = Field(
        default=Path(".ledger"),
        description="Directory for the embedded SQLite database and generated keys.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite:///<data_dir>/ledger.db. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/db",
    )
    host: str = Field(default="127.0.0.1", description="Address `ledger serve` binds.")
    port: int = Field(default=8000, description="Port `ledger serve` binds.")
    origin: str | None = Field(
        default=None,
        description="Host part of checkpoint origins (`<origin>/<ledger>`), stored at first "
        "start; default: ledger-<12 hex digits of the first key's SHA-256>. A later start "
        "configured otherwise is refused (`ledger keys rotate --origin` changes it).",
    )
    signing_key: Path | None = Field(
        default=None,
        description="PKCS#8 PEM Ed25519 private key; default: generated as "
        "<data_dir>/keys/signing-key.pem on first start.",
    )
    key_name: str | None = Field(
        default=None,
        description="Name in checkpoint signature lines, stored at first start; default: "
        "the origin (`ledger keys rotate --name` changes it).",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, description="Largest accepted request body; larger gets 413."
    )
    max_batch: int = Field(default=1000, description="Most events in one append request.")
    max_document_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1,
        description="Largest source document a ledger takes (docs/documents.md); larger gets "
        "413, refused before the rest is read.",
    )
    document_timeout: float = Field(
        default=300.0,
        gt=0,
        description="Seconds a client may take to send a source document (408).",
    )
    log_level: str = Field(default="info", description="uvicorn/stdlib log level.")
    auth: Literal["tokens", "off"] = Field(
        default="tokens",
        description="tokens: writes need a bearer token (`ledger tokens create`); "
        "off: no authentication, every record's actor is `anonymous`.",
    )
    rate_limit: float = Field(
        default=200.0,
        ge=0,
        description="Requests per second per token (per client address without one); 0: no limit.",
    )
    rate_burst: int = Field(default=400, ge=1, description="Requests allowed in a burst.")
    auth_failures_per_minute: int = Field(
        default=20, ge=1, description="Failed authentications per client address per minute."
    )
    body_timeout: float = Field(
        default=30.0, gt=0, description="Seconds a client may take to send a request body (408)."
    )
    intake_worker: bool = Field(
        default=True,
        description="Parse append bodies over 64 KiB in a worker process (the second core); "
        "false: in a thread of the server.",
    )
    web_recompute_limit: int = Field(
        default=10_000,
        ge=0,
        description="Largest ledger (in records) whose positions grid the timeline page "
        "recomputes in the browser from every verified record; above it the badge says "
        "the grid is signed but not recomputed.",
    )
    audit_log: Path | None = Field(
        default=None, description="File for the JSON-lines audit log; default: standard error."
    )

    database_pool_size: int | None = Field(
        default=None,
        ge=1,
        description="Connections the database pool keeps; default 44 on PostgreSQL, 5 on SQLite.",
    )
    database_pool_overflow: int | None = Field(
        default=None,
        ge=0,
        description="Connections the pool may open beyond that under load (closed on return); "
        "default 16 on PostgreSQL, 0 on SQLite. A request finding all busy for 10 s gets 503.",
    )
    read_connections: int = Field(
        default=8,
        ge=1,
        description="SQLite: connections for point reads (each caches pages and maps the "
        "file); more readers at once wait for one.",
    )
    max_streams: int = Field(
        default=1000,
        ge=1,
        description="Event streams open at once; more are refused with 503 and Retry-After.",
    )
    stream_read_threads: int = Field(
        default=2,
        ge=1,
        description="Threads that read records for event streams at once; streams share "
        "each read of the head and of a page.",
    )

    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or networks (CIDR) of reverse proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto are believed; default: none, so rate limits "
        "and the authentication lockout count the connecting peer.",
    )
    header_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds a connection may take to send a complete request head "
        "(from connecting, or from the first byte of a later request); then it is closed.",
    )
    max_connections: int = Field(
        default=2048,
        ge=1,
        description="Most connections held at once (event streams included); more are "
        "answered 503 and closed. The descriptor limit is raised to fit, if it may be.",
    )
    access_log: bool = Field(
        default=False,
        description="uvicorn's access log, one line per request at info level; the audit "
        "log records every write either way.",
    )

    witnesses: list[WitnessEndpoint] = Field(
        default_factory=list,
        description="Witnesses asked to cosign each ledger's checkpoints, a JSON list of "
        '`{"url": ..., "key": "<verifier key>"}` (docs/witnesses.md); default: none.',
    )
    witness_interval: float = Field(
        default=1.0,
        gt=0,
        description="Seconds between submissions of one ledger's checkpoint to one witness.",
    )
    witness_quorum: int | None = Field(
        default=None,
        ge=1,
        description="Cosignatures a checkpoint needs to be served as witnessed; "
        "default: every configured witness.",
    )
    tsa_url: str | None = Field(
        default=None,
        description="RFC 3161 time-stamping authority that timestamps checkpoints; default: none.",
    )
    tsa_certs: Path | None = Field(
        default=None,
        description="PEM file: the authority's signing certificate, then its chain up to "
        "and including the root it is trusted under; required with LEDGER_TSA_URL.",
    )
    tsa_interval: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between timestamps of one ledger's checkpoints.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    def trusted_proxy_list(self) -> list[str]:
        return [part.strip() for part in self.trusted_proxies.split(",") if part.strip()]

    @field_validator("tsa_url")
    @classmethod
    def _tsa_http_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("the TSA url is an http:// or https:// address")
        return value or None

    @model_validator(mode="after")
    def _witnessing_consistent(self) -> Settings:
        keys = [w.key for w in self.witnesses]
        if len(set(keys)) != len(keys):
            raise ValueError("LEDGER_WITNESSES names one witness key twice")
        if self.witness_quorum is not None and self.witness_quorum > len(self.witnesses):
            raise ValueError("LEDGER_WITNESS_QUORUM is more than the witnesses configured")
        if self.tsa_url and self.tsa_certs is None:
            raise ValueError("LEDGER_TSA_URL needs LEDGER_TSA_CERTS, the authority's certificates")
        return self

    def quorum(self) -> int:
        """Cosignatures a witnessed checkpoint needs (every witness's, by default)."""
        return self.witness_quorum if self.witness_quorum is not None else len(self.witnesses)

    @field_validator("origin", "key_name")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        # `-e LEDGER_ORIGIN=` (or an empty build argument) means "not configured".
        return value or None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ledger.db').resolve()}"
