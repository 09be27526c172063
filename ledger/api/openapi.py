"""OpenAPI pieces: problem responses and the event schemas from ``schemas/``.

The request body of ``POST .../events`` is documented with the very JSON
Schema files the server validates against, rewritten as OpenAPI 3.1
components, so ``/docs`` and the validator cannot drift apart.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ledger.api.models import (
    AuthorCreate,
    AuthorRevoke,
    LedgerCreate,
    Problem,
    ReceiptOut,
    RecordWithProof,
)
from ledger.intake import EventSchemas

__all__ = ["PROBLEMS", "append_request_body", "install_openapi"]

_PROBLEM_CONTENT = {
    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
}
_DESCRIPTIONS = {
    400: "Malformed JSON",
    401: "Missing or invalid credentials",
    403: "Not allowed",
    404: "Unknown ledger or record",
    405: "Method not allowed",
    408: "The body arrived too slowly",
    409: "Conflict with the ledger's state",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Invalid input; `field` names it",
    429: "Too many requests; see Retry-After",
    503: "Database unavailable; retry",
}


def PROBLEMS(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"description": _DESCRIPTIONS[s], "content": _PROBLEM_CONTENT} for s in statuses}


def _component(name: str) -> str:
    return f"#/components/schemas/{name}"


def _event_component(schema_file: str) -> str:
    return "Event." + schema_file.removesuffix(".json")


def _rewrite_refs(node: Any, own: str) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in ("$schema", "$id"):
                continue
            if key == "$ref" and isinstance(value, str):
                target, _, fragment = value.partition("#")
                if target.endswith(".json"):
                    name = target.removesuffix(".json")
                    component = "Common" if name == "common" else _event_component(target)
                else:
                    component = own
                out[key] = _component(component) + fragment.replace("/$defs", "/$defs", 1)
            else:
                out[key] = _rewrite_refs(value, own)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, own) for item in node]
    return node


def append_request_body() -> dict[str, Any]:
    event = {"$ref": _component("Event")}
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        event,
                        {"type": "array", "items": event, "minItems": 1, "maxItems": 1000},
                    ]
                }
            }
        },
    }


def install_openapi(app: FastAPI, schemas: EventSchemas) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        for model in (
            Problem,
            LedgerCreate,
            AuthorCreate,
            AuthorRevoke,
            ReceiptOut,
            RecordWithProof,
        ):
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in schema.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components[model.__name__] = schema
        # Our 422s are problem documents, not FastAPI's default validation body.
        for path_item in spec.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.get("responses", {})
                if "422" in responses:
                    responses["422"] = PROBLEMS(422)[422]
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        for file_name, document in sorted(schemas.documents.items()):
            if file_name == "common.json":
                components["Common"] = _rewrite_refs(copy.deepcopy(document), "Common")
            else:
                name = _event_component(file_name)
                components[name] = _rewrite_refs(copy.deepcopy(document), name)
        components["Event"] = {
            "oneOf": [{"$ref": _component(_event_component(f"{t}.json"))} for t in schemas.types],
            "discriminator": {"propertyName": "type"},
        }
        # Tokens from `ledger tokens create`; public reads need none, hence the {}.
        spec["components"]["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "A token from `ledger tokens create` (scopes: read[:LEDGER], "
                "append[:PARTY], admin). Reads of public ledgers need none.",
            }
        }
        for path, path_item in spec.get("paths", {}).items():
            if path.startswith("/v1/"):
                for operation in path_item.values():
                    operation["security"] = [{}, {"bearer": []}]
        app.openapi_schema = spec
        return spec

    app.openapi = build  # type: ignore[method-assign]
