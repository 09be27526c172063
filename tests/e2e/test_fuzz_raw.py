"""Raw-request fuzzing: every route of a real server, odd bytes everywhere, never a 5xx.

Schemathesis (``test_fuzz_api.py``) sends what an OpenAPI document can
describe. This test writes HTTP/1.1 requests byte by byte over one kept-alive
socket, so it can also send what no schema describes: lone surrogates as JSON
escapes in member names and values (``{"\\ud800": 1}``), bytes that are not
UTF-8 in bodies, path segments and query strings (percent-encoded), unknown
methods and media types, and bodies over 64 KiB, which the intake worker
parses. Each route the app serves (every OpenAPI operation, the HTML pages,
the static files and the documentation) gets its own run of cases, so none
is left out by chance. Every answer must be below 500, and every problem
document must carry ``X-Content-Type-Options: nosniff``; at the end the
server's log holds no traceback and its audit log no 5xx.

Derandomized (the same cases every run, no example database), 30 cases a
route and 60 for those that take a body: about 1000 requests, 30 s per
backend on a busy 2-core machine, a third of it starting the server.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.api.routes import web
from tests.conftest import position
from tests.e2e.test_fuzz_api import LEDGER, seed_ledger
from tests.e2e.test_tokens_cli import create_token
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

CASES_PER_ROUTE = 30
LONE_SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff", "a\ud800b"]
# Known values, so that most requests get past 404 into the handlers.
GOOD_PATH_VALUES = {
    "ledger": [LEDGER],
    "seq": ["1", "2", "3"],
    "party": ["US", "UA"],
    "path": ["timeline.css", "verify.js"],
}
ODD_METHODS = ["PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "BREW"]


def _routes(spec: dict[str, Any]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(method, path template, query parameters) of every route the app serves."""
    routes = [
        (method.upper(), path, [p for p in op.get("parameters", []) if p["in"] == "query"])
        for path, operations in spec["paths"].items()
        for method, op in operations.items()
    ]
    for route in web.router.routes:
        for method in sorted(getattr(route, "methods", ()) - {"HEAD"}):
            routes.append((method, getattr(route, "path", ""), []))
    routes += [("GET", "/static/{path}", []), ("GET", "/openapi.json", [])]
    routes += [("GET", "/docs", []), ("GET", "/redoc", [])]
    return routes


def _percent(raw: bytes) -> str:
    return "".join(f"%{byte:02X}" for byte in raw)


# Text a client may mean, as the bytes it would send: lone surrogates as the
# three bytes UTF-8 would have given them (which are not UTF-8).
_ODD_TEXT = st.one_of(
    st.binary(max_size=12).map(_percent),
    st.text(max_size=8).map(lambda t: quote(t, safe="")),
    st.sampled_from(LONE_SURROGATES).map(lambda t: _percent(t.encode("utf-8", "surrogatepass"))),
    st.sampled_from(["", "%", "%zz", "..", "%2F", "%00", "9" * 30, "-1", "0", "1e3", "null"]),
)


def _one_in(draw: st.DrawFn, n: int) -> bool:
    # st.one_of does not weigh its branches; most requests should reach the handlers.
    return draw(st.integers(1, n)) == 1


