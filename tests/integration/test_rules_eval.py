"""The rules on a simulated fleet with injected faults (the figures of `lordi eval
rules`), and the same scenario giving the same alerts on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from lordi import evaluate

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    schema = f"lordi_eval_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def test_rules_meet_the_targets_and_agree_on_sqlite_and_postgresql(pg_schema_url: str) -> None:
    on_sqlite = evaluate.run(per_school=24, seed=3)
    on_postgres = evaluate.run(per_school=24, store_url=pg_schema_url, seed=3)
    assert on_sqlite["store"] == "sqlite" and on_postgres["store"] == "postgresql+psycopg"
    for result in (on_sqlite, on_postgres):
        assert result["meets_targets"] == {
            "precision": True,
            "recall": True,
            "one_network_alert": True,
            "no_alert_from_untrusted": True,
        }, result
        assert result["expected_device_alerts"] > 10
    same = ("alerts_digest", "by_rule", "flagged_device_alerts", "true_positives")
    assert {k: on_sqlite[k] for k in same} == {k: on_postgres[k] for k in same}


def test_a_collector_restart_mid_week_changes_no_alert() -> None:
    """The whole device state is saved and restored: restarting the collector on
    Wednesday morning gives exactly the alerts of an uninterrupted week."""
    straight = evaluate.run(per_school=12, seed=5)
    restarted = evaluate.run(per_school=12, seed=5, restart_after_days=2.4)
    assert restarted["restarted_after_days"] == 2.4
    same = ("alerts_digest", "by_rule", "precision", "recall", "network_alerts")
    assert {k: restarted[k] for k in same} == {k: straight[k] for k in same}
    assert straight["expected_device_alerts"] > 5
