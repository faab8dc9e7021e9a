"""The delivery outbox in the store: written with the alert change, claimed once,
leased, retried; on SQLite and on the real PostgreSQL server (row claims with
FOR UPDATE SKIP LOCKED between collectors)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from collector.alerts.engine import AlertEngine
from collector.alerts.store import AlertStore, InvalidTransition
from collector.rules.config import RuleTiming
from tests.alerts.helpers import Database, at, finding, run, sweep, timing


def test_a_new_alert_and_its_notification_are_one_transaction(store: AlertStore) -> None:
    alert, created = store.try_open_alert(finding(True, 0), at(0), notify="opened")
    again, created_again = store.try_open_alert(finding(True, 5), at(5), notify="opened")
    assert (created, created_again, again.id) == (True, False, alert.id)
    [row] = store.outbox.rows()  # none for the call that found the alert open
    assert (row.alert_id, row.kind, row.status, row.channels) == (
        alert.id,
        "opened",
        "pending",
        None,
    )
    assert row.created_at == row.next_attempt_at == at(0)


def test_notifications_are_queued_on_the_collector_s_clock(store: AlertStore) -> None:
    # The alert's times are sample times; the outbox row is due at `queued_at`.
    alert, _ = store.try_open_alert(
        finding(True, 0), at(60), notify="opened", since=at(0), queued_at=at(500)
    )
    resolved = store.resolve(alert.id, "engine", at=at(200), notify="resolved", queued_at=at(900))
    assert (resolved.since, resolved.opened_at, resolved.resolved_at) == (at(0), at(60), at(200))
    assert [(r.kind, r.created_at, r.next_attempt_at) for r in store.outbox.rows()] == [
        ("opened", at(500), at(500)),
        ("resolved", at(900), at(900)),
    ]


def test_a_refused_transition_leaves_no_notification(store: AlertStore) -> None:
    alert = store.open_alert(finding(True, 0), at(0))
    store.resolve(alert.id, "engine", at=at(10), notify="resolved")
    with pytest.raises(InvalidTransition):
        store.resolve(alert.id, "engine", at=at(20), notify="resolved")
    assert [(r.kind, r.created_at) for r in store.outbox.rows()] == [("resolved", at(10))]


def test_engine_with_outbox_enqueues_what_it_notifies(store: AlertStore) -> None:
    fast = RuleTiming(min_duration_s=0, clear_duration_s=0, repeat_interval_s=600)
    engine = AlertEngine(store, lambda _rule: fast, outbox=True)
    sent = run(engine, 30, finding(True, 0))  # received 30 s after the sample
    sent += sweep(engine, 629)
    sent += sweep(engine, 630)  # a reminder, 600 s after "opened" on the collector's clock
    sent += run(engine, 810, finding(False, 800))
    assert sent == [("opened", 1), ("reminder", 1), ("resolved", 1)]
    assert [(r.alert_id, r.kind, r.created_at) for r in store.outbox.rows()] == [
        (1, "opened", at(30)),
        (1, "reminder", at(630)),
        (1, "resolved", at(810)),
    ]
    alert = store.get_alert(1)
    assert (alert.opened_at, alert.resolved_at) == (at(0), at(800))  # sample times


def test_engine_without_outbox_enqueues_nothing(store: AlertStore) -> None:
    engine = AlertEngine(store, timing)
    sent = run(engine, 0, finding(True, 0)) + run(engine, 60, finding(True, 60))
    assert sent == [("opened", 1)]
    assert store.outbox.rows() == []


def test_claim_lease_retry_and_sent(store: AlertStore) -> None:
    alert = store.open_alert(finding(True, 0), at(0))
    store.enqueue(alert.id, "opened", at(0))
    [row] = store.outbox.claim(at(1), lease_s=60)
    assert store.outbox.claim(at(2)) == []  # leased to this collector
    assert store.outbox.retry(row.id, ["email_level1"], "smtp down", at(100))
    assert store.outbox.claim(at(50)) == []  # not due before the backoff
    [again] = store.outbox.claim(at(100), lease_s=60)
    assert (again.attempts, again.channels, again.last_error) == (1, ("email_level1",), "smtp down")
    assert store.outbox.mark_sent(again.id, at(101))
    assert store.outbox.claim(at(10_000)) == []
    assert [(r.status, r.sent_at) for r in store.outbox.rows()] == [("sent", at(101))]


def test_an_expired_lease_lets_another_collector_take_the_row(db: Database) -> None:
    first, second = db(), db()
    alert = first.open_alert(finding(True, 0), at(0))
    first.enqueue(alert.id, "opened", at(0))
    [row] = first.outbox.claim(at(0), lease_s=60)  # then this collector dies
    assert second.outbox.claim(at(30)) == []
    [taken] = second.outbox.claim(at(61))
    assert taken.id == row.id
    assert not first.outbox.mark_sent(row.id, at(62))  # the lease is no longer its own
    assert second.outbox.mark_sent(row.id, at(62))


def test_giving_up_marks_the_row_failed(store: AlertStore) -> None:
    alert = store.open_alert(finding(True, 0), at(0))
    store.enqueue(alert.id, "opened", at(0))
    [row] = store.outbox.claim(at(0))
    store.outbox.retry(row.id, ["email_level1"], "smtp down", at(60), give_up=True)
    assert store.outbox.claim(at(1000)) == []
    assert [r.status for r in store.outbox.rows()] == ["failed"]
    assert store.outbox.pending_count() == 0


def _enqueue_many(store: AlertStore, count: int) -> list[int]:
    alert = store.open_alert(finding(True, 0), at(0))
    for _ in range(count):
        store.enqueue(alert.id, "reminder", at(0))
    return [r.id for r in store.outbox.rows()]


def test_collectors_racing_for_the_outbox_never_take_the_same_row(postgres: Database) -> None:
    ids = _enqueue_many(postgres(), 60)
    stores = [postgres(), postgres()]
    barrier = threading.Barrier(2)

    def collector(store: AlertStore) -> list[int]:
        taken: list[int] = []
        barrier.wait()
        while rows := store.outbox.claim(at(1), limit=3):
            taken += [r.id for r in rows]
        return taken

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(collector, stores)
    assert not set(first) & set(second)
    assert sorted(first + second) == ids
    assert first and second  # both took part


def test_a_locked_row_is_skipped_not_waited_for(postgres: Database) -> None:
    ids = _enqueue_many(postgres(), 3)
    # A collector that fails fast instead of hanging if the claim ever blocked.
    impatient = Database(postgres.url, {**postgres.connect_args})
    impatient.connect_args["options"] += " -c statement_timeout=3000"
    other = sa.create_engine(postgres.url, connect_args=postgres.connect_args)
    try:
        with other.connect() as conn, conn.begin():
            conn.execute(sa.text("SELECT id FROM outbox WHERE id = :id FOR UPDATE"), {"id": ids[0]})
            claimed = [r.id for r in impatient().outbox.claim(at(1))]
        assert claimed == ids[1:]
        assert [r.id for r in impatient().outbox.claim(at(1))] == [ids[0]]
    finally:
        impatient.close()
        other.dispose()


def test_reminder_for_an_unknown_alert_is_refused(store: AlertStore) -> None:
    with pytest.raises(LookupError, match="alert id 99: no such alert"):
        store.enqueue(99, "reminder", at(0))
    assert store.outbox.rows() == []
