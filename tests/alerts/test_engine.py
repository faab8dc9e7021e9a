"""The alert lifecycle, on SQLite and on the real PostgreSQL server.

Policy for these tests: open after 60 s, resolve after 120 s clear, repeat 1 h.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from collector.alerts.engine import AlertEngine, LifecyclePolicy, Notification
from collector.alerts.model import Finding
from collector.alerts.store import AlertStore
from tests.alerts.helpers import KEY, Database, at, finding

POLICY = LifecyclePolicy(min_duration_s=60, clear_duration_s=120, repeat_interval_s=3600)


@pytest.fixture
def engine(store: AlertStore) -> AlertEngine:
    return AlertEngine(store, POLICY)


def run(engine: AlertEngine, now_s: float, *findings: Finding) -> list[tuple[str, int]]:
    return summary(engine.process(list(findings), at(now_s)))


def summary(notifications: list[Notification]) -> list[tuple[str, int]]:
    return [(n.kind, n.alert.id) for n in notifications]


def history(store: AlertStore, alert_id: int) -> list[tuple[str | None, str, datetime, float]]:
    """(from, to, at, evidence health) of each transition."""
    return [
        (t.from_status, t.to_status, t.at, t.evidence["health_pct"])
        for t in store.transitions_of(alert_id)
    ]


def open_alert_at_60(engine: AlertEngine) -> None:
    assert run(engine, 0, finding(True, 0)) == []
    assert run(engine, 60, finding(True, 60)) == [("opened", 1)]


def test_opens_only_after_the_minimum_duration(engine: AlertEngine, store: AlertStore) -> None:
    assert run(engine, 0, finding(True, 0)) == []
    assert run(engine, 59, finding(True, 59)) == []
    assert store.list_alerts() == []
    # No finding needed at the due time: the sweep opens it.
    [opened] = engine.process([], at(60))
    assert (opened.kind, opened.alert.status, opened.alert.opened_at) == ("opened", "open", at(60))
    assert opened.evidence == {"health_pct": 52.0, "sample_at": at(59).isoformat()}
    assert history(store, 1) == [(None, "open", at(60), 52.0)]
    assert "condition active depuis 2026-03-02T08:00:00+00:00" in store.transitions_of(1)[0].note


def test_an_inactive_finding_resets_the_pending_timer(
    engine: AlertEngine, store: AlertStore
) -> None:
    assert run(engine, 0, finding(True, 0)) == []
    assert run(engine, 30, finding(False, 30)) == []
    assert run(engine, 40, finding(True, 40)) == []
    assert run(engine, 99) == []  # 0 + 60 passed, but the condition restarted at 40
    state = store.get_engine_state(KEY)
    assert state is not None and state.pending_since == at(40)
    assert run(engine, 100) == [("opened", 1)]


def test_inactive_findings_without_history_store_nothing(
    engine: AlertEngine, store: AlertStore
) -> None:
    assert run(engine, 0, finding(False, 0)) == []
    assert store.get_engine_state(KEY) is None


def test_resolves_after_the_clear_duration(engine: AlertEngine, store: AlertStore) -> None:
    open_alert_at_60(engine)
    assert run(engine, 100, finding(False, 100)) == []
    assert run(engine, 150, finding(True, 150)) == []  # came back: the clear timer restarts
    assert run(engine, 400) == []
    assert store.get_alert(1).status == "open"
    assert run(engine, 500, finding(False, 500)) == []
    assert run(engine, 619) == []
    [resolved] = engine.process([], at(620))
    assert (resolved.kind, resolved.alert.status, resolved.alert.resolved_at) == (
        "resolved", "resolved", at(620),
    )  # fmt: skip
    assert resolved.evidence["health_pct"] == 64.0  # the reading that cleared it
    assert history(store, 1) == [(None, "open", at(60), 52.0), ("open", "resolved", at(620), 64.0)]
    assert store.transitions_of(1)[1].note == "condition absente depuis 2026-03-02T08:08:20+00:00"


def test_flapping_back_within_the_repeat_interval_reopens_silently(
    engine: AlertEngine, store: AlertStore
) -> None:
    open_alert_at_60(engine)
    assert run(engine, 100, finding(False, 100)) == []
    assert run(engine, 220) == [("resolved", 1)]
    assert run(engine, 300, finding(True, 300)) == []
    assert run(engine, 360) == []  # re-opened, not notified again
    assert [(a.id, a.status, a.resolved_at) for a in store.list_alerts()] == [(1, "open", None)]
    assert run(engine, 400, finding(False, 400)) == []
    assert run(engine, 520) == []  # the technician's last news is already "resolved"
    assert history(store, 1) == [
        (None, "open", at(60), 52.0),
        ("open", "resolved", at(220), 64.0),
        ("resolved", "open", at(360), 52.0),
        ("open", "resolved", at(520), 64.0),
    ]
    assert "réouverte moins de 1 h après sa résolution" in store.transitions_of(1)[2].note


def test_coming_back_after_the_repeat_interval_is_a_new_notified_alert(
    engine: AlertEngine, store: AlertStore
) -> None:
    open_alert_at_60(engine)
    assert run(engine, 100, finding(False, 100)) == []
    assert run(engine, 220) == [("resolved", 1)]
    assert run(engine, 3820, finding(True, 3820)) == []  # resolved 3600 s before
    assert run(engine, 3880) == [("opened", 2)]
    assert [(a.id, a.status) for a in store.list_alerts()] == [(1, "resolved"), (2, "open")]


def test_open_alert_is_reminded_every_repeat_interval(engine: AlertEngine) -> None:
    open_alert_at_60(engine)
    assert run(engine, 3659, finding(True, 3659)) == []
    assert run(engine, 3660) == [("reminder", 1)]
    assert run(engine, 5000, finding(True, 5000)) == []
    assert run(engine, 7260) == [("reminder", 1)]


def test_acknowledged_alert_is_not_reminded(engine: AlertEngine, store: AlertStore) -> None:
    open_alert_at_60(engine)
    store.acknowledge(1, "m.durand", comment="je passe demain", at=at(70))
    for now_s in (3660, 7260, 86_400):
        assert run(engine, now_s, finding(True, now_s)) == []
    assert store.get_alert(1).status == "acknowledged"
    assert run(engine, 90_000, finding(False, 90_000)) == []
    assert run(engine, 90_120) == [("resolved", 1)]  # the resolution is still news
    statuses = [(t.from_status, t.to_status, t.by) for t in store.transitions_of(1)]
    assert statuses == [
        (None, "open", "engine"),
        ("open", "acknowledged", "m.durand"),
        ("acknowledged", "resolved", "engine"),
    ]


def test_latest_finding_per_key_wins_and_late_replays_are_ignored(
    engine: AlertEngine, store: AlertStore
) -> None:
    assert run(engine, 10, finding(True, 10), finding(False, 5)) == []
    state = store.get_engine_state(KEY)
    assert state is not None and state.pending_since == at(10)
    assert run(engine, 20, finding(False, 3)) == []  # older than the last reading seen
    assert run(engine, 70) == [("opened", 1)]
    other = "0310001A/PC-0043/BAT0/battery_replace"
    assert run(engine, 80, finding(False, 80, key=other), finding(True, 75, key=other)) == []
    assert store.get_engine_state(other) is None


def test_the_lifecycle_survives_a_restart(db: Database) -> None:
    first = AlertEngine(db(), POLICY)
    assert run(first, 0, finding(True, 0)) == []
    restarted = AlertEngine(db(), POLICY)  # a new process on the same database
    assert run(restarted, 60) == [("opened", 1)]
    assert run(restarted, 100, finding(False, 100)) == []
    assert run(AlertEngine(db(), POLICY), 220) == [("resolved", 1)]


def test_per_rule_overrides(store: AlertStore) -> None:
    policy = LifecyclePolicy(
        min_duration_s=600, per_rule={"battery_replace": {"min_duration_s": 0}}
    )
    engine = AlertEngine(store, policy)
    watch = "0310001A/PC-0042/BAT0/battery_watch"
    found = engine.process(
        [finding(True, 0), finding(True, 0, key=watch, rule="battery_watch")], at(0)
    )
    assert summary(found) == [("opened", 1)]
    assert store.find_open(watch) is None
    assert summary(engine.process([], at(600))) == [("opened", 2)]
    assert policy.for_rule("battery_replace").min_duration_s == 0
    assert policy.for_rule("battery_watch").min_duration_s == 600


def test_bad_policy_and_naive_times_are_named(store: AlertStore) -> None:
    with pytest.raises(
        ValueError, match=r"^min_duration_s must be a number of seconds >= 0, got -1$"
    ):
        LifecyclePolicy(min_duration_s=-1)
    with pytest.raises(ValueError, match=r"per_rule\.battery_watch: unknown setting 'min_s'"):
        LifecyclePolicy(per_rule={"battery_watch": {"min_s": 5}})
    with pytest.raises(ValueError, match=r"per_rule\.wifi_weak\.repeat_interval_s .* got 'x'"):
        LifecyclePolicy(per_rule={"wifi_weak": {"repeat_interval_s": "x"}})  # type: ignore[dict-item]
    engine = AlertEngine(store, POLICY)
    with pytest.raises(ValueError, match=r"now must be a timezone-aware datetime"):
        engine.process([], datetime(2026, 3, 2, 8, 0))
    with pytest.raises(
        ValueError, match=r"finding '0310001A/PC-0042/BAT0/battery_replace': at must"
    ):
        engine.process([replace(finding(True, 0), at=datetime(2026, 3, 2, 8, 0))], at(0))
    assert store.list_alerts() == []


def test_resolved_by_hand_while_still_failing_comes_back(
    engine: AlertEngine, store: AlertStore
) -> None:
    open_alert_at_60(engine)
    store.resolve(1, "m.durand", note="chargeur changé", at=at(100))
    assert run(engine, 3659, finding(True, 3659)) == []
    # Noticed at the reminder time; the condition must then hold the minimum duration.
    assert run(engine, 3660) == []
    assert store.list_alerts(status="open") == []
    assert run(engine, 3720, finding(True, 3720)) == [("opened", 2)]  # resolved > 1 h ago
    assert [(a.id, a.status, a.acknowledged_by) for a in store.list_alerts()] == [
        (1, "resolved", None),
        (2, "open", None),
    ]
