"""Smoke test of `lordi bench web` at a tiny size: the region is built in PostgreSQL,
the real `lordi-web` process serves it, every page answers over HTTP for school and
region accounts, and the private schema is dropped. No timing is asserted: the
figures are the benchmark's business (BENCHMARKS.md), not the tests'."""

from __future__ import annotations

import sqlalchemy as sa

from lordi.bench import web
from tests.alerts.helpers import POSTGRES_URL


def _bench_schemas() -> int:
    engine = sa.create_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            query = "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'lordi_bench_web_%'"
            return int(conn.execute(sa.text(query)).scalar_one())
    finally:
        engine.dispose()


def test_web_bench_serves_every_page_on_a_small_region() -> None:
    before = _bench_schemas()
    result = web.run(devices=2000, requests=10, warmup=2, pg_url=POSTGRES_URL)
    assert result["devices"] == 2000
    assert result["schools"] == 4
    assert result["open_alerts"] == 160  # 8 % of the laptops
    assert result["resolved_alerts"] == 320
    assert result["transitions"] > result["open_alerts"] + 2 * result["resolved_alerts"]
    assert result["setup_s"] >= 0 and result["server_start_s"] > 0
    assert result["schools_visited"] == 4
    assert set(result["pages"]) == {"worklist", "alert", "csv", "region"}
    for figures in result["pages"].values():
        assert figures["n"] == 10
        assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"]
    assert set(result["meets_targets"]) == {"worklist_p95_le_200ms", "region_p95_le_200ms"}
    assert all(isinstance(v, bool) for v in result["meets_targets"].values())
    assert _bench_schemas() == before  # the private schema is gone


def test_figures_use_the_nearest_rank() -> None:
    ms = [float(v) for v in range(1, 101)]
    assert web.figures(ms) == {"p50_ms": 50.0, "p95_ms": 95.0, "max_ms": 100.0, "n": 100}
    assert web.figures([3.0]) == {"p50_ms": 3.0, "p95_ms": 3.0, "max_ms": 3.0, "n": 1}
