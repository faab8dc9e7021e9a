"""The storage layer, on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from collector.alerts.store import (
    AlertNotFound,
    AlertStore,
    AlertStoreError,
    EngineState,
    InvalidTransition,
)
from tests.alerts.helpers import KEY, at, finding


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


def test_engine_state_round_trip_and_due_order(store: AlertStore) -> None:
    late = EngineState(key="b", rule="battery_replace", pending_since=at(0), due_at=at(60))
    early = EngineState(
        key="a", rule="battery_replace", alert_id=3, alert_open=True, clear_since=at(10),
        due_at=at(40), finding={"active": False, "evidence": {"health_pct": 64.0}},
    )  # fmt: skip
    idle = EngineState(key="c", rule="battery_replace", last_notified_at=at(5))
    for state in (late, early, idle):
        store.put_engine_state(state)
    assert store.get_engine_states(["a", "b", "c", "zz"]) == {"a": early, "b": late, "c": idle}
    assert [s.key for s in store.due_engine_states(at(59))] == ["a"]
    assert [s.key for s in store.due_engine_states(at(60))] == ["a", "b"]
    early.clear_since, early.due_at = None, None
    store.put_engine_state(early)
    assert store.get_engine_state("a") == early
    assert store.get_engine_state("zz") is None


def test_unsupported_database_is_named() -> None:
    with pytest.raises(AlertStoreError, match="url: unsupported database 'mysql', use sqlite or"):
        AlertStore("mysql://u:secret@localhost/db")
