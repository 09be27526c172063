"""PostgreSQL: an append group written by one autocommit statement.

The usual group transaction (``Recorder._prepare_group``) locks the ledger's
head row, then runs a dozen statements, each a round trip, and COMMIT. The
row lock is held for all of them, so groups of one ledger follow each other
no faster than those round trips go: under 32 clients the server's thread
sat waiting for them while PostgreSQL had a core to spare.

A group whose outcome needs nothing from the database but the head can be
sealed on the head this process last committed (``Recorder`` keeps it), and
then written as one statement: ``moved`` moves the head only if it is still
the one sealed on and the active signing keys are still those the checkpoint
was signed with; every other part inserts from ``moved``, so when the head
moved elsewhere (another server process appended, a key was rotated) the
statement writes nothing and reports 0, and the group is sealed again the
usual way. A constraint that refuses a row (an event id already used) fails
the whole statement, and the usual way then finds which request it was.
PostgreSQL runs every data-modifying part of a ``WITH`` exactly once, on one
snapshot, and, in autocommit, commits them together.

Arrays carry the rows (one text, whatever the group's size), so the server
prepares the statement once per connection and reuses it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["GROUP_STATEMENT", "GroupWrite", "PlannedRows", "running_marks"]

GROUP_STATEMENT = """\
WITH moved AS (
  UPDATE ledgers SET head_seq = %(new_seq)s, head_hash = %(new_hash)s,
    last_recorded_at = %(recorded_at)s
  WHERE id = %(ledger_id)s AND head_seq = %(old_seq)s AND head_hash = %(old_hash)s
    AND (SELECT string_agg(verifier_key, ' ' ORDER BY not_before, key_id)
      FROM signing_keys WHERE status = 'active') = %(active_keys)s
  RETURNING id
), new_records AS (
  INSERT INTO records (ledger_id, seq, event_id, type, party, topic, occurred_at,
    recorded_at, record_hash, canonical)
  SELECT moved.id, r.* FROM moved, unnest(%(r_seq)s::int8[], %(r_event_id)s::text[],
    %(r_type)s::text[], %(r_party)s::text[], %(r_topic)s::text[], %(r_occurred_at)s::text[],
    %(r_recorded_at)s::text[], %(r_hash)s::text[], %(r_canonical)s::bytea[]) AS r
), new_versions AS (
  INSERT INTO position_versions (ledger_id, target_seq, known_from, known_to, party, topic,
    claimant, occurred_at, cell)
  SELECT moved.id, v.seq, v.seq, NULL, v.party, v.topic, v.claimant, v.occurred_at, NULL
  FROM moved, unnest(%(v_seq)s::int8[], %(v_party)s::text[], %(v_topic)s::text[],
    %(v_claimant)s::text[], %(v_occurred_at)s::text[])
    AS v(seq, party, topic, claimant, occurred_at)
), new_cells AS (
  INSERT INTO position_cells (ledger_id, party, topic, claimant)
  SELECT moved.id, c.* FROM moved,
    unnest(%(c_party)s::text[], %(c_topic)s::text[], %(c_claimant)s::text[]) AS c
  ON CONFLICT (ledger_id, party, topic, claimant) DO NOTHING
), raised_marks AS (
  INSERT INTO position_marks (ledger_id, known_from, occurred_at)
  SELECT moved.id, m.block,
    CASE WHEN prior.occurred_at IS NOT NULL AND prior.occurred_at > m.occurred_at
      THEN prior.occurred_at ELSE m.occurred_at END
  FROM moved, unnest(%(m_block)s::int8[], %(m_occurred_at)s::text[]) AS m(block, occurred_at),
    (SELECT (SELECT occurred_at FROM position_marks WHERE ledger_id = %(ledger_id)s
      ORDER BY known_from DESC LIMIT 1) AS occurred_at) AS prior
  ON CONFLICT (ledger_id, known_from) DO UPDATE SET occurred_at = excluded.occurred_at
), new_citations AS (
  INSERT INTO source_citations (ledger_id, target_seq, known_from, fix, name, kind, url,
    reported_at, party, topic, occurred_at)
  SELECT moved.id, s.* FROM moved, unnest(%(s_target_seq)s::int8[], %(s_known_from)s::int8[],
    %(s_fix)s::text[], %(s_name)s::bytea[], %(s_kind)s::text[], %(s_url)s::bytea[],
    %(s_reported_at)s::text[], %(s_party)s::text[], %(s_topic)s::text[],
    %(s_occurred_at)s::text[]) AS s
), new_nodes AS (
  INSERT INTO tree_nodes (ledger_id, node_key, hash)
  SELECT moved.id, n.* FROM moved, unnest(%(n_key)s::int8[], %(n_hash)s::bytea[]) AS n
), new_checkpoint AS (
  INSERT INTO checkpoints (ledger_id, tree_size, root, head_hash, note, created_at)
  SELECT moved.id, %(new_seq)s, %(root)s, %(new_hash)s, %(note)s, %(recorded_at)s FROM moved
)
SELECT count(*) FROM moved"""


@dataclass(frozen=True, slots=True)
class PlannedRows:
    """What the projections write for records that need no database to
    project (no fix among them), each filling its own fields: the positions
    projection its first versions (seq, party, topic, claimant, occurred_at),
    the cells they touch, and the marks to raise (block, running maximum of
    occurred_at within the group); the sources projection its citations."""

    versions: tuple[tuple[int, str, str, str, str], ...]
    cells: tuple[tuple[str, str, str], ...]
    marks: tuple[tuple[int, str], ...]
    # The sources projection's ``source_citations`` rows as stored, without
    # their ledger id (``ledger.store.sources``).
    citations: tuple[tuple[Any, ...], ...] = ()

    def merged(self, other: PlannedRows) -> PlannedRows:
        """The rows of both (each projection fills its own fields)."""
        return PlannedRows(
            self.versions + other.versions,
            self.cells + other.cells,
            self.marks + other.marks,
            self.citations + other.citations,
        )


def running_marks(blocks: Mapping[int, str], start: str = "") -> list[tuple[int, str]]:
    """Per block, in order, the greatest occurred_at of ``start`` and the blocks
    up to it: the value a block's mark is raised to."""
    marks = []
    running = start
    for block in sorted(blocks):
        running = max(running, blocks[block])
        marks.append((block, running))
    return marks


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupWrite:
    """One sealed group, as the parameters of ``GROUP_STATEMENT``."""

    ledger_id: int
    old_seq: int
    old_hash: str
    new_seq: int
    new_hash: str
    recorded_at: str
    # The active verifier keys the note was signed with, oldest first.
    active_keys: Sequence[str]
    # records rows without their ledger id, in the table's column order.
    records: Sequence[Sequence[Any]]
    planned: PlannedRows
    nodes: Sequence[tuple[int, bytes]]  # (node key, hash) of the stored nodes
    root: bytes
    note: str

    def params(self) -> dict[str, Any]:
        r = _columns(self.records, 9)
        v = _columns(self.planned.versions, 5)
        c = _columns(self.planned.cells, 3)
        m = _columns(self.planned.marks, 2)
        n = _columns(self.nodes, 2)
        s = _columns(self.planned.citations, 10)
        return {
            "ledger_id": self.ledger_id,
            "old_seq": self.old_seq,
            "old_hash": self.old_hash,
            "new_seq": self.new_seq,
            "new_hash": self.new_hash,
            "recorded_at": self.recorded_at,
            # Verifier keys hold no space (name+hex+base64), so one joins them unambiguously.
            "active_keys": " ".join(self.active_keys),
            "r_seq": r[0],
            "r_event_id": r[1],
            "r_type": r[2],
            "r_party": r[3],
            "r_topic": r[4],
            "r_occurred_at": r[5],
            "r_recorded_at": r[6],
            "r_hash": r[7],
            "r_canonical": r[8],
            "v_seq": v[0],
            "v_party": v[1],
            "v_topic": v[2],
            "v_claimant": v[3],
            "v_occurred_at": v[4],
            "c_party": c[0],
            "c_topic": c[1],
            "c_claimant": c[2],
            "m_block": m[0],
            "m_occurred_at": m[1],
            "s_target_seq": s[0],
            "s_known_from": s[1],
            "s_fix": s[2],
            "s_name": s[3],
            "s_kind": s[4],
            "s_url": s[5],
            "s_reported_at": s[6],
            "s_party": s[7],
            "s_topic": s[8],
            "s_occurred_at": s[9],
            "n_key": n[0],
            "n_hash": n[1],
            "root": self.root,
            "note": self.note,
        }
