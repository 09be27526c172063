"""What the pages show, computed from the service: grid, timelines, record details.

Everything here is plain data for the templates; the templates escape it
(Jinja2 autoescape), and nothing here builds markup.
"""

from __future__ import annotations

import json
import threading
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.core.documents import DocumentInfo, documents_cited
from ledger.core.errors import NotFound
from ledger.core.hashing import record_hash
from ledger.service import LedgerService
from ledger.store.ledger_reads import fixes_of, registrations_after

__all__ = [
    "STANCES",
    "Catalog",
    "Grid",
    "RecentRecord",
    "RecordView",
    "TermChange",
    "TopicTimeline",
    "build_grid",
    "build_timelines",
    "catalog",
    "empty_reason",
    "fixes_by_seq",
    "json_record",
    "recent_record",
    "record_view",
    "safe_url",
    "stance_style",
    "terms_changes",
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
        rows = registrations_after(service.recorder.db, ledger, known.scanned)
        if rows is None:
            return Catalog()
        updated = Catalog(dict(known.parties), dict(known.topics), known.scanned)
        for seq, canonical in rows:
            record = json.loads(canonical)
            data = record.get("data", {})
            if record["type"] == "party.registered" and "party" in record:
                updated.parties[record["party"]] = str(data.get("name") or record["party"])
            elif record["type"] == "topic.registered" and "topic" in record:
                updated.topics[record["topic"]] = str(data.get("title") or record["topic"])
            updated.scanned = max(updated.scanned, seq)
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
    # Per item (by seq): how its terms differ from the statement before it.
    terms: dict[int, list[TermChange]]


# -- terms ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TermChange:
    """One member of ``terms``: before and after as text, None when absent."""

    key: str
    before: str | None
    after: str | None
    first: bool = False  # the statement before had no terms at all

    @property
    def text(self) -> str:
        if self.first:
            return f"{self.key}: {self.after}"
        if self.before is None:
            return f"{self.key}: added {self.after}"
        if self.after is None:
            return f"{self.key}: dropped (was {self.before})"
        return f"{self.key}: {self.before} \u2192 {self.after}"


def _term_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def terms_changes(before: Any, after: Any) -> list[TermChange]:
    """What changed in ``terms`` from one statement to the next (both may be
    absent, or not objects: then the whole value is the one member "terms")."""
    if before == after:
        return []
    if not isinstance(before, dict) or not isinstance(after, dict):
        old = None if before is None else _term_text(before)
        new = None if after is None else _term_text(after)
        if isinstance(after, dict) and before is None:
            return [TermChange(k, None, _term_text(v), first=True) for k, v in after.items()]
        return [TermChange("terms", old, new)]
    out = []
    for key in [*before, *(k for k in after if k not in before)]:
        if before.get(key) != after.get(key) or (key in before) != (key in after):
            out.append(
                TermChange(
                    key,
                    _term_text(before[key]) if key in before else None,
                    _term_text(after[key]) if key in after else None,
                )
            )
    return out


def _terms_along_chains(items: list[dict[str, Any]]) -> dict[int, list[TermChange]]:
    # The same chain as history's ``from``: per party, topic and claimant,
    # retracted statements skipped.
    previous: dict[tuple[str, str, str], Any] = {}
    out: dict[int, list[TermChange]] = {}
    for item in items:
        key = (item["party"], item["topic"], str(item.get("claimed_by") or ""))
        changes = terms_changes(previous.get(key), item.get("terms"))
        if changes:
            out[int(item["seq"])] = changes
        if not item["retracted"]:
            previous[key] = item.get("terms")
    return out


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
        terms = _terms_along_chains(items)
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
            if int(item["seq"]) in terms:
                label += " (terms: " + "; ".join(c.text for c in terms[int(item["seq"])]) + ")"
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
                terms=terms,
            )
        )
    return out


# -- the grid's corrections and an empty result -----------------------------------


