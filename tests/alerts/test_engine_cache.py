"""The engine's in-memory cache (default with SQLite): the same alerts, transitions
and notifications as reading the store at every batch; "still true" findings wait
in memory until `flush()`."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.alerts.engine import AlertEngine, LifecyclePolicy
from collector.alerts.store import AlertStore
from tests.alerts.helpers import BACKENDS, Database, at, database, finding
from tests.alerts.test_backends import play

POLICY = LifecyclePolicy(min_duration_s=60, clear_duration_s=120, repeat_interval_s=3600)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cached_and_uncached_engines_give_the_same_results(backend: str, tmp_path: Path) -> None:
    with (
        database(backend, str(tmp_path / "cached.sqlite3")) as cached,
        database(backend, str(tmp_path / "uncached.sqlite3")) as uncached,
    ):
        assert play(cached(), cache=True) == play(uncached(), cache=False)


def test_the_cache_is_on_by_default_with_sqlite_only(db: Database) -> None:
    assert db().single_writer == db.url.startswith("sqlite")


def stored_health(store: AlertStore, key: str) -> float:
    state = store.get_engine_state(key)
    assert state is not None
    return float(state.finding["evidence"]["health_pct"])


def test_still_true_findings_are_stored_at_flush(db: Database) -> None:
    store = db()
    engine = AlertEngine(store, POLICY, cache=True)
    key = "0310001A/PC-0042/BAT0/battery_replace"
    engine.process([finding(True, 0)], at(0))
    assert [n.kind for n in engine.process([finding(True, 60)], at(60))] == ["opened"]
    engine.process([finding(True, 120, evidence={"health_pct": 51.0})], at(120))
    assert stored_health(store, key) == 52.0  # no timer changed: nothing written yet
    assert engine.flush() == 1
    assert stored_health(store, key) == 51.0
    assert engine.flush() == 0
    # A new process on the same database reminds with the latest reading.
    [reminder] = AlertEngine(store, POLICY, cache=True).process([], at(3660))
    assert (reminder.kind, reminder.evidence["health_pct"]) == ("reminder", 51.0)


def test_the_reminder_carries_the_latest_finding_before_any_flush(db: Database) -> None:
    engine = AlertEngine(db(), POLICY, cache=True)
    engine.process([finding(True, 0)], at(0))
    engine.process([finding(True, 60)], at(60))
    engine.process([finding(True, 3000, evidence={"health_pct": 50.0})], at(3000))
    [reminder] = engine.process([], at(3660))
    assert (reminder.kind, reminder.evidence["health_pct"]) == ("reminder", 50.0)


class FailingStore(AlertStore):
    fail = False

    def put_engine_states(self, states: object) -> None:  # type: ignore[override]
        if self.fail and states:
            raise RuntimeError("database unavailable")
        super().put_engine_states(states)  # type: ignore[arg-type]


def test_a_failed_write_leaves_the_store_in_charge(tmp_path: Path) -> None:
    store = FailingStore(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    store.create_tables()
    engine = AlertEngine(store, POLICY, cache=True)
    engine.process([finding(True, 0)], at(0))
    store.fail = True
    with pytest.raises(RuntimeError):
        engine.process([finding(False, 30)], at(30))  # would reset the pending timer
    store.fail = False
    # The cache forgot the unsaved change: the store's pending timer (from 0) fires.
    assert [n.kind for n in engine.process([], at(60))] == ["opened"]
