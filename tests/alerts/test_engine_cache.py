"""The engine's in-memory cache (default with SQLite): the same alerts, transitions
and notifications as reading the store at every batch; "still true" findings wait
in memory until `flush()`."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.alerts.engine import AlertEngine
from collector.alerts.store import AlertStore
from tests.alerts.helpers import (
    BACKENDS,
    KEY,
    Database,
    at,
    database,
    finding,
    run,
    sweep,
    tick,
    timing,
)
from tests.alerts.test_backends import play


@pytest.mark.parametrize("backend", BACKENDS)
def test_cached_and_uncached_engines_give_the_same_results(backend: str, tmp_path: Path) -> None:
    with (
        database(backend, str(tmp_path / "cached.sqlite3")) as cached,
        database(backend, str(tmp_path / "uncached.sqlite3")) as uncached,
    ):
        assert play(cached(), cache=True) == play(uncached(), cache=False)


def stored_health(store: AlertStore, key: str = KEY) -> float:
    state = store.engine_states.get(key)
    assert state is not None
    return float(state.finding["evidence"]["health_pct"])


def test_the_cache_is_on_by_default_with_sqlite_only(db: Database) -> None:
    store = db()
    assert store.single_writer == db.url.startswith("sqlite")
    engine = AlertEngine(store, timing)  # the default
    assert run(engine, 0, finding(True, 0)) == []
    assert run(engine, 60, finding(True, 60)) == [("opened", 1)]
    assert run(engine, 120, finding(True, 120, evidence={"health_pct": 51.0})) == []
    # Still true, no timer changed: kept in memory with SQLite, written with PostgreSQL.
    assert stored_health(store) == (52.0 if store.single_writer else 51.0)
    engine.flush()
    assert stored_health(store) == 51.0


def test_still_true_findings_are_stored_at_flush(db: Database) -> None:
    store = db()
    engine = AlertEngine(store, timing, cache=True)
    assert run(engine, 0, finding(True, 0)) == []
    assert run(engine, 60, finding(True, 60)) == [("opened", 1)]
    assert run(engine, 120, finding(True, 120, evidence={"health_pct": 51.0})) == []
    assert stored_health(store) == 52.0  # no timer changed: nothing written yet
    assert engine.flush() == 1
    assert stored_health(store) == 51.0
    assert engine.flush() == 0
    # A new process on the same database reminds with the latest reading.
    [reminder] = AlertEngine(store, timing, cache=True).sweep(at(3660))
    assert (reminder.kind, reminder.evidence["health_pct"]) == ("reminder", 51.0)


def test_a_changed_timer_is_stored_at_once(db: Database) -> None:
    store = db()
    engine = AlertEngine(store, timing, cache=True)
    open_findings = [finding(True, 0), finding(True, 60)]
    assert run(engine, 60, *open_findings) == [("opened", 1)]
    assert run(engine, 100, finding(False, 100)) == []
    state = store.engine_states.get(KEY)
    assert state is not None and (state.clear_since, stored_health(store)) == (
        at(100), 64.0,
    )  # fmt: skip


def test_the_reminder_carries_the_latest_finding_before_any_flush(db: Database) -> None:
    engine = AlertEngine(db(), timing, cache=True)
    assert run(engine, 0, finding(True, 0)) == []
    assert run(engine, 60, finding(True, 60)) == [("opened", 1)]
    assert run(engine, 3000, finding(True, 3000, evidence={"health_pct": 50.0})) == []
    [reminder] = engine.sweep(at(3660))
    assert (reminder.kind, reminder.evidence["health_pct"]) == ("reminder", 50.0)


def _failing_writes(store: AlertStore, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Make the store's engine-state writes fail while the returned flag is set."""
    fail = [False]
    put_many = store.engine_states.put_many

    def failing(states: object) -> None:
        if fail[0] and states:
            raise RuntimeError("database unavailable")
        put_many(states)  # type: ignore[arg-type]

    monkeypatch.setattr(store.engine_states, "put_many", failing)
    return fail


