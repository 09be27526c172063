"""What the pages show, computed from the service: grid, timelines, record details.

Everything here is plain data for the templates; the templates escape it
(Jinja2 autoescape), and nothing here builds markup.
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.service import LedgerService
from ledger.store.rawread import raw_read

__all__ = [
    "STANCES",
    "Catalog",
    "Grid",
    "RecordView",
    "TopicTimeline",
    "build_grid",
    "build_timelines",
    "catalog",
    "json_record",
    "record_view",
    "safe_url",
    "stance_style",
]


@dataclass(frozen=True, slots=True)
class StanceStyle:
    name: str
    icon: str  # shown beside the word, so colour is never the only signal
    css: str


STANCES: dict[str, StanceStyle] = {
    s.name: s
    for s in (
        StanceStyle("support", "✓", "st-support"),
        StanceStyle("offer", "➜", "st-offer"),
        StanceStyle("conditional", "≈", "st-conditional"),
        StanceStyle("undecided", "?", "st-undecided"),
        StanceStyle("demand", "!", "st-demand"),
        StanceStyle("oppose", "✗", "st-oppose"),
        StanceStyle("reject", "⊘", "st-reject"),
        StanceStyle("withdrawn", "\u2013", "st-withdrawn"),
    )
}
_UNKNOWN = StanceStyle("unknown", "•", "st-undecided")


def stance_style(stance: object) -> StanceStyle:
    return STANCES.get(str(stance), _UNKNOWN)


def safe_url(url: object) -> str | None:
    """The URL if it is http(s): a ``javascript:`` source URL must never become a link."""
    if isinstance(url, str) and url[:8].lower().startswith(("http://", "https://")):
        return url
    return None


# -- names of parties and topics ----------------------------------------------

_SELECT_ID = "SELECT id FROM ledgers WHERE name = ?"
_SELECT_REGISTRATIONS = (
    "SELECT seq, canonical FROM records WHERE ledger_id = ? AND seq > ?"
    " AND type IN ('party.registered', 'topic.registered') ORDER BY seq"
)
_SELECT_FIXES_OF = (
    "SELECT f.fix_seq, r.canonical FROM record_fixes f JOIN records r"
    " ON r.ledger_id = f.ledger_id AND r.seq = f.fix_seq"
    " WHERE f.ledger_id = ? AND f.target_seq = ? ORDER BY f.fix_seq"
)


@dataclass(slots=True)
class Catalog:
    """Registered parties (code -> name) and topics (code -> title), in ledger order."""

    parties: dict[str, str] = field(default_factory=dict)
    topics: dict[str, str] = field(default_factory=dict)
    scanned: int = 0


_catalogs: weakref.WeakKeyDictionary[LedgerService, dict[str, Catalog]] = (
    weakref.WeakKeyDictionary()
)
_catalog_lock = threading.Lock()


def catalog(service: LedgerService, ledger: str) -> Catalog:
    """Names for the grid's headers, read incrementally: records never change.

    Cached per service and ledger; each call reads only registrations appended
    since the last one.
    """
    with _catalog_lock:
        cache = _catalogs.setdefault(service, {})
        known = cache.get(ledger) or Catalog()
        with raw_read(service.recorder.db) as reader:
            row = reader.one(_SELECT_ID, [ledger])
            if row is None:
                return Catalog()
            rows = reader.all(_SELECT_REGISTRATIONS, [int(row[0]), known.scanned])
        updated = Catalog(dict(known.parties), dict(known.topics), known.scanned)
        for seq, canonical in rows:
            record = json.loads(bytes(canonical))
            data = record.get("data", {})
            if record["type"] == "party.registered" and "party" in record:
                updated.parties[record["party"]] = str(data.get("name") or record["party"])
            elif record["type"] == "topic.registered" and "topic" in record:
                updated.topics[record["topic"]] = str(data.get("title") or record["topic"])
            updated.scanned = max(updated.scanned, int(seq))
        cache[ledger] = updated
        return updated


# -- the grid -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claim:
    claimant: str
    cell: dict[str, Any]


@dataclass(frozen=True, slots=True)
class GridCell:
    party: str
    topic: str
    cell: dict[str, Any] | None
    claims: list[Claim]


@dataclass(frozen=True, slots=True)
class GridRow:
    topic: str
    title: str
    cells: list[GridCell]


@dataclass(frozen=True, slots=True)
class Grid:
    parties: list[tuple[str, str]]
    topics: list[tuple[str, str]]
    rows: list[GridRow]

    @property
    def seqs(self) -> list[int]:
        """Every record the grid shows, for the browser to prove."""
        out: set[int] = set()
        for row in self.rows:
            for cell in row.cells:
                if cell.cell is not None:
                    out.add(int(cell.cell["seq"]))
                out.update(int(c.cell["seq"]) for c in cell.claims)
        return sorted(out)


def _ordered(registered: dict[str, str], seen: set[str]) -> list[tuple[str, str]]:
    # Registered ones in ledger order, then any only seen in positions, sorted.
    out = list(registered.items())
    out += [(code, code) for code in sorted(seen - registered.keys())]
    return out


def build_grid(snapshot: dict[str, Any], names: Catalog) -> Grid:
    state: dict[str, dict[str, Any]] = snapshot.get("state", {})
    claims: dict[str, dict[str, dict[str, Any]]] = snapshot.get("claims", {})
    parties = _ordered(names.parties, set(state) | set(claims))
    seen_topics = {t for topics in state.values() for t in topics}
    seen_topics |= {t for topics in claims.values() for t in topics}
    topics = _ordered(names.topics, seen_topics)
    rows = [
        GridRow(
            topic=topic,
            title=title,
            cells=[
                GridCell(
                    party=party,
                    topic=topic,
                    cell=state.get(party, {}).get(topic),
                    claims=[
                        Claim(claimant, cell)
                        for claimant, cell in sorted(claims.get(party, {}).get(topic, {}).items())
                    ],
                )
                for party, _ in parties
            ],
        )
        for topic, title in topics
    ]
    return Grid(parties=parties, topics=topics, rows=rows)


# -- timelines ----------------------------------------------------------------

# SVG user units; the drawing scales with its container.
WIDTH = 720
GUTTER = 64
RIGHT = 16
ROW = 40
TOP = 28


def _instant(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Mark:
    seq: int
    x: float
    y: float
    stance: str
    summary: str
    since: str
    claimed_by: str | None
    corrected: bool
    retracted: bool
    label: str


@dataclass(frozen=True, slots=True)
class Segment:
    x1: float
    x2: float
    y: float
    stance: str


@dataclass(frozen=True, slots=True)
class Lane:
    party: str
    name: str
    y: float


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    label: str
    anchor: str


@dataclass(frozen=True, slots=True)
class TopicTimeline:
    topic: str
    title: str
    height: int
    lanes: list[Lane]
    segments: list[Segment]
    marks: list[Mark]
    ticks: list[Tick]
    as_of_x: float | None
    items: list[dict[str, Any]]


def _ticks(start: datetime, end: datetime, scale: Any) -> list[Tick]:
    count = 5
    step = (end - start) / (count - 1)
    moments = [start + step * i for i in range(count)]
    # The outer labels align inwards so neither is cut off at the drawing's edge.
    anchors = ["start", *["middle"] * (count - 2), "end"]
    return [
        Tick(scale(moment), moment.strftime("%Y-%m-%d"), anchor)
        for moment, anchor in zip(moments, anchors, strict=True)
    ]


def build_timelines(
    history: list[dict[str, Any]], names: Catalog, grid: Grid, as_of: str | None
) -> list[TopicTimeline]:
    """Per topic, one lane per party: stance segments over valid time, and markers."""
    if not history:
        return []
    instants = [_instant(item["occurred_at"]) for item in history]
    start, end = min(instants), max(instants)
    as_of_moment = _instant(as_of) if as_of else None
    if as_of_moment is not None:
        start, end = min(start, as_of_moment), max(end, as_of_moment)
    start -= timedelta(days=1)
    end += timedelta(days=1)
    span = (end - start).total_seconds()

    def scale(moment: datetime) -> float:
        return round(GUTTER + (WIDTH - GUTTER - RIGHT) * (moment - start).total_seconds() / span, 1)

    ticks = _ticks(start, end, scale)
    party_order = [code for code, _ in grid.parties]
    out = []
    for topic, title in grid.topics:
        items = [item for item in history if item["topic"] == topic]
        if not items:
            continue
        present = {item["party"] for item in items}
        lanes = [
            Lane(code, names.parties.get(code, code), TOP + ROW * i + ROW / 2)
            for i, code in enumerate(c for c in party_order if c in present)
        ]
        lane_y = {lane.party: lane.y for lane in lanes}
        segments: list[Segment] = []
        marks: list[Mark] = []
        own: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            y = lane_y[item["party"]]
            kinds = {fix["kind"] for fix in item.get("fixes", [])}
            claimed_by = item.get("claimed_by")
            if not claimed_by and not item["retracted"]:
                own.setdefault(item["party"], []).append(item)
            who = names.parties.get(item["party"], item["party"])
            label = f"{who}: {item['to']} since {item['occurred_at'][:10]}"
            if claimed_by:
                label = f"claim by {claimed_by} about {who}: {item['to']}"
                label += f", {item['occurred_at'][:10]}"
            if item["retracted"]:
                label += " (retracted)"
            elif "corrected" in kinds:
                label += " (corrected)"
            marks.append(
                Mark(
                    seq=int(item["seq"]),
                    x=scale(_instant(item["occurred_at"])),
                    y=y + (9 if claimed_by else 0),
                    stance=str(item["to"]),
                    summary=str(item.get("summary") or ""),
                    since=item["occurred_at"],
                    claimed_by=claimed_by,
                    corrected="corrected" in kinds,
                    retracted=bool(item["retracted"]),
                    label=f"{label} (record {item['seq']})",
                )
            )
        for party, statements in own.items():
            for i, item in enumerate(statements):
                x1 = scale(_instant(item["occurred_at"]))
                x2 = (
                    scale(_instant(statements[i + 1]["occurred_at"]))
                    if i + 1 < len(statements)
                    else scale(end)
                )
                segments.append(Segment(x1, x2, lane_y[party], str(item["to"])))
        out.append(
            TopicTimeline(
                topic=topic,
                title=title,
                height=int(TOP + ROW * len(lanes) + 8),
                lanes=lanes,
                segments=segments,
                marks=marks,
                ticks=ticks,
                as_of_x=scale(as_of_moment) if as_of_moment is not None else None,
                items=items,
            )
        )
    return out


# -- one record -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fix:
    seq: int
    kind: str
    occurred_at: str
    reason: str | None
    changes: Any


@dataclass(frozen=True, slots=True)
class RecordView:
    seq: int
    record: dict[str, Any]
    canonical: str
    hash: str
    fixes: list[Fix]
    target_seq: int | None
    pretty_data: str


def record_view(service: LedgerService, ledger: str, seq: int) -> RecordView:
    canonical = service.get_record(ledger, seq)
    record = json.loads(canonical)
    fixes: list[Fix] = []
    with raw_read(service.recorder.db) as reader:
        row = reader.one(_SELECT_ID, [ledger])
        rows = reader.all(_SELECT_FIXES_OF, [int(row[0]), seq]) if row else []
    for fix_seq, fix_canonical in rows:
        fix = json.loads(bytes(fix_canonical))
        data = fix.get("data", {})
        fixes.append(
            Fix(
                seq=int(fix_seq),
                kind="retracted" if fix["type"] == "record.retracted" else "corrected",
                occurred_at=fix["occurred_at"],
                reason=data.get("reason"),
                changes=(
                    json.dumps(data["changes"], indent=2, ensure_ascii=False)
                    if "changes" in data
                    else None
                ),
            )
        )
    target = record.get("data", {}).get("target_seq")
    is_fix = record["type"] in ("record.corrected", "record.retracted")
    return RecordView(
        seq=seq,
        record=record,
        canonical=canonical.decode("utf-8"),
        hash=hashlib.sha256(canonical).hexdigest(),
        fixes=fixes,
        target_seq=int(target) if is_fix and isinstance(target, int) else None,
        pretty_data=json.dumps(record.get("data", {}), indent=2, ensure_ascii=False),
    )


def json_record(canonical: bytes) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(canonical)
    return record
