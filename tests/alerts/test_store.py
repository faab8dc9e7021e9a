"""The storage layer, on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from collector.alerts import schema
from collector.alerts.engine import AlertEngine
from collector.alerts.enginestore import EngineState
from collector.alerts.schema import UtcDateTime
from collector.alerts.store import (
    AlertNotFound,
    AlertStore,
    AlertStoreError,
    InvalidTransition,
)
from tests.alerts.helpers import KEY, SCOPE, Database, at, finding, run, sweep, tick, timing


def test_times_round_trip_as_aware_utc(store: AlertStore) -> None:
    paris = timezone(timedelta(hours=1))
    opened = store.open_alert(finding(True, 0), datetime(2026, 3, 2, 9, 0, 0, 123456, paris))
    again = store.get_alert(opened.id)
    assert again.opened_at == datetime(2026, 3, 2, 8, 0, 0, 123456, tzinfo=UTC)
    assert again.opened_at.tzinfo == UTC
    assert again.resolved_at is None
    resolved = store.resolve(opened.id, "engine", at=at(90))
    assert resolved.resolved_at == at(90)
    assert store.transitions_of(opened.id)[1].at.utcoffset() == timedelta(0)


def test_naive_time_is_refused_with_the_value(store: AlertStore) -> None:
    with pytest.raises(
        ValueError,
        match=r"^at must be a timezone-aware datetime, got datetime\.datetime\(2026, 3, 2, 8, 0\)$",
    ):
        store.open_alert(finding(True, 0), datetime(2026, 3, 2, 8, 0))
    assert store.list_alerts() == []


def test_open_alert_copies_the_finding_and_records_its_evidence(store: AlertStore) -> None:
    alert = store.open_alert(finding(True, 0), at(60), note="ouverte")
    assert (alert.id, alert.key, alert.status, alert.school, alert.device) == (
        1, KEY, "open", "0310001A", "PC-0042",
    )  # fmt: skip
    assert (alert.category, alert.severity, alert.summary) == (
        "hardware", "critical", "santé batterie 52 % (< 60 %)",
    )  # fmt: skip
    assert alert.evidence == {"health_pct": 52.0, "sample_at": "2026-03-02T08:00:00+00:00"}
    [created] = store.transitions_of(alert.id)
    assert (created.from_status, created.to_status, created.by, created.note) == (
        None, "open", "engine", "ouverte",
    )  # fmt: skip
    assert created.evidence == alert.evidence


def test_one_unresolved_alert_per_key(store: AlertStore) -> None:
    first, created = store.try_open_alert(finding(True, 0), at(60))
    second, created_again = store.try_open_alert(finding(True, 10), at(70))
    assert (created, created_again) == (True, False)
    assert second.id == first.id and second.opened_at == at(60)
    store.resolve(first.id, "engine", at=at(100))
    third, created_third = store.try_open_alert(finding(True, 200), at(260))
    assert (third.id, created_third) == (2, True)  # a resolved alert does not block the key
    assert store.find_open(KEY) == third
    assert [t.to_status for t in store.transitions_of(first.id)] == ["open", "resolved"]


def test_reopening_collides_with_the_newer_unresolved_alert(store: AlertStore) -> None:
    old = store.open_alert(finding(True, 0), at(60))
    store.resolve(old.id, "engine", at=at(100))
    store.open_alert(finding(True, 200), at(260))
    with pytest.raises(InvalidTransition, match="alert 1 cannot be re-opened: alert 2 is already"):
        store.transition(old.id, "open", "engine", at=at(300))
    assert store.get_alert(old.id).status == "resolved"


def test_acknowledge_comment_escalate_resolve(store: AlertStore) -> None:
    alert = store.open_alert(finding(True, 0), at(60))
    acked = store.acknowledge(alert.id, "m.durand", comment="je passe mardi", at=at(120))
    assert (acked.status, acked.acknowledged_by, acked.updated_at) == (
        "acknowledged", "m.durand", at(120),
    )  # fmt: skip
    store.comment(alert.id, "m.durand", "batterie commandée", at=at(180))
    escalated = store.escalate(alert.id, "Prestataire matériel", "m.durand", at=at(240))
    assert (escalated.escalated_to, escalated.status) == ("Prestataire matériel", "acknowledged")
    resolved = store.resolve(alert.id, "m.durand", note="batterie remplacée", at=at(300))
    assert (resolved.status, resolved.resolved_at) == ("resolved", at(300))
    history = [
        (t.from_status, t.to_status, t.by, t.note, t.at) for t in store.transitions_of(alert.id)
    ]
    assert history == [
        (None, "open", "engine", "", at(60)),
        ("open", "acknowledged", "m.durand", "je passe mardi", at(120)),
        ("acknowledged", "acknowledged", "m.durand", "batterie commandée", at(180)),
        (
            "acknowledged",
            "acknowledged",
            "m.durand",
            "escaladée vers Prestataire matériel",
            at(240),
        ),
        ("acknowledged", "resolved", "m.durand", "batterie remplacée", at(300)),
    ]


def test_missing_alert_errors_name_the_id(store: AlertStore) -> None:
    with pytest.raises(AlertNotFound, match=r"^alert id 999: no such alert$"):
        store.acknowledge(999, "m.durand")
    with pytest.raises(AlertNotFound, match="alert id 998"):
        store.transitions_of(998)
    with pytest.raises(AlertNotFound, match="alert id 997"):
        store.comment(997, "m.durand", "test")


def test_illegal_status_changes_are_refused(store: AlertStore) -> None:
    alert = store.open_alert(finding(True, 0), at(60))
    store.acknowledge(alert.id, "m.durand", at=at(70))
    with pytest.raises(InvalidTransition, match="alert 1 is acknowledged; it cannot become ack"):
        store.acknowledge(alert.id, "j.martin", at=at(80))
    store.resolve(alert.id, "engine", at=at(90))
    with pytest.raises(InvalidTransition, match="alert 1 is resolved; it cannot be escalated"):
        store.escalate(alert.id, "Prestataire matériel", "m.durand")
    with pytest.raises(ValueError, match="comment text must not be empty, got '  '"):
        store.comment(alert.id, "m.durand", "  ")
    assert store.get_alert(alert.id).acknowledged_by == "m.durand"


def test_worklist_order_is_severity_then_age(store: AlertStore) -> None:
    specs = [  # (key, severity, school, opened at s)
        ("0310001A/PC-1/watch", "warning", "0310001A", 10),
        ("0310001A/PC-2/replace", "critical", "0310001A", 50),
        ("0310001A/PC-3/watch", "warning", "0310001A", 5),
        ("0310001A/PC-4/info", "info", "0310001A", 1),
        ("0820002B/PC-9/replace", "critical", "0820002B", 0),
        ("0310001A/PC-5/replace", "critical", "0310001A", 20),
    ]
    for key, severity, school, opened_s in specs:
        store.open_alert(finding(True, 0, key=key, severity=severity, school=school), at(opened_s))
    store.resolve(store.find_open("0310001A/PC-3/watch").id, "engine", at=at(100))  # type: ignore[union-attr]
    school_keys = [a.key for a in store.list_alerts(school="0310001A")]
    assert school_keys == [
        "0310001A/PC-5/replace", "0310001A/PC-2/replace",
        "0310001A/PC-3/watch", "0310001A/PC-1/watch", "0310001A/PC-4/info",
    ]  # fmt: skip
    open_keys = [a.key for a in store.list_alerts(school="0310001A", status="open")]
    assert "0310001A/PC-3/watch" not in open_keys and len(open_keys) == 4
    assert [a.key for a in store.list_alerts(status="resolved")] == ["0310001A/PC-3/watch"]
    assert len(store.list_alerts()) == 6


def test_device_upsert_keeps_fields_not_given(store: AlertStore) -> None:
    store.upsert_device("0310001A", "PC-0042", asset_tag="OCC-123456", battery_model="L19M3PD6")
    store.upsert_device("0310001A", "PC-0042", last_seen=at(30), derived={"fade_pct_per_day": 0.02})
    device = store.get_device("0310001A", "PC-0042")
    assert device is not None
    assert (device.asset_tag, device.battery_model, device.last_seen) == (
        "OCC-123456", "L19M3PD6", at(30),
    )  # fmt: skip
    assert device.derived == {"fade_pct_per_day": 0.02}
    store.upsert_device("0310001A", "PC-0042")  # nothing to change: a no-op, not an error
    assert store.get_device("0310001A", "PC-0042") == device
    assert store.get_device("0310001A", "PC-0043") is None


def test_since_is_the_first_episode_start(store: AlertStore) -> None:
    alert = store.open_alert(finding(True, 0), at(60))
    assert alert.since == at(60)  # not given: the opening time
    store.resolve(alert.id, "engine", at=at(200))
    # Re-opened (flapping): the same alert, still "since" its first episode.
    again = store.transition(alert.id, "open", "engine", at=at(400))
    assert (again.since, again.opened_at, again.resolved_at) == (at(60), at(60), None)
    assert store.resolve(alert.id, "engine", at=at(500)).since == at(60)  # kept
    other, created = store.try_open_alert(
        finding(True, 0, key="0310001A/PC-0043/BAT0/battery_replace"), at(90), since=at(30)
    )
    assert (created, store.get_alert(other.id).since) == (True, at(30))


def _state(key: str, **fields: object) -> EngineState:
    return EngineState(key=key, rule="battery_replace", scope=SCOPE, **fields)  # type: ignore[arg-type]


def test_engine_states_round_trip(store: AlertStore) -> None:
    states = store.engine_states
    full = _state(
        "a", pending_since=at(1), clear_since=at(2), last_notified_at=at(3),
        last_notified_kind="reminder", alert_id=7, alert_open=True, due_at=at(4),
        remind_at=at(5), notify_pending=True,
        finding={"active": False, "at": at(2).isoformat(), "evidence": {"health_pct": 64.0}},
    )  # fmt: skip
    bare = EngineState(key="b", rule="wifi_ap_fault")
    states.put_many([full, bare])
    assert states.get_many(["a", "b", "zz"]) == {"a": full, "b": bare}
    assert states.get("b") == EngineState(key="b", rule="wifi_ap_fault", scope="")
    assert states.get("zz") is None
    assert states.get_many([]) == {}
    # put_many replaces whole states.
    full.clear_since = full.due_at = full.remind_at = None
    full.notify_pending, full.scope = False, "s:0310001A"
    states.put_many([full])
    assert states.get("a") == full


def test_put_findings_replaces_only_the_finding(store: AlertStore) -> None:
    states = store.engine_states
    stored = _state("a", pending_since=at(0), finding={"evidence": {"health_pct": 52.0}})
    states.put_many([stored])
    changed = _state("a", pending_since=at(99), finding={"evidence": {"health_pct": 51.0}})
    states.put_findings([changed, _state("not stored", finding={"x": 1})])
    states.put_findings([])
    assert states.get("a") == _state(
        "a", pending_since=at(0), finding={"evidence": {"health_pct": 51.0}}
    )
    assert states.get("not stored") is None  # an update, never an insert


def test_many_states_in_bounded_statements(store: AlertStore) -> None:
    keys = [f"0310001A/PC-{n:04d}/BAT0/battery_replace" for n in range(1203)]
    store.engine_states.put_many([_state(k, pending_since=at(n)) for n, k in enumerate(keys)])
    got = store.engine_states.get_many([*keys, "missing"])
    assert len(got) == len(keys)
    assert got[keys[1202]].pending_since == at(1202)


def test_clear_timers_and_reminders_are_found_by_time(store: AlertStore) -> None:
    store.engine_states.put_many([
        _state("b", alert_open=True, clear_since=at(0), due_at=at(60), remind_at=at(500)),
        _state("c", alert_open=True, clear_since=at(0), due_at=at(40)),
        _state("a", alert_open=True, clear_since=at(0), due_at=at(60)),
        _state("d", alert_open=True, remind_at=at(100)),
        _state("e", pending_since=at(0)),
    ])  # fmt: skip
    timers = store.engine_states.with_clear_timer
    assert [s.key for s in timers()] == ["c", "a", "b"]  # (due, key) order
    assert [s.key for s in timers(until=at(59))] == ["c"]
    assert [s.key for s in timers(until=at(60))] == ["c", "a", "b"]
    remind = store.engine_states.to_remind
    assert [s.key for s in remind(at(99))] == []
    assert [s.key for s in remind(at(100))] == ["d"]
    assert [s.key for s in remind(at(10_000))] == ["b", "d"]  # key order


def test_open_but_resolved_lists_what_a_person_resolved(store: AlertStore) -> None:
    def opened(key: str) -> int:
        return store.open_alert(finding(True, 0, key=f"0310001A/PC-1/{key}"), at(60)).id

    by_hand, engine_open, closed, acked = (opened(k) for k in ("k1", "k2", "k3", "k4"))
    store.resolve(by_hand, "m.durand", at=at(100))
    store.resolve(closed, "engine", at=at(100))
    store.acknowledge(acked, "m.durand", at=at(100))
    store.engine_states.put_many([
        _state("k1", alert_id=by_hand, alert_open=True),
        _state("k2", alert_id=engine_open, alert_open=True),
        _state("k3", alert_id=closed, alert_open=False),  # the engine knows already
        _state("k4", alert_id=acked, alert_open=True),
        _state("k5", alert_id=None, alert_open=False),
    ])  # fmt: skip
    assert store.engine_states.open_but_resolved() == [("k1", by_hand)]


# --- a store created before `alerts.since` and the engine's new columns ---------------

_OLD = sa.MetaData()
_OLD_ALERTS = sa.Table(
    "alerts", _OLD,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(300), nullable=False),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(16), nullable=False),
    sa.Column("school", sa.String(16), nullable=False),
    sa.Column("device", sa.String(128)),
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("opened_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("resolved_at", UtcDateTime),
    sa.Column("summary", sa.Text, nullable=False, default=""),
    sa.Column("action", sa.Text, nullable=False, default=""),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("acknowledged_by", sa.String(128)),
    sa.Column("escalated_to", sa.String(128)),
)  # fmt: skip
sa.Index(
    "uq_alerts_unresolved_key", _OLD_ALERTS.c.key, unique=True,
    sqlite_where=_OLD_ALERTS.c.status != "resolved",
    postgresql_where=_OLD_ALERTS.c.status != "resolved",
)  # fmt: skip
_OLD_ENGINE_STATE = sa.Table(
    "engine_state", _OLD,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("pending_since", UtcDateTime),
    sa.Column("clear_since", UtcDateTime),
    sa.Column("last_notified_at", UtcDateTime),
    sa.Column("last_notified_kind", sa.String(16)),
    sa.Column("alert_id", sa.Integer),
    sa.Column("alert_open", sa.Boolean, nullable=False, default=False),
    sa.Column("due_at", UtcDateTime),  # then: the next time to look (open, resolve, remind)
    sa.Column("finding", sa.JSON, nullable=False),
)  # fmt: skip
NEW_COLUMNS = [
    "alerts.since", "engine_state.scope", "engine_state.remind_at",
    "engine_state.notify_pending",
]  # fmt: skip


def _old_store(db: Database, engine_due_at: datetime | None = None) -> None:
    """The tables as an earlier version created them, with an open alert on KEY (opened
    at 60, notified) and its engine state."""
    old = finding(True, 60)
    stored_finding = {
        "rule": old.rule, "key": old.key, "subject": old.subject, "school": old.school,
        "device": old.device, "category": old.category, "severity": old.severity,
        "active": True, "at": old.at.isoformat(), "summary": old.summary,
        "action": old.action, "evidence": old.evidence,
    }  # fmt: skip
    engine = db.engine()
    try:
        _OLD.create_all(engine)
        with engine.begin() as conn:
            conn.execute(
                _OLD_ALERTS.insert().values(
                    key=KEY, rule=old.rule, subject=old.subject, school=old.school,
                    device=old.device, category=old.category, severity=old.severity,
                    status="open", opened_at=at(60), updated_at=at(60), summary=old.summary,
                    action=old.action, evidence=json.loads(json.dumps(old.evidence)),
                )
            )  # fmt: skip
            conn.execute(
                _OLD_ENGINE_STATE.insert().values(
                    key=KEY, rule=old.rule, last_notified_at=at(60), last_notified_kind="opened",
                    alert_id=1, alert_open=True, due_at=engine_due_at, finding=stored_finding,
                )
            )  # fmt: skip
    finally:
        engine.dispose()


def _columns(db: Database) -> dict[str, set[str]]:
    engine = db.engine()
    try:
        inspector = sa.inspect(engine)
        return {
            t: {c["name"] for c in inspector.get_columns(t)} for t in ("alerts", "engine_state")
        }
    finally:
        engine.dispose()


def test_an_old_store_gets_the_new_columns_and_keeps_its_rows(db: Database) -> None:
    _old_store(db)
    assert "since" not in _columns(db)["alerts"]
    store = db()  # AlertStore.create_tables(): create_all, then add_missing_columns
    columns = _columns(db)
    for name in NEW_COLUMNS:
        table, column = name.split(".")
        assert column in columns[table], name
    alert = store.get_alert(1)
    assert (alert.key, alert.status, alert.opened_at, alert.since) == (KEY, "open", at(60), None)
    assert alert.evidence == {"health_pct": 52.0, "sample_at": at(60).isoformat()}
    state = store.engine_states.get(KEY)
    assert state is not None
    assert (state.alert_id, state.alert_open, state.last_notified_kind) == (1, True, "opened")
    # Upgraded: the scope from the key; the next look at the key on the collector's
    # clock from its last notification (the engine reschedules it if not due yet).
    assert (state.scope, state.remind_at, state.notify_pending) == (
        "d:0310001A/PC-0042", at(60), False,
    )  # fmt: skip
    assert state.finding["at"] == at(60).isoformat()
    # The new columns are usable, the old unique key still holds, and it is all done once.
    store.engine_states.put_many([_state("new", remind_at=at(5), notify_pending=True)])
    assert store.engine_states.get("new") == _state("new", remind_at=at(5), notify_pending=True)
    assert store.try_open_alert(finding(True, 70), at(70))[0].id == 1
    engine = db.engine()
    try:
        assert schema.add_missing_columns(engine) == []
    finally:
        engine.dispose()


def test_add_missing_columns_names_what_it_added(db: Database) -> None:
    _old_store(db)
    engine = db.engine()
    try:
        assert schema.add_missing_columns(engine) == NEW_COLUMNS
        assert schema.add_missing_columns(engine) == []
    finally:
        engine.dispose()


def test_an_alert_open_before_the_upgrade_still_resolves_on_a_later_finding(
    db: Database,
) -> None:
    _old_store(db)
    store = db()
    engine = AlertEngine(store, timing)
    assert run(engine, 100, finding(False, 100)) == []
    assert run(engine, 300, finding(False, 300)) == [("resolved", 1)]
    assert store.get_alert(1).resolved_at == at(220)


def test_an_alert_open_before_the_upgrade_resolves_on_the_device_clock(db: Database) -> None:
    _old_store(db)
    store = db()
    engine = AlertEngine(store, timing)
    assert run(engine, 100, finding(False, 100)) == []
    assert tick(engine, 300) == [("resolved", 1)]


def test_an_alert_open_before_the_upgrade_survives_a_still_true_finding(db: Database) -> None:
    _old_store(db, engine_due_at=at(3660))  # the old engine's next reminder
    store = db()
    engine = AlertEngine(store, timing)
    assert run(engine, 4000, finding(True, 4000)) == []
    assert store.get_alert(1).status == "open"


def test_an_alert_open_before_the_upgrade_is_still_reminded(db: Database) -> None:
    _old_store(db)  # notified at 60, no timer running
    store = db()
    engine = AlertEngine(store, timing)
    assert run(engine, 4000, finding(True, 4000)) == []
    assert sweep(engine, 60 + 10 * 3600) == [("reminder", 1)]


def test_unsupported_database_is_named() -> None:
    with pytest.raises(AlertStoreError, match="url: unsupported database 'mysql', use sqlite or"):
        AlertStore("mysql://u:secret@localhost/db")
