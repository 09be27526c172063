"""The event schemas (schemas/*.json) and the demo ledger that must satisfy them."""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from ledger.core.times import parse_instant
from ledger.intake import EventSchemas

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "schemas"
DEMO = ROOT / "ledger" / "demo" / "us-ua-minerals-2025.jsonl"
ID_BASE = "https://ledger.invalid/schemas/"

EVENT_TYPES = [
    "party.registered",
    "topic.registered",
    "position.stated",
    "position.withdrawn",
    "draft.presented",
    "record.corrected",
    "record.retracted",
]
# Written by the server only (format §3, §1.4); documented by a schema, refused from clients.
SERVER_TYPES = ["key.rotated", "author.registered", "author.revoked"]
SCHEMA_FILES = sorted(p.name for p in SCHEMA_DIR.glob("*.json"))
UUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
# One bundled set for the module: building it compiles every schema.
SCHEMAS = EventSchemas.bundled()


def _load(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


@cache
def _registry() -> Registry:
    resources = []
    for name in SCHEMA_FILES:
        schema = _load(name)
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@cache
def _validator(event_type: str) -> Draft202012Validator:
    return Draft202012Validator(_load(f"{event_type}.json"), registry=_registry())


def _errors(event: Any, event_type: str | None = None) -> list[str]:
    """Messages of ``event`` against ``schemas/<event_type>.json`` (default: its ``type``)."""
    if event_type is None:
        event_type = event.get("type") if isinstance(event, dict) else None
    assert event_type in EVENT_TYPES, f"no schema for type {event_type!r}"
    return [e.message for e in _validator(event_type).iter_errors(event)]


def _demo_lines() -> list[str]:
    return DEMO.read_text(encoding="utf-8").splitlines()


def _demo() -> list[dict[str, Any]]:
    return [json.loads(line) for line in _demo_lines()]


# --- the schema files ---------------------------------------------------------------


def test_every_event_type_has_a_schema() -> None:
    types = EVENT_TYPES + SERVER_TYPES
    assert set(SCHEMA_FILES) == {"common.json"} | {f"{t}.json" for t in types}


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_schema_is_valid_2020_12(name: str) -> None:
    schema = _load(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == ID_BASE + name
    assert schema["title"]
    assert schema["description"]


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_type_schema_shape(event_type: str) -> None:
    schema = _load(f"{event_type}.json")
    assert schema["additionalProperties"] is False
    assert schema["properties"]["type"]["const"] == event_type
    assert {"type", "occurred_at", "data"} <= set(schema["required"])
    assert schema["properties"]["data"]["additionalProperties"] is False
    # The server-assigned members are never part of a posted event.
    assert not {"seq", "prev", "recorded_at", "actor", "ledger"} & schema["properties"].keys()


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_schema_examples_are_valid(event_type: str) -> None:
    for example in _load(f"{event_type}.json").get("examples", []):
        assert _errors(example) == []


# --- the demo ledger ----------------------------------------------------------------


def test_demo_is_compact_nfc_jsonl() -> None:
    raw = DEMO.read_bytes()
    assert raw.endswith(b"\n")
    text = raw.decode("utf-8")
    assert unicodedata.normalize("NFC", text) == text
    for line in _demo_lines():
        event = json.loads(line)
        assert json.dumps(event, ensure_ascii=False, separators=(",", ":")) == line


def test_demo_has_only_integer_numbers() -> None:
    for n, line in enumerate(_demo_lines(), start=1):
        json.loads(line, parse_float=lambda s, n=n: pytest.fail(f"float {s} on line {n}"))


DEMO_LINES = list(enumerate(_demo_lines(), start=1))


@pytest.mark.parametrize(("line_no", "line"), DEMO_LINES, ids=[f"line-{n}" for n, _ in DEMO_LINES])
def test_demo_line_is_valid(line_no: int, line: str) -> None:
    event = json.loads(line)
    assert _errors(event) == [], f"line {line_no}"


def test_demo_size_and_ids() -> None:
    events = _demo()
    assert len(events) >= 20
    ids = [e["id"] for e in events]
    assert all(UUID.match(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_demo_corrections_point_backwards_at_plain_records() -> None:
    events = _demo()
    corrections = 0
    for seq, event in enumerate(events, start=1):
        if event["type"] not in ("record.corrected", "record.retracted"):
            continue
        corrections += event["type"] == "record.corrected"
        target = event["data"]["target_seq"]
        assert 1 <= target < seq
        assert events[target - 1]["type"] not in ("record.corrected", "record.retracted")
        if event["type"] == "record.corrected":
            # The corrected target must still be valid for its own type.
            fixed = {**events[target - 1], **event["data"]["changes"]}
            assert _errors(fixed) == [], f"correction on line {seq}"
    assert corrections >= 1


def test_demo_references_registered_parties_and_topics() -> None:
    events = _demo()
    parties = {e["party"] for e in events if e["type"] == "party.registered"}
    topics = {e["topic"] for e in events if e["type"] == "topic.registered"}
    assert {"US", "UA"} <= parties
    for event in events:
        if event["type"].endswith(".registered"):
            continue
        assert event.get("party", "US") in parties
        assert event.get("topic", "signing") in topics
        assert event["data"].get("claimed_by", "US") in parties


# --- negative cases -----------------------------------------------------------------

VALID: dict[str, dict[str, Any]] = {
    "party.registered": {
        "type": "party.registered",
        "occurred_at": "2025-02-01",
        "party": "UA",
        "data": {"name": "Ukraine"},
    },
    "topic.registered": {
        "type": "topic.registered",
        "occurred_at": "2025-02-01",
        "topic": "signing",
        "data": {"title": "Signing"},
    },
    "position.stated": {
        "type": "position.stated",
        "id": "0b6f3c1e-2a4d-4e8f-9b7a-1c2d3e4f5a6b",
        "occurred_at": "2025-02-12T10:00:00+02:00",
        "party": "US",
        "topic": "revenue-share",
        "data": {
            "stance": "demand",
            "summary": "Half of the listed resources.",
            "terms": {"share_percent": 50},
        },
        "source": {
            "name": "President Zelensky",
            "kind": "official",
            "url": "https://example.org/a",
            "reported_at": "2025-02-13",
        },
    },
    "position.withdrawn": {
        "type": "position.withdrawn",
        "occurred_at": "2025-03-01",
        "party": "US",
        "topic": "revenue-share",
        "data": {"summary": "Dropped."},
    },
    "draft.presented": {
        "type": "draft.presented",
        "occurred_at": "2025-02-12",
        "party": "US",
        "data": {"title": "Pilot draft", "summary": "A first text."},
    },
    "record.corrected": {
        "type": "record.corrected",
        "occurred_at": "2025-02-25",
        "data": {
            "target_seq": 3,
            "reason": "Wrong date.",
            "changes": {"occurred_at": "2025-02-12"},
        },
    },
    "record.retracted": {
        "type": "record.retracted",
        "occurred_at": "2025-02-25",
        "data": {"target_seq": 3, "reason": "Entered twice."},
    },
}


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_valid_fixture(event_type: str) -> None:
    assert _errors(VALID[event_type]) == []


def _drop(path: str) -> Any:
    def edit(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = event
        for part in parents:
            target = target[part]
        del target[last]

    return edit


def _set(path: str, value: Any) -> Any:
    def edit(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = event
        for part in parents:
            target = target[part]
        target[last] = value

    return edit


INVALID = [
    # missing required members
    ("party.registered", "no party", _drop("party")),
    ("party.registered", "no data.name", _drop("data.name")),
    ("topic.registered", "no topic", _drop("topic")),
    ("topic.registered", "no data.title", _drop("data.title")),
    ("position.stated", "no source", _drop("source")),
    ("position.stated", "no stance", _drop("data.stance")),
    ("position.stated", "no summary", _drop("data.summary")),
    ("position.stated", "no topic", _drop("topic")),
    ("position.stated", "no occurred_at", _drop("occurred_at")),
    ("position.withdrawn", "no party", _drop("party")),
    ("draft.presented", "no title", _drop("data.title")),
    ("record.corrected", "no changes", _drop("data.changes")),
    ("record.retracted", "no target_seq", _drop("data.target_seq")),
    ("record.retracted", "no reason", _drop("data.reason")),
    ("draft.presented", "no data", _drop("data")),
    # bad values
    ("position.stated", "bad stance", _set("data.stance", "agree")),
    ("position.stated", "lower-case party", _set("party", "usa")),
    ("position.stated", "bad claimant", _set("data.claimed_by", "usa")),
    ("party.registered", "party too long", _set("party", "U" * 33)),
    ("topic.registered", "upper-case topic", _set("topic", "Signing")),
    ("position.stated", "empty summary", _set("data.summary", "")),
    ("position.stated", "summary too long", _set("data.summary", "x" * 4001)),
    ("party.registered", "name too long", _set("data.name", "x" * 201)),
    ("position.stated", "upper-case id", _set("id", "0B6F3C1E-2A4D-4E8F-9B7A-1C2D3E4F5A6B")),
    ("position.stated", "time without offset", _set("occurred_at", "2025-02-12T10:00:00")),
    ("position.stated", "not a date", _set("occurred_at", "12 February 2025")),
    ("position.stated", "terms not an object", _set("data.terms", [50])),
    ("position.stated", "bad source kind", _set("source.kind", "rumour")),
    ("position.stated", "source url not http", _set("source.url", "ftp://example.org/a")),
    ("position.stated", "bad reported_at", _set("source.reported_at", "yesterday")),
    ("position.stated", "extra source member", _set("source.author", "someone")),
    ("position.stated", "wrong type const", _set("type", "position.withdrawn")),
    ("record.corrected", "target_seq zero", _set("data.target_seq", 0)),
    ("record.corrected", "target_seq a string", _set("data.target_seq", "3")),
    ("record.corrected", "target_seq too big", _set("data.target_seq", 2**53)),
    ("record.corrected", "changes empty", _set("data.changes", {})),
    ("record.corrected", "changes names seq", _set("data.changes", {"seq": 4})),
    ("record.corrected", "changes names type", _set("data.changes", {"type": "x"})),
    ("record.corrected", "changes bad party", _set("data.changes", {"party": "ua"})),
    # members a type does not allow
    ("position.withdrawn", "claimed_by on withdrawal", _set("data.claimed_by", "US")),
    ("party.registered", "topic on a party", _set("topic", "signing")),
    ("topic.registered", "party on a topic", _set("party", "US")),
    ("record.corrected", "party on a correction", _set("party", "US")),
    ("record.retracted", "topic on a retraction", _set("topic", "signing")),
    # extra members
    ("party.registered", "extra data member", _set("data.flag", True)),
    ("position.stated", "extra data member", _set("data.confidence", 3)),
    ("draft.presented", "extra data member", _set("data.pages", 4)),
    ("record.retracted", "extra data member", _set("data.changes", {})),
    ("position.stated", "extra envelope member", _set("note", "x")),
    ("topic.registered", "server member seq", _set("seq", 1)),
    ("draft.presented", "server member prev", _set("prev", "0" * 64)),
]


@pytest.mark.parametrize(
    ("event_type", "why", "edit"), INVALID, ids=[f"{t}: {w}" for t, w, _ in INVALID]
)
def test_invalid_event_is_rejected(event_type: str, why: str, edit: Any) -> None:
    event = copy.deepcopy(VALID[event_type])
    edit(event)
    assert _errors(event, event_type), why


# --- the fast validator agrees with the reference one --------------------------------

_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.sampled_from(["", "US", "UA", "oppose", "demand", "media", "2025-02-24", "x" * 600])
    | st.text(max_size=8)
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def _mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with one member replaced, deleted or added anywhere in it."""
    event = copy.deepcopy(VALID[draw(st.sampled_from(EVENT_TYPES))])
    path = draw(st.sampled_from(_paths(event)[1:]))
    parent: Any = event
    for step in path[:-1]:
        parent = parent[step]
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    elif action == "add" and isinstance(parent, dict):
        parent[draw(st.text(max_size=12))] = draw(_JSON)
    else:
        parent[path[-1]] = draw(_JSON)
    return event


@settings(max_examples=600, deadline=None)
@given(event=_mutated_events())
def test_the_fast_validator_gives_the_reference_verdict(event: dict[str, Any]) -> None:
    schemas = SCHEMAS
    event_type = event["type"] if isinstance(event.get("type"), str) else "position.stated"
    if event_type not in schemas.fast:
        return
    reference = not list(schemas.validators[event_type].iter_errors(event))
    assert schemas.fast[event_type].is_valid(event) == reference, event


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_the_fast_validator_accepts_the_fixtures_and_the_demo(event_type: str) -> None:
    schemas = SCHEMAS
    assert schemas.fast[event_type].is_valid(VALID[event_type])
    for event in _demo():
        assert schemas.fast[event["type"]].is_valid(event)


# --- date members are real calendar dates, to both validators ---------------------------

# Every member of an event that holds a date or date-time, by type.
DATE_MEMBERS: dict[str, list[str]] = {
    "party.registered": ["occurred_at", "source.reported_at"],
    "topic.registered": ["occurred_at", "source.reported_at"],
    "position.stated": ["occurred_at", "source.reported_at"],
    "position.withdrawn": ["occurred_at", "source.reported_at"],
    "draft.presented": ["occurred_at", "source.reported_at"],
    "record.corrected": [
        "occurred_at",
        "source.reported_at",
        "data.changes.occurred_at",
        "data.changes.source.reported_at",
    ],
    "record.retracted": ["occurred_at", "source.reported_at"],
}


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name, _, pointer = schema["$ref"].partition("#")
        document = _load(name) if name else _load("common.json")
        for part in pointer.strip("/").split("/"):
            document = document[part]
        schema = {**document, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _members_named_at(schema: dict[str, Any], prefix: str = "") -> list[str]:
    found = []
    for name, member in _resolve(schema).get("properties", {}).items():
        path = f"{prefix}{name}"
        if name.endswith("_at"):
            found.append(path)
        found += _members_named_at(member, f"{path}.")
    return found


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_the_list_of_date_members_is_complete(event_type: str) -> None:
    named = _members_named_at(_load(f"{event_type}.json"))
    assert sorted(named) == sorted(DATE_MEMBERS[event_type])


# Valid parents of a nested member the tests set: a source, or a signature.
_PARENTS = {
    "source": {"name": "CNN", "kind": "media"},
    "author": {"name": "ua-desk", "key_id": "0a1b2c3d", "sig": "A" * 86 + "=="},
}


def _with_date(event_type: str, path: str, value: str) -> dict[str, Any]:
    event = copy.deepcopy(VALID[event_type])
    *parents, last = path.split(".")
    target = event
    for part in parents:
        target = target.setdefault(part, dict(_PARENTS.get(part, _PARENTS["source"])))
    if parents[:1] == ["author"]:
        event.setdefault("id", _PATTERN_EXAMPLES["id"])  # a signed event names its id
    target[last] = value
    return event


_DATE_CASES = [(t, p) for t, paths in DATE_MEMBERS.items() for p in paths]
UNREAL_DATES = [
    "9999-99-99",
    "2025-02-30",
    "2025-02-29",
    "1900-02-29",
    "2025-04-31",
    "2025-13-01",
    "2025-00-10",
    "2025-01-00",
    "0000-01-01",
    "2025-02-24T24:00:00Z",
    "2025-02-24T23:60:00Z",
    "2025-02-24T23:59:60Z",
    "2025-02-24T12:00:00+24:00",
    "2025-02-24T12:00:00+01:60",
    "2025-02-30T12:00:00Z",
    "\u0662\u0660\u0662\u0665-02-24",
    "2025-02-24\n",
    "2025-02-24T12:00:00Z\n",
]
REAL_DATES = ["2024-02-29", "2000-02-29", "0001-01-01", "9999-12-31", "2025-02-24T23:59:59+23:59"]


@pytest.mark.parametrize(("event_type", "path"), _DATE_CASES)
@pytest.mark.parametrize("value", UNREAL_DATES)
def test_a_date_member_that_is_not_a_real_date_is_refused_by_both_validators(
    event_type: str, path: str, value: str
) -> None:
    schemas = SCHEMAS
    event = _with_date(event_type, path, value)
    assert _errors(event), (path, value)
    assert not schemas.fast[event_type].is_valid(event), (path, value)


@pytest.mark.parametrize(("event_type", "path"), _DATE_CASES)
@pytest.mark.parametrize("value", REAL_DATES)
def test_a_real_date_is_accepted_by_both_validators(event_type: str, path: str, value: str) -> None:
    schemas = SCHEMAS
    event = _with_date(event_type, path, value)
    assert _errors(event) == [], (path, value)
    assert schemas.fast[event_type].is_valid(event), (path, value)


@st.composite
def _date_texts(draw: st.DrawFn) -> str:
    year = draw(st.integers(0, 9999))
    month, day = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    hour, minute, second = (
        draw(st.integers(0, 25)),
        draw(st.integers(0, 61)),
        draw(st.integers(0, 61)),
    )
    time = f"{hour:02d}:{minute:02d}:{second:02d}"
    shape = draw(
        st.sampled_from(
            [
                "{d}",
                "{d}T{t}Z",
                "{d}t{t}z",
                "{d} {t}Z",
                "{d}T{t}+05:30",
                "{d}T{t}-23:59",
                "{d}T{t}+24:00",
                "{d}T{t}.25Z",
                "{d}T{t}",
                "{d}\n",
                " {d}",
                "{d}T{t}ZZ",
            ]
        )
    )
    return shape.format(d=f"{year:04d}-{month:02d}-{day:02d}", t=time)


def _is_real_date(text: str) -> bool:
    """Whether ``parse_instant`` reads it, before it moves the time to UTC."""
    try:
        parse_instant(text, allow_fraction=True)
    except ValueError as e:
        # A real local time that a real offset moves off the calendar (before
        # year 1 or after 9999) is still a real date as written.
        edge = re.fullmatch(r"(0001-01-01|9999-12-31)[Tt ].*[+-]\d\d:\d\d", text)
        return bool(edge) and "not a real time" in str(e) and _is_real_date(text[:19] + "Z")
    return True


@pytest.mark.parametrize(
    ("text", "real"),
    [
        ("0001-01-01T00:00:00+01:00", True),
        ("9999-12-31T23:59:59-01:00", True),
        ("0001-01-01T00:00:00+24:00", False),
        ("0001-01-01T24:00:00+01:00", False),
        ("2025-02-29T00:00:00Z", False),
    ],
)
def test_the_real_date_oracle(text: str, real: bool) -> None:
    assert _is_real_date(text) == real


@settings(max_examples=1500, deadline=None)
@given(event_type=st.sampled_from(EVENT_TYPES), data=st.data())
def test_both_validators_accept_exactly_the_real_dates(
    event_type: str, data: st.DataObject
) -> None:
    schemas = SCHEMAS
    path = data.draw(st.sampled_from(DATE_MEMBERS[event_type]))
    text = data.draw(_date_texts())
    event = _with_date(event_type, path, text)
    real = _is_real_date(text)
    assert (not _errors(event)) == real, (path, text)
    assert schemas.fast[event_type].is_valid(event) == real, (path, text)


def _pattern_members(schema: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    found = []
    for name, member in _resolve(schema).get("properties", {}).items():
        path = f"{prefix}{name}"
        resolved = _resolve(member)
        if "pattern" in resolved:
            found.append((path, resolved["pattern"]))
        found += _pattern_members(member, f"{path}.")
    return found


_PATTERN_CASES = [
    (event_type, path, pattern)
    for event_type in EVENT_TYPES
    for path, pattern in _pattern_members(_load(f"{event_type}.json"))
]
_PATTERN_EXAMPLES = {
    "id": "0b6f3c1e-2a4d-4e8f-9b7a-1c2d3e4f5a6b",
    "party": "US",
    "topic": "signing",
    "claimed_by": "UA",
    "url": "https://example.org/a",
    "occurred_at": "2025-02-24",
    "reported_at": "2025-02-24",
    "author.name": "ua-desk",
    "key_id": "0a1b2c3d",
    "sig": "A" * 86 + "==",
    "document": "ab" * 32,
}


@pytest.mark.parametrize(("event_type", "path", "pattern"), _PATTERN_CASES)
@pytest.mark.parametrize("tail", ["", "\n", "\n\n", "\r"])
def test_every_pattern_means_the_same_to_both_validators(
    event_type: str, path: str, pattern: str, tail: str
) -> None:
    # JSON Schema patterns are ECMA 262, where $ is the end of the text only;
    # Python's re also lets it match before a final newline.
    schemas = SCHEMAS
    example = _PATTERN_EXAMPLES.get(path) or _PATTERN_EXAMPLES[path.rsplit(".", 1)[-1]]
    text = example + tail
    event = _with_date(event_type, path, text)
    reference = not list(schemas.validators[event_type].iter_errors(event))
    assert schemas.fast[event_type].is_valid(event) == reference, (path, text)
    anchored = not pattern.startswith("^https?://")  # a URL may go on
    assert reference == (tail == "" or not anchored), (path, text)