def test_a_failed_write_leaves_the_store_in_charge(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = db()
    fail = _failing_writes(store, monkeypatch)
    engine = AlertEngine(store, timing, cache=True)
    assert run(engine, 0, finding(True, 0)) == []
    fail[0] = True
    with pytest.raises(RuntimeError, match="database unavailable"):
        run(engine, 30, finding(False, 30))  # would end the episode
    fail[0] = False
    # The cache forgot the unsaved change: the store's episode (from 0) goes on.
    assert run(engine, 60, finding(True, 60)) == [("opened", 1)]
    assert store.get_alert(1).since == at(0)


def test_after_a_failed_write_the_stored_timers_fire(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = db()
    fail = _failing_writes(store, monkeypatch)
    engine = AlertEngine(store, timing, cache=True)
    assert run(engine, 60, finding(True, 0), finding(True, 60)) == [("opened", 1)]
    assert run(engine, 100, finding(False, 100)) == []  # due at 220, stored
    other = "0310001A/PC-0043/BAT0/battery_replace"
    fail[0] = True
    with pytest.raises(RuntimeError, match="database unavailable"):
        run(engine, 150, finding(True, 150, key=other))
    fail[0] = False
    assert tick(engine, 220) == [("resolved", 1)]  # the timers were reloaded
    assert store.engine_states.get(other) is None
    assert sweep(engine, 3660) == []  # resolved: no reminder


# --- partitions: each collector caches, sweeps and fires its own schools' keys ------

OTHER_SCHOOL = "0330002B/PC-0001/BAT0/battery_replace"


def _opened(engine: AlertEngine, key: str) -> list[tuple[str, int]]:
    return run(engine, 60, finding(True, 0, key=key), finding(True, 60, key=key))


def test_a_partition_s_engine_caches_on_postgresql(postgres: Database) -> None:
    store = postgres()
    assert not store.single_writer
    engine = AlertEngine(store, timing, owns=lambda school: school == "0310001A")
    assert _opened(engine, KEY) == [("opened", 1)]
    assert run(engine, 120, finding(True, 120, evidence={"health_pct": 51.0})) == []
    assert stored_health(store) == 52.0  # still true: in memory until the flush
    assert engine.flush() == 1
    assert stored_health(store) == 51.0


def test_each_partition_reminds_its_own_schools_only(postgres: Database) -> None:
    mine = {"0310001A": 0, "0330002B": 1}
    first = AlertEngine(postgres(), timing, owns=lambda school: mine[school] == 0)
    second = AlertEngine(postgres(), timing, owns=lambda school: mine[school] == 1)
    assert _opened(first, KEY) == [("opened", 1)]
    assert _opened(second, OTHER_SCHOOL) == [("opened", 2)]
    # Both sweep at the same time: each alert is reminded once, by its owner.
    assert sweep(first, 3660) == [("reminder", 1)]
    assert sweep(second, 3660) == [("reminder", 2)]


def test_a_school_moved_to_another_partition_is_read_again_when_it_comes_back(
    postgres: Database,
) -> None:
    owner = {"0310001A": 0}
    first = AlertEngine(postgres(), timing, owns=lambda school: owner[school] == 0)
    second = AlertEngine(postgres(), timing, owns=lambda school: owner[school] == 1)
    assert _opened(first, KEY) == [("opened", 1)]  # cached by the first partition
    owner["0310001A"] = 1  # the registry moves the school
    assert sweep(first, 100) == []  # the first forgets it
    # The second resolves the alert: the condition cleared, the clear timer ran out.
    assert run(second, 100, finding(False, 100)) == []
    assert tick(second, 220) == [("resolved", 1)]
    owner["0310001A"] = 0  # and back
    # The first reads the store again: the alert is resolved, so a clear reading
    # changes nothing, and the condition back within the repeat interval reopens
    # the same alert silently (a stale cache would still hold it open).
    assert run(first, 300, finding(False, 300)) == []
    assert run(first, 400, finding(True, 340), finding(True, 400)) == []
    assert postgres().get_alert(1).status == "open"
    assert sweep(first, 3900) == [("reminder", 1)]  # an hour after the "resolved"
