"""Intake: turns a posted body into validated ``EventDraft``s.

Every event passes, in order: the strict JSON value rules (format §1), the
refusal of server-assigned members, its type's JSON Schema from ``schemas/``,
and the strict time rules for ``occurred_at``. Errors name the offending
field, prefixed with the event's index in a batch (``[3].data.stance``).

This runs for every appended event, so the common case is kept cheap: error
paths build their messages only when they fire, ``occurred_at`` values are
read once per distinct text (``_read_occurred_at``), and ids come from one
random read per body (``new_event_ids``, time-ordered).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

from ledger.core.authors import AuthorMark, AuthorRuleBroken
from ledger.core.canonical import canonical_bytes
from ledger.core.errors import InvalidEvent
from ledger.core.jsonvalues import format_path, loads_strict
from ledger.core.records import SERVER_MEMBERS, SERVER_TYPES, EventDraft, Record
from ledger.core.times import OCCURRED_AT_PATTERN, format_occurred_at, parse_instant

__all__ = ["FUTURE_TOLERANCE", "EventSchemas", "Intake", "ParsedBody"]

# A position cannot be reported before it happens; five minutes absorbs clock skew.
FUTURE_TOLERANCE = timedelta(minutes=5)

# re.ASCII, as in ledger.core.times: only 0-9 are digits.
_DATE_ONLY = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z", re.ASCII)
# ``_read_occurred_at``'s memory: text -> (instant, stored form). Bounded; a
# batch usually repeats a handful of dates.
_OCCURRED: dict[str, tuple[datetime, str]] = {}
_OCCURRED_LIMIT = 4096
# Byte maps that set a UUID's version nibble (7) and variant bits (10xx
# xxxx) exactly as ``uuid.UUID(bytes=..., version=7)`` does, keeping the rest.
_UUID_VERSION_7 = bytes((byte & 0x0F) | 0x70 for byte in range(256))
_UUID_VARIANT_RFC_9562 = bytes((byte & 0x3F) | 0x80 for byte in range(256))
_UNIX_MS_MASK = (1 << 48) - 1
# The same for one id as an integer: the 74 random bits it keeps, and the
# version (7) and variant (10) bits it sets.
_UUID_RANDOM_BITS = 0x0FFF_3FFF_FFFF_FFFF_FFFF
_UUID_V7_BITS = 0x7000_8000_0000_0000_0000


@functools.cache
def _ecma_262(pattern: str) -> re.Pattern[str]:
    """A schema ``pattern`` (ECMA 262) as Python's ``re`` must be told it.

    Two readings differ for the patterns a schema may hold: ECMA's ``$``
    matches only at the end of the text (Python's also before a final
    newline), and its ``\\d`` is ``[0-9]`` (Python's any Unicode digit).
    jsonschema-rs reads them as ECMA does; so must the reference validator.
    """
    out: list[str] = []
    in_class = False
    at = 0
    while at < len(pattern):
        char = pattern[at]
        if char == "\\" and at + 1 < len(pattern):
            escape = pattern[at : at + 2]
            out.append(("0-9" if in_class else "[0-9]") if escape == "\\d" else escape)
            at += 2
            continue
        if char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        out.append("\\Z" if char == "$" and not in_class else char)
        at += 1
    return re.compile("".join(out))


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """The ``pattern`` keyword, as ``jsonschema`` words it, read as ECMA 262."""
    if validator.is_type(instance, "string") and not _ecma_262(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


# The stubs leave extend untyped; it returns a validator class.
_ReferenceValidator: Any = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"pattern": _pattern}
)


class EventSchemas:
    """The JSON Schemas of ``schemas/``: one per event type, plus shared ``$defs``.

    Each schema is compiled twice. ``fast`` (jsonschema-rs, compiled Rust)
    answers "valid?" in microseconds; ``validators`` (the reference
    ``jsonschema`` package, two orders of magnitude slower) runs only on a
    refusal, to say which field and why. A test holds the two to the same verdicts.
    """

    def __init__(self, documents: Mapping[str, dict[str, Any]]) -> None:
        with_ids = [doc for doc in documents.values() if "$id" in doc]
        resources = [(doc["$id"], Resource.from_contents(doc)) for doc in with_ids]
        registry: Registry[Any] = Registry().with_resources(resources)
        fast_registry = jsonschema_rs.Registry([(doc["$id"], doc) for doc in with_ids])
        self.documents = dict(documents)
        # common.json's date or date-time: refusals by it are worded by parse_instant.
        instant = documents.get("common.json", {}).get("$defs", {}).get("instant", {})
        self.instant_pattern: str | None = instant.get("pattern")
        self.validators = {
            name.removesuffix(".json"): _ReferenceValidator(doc, registry=registry)
            for name, doc in documents.items()
            if name != "common.json"
        }
        # Formats are annotations in 2020-12, as in the reference validator above.
        self.fast = {
            name.removesuffix(".json"): jsonschema_rs.Draft202012Validator(
                doc, registry=fast_registry, validate_formats=False, offline=True
            )
            for name, doc in documents.items()
            if name != "common.json"
        }

    @classmethod
    def bundled(cls) -> EventSchemas:
        folder = files("schemas")
        documents = {
            entry.name: json.loads(entry.read_text(encoding="utf-8"))
            for entry in folder.iterdir()
            if entry.name.endswith(".json")
        }
        return cls(documents)

    @property
    def types(self) -> list[str]:
        """The types clients may post."""
        return sorted(set(self.validators) - SERVER_TYPES)


@dataclass(frozen=True, slots=True)
class ParsedBody:
    drafts: list[EventDraft]
    is_batch: bool
    value: Any
    # ``request_sha256()``, when it was worked out where ``value`` was (a
    # worker process of ``ledger.intake_workers``, which sends no value back).
    known_sha256: str | None = None

    def request_sha256(self) -> str:
        """SHA-256 of the body's canonical form (the Idempotency-Key's request):
        the same events serialized differently are the same request."""
        if self.known_sha256 is not None:
            return self.known_sha256
        if self.value is None:  # no body is null: this one was parsed elsewhere
            raise ValueError("the body's value was not kept; ask for its hash when parsing")
        return hashlib.sha256(canonical_bytes(self.value)).hexdigest()


def _allowed_members(error: ValidationError) -> set[str]:
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    return set(schema.get("properties", {}))


def _extra_members(error: ValidationError) -> list[str]:
    instance = error.instance
    if not isinstance(instance, dict):
        return []
    allowed = _allowed_members(error)
    return sorted(name for name in instance if name not in allowed)


def _validator_values(error: ValidationError) -> list[Any]:
    value = error.validator_value
    return list(value) if isinstance(value, list) else []


def _dependent_missing(error: ValidationError) -> list[tuple[str, str]]:
    """``(present, missing)`` member pairs a ``dependentRequired`` error is about."""
    instance, needs = error.instance, error.validator_value
    if not isinstance(instance, dict) or not isinstance(needs, Mapping):
        return []
    return [
        (present, name)
        for present, names in needs.items()
        if present in instance
        for name in names
        if name not in instance
    ]


def _schema_error_field(error: ValidationError, prefix: tuple[str | int, ...]) -> str:
    path: tuple[str | int, ...] = (*prefix, *error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        missing = [name for name in _validator_values(error) if name not in instance]
        if missing:
            path = (*path, missing[0])
    elif error.validator == "dependentRequired" and isinstance(instance, dict):
        missing = _dependent_missing(error)
        if missing:
            path = (*path, missing[0][1])
    elif error.validator == "additionalProperties":
        extra = _extra_members(error)
        if extra:
            path = (*path, extra[0])
    elif "propertyNames" in error.absolute_schema_path and isinstance(instance, str):
        path = (*path, instance)  # the offending member name itself
    return format_path(path)


def _schema_error_detail(error: ValidationError, instant_pattern: str | None = None) -> str:
    if error.validator == "additionalProperties":
        extra = _extra_members(error)
        if extra:
            allowed = ", ".join(sorted(_allowed_members(error)))
            return f"unknown member {extra[0]!r}; allowed here: {allowed}"
    if error.validator == "required":
        return "is required"
    if error.validator == "dependentRequired":
        missing = _dependent_missing(error)
        if missing:
            return f"is required when {missing[0][0]!r} is present"
    if error.validator == "enum":
        return f"must be one of: {', '.join(map(str, _validator_values(error)))}"
    if error.validator == "pattern":
        if error.validator_value == instant_pattern and isinstance(error.instance, str):
            # The pattern of a real calendar date is long; parse_instant says
            # in words what is wrong (a 30 February, an hour 24, no offset).
            try:
                parse_instant(error.instance, allow_fraction=True)
            except ValueError as e:
                return str(e)
        return f"{error.instance!r} does not match the pattern {error.validator_value}"
    return error.message


def new_event_ids(count: int, *, now_ms: int | None = None) -> Iterator[str]:
    """``count`` time-ordered (version 7, RFC 9562) UUIDs from one read of the OS's
    random source.

    Version 7 rather than 4: the first 48 bits are the Unix time in
    milliseconds (``now_ms``, default the clock), so ids the server assigns
    grow with time and a ledger's unique index on ids takes each new one at
    its right edge. Random (version 4) ids land on a random index page each,
    so a 500-event batch rewrote hundreds of index pages, a count that grew
    with the ledger; on SQLite that was most of a batch's commit. The
    remaining 74 bits are random, as RFC 9562 section 5.7 lays them out.

    ``uuid.uuid4()`` reads the random source once per id, a system call per
    event; one read serves the whole batch here. Each id
    is the string ``str(uuid.UUID(bytes=chunk))`` gives for its 16 bytes
    (lowercase 8-4-4-4-12), built with two byte maps over the whole pool and
    one hex conversion instead of a ``UUID`` object per id.
    """
    if now_ms is None:
        now_ms = time.time_ns() // 1_000_000
    if count == 1:  # a single event: one integer is cheaper than the byte maps
        value = int.from_bytes(os.urandom(16), "big") & _UUID_RANDOM_BITS
        digits = f"{value | (now_ms & _UNIX_MS_MASK) << 80 | _UUID_V7_BITS:032x}"
        yield (f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}")
        return
    pool = bytearray(os.urandom(16 * count))
    for at, byte in enumerate((now_ms & _UNIX_MS_MASK).to_bytes(6, "big")):
        pool[at::16] = bytes((byte,)) * count
    pool[6::16] = pool[6::16].translate(_UUID_VERSION_7)
    pool[8::16] = pool[8::16].translate(_UUID_VARIANT_RFC_9562)
    digits = pool.hex()
    for at in range(0, len(digits), 32):
        yield (
            f"{digits[at : at + 8]}-{digits[at + 8 : at + 12]}-{digits[at + 12 : at + 16]}"
            f"-{digits[at + 16 : at + 20]}-{digits[at + 20 : at + 32]}"
        )


def _read_occurred_at(text: Any) -> tuple[datetime, str]:
    """``parse_instant(text)`` and ``format_occurred_at`` of it; ``ValueError`` as they raise.

    Both are pure functions of the text, so a result is remembered per text.
    A new text already in a stored shape skips ``parse_instant``'s general
    grammar: a bare date is midnight UTC and stores as itself plus
    ``T00:00:00Z``; ``YYYY-MM-DDTHH:MM:SSZ`` is UTC and stores as itself
    (fixed-width fields print back the digits they were read from). Should
    ``datetime`` refuse the fields (a 30 February, a 61st second, year 0),
    ``parse_instant`` runs, so the error is its own.
    """
    if type(text) is not str:
        moment = parse_instant(text)
        return moment, format_occurred_at(moment)
    known = _OCCURRED.get(text)
    if known is not None:
        return known
    try:
        if _DATE_ONLY.match(text):
            known = (
                datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]), tzinfo=UTC),
                text + "T00:00:00Z",
            )
        elif OCCURRED_AT_PATTERN.match(text):
            moment = datetime(
                int(text[0:4]),
                int(text[5:7]),
                int(text[8:10]),
                int(text[11:13]),
                int(text[14:16]),
                int(text[17:19]),
                tzinfo=UTC,
            )
            known = (moment, text)
    except (ValueError, OverflowError):  # parse_instant words the complaint
        known = None
    if known is None:
        moment = parse_instant(text)
        known = (moment, format_occurred_at(moment))
    if len(_OCCURRED) >= _OCCURRED_LIMIT:
        _OCCURRED.clear()
    _OCCURRED[text] = known
    return known


def _field(index: int | None, *names: str | int) -> str:
    """The path of a field of event ``index`` (``None``: the body is that event)."""
    return format_path(names if index is None else (index, *names))


def _check_signed(author: Any, sent: Any, stored: str, index: int | None) -> None:
    """What a signed event needs beyond its schema (format §1.4): a well-formed
    signature, and ``occurred_at`` sent as the record keeps it, since the
    signature covers the record's bytes. Whose signature it is, and whether
    it holds, is for the recorder, under the ledger's lock."""
    try:
        AuthorMark.from_value(author)
    except AuthorRuleBroken as e:
        raise InvalidEvent(e.reason, field=_field(index, "author")) from None
    if sent != stored:
        raise InvalidEvent(
            f"a signed event states occurred_at as the record keeps it, {stored!r}: "
            "the signature covers the record's bytes",
            field=_field(index, "occurred_at"),
        )


