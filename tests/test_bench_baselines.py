"""The append benchmark's baselines do what the README says: the naive app
stores every posted event as a row, so its figure is a real insert, and the
no-op app stores nothing. (Functional only: benchmarks are never timed tests.)"""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from bench.appends import position_event
from bench.naive_app import create_app, naive_events

ROUTE = "/v1/ledgers/bench/events"


def test_naive_app_stores_each_event_as_a_row(database_url: str) -> None:
    with TestClient(create_app(database_url)) as client:
        one = client.post(ROUTE, json=position_event(0))
        batch = client.post(ROUTE, json=[position_event(n) for n in range(1, 4)])
    assert one.status_code == 201
    assert batch.status_code == 201
    assert [r["id"] for r in batch.json()] == [one.json()["id"] + n for n in range(1, 4)]
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        bodies = connection.execute(sa.select(naive_events.c.body)).scalars().all()
    engine.dispose()
    assert len(bodies) == 4
    assert "(statement 2)" in bodies[2]


def test_noop_app_answers_201_without_a_database() -> None:
    with TestClient(create_app(None)) as client:
        response = client.post(ROUTE, json=position_event(0))
    assert response.status_code == 201
