"""SQLAlchemy Core tables, mirroring ``migrations/`` (which alone creates them).

One difference: on PostgreSQL, ``records``, ``tree_nodes`` and
``position_versions`` carry no foreign key to ``ledgers`` (migration 0006
says why); the ``ForeignKey`` below documents the relation on both.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "api_tokens",
    "checkpoint_cosignatures",
    "checkpoint_timestamps",
    "checkpoints",
    "document_parts",
    "documents",
    "idempotency_keys",
    "ledgers",
    "metadata",
    "position_cells",
    "position_marks",
    "position_versions",
    "projection_rebuilds",
    "record_fixes",
    "records",
    "signing_keys",
    "source_citations",
    "tree_nodes",
]

metadata = sa.MetaData()

ledgers = sa.Table(
    "ledgers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(63), nullable=False, unique=True),
    sa.Column("created_at", sa.String(27), nullable=False),
    sa.Column("head_seq", sa.BigInteger, nullable=False),
    sa.Column("head_hash", sa.String(64), nullable=False),
    sa.Column("last_recorded_at", sa.String(27), nullable=False),
    # False: records are readable only with a token that may read this ledger.
    sa.Column("public_read", sa.Boolean, nullable=False, server_default=sa.true()),
    # What a reader sees first on the ledger's page; never part of a record.
    sa.Column("title", sa.String(200)),
    sa.Column("description", sa.Text),
)

records = sa.Table(
    "records",
    metadata,
    sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("party", sa.String(32)),
    sa.Column("topic", sa.String(63)),
    sa.Column("occurred_at", sa.String(20), nullable=False),
    sa.Column("recorded_at", sa.String(27), nullable=False),
    sa.Column("record_hash", sa.String(64), nullable=False),
    sa.Column("canonical", sa.LargeBinary, nullable=False),
    sa.PrimaryKeyConstraint("ledger_id", "seq", name="pk_records"),
    sa.UniqueConstraint("ledger_id", "event_id", name="uq_records_event_id"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
    # The token's name (the records' actor): each principal's keys are its own.
    sa.Column("principal", sa.String(64), nullable=False, server_default=""),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("request_sha256", sa.String(64), nullable=False),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(27), nullable=False),
    sa.PrimaryKeyConstraint("ledger_id", "principal", "key", name="pk_idempotency_keys"),
)

tree_nodes = sa.Table(
    "tree_nodes",
    metadata,
    sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
    sa.Column("node_key", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
    sa.PrimaryKeyConstraint("ledger_id", "node_key", name="pk_tree_nodes"),
)

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
    sa.Column("tree_size", sa.BigInteger, nullable=False),
    sa.Column("root", sa.LargeBinary(32), nullable=False),
    sa.Column("head_hash", sa.String(64), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(27), nullable=False),
    sa.PrimaryKeyConstraint("ledger_id", "tree_size", name="pk_checkpoints"),
)

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("key_id", sa.String(8), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    # The checkpoint origin (host part) this key signs for (migration 0008).
    sa.Column("origin", sa.String(255), nullable=False),
    # Hex of the 32 key bytes: one registration per key, whatever its name.
    sa.Column("public_key", sa.String(64), nullable=False, unique=True),
    sa.Column("verifier_key", sa.String(400), nullable=False, unique=True),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("not_before", sa.String(27), nullable=False),
    sa.Column("not_after", sa.String(27)),
    sa.PrimaryKeyConstraint("name", "key_id", name="pk_signing_keys"),
)

record_fixes = sa.Table(
    "record_fixes",
    metadata,
    sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
    sa.Column("fix_seq", sa.BigInteger, nullable=False),
    sa.Column("target_seq", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.PrimaryKeyConstraint("ledger_id", "fix_seq", name="pk_record_fixes"),
)

position_versions = sa.Table(
    "position_versions",
    metadata,
    sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
    sa.Column("target_seq", sa.BigInteger, nullable=False),
    sa.Column("known_from", sa.BigInteger, nullable=False),
    sa.Column("known_to", sa.BigInteger),
    sa.Column("party", sa.String(32), nullable=False),
    sa.Column("topic", sa.String(63), nullable=False),
    sa.Column("claimant", sa.String(32), nullable=False),
    sa.Column("occurred_at", sa.String(20), nullable=False),
    # NULL: the record target_seq itself, as stored (migration 0004).
    sa.Column("cell", sa.Text),
    sa.PrimaryKeyConstraint("ledger_id", "target_seq", "known_from", name="pk_position_versions"),
)

position_cells = sa.Table(
    "position_cells",
    metadata,
    sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
    sa.Column("party", sa.String(32), nullable=False),
    sa.Column("topic", sa.String(63), nullable=False),
    sa.Column("claimant", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("ledger_id", "party", "topic", "claimant", name="pk_position_cells"),
)

# Per block of 1024 seqs, the greatest occurred_at of any version known by
# the block's end (migration 0004): bounds a snapshot's scan.
position_marks = sa.Table(
    "position_marks",
    metadata,
    sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
    sa.Column("known_from", sa.BigInteger, nullable=False),
    sa.Column("occurred_at", sa.String(20), nullable=False),
    sa.PrimaryKeyConstraint("ledger_id", "known_from", name="pk_position_marks"),
)

# The sources projection (migration 0012, ``ledger.core.sources``): one row
# per record citing a source (known from its own seq) and one per fix of any
# record (known from the fix); a record's row with the greatest known_from
# holds its effective members. Insert-only: corrections add rows.
source_citations = sa.Table(
    "source_citations",
    metadata,
    sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
    sa.Column("target_seq", sa.BigInteger, nullable=False),
    sa.Column("known_from", sa.BigInteger, nullable=False),
    # '' (the record itself), 'corrected' or 'retracted'
    sa.Column("fix", sa.String(10), nullable=False),
    # NULL: the record, as of known_from, cites no source. Name and url are
    # UTF-8 bytes: JSON text may hold NUL, PostgreSQL text may not.
    sa.Column("name", sa.LargeBinary),
    sa.Column("kind", sa.Text),
    sa.Column("url", sa.LargeBinary),
    sa.Column("reported_at", sa.Text),
    sa.Column("party", sa.Text),
    sa.Column("topic", sa.Text),
    sa.Column("occurred_at", sa.Text, nullable=False),
    # ``source.document`` (migration 0015): the SHA-256 of the archived copy.
    sa.Column("document", sa.Text),
    sa.PrimaryKeyConstraint("ledger_id", "target_seq", "known_from", name="pk_source_citations"),
    sa.Index("ix_source_citations_name", "ledger_id", "name"),
)

# The author registry (migration 0014, format §1.4): one row per
# author.registered (verifier_key set) or author.revoked (verifier_key NULL)
# record; folded in seq order they give the authors known at any seq. A
# projection of the records, insert-only like the sources projection.
author_keys = sa.Table(
    "author_keys",
    metadata,
    sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("verifier_key", sa.String(400)),
    sa.PrimaryKeyConstraint("ledger_id", "seq", name="pk_author_keys"),
)

# Witness cosignatures (migration 0013, docs/witnesses.md): one row per
# checkpoint a configured witness cosigned, holding its signature line as
# the witness returned it. Evidence, not derived: each line verifies
# against the checkpoint's body and the witness's key, which ``ledger
# verify`` checks.
checkpoint_cosignatures = sa.Table(
    "checkpoint_cosignatures",
    metadata,
    sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
    sa.Column("tree_size", sa.BigInteger, nullable=False),
    # The witness's verifier key string (name+id+base64), as configured.
    sa.Column("witness", sa.String(512), nullable=False),
    # The cosignature's own POSIX timestamp (seconds), as signed.
    sa.Column("signed_at", sa.BigInteger, nullable=False),
    sa.Column("line", sa.Text, nullable=False),
    sa.Column("received_at", sa.String(27), nullable=False),
    sa.PrimaryKeyConstraint("ledger_id", "tree_size", "witness", name="pk_checkpoint_cosignatures"),
)

# RFC 3161 timestamps of checkpoints (migration 0013, docs/witnesses.md): the
# authority's whole TimeStampResp, DER, over the checkpoint's body.
checkpoint_timestamps = sa.Table(
    "checkpoint_timestamps",
    metadata,
    sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
    sa.Column("tree_size", sa.BigInteger, nullable=False),
    sa.Column("response", sa.LargeBinary, nullable=False),
    # The token's genTime, RFC 3339 UTC, as the authority attested it.
    sa.Column("attested_at", sa.String(40), nullable=False),
    sa.Column("authority", sa.Text, nullable=False),
    sa.Column("received_at", sa.String(27), nullable=False),
    sa.PrimaryKeyConstraint("ledger_id", "tree_size", name="pk_checkpoint_timestamps"),
)

# Source documents (migration 0015, docs/documents.md): held by their
# SHA-256, cited by records as ``source.document``; the bytes in parts of at
# most ``ledger.store.documents.PART_BYTES``. Evidence: written once.
documents = sa.Table(
    "documents",
    metadata,
    sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("media_type", sa.String(100), nullable=False),
    sa.Column("parts", sa.Integer, nullable=False),
    sa.Column("stored_at", sa.String(27), nullable=False),
    sa.PrimaryKeyConstraint("ledger_id", "sha256", name="pk_documents"),
)

document_parts = sa.Table(
    "document_parts",
    metadata,
    sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("part", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.PrimaryKeyConstraint("ledger_id", "sha256", "part", name="pk_document_parts"),
)

# Holds a ledger's id only inside ``ledger.store.positions.rebuild``'s
# transaction: the projection tables' guards (migration 0010) let that
# ledger's rows change while it is there.
projection_rebuilds = sa.Table(
    "projection_rebuilds",
    metadata,
    sa.Column("ledger_id", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("ledger_id", name="pk_projection_rebuilds"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.String(1024), nullable=False),
    sa.Column("created_at", sa.String(27), nullable=False),
    sa.Column("revoked_at", sa.String(27)),
    # An author name (format §1.4): every event appended with the token must
    # be signed by that author (migration 0014).
    sa.Column("author", sa.String(64)),
)