class Intake:
    """Validates posted events; pure CPU, no storage."""

    def __init__(
        self,
        *,
        schemas: EventSchemas,
        max_batch: int = 1000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.schemas = schemas
        self.max_batch = max_batch
        self.clock = clock

    def parse(self, raw: bytes) -> ParsedBody:
        """A body holding one event object or a non-empty array of them."""
        value = loads_strict(raw)
        if isinstance(value, dict):
            ids = new_event_ids(0 if "id" in value else 1)
            return ParsedBody(
                [self.draft(value, ids=ids, strict=True)], is_batch=False, value=value
            )
        if isinstance(value, list):
            if not value:
                raise InvalidEvent("a batch must hold at least one event", field="(root)")
            if len(value) > self.max_batch:
                raise InvalidEvent(
                    f"a batch holds at most {self.max_batch} events, this one {len(value)}",
                    field="(root)",
                )
            missing = sum(1 for item in value if not isinstance(item, dict) or "id" not in item)
            ids = new_event_ids(missing)
            drafts = [
                self.draft(item, index=i, ids=ids, strict=True) for i, item in enumerate(value)
            ]
            return ParsedBody(drafts, is_batch=True, value=value)
        raise InvalidEvent("the body must be an event object or an array of events", field="(root)")

    def check_record(self, record: Record) -> None:
        """Raise ``InvalidEvent`` unless ``record`` (e.g. as corrected) is a valid event."""
        event = {
            k: v
            for k, v in record.to_dict().items()
            if k not in SERVER_MEMBERS and k not in ("id", "author")
        }
        if record.type in SERVER_TYPES:
            raise InvalidEvent(f"{record.type!r} is written by the server only", field="type")
        self.draft(event)

    def draft(
        self,
        event: Any,
        *,
        index: int | None = None,
        ids: Iterator[str] | None = None,
        strict: bool = False,
        server: bool = False,
    ) -> EventDraft:
        """Validate one event (already through the JSON value rules).

        ``ids`` supplies server-assigned ids for events that bring none;
        ``strict`` says ``event`` is what ``loads_strict`` returned (or part of it);
        ``server``: the server itself writes it, so a server type is allowed.
        """
        if not isinstance(event, dict):
            raise InvalidEvent("an event must be a JSON object", field=_field(index))
        if not SERVER_MEMBERS.isdisjoint(event.keys()):
            for name in sorted(SERVER_MEMBERS & event.keys()):
                raise InvalidEvent(
                    "is assigned by the server and must not be sent", field=_field(index, name)
                )
        event_type = event.get("type")
        if not isinstance(event_type, str):
            raise InvalidEvent("is required and must be a string", field=_field(index, "type"))
        validator = self.schemas.validators.get(event_type)
        if event_type in SERVER_TYPES and not server:
            raise InvalidEvent(
                f"{event_type!r} is written by the server only", field=_field(index, "type")
            )
        if validator is None:
            raise InvalidEvent(
                f"unknown event type {event_type!r}; known: {', '.join(self.schemas.types)}",
                field=_field(index, "type"),
            )
        if not self.schemas.fast[event_type].is_valid(event):
            prefix: tuple[str | int, ...] = () if index is None else (index,)
            error = best_match(validator.iter_errors(event))
            if error is not None:
                raise InvalidEvent(
                    _schema_error_detail(error, self.schemas.instant_pattern),
                    field=_schema_error_field(error, prefix),
                )
            # The validators disagree (a test guards against it): refuse, naming the spot.
            fast_error = next(self.schemas.fast[event_type].iter_errors(event))
            raise InvalidEvent(fast_error.message, field=_field(index, *fast_error.instance_path))
        try:
            occurred, occurred_at = _read_occurred_at(event["occurred_at"])
        except ValueError as e:
            raise InvalidEvent(str(e), field=_field(index, "occurred_at")) from None
        if occurred > self.clock() + FUTURE_TOLERANCE:
            raise InvalidEvent(
                "lies more than 5 minutes in the future", field=_field(index, "occurred_at")
            )
        author = event.get("author")
        if author is not None:
            _check_signed(author, event["occurred_at"], occurred_at, index)
        client_id = event.get("id")
        return EventDraft.of(
            id=client_id or next(ids or new_event_ids(1)),
            id_assigned=not client_id,
            type=event_type,
            occurred_at=occurred_at,
            data=event["data"],
            party=event.get("party"),
            topic=event.get("topic"),
            source=event.get("source"),
            author=author,
            strict=strict,
        )