def _query_value(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    kind = schema.get("type") or next(
        (s.get("type") for s in schema.get("anyOf", []) if s.get("type") != "null"), None
    )
    if "enum" in schema:
        return st.sampled_from([str(v) for v in schema["enum"]])
    if kind == "integer":
        low, high = schema.get("minimum", -5), schema.get("maximum", 2**53)
        return st.sampled_from([low - 1, low, low + 1, 2, 3, high, high + 1]).map(str)
    if kind == "boolean":
        return st.sampled_from(["true", "false", "1", "yes"])
    if kind == "number":
        return st.sampled_from(["0.01", "0.5", "0", "-1", "nan", "inf", "1e999"])
    return st.sampled_from(["2025-02-25", "2025-02-30", "3", "US", "security-guarantees"])


@st.composite
def _query(draw: st.DrawFn, parameters: list[dict[str, Any]]) -> str:
    pairs = []
    for parameter in parameters:
        if draw(st.booleans()):
            odd = _one_in(draw, 4)
            value = draw(_ODD_TEXT if odd else _query_value(parameter.get("schema", {})))
            pairs.append(f"{parameter['name']}={value}")
    if _one_in(draw, 5):
        pairs.append(f"{draw(_ODD_TEXT)}={draw(_ODD_TEXT)}")
    return "&".join(draw(st.permutations(pairs)))


def _odd_value() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(LONE_SURROGATES),
        st.sampled_from(["9999-99-99", "2025-02-29", "", "e\u0301", 2**53, -(2**53), 0.5, None]),
        st.text(max_size=6),
        st.integers(),
        st.booleans(),
        st.recursive(st.none(), lambda inner: st.lists(inner, max_size=2), max_leaves=80),
    )


@st.composite
def _event(draw: st.DrawFn) -> Any:
    """A valid event, or one with a member added or replaced, anywhere in it."""
    event: dict[str, Any] = position(
        source={"name": "CNN", "kind": "media", "reported_at": "2025-02-24"},
        data={"stance": "oppose", "summary": "s", "terms": {"share": 50}},
    )
    if _one_in(draw, 4):  # appended, so the write path is fuzzed too
        return event
    if _one_in(draw, 4):
        event["type"] = draw(st.sampled_from(["record.corrected", "key.rotated", "x"]))
    where = draw(st.sampled_from(["top", "data", "terms", "source"]))
    target = {"top": event, "data": event["data"], "terms": event["data"]["terms"]}.get(
        where, event["source"]
    )
    name = draw(st.one_of(st.sampled_from(LONE_SURROGATES), st.sampled_from(list(target))))
    target[name] = draw(_odd_value())
    return event


@st.composite
def _json_body(draw: st.DrawFn, path: str) -> bytes:
    if path == "/v1/ledgers":
        value: Any = {"name": draw(st.one_of(st.sampled_from(["new", LEDGER]), _odd_value()))}
        if draw(st.booleans()):
            value[draw(st.sampled_from(["public_read", *LONE_SURROGATES]))] = draw(_odd_value())
    else:
        event = draw(_event())
        if _one_in(draw, 6):  # over 64 KiB: parsed in the intake worker
            value = [position() for _ in range(160)] + [event]
        elif _one_in(draw, 3):
            value = [position(), event]
        else:
            value = event
    # ensure_ascii: a lone surrogate goes out as a \ud800 escape, which is valid JSON.
    return json.dumps(value).encode()


@st.composite
def _body(draw: st.DrawFn, path: str) -> bytes:
    if _one_in(draw, 6):
        return draw(st.binary(max_size=64))
    body = draw(_json_body(path))
    if _one_in(draw, 5):  # bytes that are not UTF-8, or not JSON, somewhere in it
        at = draw(st.integers(0, len(body)))
        odd = draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc3", b"\x00", b"\\"]))
        body = body[:at] + odd + body[at:]
    return body


