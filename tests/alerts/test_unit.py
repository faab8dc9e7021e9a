"""A batch's transitions as one transaction (`AlertStore.unit`), on both backends.

The engine applies a batch's findings inside one unit: one commit instead of one per
alert (a first day opens hundreds at once), all or nothing, and its own reads see its
writes. Other connections see nothing until it commits; a collector that loses a
unique-key race inside a unit keeps the unit's other transitions; another writer on
SQLite waits for the unit instead of failing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from collector.alerts.engine import AlertEngine
from collector.alerts.model import Finding
from collector.alerts.store import AlertStore, InvalidTransition
from tests.alerts.helpers import KEY, Database, at, clocks_of, finding, timing

# More than psycopg's prepare threshold (5): the statements run prepared too.
OTHERS = [f"0310001A/PC-{n:04d}/BAT0/battery_replace" for n in range(1, 13)]


def _commits(store: AlertStore) -> list[int]:
    counted: list[int] = []
    sa.event.listen(store.engine, "commit", lambda _conn: counted.append(1))
    return counted


def test_a_batch_that_opens_twelve_alerts_commits_its_transitions_once(db: Database) -> None:
    store = db()
    engine = AlertEngine(store, timing, outbox=True)
    found = [finding(True, 0, key=k) for k in OTHERS] + [finding(True, 60, key=k) for k in OTHERS]
    commits = _commits(store)
    sent = engine.process(found, clocks_of(found), at(60))
    assert sorted(n.alert.key for n in sent) == sorted(OTHERS)
    assert len(commits) == 2  # the twelve openings (alerts, transitions, outbox), the states
    assert store.outbox.pending_count() == 12
    assert sorted(a.key for a in db().list_alerts(status="open")) == sorted(OTHERS)


def test_a_unit_is_all_or_nothing_and_reads_its_own_writes(db: Database) -> None:
    store, other = db(), db()
    kept = store.open_alert(finding(True, 0, key=OTHERS[0]), at(0))
    with pytest.raises(RuntimeError, match="a bug"), store.unit():
        opened = store.open_alert(finding(True, 10), at(10))
        assert store.find_open(KEY) == opened  # this thread sees its unit
        assert other.find_open(KEY) is None  # another collector does not, yet
        store.resolve(kept.id, "engine", at=at(10))
        raise RuntimeError("a bug in the middle of a batch")
    assert store.find_open(KEY) is None
    assert store.get_alert(kept.id).status == "open"
    with store.unit():
        opened = store.open_alert(finding(True, 20), at(20))
    assert other.find_open(KEY) == opened


def test_a_flap_inside_one_batch_reopens_the_same_alert(db: Database) -> None:
    """Opened, cleared, resolved by its timer and active again for the minimum
    duration, all in one batch: the re-opening reads the resolution the same unit
    wrote, so it is the same alert, as when the findings come one batch each."""
    found = [finding(True, 0), finding(True, 60), finding(False, 70),
             finding(True, 200), finding(True, 260)]  # fmt: skip
    one, each = db(), db()
    batch_engine = AlertEngine(one, timing, outbox=True)
    batch_engine.process(found, clocks_of(found), at(260))
    one_by_one = AlertEngine(each, timing, outbox=True)
    for f in found:
        one_by_one.process([f], clocks_of([f]), f.at)
    assert len(one.list_alerts()) == 1
    history = [(t.from_status, t.to_status, t.at) for t in one.transitions_of(1)]
    assert history == [(None, "open", at(60)), ("open", "resolved", at(190)),
                       ("resolved", "open", at(260))]  # fmt: skip
    assert [(t.from_status, t.to_status, t.at) for t in each.transitions_of(1)] == history


@contextmanager
def _held_unit(
    store: AlertStore, found: Finding, hold: Callable[[], object]
) -> Iterator[Future[None]]:
    """Another thread opens `found`'s alert inside a unit of `store` and keeps the unit
    open until `hold()` returns; the block runs once the opening is in."""
    inside = threading.Event()

    def collector() -> None:
        with store.unit():
            store.open_alert(found, found.at)
            inside.set()
            hold()

    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(collector)
        assert inside.wait(10)
        yield held


def test_a_unit_that_loses_a_race_keeps_its_other_transitions(postgres: Database) -> None:
    """The winner's uncommitted insert blocks our unit's insert of the same key; once
    it commits, ours inserts nothing (ON CONFLICT DO NOTHING: a failed statement
    would abort our whole unit on PostgreSQL), we get the winner's alert and go on."""
    winner, loser = postgres(), postgres()
    release = threading.Event()

    def lose() -> tuple[int, bool]:
        with loser.unit():
            loser.open_alert(finding(True, 10, key=OTHERS[0]), at(10))
            alert, created = loser.try_open_alert(finding(True, 10), at(10))
            loser.open_alert(finding(True, 10, key=OTHERS[1]), at(10))
        return alert.id, created

    with (
        _held_unit(winner, finding(True, 5), lambda: release.wait(10)) as won,
        ThreadPoolExecutor(1) as pool,
    ):
        racing = pool.submit(lose)
        time.sleep(0.5)
        assert not racing.done()  # blocked on the winner's uncommitted key
        release.set()
        won.result(timeout=10)
        alert_id, created = racing.result(timeout=10)
    assert not created
    assert postgres().get_alert(alert_id).opened_at == at(5)  # the winner's
    assert sorted(a.key for a in postgres().list_alerts(status="open")) == sorted(
        [KEY, OTHERS[0], OTHERS[1]]
    )


def test_a_refused_reopening_inside_a_unit_keeps_its_other_transitions(db: Database) -> None:
    """Re-opening a resolved alert whose key has another unresolved alert fails on the
    unique index (a savepoint on PostgreSQL, the statement alone on SQLite): the
    caller gets InvalidTransition and the unit's other changes are committed."""
    store = db()
    old = store.open_alert(finding(True, 0), at(0))
    store.resolve(old.id, "engine", at=at(10))
    newer = store.open_alert(finding(True, 20), at(20))
    with store.unit():
        before = store.open_alert(finding(True, 30, key=OTHERS[0]), at(30))
        with pytest.raises(InvalidTransition, match="already unresolved for the same key"):
            store.transition(old.id, "open", "engine", at=at(30))
        after = store.open_alert(finding(True, 30, key=OTHERS[1]), at(30))
    other = db()
    assert {a.id for a in other.list_alerts(status="open")} == {newer.id, before.id, after.id}
    assert other.get_alert(old.id).status == "resolved"


def test_another_writer_waits_for_a_unit_on_sqlite(db: Database) -> None:
    """SQLite has one writer at a time: a technician acknowledging from the web page
    while the collector's unit is open waits for it (the busy timeout), not fails."""
    store, web = db(), db()
    earlier = store.open_alert(finding(True, 0, key=OTHERS[0]), at(0))
    with _held_unit(store, finding(True, 10), lambda: time.sleep(0.5)) as held:
        acknowledged = web.acknowledge(earlier.id, "tech@0310001A", at=at(20))
        held.result(timeout=10)
    assert acknowledged.status == "acknowledged"
    assert web.find_open(KEY) is not None
