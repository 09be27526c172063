"""Access control: every route, for every kind of caller, answers as the policy says.

Scopes: read, read:LEDGER, append, append:PARTY, admin. Reads of a public
ledger need no token; a private ledger (``"public_read": false``) needs one
that may read it. A malformed, unknown or revoked token is refused (401)
everywhere except the health probes, and a token without the scope is
refused with 403.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ledger.access import Scope, new_token, parse_scopes
from ledger.api.app import create_app
from ledger.core.errors import InvalidParameter
from tests.api.conftest import assert_problem
from tests.conftest import position, settings_for

# (method, path, body) for every route; {L} is the ledger under test.
UA_EVENT = position(party="UA")
READS = [
    ("GET", "/v1/ledgers/{L}"),
    ("GET", "/v1/ledgers/{L}/events"),
    ("GET", "/v1/ledgers/{L}/events/1"),
    ("GET", "/v1/ledgers/{L}/head"),
    ("GET", "/v1/ledgers/{L}/checkpoint"),
    ("GET", "/v1/ledgers/{L}/witnesses"),
    ("GET", "/v1/ledgers/{L}/proofs/inclusion?seq=1"),
    ("GET", "/v1/ledgers/{L}/proofs/consistency?from=1&to=2"),
    ("GET", "/v1/ledgers/{L}/snapshot"),
    ("GET", "/v1/ledgers/{L}/parties/US"),
    ("GET", "/v1/ledgers/{L}/history"),
    ("GET", "/v1/ledgers/{L}/diff?from=2025-01-01&to=2025-03-01"),
    ("GET", "/v1/ledgers/{L}/export"),
    ("GET", "/v1/ledgers/{L}/sources"),
    ("GET", "/v1/ledgers/{L}/sources/CNN"),
    ("GET", "/v1/ledgers/{L}/authors"),
    ("GET", "/v1/ledgers/{L}/documents"),
]
# Who may read the private ledger "priv", and who may append what.
CALLERS: dict[str, tuple[str, ...]] = {
    "none": (),
    "read": ("read",),
    "read-priv": ("read:priv",),
    "read-other": ("read:other",),
    "append": ("append",),
    "append-ua": ("append:UA",),
    "admin": ("admin",),
}
READS_PRIV = {"read", "read-priv", "append", "append-ua", "admin"}
BAD_HEADERS = {
    "malformed scheme": "Basic dXNlcjpwYXNz",
    "empty bearer": "Bearer ",
    "malformed token": "Bearer not-a-token",
    "unknown token": f"Bearer {new_token()}",
}


@pytest.fixture
def tokens(client: TestClient) -> dict[str, dict[str, str]]:
    """Headers per caller; both ledgers exist with two records each."""
    store = client.app.state.tokens  # type: ignore[attr-defined]
    headers: dict[str, dict[str, str]] = {"none": {}}
    for name, scopes in CALLERS.items():
        if scopes:
            token, _ = store.create(name, parse_scopes(scopes))
            headers[name] = {"Authorization": f"Bearer {token}"}
    admin = headers["admin"]
    for ledger, public in (("pub", True), ("priv", False)):
        body = {"name": ledger, "public_read": public}
        created = client.post("/v1/ledgers", json=body, headers=admin)
        assert created.status_code == 201, created.text
        events = [position(), UA_EVENT]
        posted = client.post(f"/v1/ledgers/{ledger}/events", json=events, headers=admin)
        assert posted.status_code == 201, posted.text
    return headers


def call(client: TestClient, method: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
    return client.request(method, path, headers=headers, **kw)


@pytest.fixture
def client(migrated_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """Like the shared client, but with no default token: each call brings its own."""
    settings = settings_for(migrated_url, tmp_path, audit_log=tmp_path / "audit.log")
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def test_the_matrix_names_every_route(client: TestClient) -> None:
    app: FastAPI = client.app  # type: ignore[assignment]
    covered = {path.split("?")[0].replace("{L}", "{ledger}") for _, path in READS}
    covered |= {"/v1/ledgers/{ledger}/events/{seq}", "/v1/ledgers/{ledger}/parties/{party}"}
    covered |= {"/v1/ledgers/{ledger}/sources/{name:path}"}
    # Needs an authority to answer 200: its access matrix is in tests/api/test_timestamps_api.py.
    covered |= {"/v1/ledgers/{ledger}/checkpoint/timestamp"}
    # 404 without witnesses configured; tests/api/test_witnessed_api.py checks its access.
    covered |= {"/v1/ledgers/{ledger}/checkpoint/witnessed"}
    # Registering and revoking are admin writes: tests/api/test_authors_api.py checks them.
    covered |= {"/v1/ledgers/{ledger}/authors/{name}"}
    # A held document, and uploads (append scope): tests/api/test_documents_api.py.
    covered |= {"/v1/ledgers/{ledger}/documents/{sha256}"}
    covered |= {"/v1/ledgers", "/v1/keys", "/healthz", "/readyz"}
    api_routes = {
        getattr(r, "path", "")
        for r in app.routes
        if getattr(r, "path", "").startswith(("/v1", "/healthz", "/readyz"))
    }
    assert api_routes <= covered, api_routes - covered


@pytest.mark.parametrize("who", list(CALLERS))
@pytest.mark.parametrize(("method", "path"), READS, ids=[p for _, p in READS])
def test_reads_of_a_public_ledger_are_open_and_a_private_one_needs_read(
    client: TestClient, tokens: dict[str, dict[str, str]], who: str, method: str, path: str
) -> None:
    public = call(client, method, path.replace("{L}", "pub"), tokens[who])
    assert public.status_code == 200, public.text
    private = call(client, method, path.replace("{L}", "priv"), tokens[who])
    if who in READS_PRIV:
        assert private.status_code == 200, private.text
    elif who == "none":
        assert_problem(private, 401)
        assert private.headers["www-authenticate"].startswith("Bearer")
    else:
        assert "may not read ledger 'priv'" in assert_problem(private, 403)["detail"]


@pytest.mark.parametrize("bad", list(BAD_HEADERS))
@pytest.mark.parametrize(
    ("method", "path"),
    [*READS, ("GET", "/v1/ledgers"), ("GET", "/v1/keys"), ("POST", "/v1/ledgers/{L}/events")],
)
def test_a_bad_token_is_refused_everywhere_but_the_probes(
    client: TestClient, tokens: dict[str, dict[str, str]], bad: str, method: str, path: str
) -> None:
    headers = {"Authorization": BAD_HEADERS[bad]}
    kwargs = {"json": position()} if method == "POST" else {}
    response = client.request(method, path.replace("{L}", "pub"), headers=headers, **kwargs)
    assert_problem(response, 401)
    for probe in ("/healthz", "/readyz"):
        assert client.get(probe, headers=headers).status_code == 200


def test_a_revoked_token_is_refused_at_once(
    client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    assert call(client, "GET", "/v1/ledgers/priv/head", tokens["read"]).status_code == 200
    revoked = client.app.state.tokens.revoke("read")  # type: ignore[attr-defined]
    assert revoked.revoked_at
    assert_problem(call(client, "GET", "/v1/ledgers/priv/head", tokens["read"]), 401)
    assert_problem(call(client, "GET", "/v1/ledgers/pub/head", tokens["read"]), 401)


APPENDS = {
    # who: (status for a US event, status for a UA event)
    "none": (401, 401),
    "read": (403, 403),
    "read-priv": (403, 403),
    "read-other": (403, 403),
    "append": (201, 201),
    "append-ua": (403, 201),
    "admin": (201, 201),
}


@pytest.mark.parametrize("ledger", ["pub", "priv"])
@pytest.mark.parametrize("who", list(CALLERS))
def test_appends_need_append_for_every_events_party(
    client: TestClient, tokens: dict[str, dict[str, str]], who: str, ledger: str
) -> None:
    admin = tokens["admin"]
    head = client.get(f"/v1/ledgers/{ledger}/head", headers=admin).json()
    path = f"/v1/ledgers/{ledger}/events"
    for event, status in zip((position(), UA_EVENT), APPENDS[who], strict=True):
        response = call(client, "POST", path, tokens[who], json=event)
        assert response.status_code == status, response.text
        if status == 201:
            seq = response.json()["seq"]
            record = client.get(f"/v1/ledgers/{ledger}/events/{seq}", headers=admin).json()
            assert record["actor"] == who  # set by the server from the token's name
    # A batch with one event outside the token's party is refused whole.
    mixed = call(client, "POST", path, tokens["append-ua"], json=[UA_EVENT, position()])
    assert "may not append party 'US'" in assert_problem(mixed, 403)["detail"]
    written = sum(s == 201 for s in APPENDS[who])
    after = client.get(f"/v1/ledgers/{ledger}/head", headers=admin).json()
    assert after["size"] == head["size"] + written


@pytest.mark.parametrize("who", list(CALLERS))
def test_only_admin_creates_ledgers(
    client: TestClient, tokens: dict[str, dict[str, str]], who: str
) -> None:
    response = call(client, "POST", "/v1/ledgers", tokens[who], json={"name": f"new-{who}"})
    expected = 201 if who == "admin" else 401 if who == "none" else 403
    assert response.status_code == expected, response.text


@pytest.mark.parametrize("who", list(CALLERS))
def test_the_listing_shows_only_readable_ledgers(
    client: TestClient, tokens: dict[str, dict[str, str]], who: str
) -> None:
    listed = call(client, "GET", "/v1/ledgers", tokens[who])
    names = [item["name"] for item in listed.json()["items"]]
    assert names == (["priv", "pub"] if who in READS_PRIV else ["pub"])
    keys = call(client, "GET", "/v1/keys", tokens[who])
    assert keys.status_code == 200 and keys.json()["items"]


def test_a_private_ledger_says_so_and_is_validated(
    client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    admin = tokens["admin"]
    body = {"name": "sealed", "public_read": False}
    created = client.post("/v1/ledgers", json=body, headers=admin).json()
    assert created["public_read"] is False
    bad = client.post("/v1/ledgers", json={"name": "odd", "public_read": "no"}, headers=admin)
    assert_problem(bad, 422, field="public_read")


def test_scopes_are_parsed_strictly() -> None:
    assert [str(s) for s in parse_scopes(["read,append:UA", "admin read"])] == [
        "read",
        "append:UA",
        "admin",
    ]
    for bad in ("write", "read:Not_A_Ledger", "append:ua", "admin:x", ""):
        with pytest.raises(InvalidParameter):
            parse_scopes([bad])


# -- limits --------------------------------------------------------------------


@pytest.fixture
def throttled(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(
        database_url, tmp_path, rate_limit=0.5, rate_burst=3, auth_failures_per_minute=2
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def test_each_token_has_its_own_rate_limit(throttled: TestClient) -> None:
    store = throttled.app.state.tokens  # type: ignore[attr-defined]
    first = {"Authorization": f"Bearer {store.create('first', (Scope('read'),))[0]}"}
    second = {"Authorization": f"Bearer {store.create('second', (Scope('read'),))[0]}"}
    assert [throttled.get("/v1/keys", headers=first).status_code for _ in range(3)] == [200] * 3
    limited = throttled.get("/v1/keys", headers=first)
    assert_problem(limited, 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert throttled.get("/v1/keys", headers=second).status_code == 200


def test_repeated_authentication_failures_are_throttled(throttled: TestClient) -> None:
    store = throttled.app.state.tokens  # type: ignore[attr-defined]
    good = {"Authorization": f"Bearer {store.create('good', (Scope('read'),))[0]}"}
    wrong = {"Authorization": f"Bearer {new_token()}"}
    assert [throttled.get("/v1/keys", headers=wrong).status_code for _ in range(2)] == [401, 401]
    assert_problem(throttled.get("/v1/keys", headers=wrong), 429)
    # Guessing stops being answered, even for a token that would be right.
    assert_problem(throttled.get("/v1/keys", headers=good), 429)


# -- the audit log -------------------------------------------------------------


def audit_lines(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]


def test_the_audit_log_records_appends_exports_and_refusals_without_secrets(
    client: TestClient, tokens: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    appended = call(client, "POST", "/v1/ledgers/pub/events", tokens["append"], json=position())
    assert appended.status_code == 201
    call(client, "GET", "/v1/ledgers/priv/export", tokens["read-priv"])
    call(client, "GET", "/v1/ledgers/priv/head", tokens["read-other"])
    call(client, "GET", "/v1/ledgers/pub/head", {"Authorization": BAD_HEADERS["unknown token"]})
    client.get("/v1/ledgers/pub%0D%0Aforged%20line/head", headers={"Authorization": "Bearer x"})
    raw = (tmp_path / "audit.log").read_text()
    lines = audit_lines(tmp_path)
    assert len(raw.splitlines()) == len(lines)  # CR/LF in a path never splits a line
    by_action: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        assert line["time"].endswith("Z")
        by_action.setdefault(line["action"], []).append(line)
    append = by_action["append"][-1]
    assert (append["principal"], append["ledger"], append["outcome"]) == ("append", "pub", "ok")
    assert append["seq"] == appended.json()["seq"]
    export = by_action["export"][-1]
    assert (export["principal"], export["ledger"], export["status"]) == ("read-priv", "priv", 200)
    assert by_action["auth.denied"][-1]["principal"] == "read-other"
    failed = by_action["auth.failed"]
    assert len(failed) == 2 and failed[-1]["route"] == "/v1/ledgers/pub\r\nforged line/head"
    assert "\\r\\n" in raw
    assert all(h["Authorization"].removeprefix("Bearer ") not in raw for h in tokens.values() if h)
    assert "lgr_" not in raw and "Bearer" not in raw