def fixes_by_seq(history: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """The corrections and retractions known for each statement, by its seq."""
    return {int(item["seq"]): item["fixes"] for item in history if item.get("fixes")}


def empty_reason(
    *,
    head: int,
    known_seq: int,
    known_at: str | None,
    as_of: str | None,
    known_history: list[dict[str, Any]],
    first_recorded_at: str | None,
    first_position: dict[str, Any] | None,
) -> str:
    """Why a snapshot shows no position at all, in words a reader can act on.

    ``known_history``: the statements known at ``known_seq``;
    ``first_position``: the ledger's first statement however late it came."""
    if head == 0:
        return "This ledger holds no records yet."
    if known_seq == 0:
        if known_at and not known_at.isdigit():
            first = (first_recorded_at or "")[:10]
            return (
                f"Nothing had been recorded by the end of {known_at[:10]}: this ledger's "
                f"first record was recorded on {first}. That date is transaction time, "
                "when the ledger recorded a report, not when the events happened. For "
                "positions held on a day, use “Positions as of”; to step through what "
                "the ledger learned, choose a record number."
            )
        return (
            "At record 0 the ledger knew nothing yet: choose a higher record number "
            "to see what it learned, report by report."
        )
    if not known_history:
        if first_position is None:
            return (
                f"By record {known_seq} the ledger held only registered parties and "
                "topics; no position has been recorded yet."
            )
        return (
            f"By record {known_seq} the ledger held only registered parties and topics; "
            f"the first position is record {first_position['seq']}."
        )
    if as_of:
        earliest = min(str(item["occurred_at"]) for item in known_history)
        if earliest[:19] > as_of[:19]:
            return (
                f"No position known at record {known_seq} had been taken by "
                f"{as_of[:10]}: the earliest dates from {earliest[:10]}."
            )
    return (
        f"Every position known at record {known_seq} was retracted by then, or "
        "none was in force on this day."
    )


# -- the latest records ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecentRecord:
    seq: int
    type: str
    occurred_at: str
    headline: str
    detail: str | None
    target_seq: int | None


def recent_record(record: dict[str, Any], names: Catalog) -> RecentRecord:
    """One line of "Latest records": what the record says, in words."""
    raw = record.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    party = record.get("party")
    topic = record.get("topic")
    who = names.parties.get(str(party), str(party)) if party else None
    what = names.topics.get(str(topic), str(topic)) if topic else None
    kind = str(record["type"])
    target = data.get("target_seq")
    target_seq = int(target) if isinstance(target, int) else None
    detail = data.get("summary")
    if kind in ("position.stated", "position.withdrawn"):
        stance = data.get("stance") or ("withdrawn" if kind == "position.withdrawn" else "")
        headline = f"{who} on {what}: {stance}"
        if data.get("claimed_by"):
            claimant = names.parties.get(str(data["claimed_by"]), str(data["claimed_by"]))
            headline = f"{claimant} claims {who} on {what}: {stance}"
    elif kind == "party.registered":
        headline = f"Party registered: {data.get('name') or party}"
        detail = data.get("description")
    elif kind == "topic.registered":
        headline, detail = (
            f"Topic registered: {data.get('title') or topic}",
            data.get("description"),
        )
    elif kind == "draft.presented":
        headline = f"{who} presents a draft: {data.get('title') or 'untitled'}"
    elif kind in ("record.corrected", "record.retracted") and target_seq is not None:
        verb = "Corrects" if kind == "record.corrected" else "Retracts"
        headline, detail = f"{verb} record #{target_seq}", data.get("reason")
    else:
        headline = kind
    return RecentRecord(
        seq=int(record["seq"]),
        type=kind,
        occurred_at=str(record["occurred_at"]),
        headline=headline,
        detail=str(detail) if detail else None,
        target_seq=target_seq,
    )


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
    #: The archived copies the record cites, as the ledger holds them (None: not held).
    documents: list[tuple[str, DocumentInfo | None]] = field(default_factory=list)


def record_view(service: LedgerService, ledger: str, seq: int) -> RecordView:
    canonical = service.get_record(ledger, seq)
    record = json.loads(canonical)
    fixes: list[Fix] = []
    for fix_seq, fix_canonical in fixes_of(service.recorder.db, ledger, seq):
        fix = json.loads(fix_canonical)
        data = fix.get("data", {})
        fixes.append(
            Fix(
                seq=fix_seq,
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
    documents: list[tuple[str, DocumentInfo | None]] = []
    for sha256 in documents_cited(record["type"], record.get("source"), record.get("data")):
        try:
            documents.append((sha256, service.document(ledger, sha256)))
        except NotFound:
            documents.append((sha256, None))
    return RecordView(
        seq=seq,
        record=record,
        canonical=canonical.decode("utf-8"),
        hash=record_hash(canonical),
        fixes=fixes,
        target_seq=int(target) if is_fix and isinstance(target, int) else None,
        pretty_data=json.dumps(record.get("data", {}), indent=2, ensure_ascii=False),
        documents=documents,
    )


def json_record(canonical: bytes) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(canonical)
    return record
