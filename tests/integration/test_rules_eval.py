"""`lordi eval rules` through the real pipeline (private Mosquitto, VictoriaMetrics,
SMTP server, a `lordi-collector run` process with alerts on): a school week whose
faults are labelled by physical cause, under three arrival schedules — live, late
spools with a real broker outage and a real collector restart, one bulk replay —
must give the expected alerts, the same alerts under every schedule, on SQLite and
on the real PostgreSQL server, mailed to the right people."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from lordi import evaluation

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# A smaller fleet than the benchmark's (BENCHMARKS.md), same week and causes.
PER_SCHOOL, DAY_S = 12, 16.0


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


@pytest.mark.timeout(900)
def test_every_schedule_gives_the_expected_alerts_on_both_stores() -> None:
    result = evaluation.run(
        PER_SCHOOL, stores=("sqlite",), names=("live", "late", "bulk"), day_s=DAY_S
    )
    assert all(result["meets_targets"].values()), result["meets_targets"]
    results = result["results"]
    for figures in results.values():
        assert (figures["precision"], figures["recall"]) == (1.0, 1.0), figures
        assert figures["expected_alerts"] > 30
        assert figures["samples_stored"] == figures["samples"]
    # The late schedule really went through a broker outage and a collector restart.
    assert {o.split(" at ")[0] for o in results["sqlite/late"]["outages"]} == {
        "broker down", "broker up", "collector down", "collector up",
    }  # fmt: skip
    # The bulk replay on both stores: the same alerts, sample times included.
    both = evaluation.run(PER_SCHOOL, stores=("sqlite", "postgresql"), names=("bulk",), day_s=DAY_S)
    assert all(both["meets_targets"].values()), both["meets_targets"]
    assert both["differences_between_stores"] == {
        "postgresql_vs_sqlite": {"differ": 0, "only_postgresql": [], "only_sqlite": []}
    }
    assert both["results"]["postgresql/bulk"]["by_rule"] == results["sqlite/live"]["by_rule"]