@st.composite
def _requests(
    draw: st.DrawFn, method: str, template: str, parameters: list[dict[str, Any]], token: str
) -> bytes:
    path = template
    for name in [part[1:-1] for part in template.split("/") if part.startswith("{")]:
        good = st.sampled_from(GOOD_PATH_VALUES.get(name, ["x"]))
        path = path.replace(f"{{{name}}}", draw(_ODD_TEXT if _one_in(draw, 5) else good), 1)
    query = draw(_query(parameters))
    target = f"{path}?{query}" if query else path
    if _one_in(draw, 10):
        method = draw(st.sampled_from(ODD_METHODS))
    headers = ["Host: 127.0.0.1"]
    if not _one_in(draw, 6):
        headers.append(f"Authorization: Bearer {token}")
    elif draw(st.booleans()):
        headers.append(f"Authorization: {draw(st.sampled_from(['Bearer', 'Bearer x', 'Basic a']))}")
    if draw(st.booleans()):
        odd = "\x7f" if _one_in(draw, 10) else None  # which uvicorn refuses itself
        accept = odd or draw(st.sampled_from(["application/x-ndjson", "text/html", "*/*"]))
        headers.append(f"Accept: {accept}")
    if _one_in(draw, 5):
        key = draw(st.binary(max_size=8).filter(lambda b: b"\r" not in b and b"\n" not in b))
        headers.append("Idempotency-Key: " + key.decode("latin-1"))
    body = b""
    if method in ("POST", "PUT", "PATCH"):
        body = draw(_body(template))
        content_type = "application/json"
        if _one_in(draw, 6):
            content_type = draw(
                st.sampled_from(["application/json; charset=latin-1", "text/plain", "a/x+json", ""])
            )
        if content_type:
            headers.append(f"Content-Type: {content_type}")
        headers.append(f"Content-Length: {len(body)}")
    head = f"{method} {target} HTTP/1.1\r\n" + "\r\n".join(headers) + "\r\n\r\n"
    return head.encode("latin-1") + body


class _Connection:
    """One kept-alive socket, opened again whenever the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None

    def send(self, request: bytes, method: str) -> tuple[int, dict[str, str], bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.sock.sendall(request)
        response = http.client.HTTPResponse(self.sock, method=method)
        response.begin()
        headers = {name.lower(): value for name, value in response.getheaders()}
        if headers.get("content-type", "").startswith("text/event-stream"):
            body = b""  # a stream runs until its timeout: hang up instead
            self.close()
        else:
            body = response.read()
            if response.will_close:
                self.close()
        return response.status, headers, body

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def test_no_raw_request_to_any_route_gets_a_server_error(database_url: str, tmp_path: Path) -> None:
    token = create_token("fuzz", "admin", database_url=database_url, data_dir=tmp_path)
    audit = tmp_path / "audit.jsonl"
    server = ServerProcess(
        database_url=database_url,
        data_dir=tmp_path,
        env={
            "LEDGER_AUTH": "tokens",
            "LEDGER_RATE_LIMIT": "0",
            # Bad tokens are part of the fuzz: their throttle would answer 429 to the rest.
            "LEDGER_AUTH_FAILURES_PER_MINUTE": "1000000",
            "LEDGER_AUDIT_LOG": str(audit),
        },
    )
    statuses: Counter[int] = Counter()
    connection = _Connection(server.port)
    try:
        seed_ledger(server.url, token)
        spec = json.loads(
            connection.send(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n", "GET")[2]
        )
        routes = _routes(spec)
        assert len(routes) >= 25, routes

        for method, template, parameters in routes:

            @settings(
                # The routes that read a body have the most to fuzz.
                max_examples=CASES_PER_ROUTE * (2 if method == "POST" else 1),
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(request=_requests(method, template, parameters, token))
            def answered_below_500(request: bytes) -> None:
                sent_method = request.split(b" ", 1)[0].decode()
                try:
                    status, headers, body = connection.send(request, sent_method)
                except (ConnectionError, http.client.HTTPException, TimeoutError):
                    connection.close()  # a reused socket the server had closed: once more
                    status, headers, body = connection.send(request, sent_method)
                statuses[status] += 1
                assert status < 500, (request[:2000], body[:2000])
                if headers.get("content-type") == "application/problem+json":
                    assert headers.get("x-content-type-options") == "nosniff", request[:500]
                    if sent_method != "HEAD":
                        assert json.loads(body)["status"] == status

            answered_below_500()
    finally:
        connection.close()
        server.stop()
    log = server.log_path.read_text()
    assert "Traceback" not in log, log[-5000:]
    assert '"status":5' not in audit.read_text()
    print(f"\nraw fuzz ({database_url.split(':', 1)[0]}): {len(routes)} routes, {dict(statuses)}")
