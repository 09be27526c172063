"""Intake: turns a posted body into validated ``EventDraft``s.

Every event passes, in order: the strict JSON value rules (SPEC §1), the
refusal of server-assigned members, its type's JSON Schema from ``schemas/``,
and the strict time rules for ``occurred_at``. Errors name the offending
field, prefixed with the event's index in a batch (``[3].data.stance``).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

from ledger.core.errors import InvalidEvent
from ledger.core.jsonvalues import format_path, loads_strict
from ledger.core.records import SERVER_MEMBERS, EventDraft, Record
from ledger.core.times import format_occurred_at, parse_instant

__all__ = ["FUTURE_TOLERANCE", "EventSchemas", "Intake", "ParsedBody"]

# A position cannot be reported before it happens; five minutes absorbs clock skew.
FUTURE_TOLERANCE = timedelta(minutes=5)
# Types only the server writes: a client-sent key rotation would be forgery.
SERVER_TYPES = frozenset({"key.rotated"})


class EventSchemas:
    """The JSON Schemas of ``schemas/``: one per event type, plus shared ``$defs``.

    Each schema is compiled twice. ``fast`` (jsonschema-rs, compiled Rust)
    answers "valid?" in ~3 us; ``validators`` (the reference ``jsonschema``
    package, ~250x slower here) runs only on a refusal, to say which field
    and why. A test holds the two to the same verdicts.
    """

    def __init__(self, documents: Mapping[str, dict[str, Any]]) -> None:
        with_ids = [doc for doc in documents.values() if "$id" in doc]
        resources = [(doc["$id"], Resource.from_contents(doc)) for doc in with_ids]
        registry: Registry[Any] = Registry().with_resources(resources)
        fast_registry = jsonschema_rs.Registry([(doc["$id"], doc) for doc in with_ids])
        self.documents = dict(documents)
        self.validators = {
            name.removesuffix(".json"): Draft202012Validator(doc, registry=registry)
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


def _schema_error_field(error: ValidationError, prefix: tuple[str | int, ...]) -> str:
    path: tuple[str | int, ...] = (*prefix, *error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        missing = [name for name in _validator_values(error) if name not in instance]
        if missing:
            path = (*path, missing[0])
    elif error.validator == "additionalProperties":
        extra = _extra_members(error)
        if extra:
            path = (*path, extra[0])
    elif "propertyNames" in error.absolute_schema_path and isinstance(instance, str):
        path = (*path, instance)  # the offending member name itself
    return format_path(path)


def _schema_error_detail(error: ValidationError) -> str:
    if error.validator == "additionalProperties":
        extra = _extra_members(error)
        if extra:
            allowed = ", ".join(sorted(_allowed_members(error)))
            return f"unknown member {extra[0]!r}; allowed here: {allowed}"
    if error.validator == "required":
        return "is required"
    if error.validator == "enum":
        return f"must be one of: {', '.join(map(str, _validator_values(error)))}"
    if error.validator == "pattern":
        return f"{error.instance!r} does not match the pattern {error.validator_value}"
    return error.message


def new_event_ids(count: int) -> Iterator[str]:
    """``count`` random (version 4) UUIDs from one read of the OS's random source.

    ``uuid.uuid4()`` reads it once per id; on this project's VMs that system
    call took ~30 us, a fifth of a 500-event append.
    """
    pool = os.urandom(16 * count)
    for start in range(0, len(pool), 16):
        yield str(uuid.UUID(bytes=pool[start : start + 16], version=4))


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
            return ParsedBody([self.draft(value, ids=ids)], is_batch=False, value=value)
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
            drafts = [self.draft(item, index=i, ids=ids) for i, item in enumerate(value)]
            return ParsedBody(drafts, is_batch=True, value=value)
        raise InvalidEvent("the body must be an event object or an array of events", field="(root)")

    def check_record(self, record: Record) -> None:
        """Raise ``InvalidEvent`` unless ``record`` (e.g. as corrected) is a valid event."""
        event = {k: v for k, v in record.to_dict().items() if k not in SERVER_MEMBERS and k != "id"}
        if record.type in SERVER_TYPES:
            raise InvalidEvent(f"{record.type!r} is written by the server only", field="type")
        self.draft(event)

    def draft(
        self, event: Any, *, index: int | None = None, ids: Iterator[str] | None = None
    ) -> EventDraft:
        """Validate one event (already through the JSON value rules).

        ``ids`` supplies server-assigned ids for events that bring none.
        """
        prefix: tuple[str | int, ...] = () if index is None else (index,)

        def field(*names: str | int) -> str:
            return format_path((*prefix, *names))

        if not isinstance(event, dict):
            raise InvalidEvent("an event must be a JSON object", field=field())
        for name in sorted(SERVER_MEMBERS & event.keys()):
            raise InvalidEvent("is assigned by the server and must not be sent", field=field(name))
        event_type = event.get("type")
        if not isinstance(event_type, str):
            raise InvalidEvent("is required and must be a string", field=field("type"))
        validator = self.schemas.validators.get(event_type)
        if event_type in SERVER_TYPES:
            raise InvalidEvent(f"{event_type!r} is written by the server only", field=field("type"))
        if validator is None:
            raise InvalidEvent(
                f"unknown event type {event_type!r}; known: {', '.join(self.schemas.types)}",
                field=field("type"),
            )
        if not self.schemas.fast[event_type].is_valid(event):
            error = best_match(validator.iter_errors(event))
            if error is not None:
                raise InvalidEvent(
                    _schema_error_detail(error), field=_schema_error_field(error, prefix)
                )
            # The validators disagree (a test guards against it): refuse, naming the spot.
            fast_error = next(self.schemas.fast[event_type].iter_errors(event))
            raise InvalidEvent(fast_error.message, field=field(*fast_error.instance_path))
        try:
            occurred = parse_instant(event["occurred_at"])
        except ValueError as e:
            raise InvalidEvent(str(e), field=field("occurred_at")) from None
        if occurred > self.clock() + FUTURE_TOLERANCE:
            raise InvalidEvent("lies more than 5 minutes in the future", field=field("occurred_at"))
        client_id = event.get("id")
        return EventDraft(
            id=client_id or next(ids or new_event_ids(1)),
            id_assigned=not client_id,
            type=event_type,
            occurred_at=format_occurred_at(occurred),
            data=event["data"],
            party=event.get("party"),
            topic=event.get("topic"),
            source=event.get("source"),
        )
