"""The alert lifecycle in sample time, on SQLite (engine cache on) and on the real
PostgreSQL server (cache off).

Timing for these tests (helpers.TIMING): open after 60 s, resolve after 120 s
clear, repeat 1 h. Times are seconds after T0; `run(engine, now, *findings)` gives
the findings with their device's clock at the latest of them, `tick` moves the
device's clock without a finding, `sweep` is the engine's sweep on the collector's
clock.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from collector.alerts.engine import AlertEngine
from collector.alerts.model import Finding
from collector.alerts.store import AlertStore
from collector.rules import RulesConfig
from collector.rules.config import RuleTiming
from tests.alerts.helpers import (
    BACKENDS,
    KEY,
    SCOPE,
    Database,
    at,
    clocks_of,
    database,
    finding,
    run,
    summary,
    sweep,
    tick,
    timing,
)

DAY = 86_400
OTHER = "0310001A/PC-0043/BAT0/battery_replace"  # another device: another clock


@pytest.fixture
def engine(store: AlertStore) -> AlertEngine:
    return AlertEngine(store, timing)


def history(store: AlertStore, alert_id: int) -> list[tuple[str | None, str, datetime, float]]:
    """(from, to, at, evidence health) of each transition."""
    return [
        (t.from_status, t.to_status, t.at, t.evidence["health_pct"])
        for t in store.transitions_of(alert_id)
    ]


def open_alert_at_60(engine: AlertEngine) -> None:
    assert run(engine, 0, finding(True, 0)) == []
    assert run(engine, 60, finding(True, 60)) == [("opened", 1)]


# --- minimum duration ---------------------------------------------------------------


def test_opens_at_the_first_active_finding_after_the_minimum_duration(
    engine: AlertEngine, store: AlertStore
) -> None:
    assert run(engine, 0, finding(True, 0)) == []
    assert run(engine, 59, finding(True, 59)) == []
    # The device's clock passes 0 + 60 s without a finding: no timer opens an alert.
    assert tick(engine, 200) == []
    assert sweep(engine, 200) == []
    assert store.list_alerts() == []
    [opened] = engine.process([finding(True, 300)], {SCOPE: at(300)}, at(305))
    assert (opened.kind, opened.alert.status) == ("opened", "open")
    # Opened at that finding's sample time, since the episode's start.
    assert (opened.alert.opened_at, opened.alert.since) == (at(300), at(0))
    assert opened.evidence == {"health_pct": 52.0, "sample_at": at(300).isoformat()}
    assert history(store, 1) == [(None, "open", at(300), 52.0)]
    assert store.transitions_of(1)[0].note == (
        "condition active depuis 2026-03-02T08:00:00+00:00 (durée minimale 1 min)"
    )


def test_an_inactive_finding_ends_the_episode(engine: AlertEngine, store: AlertStore) -> None:
    assert run(engine, 0, finding(True, 0)) == []
    assert run(engine, 30, finding(False, 30)) == []
    assert run(engine, 40, finding(True, 40)) == []
    assert run(engine, 99, finding(True, 99)) == []  # 0 + 60 passed, but it restarted at 40
    state = store.engine_states.get(KEY)
    assert state is not None
    assert (state.pending_since, state.scope, state.alert_open) == (at(40), SCOPE, False)
    assert run(engine, 100, finding(True, 100)) == [("opened", 1)]
    assert store.get_alert(1).since == at(40)


def test_inactive_findings_without_history_store_nothing(
    engine: AlertEngine, store: AlertStore
) -> None:
    assert run(engine, 0, finding(False, 0)) == []
    assert store.engine_states.get(KEY) is None


def test_a_finding_may_say_its_condition_started_earlier(
    engine: AlertEngine, store: AlertStore
) -> None:
    # A silent laptop: judged at a day's end, silent since its last sample.
    late = replace(finding(True, 1000), since=at(900))
    assert run(engine, 1000, late) == [("opened", 1)]  # 1000 - 900 >= 60: at once
    alert = store.get_alert(1)
    assert (alert.since, alert.opened_at) == (at(900), at(1000))
    assert "condition active depuis 2026-03-02T08:15:00+00:00" in store.transitions_of(1)[0].note
    other = replace(finding(True, 1000, key=OTHER), since=at(990))
    assert run(engine, 1000, other) == []
    state = store.engine_states.get(OTHER)
    assert state is not None and state.pending_since == at(990)
    assert run(engine, 1050, finding(True, 1050, key=OTHER)) == [("opened", 2)]
    assert store.get_alert(2).since == at(990)


# --- clear duration -----------------------------------------------------------------


def test_resolves_at_the_due_time_once_the_device_clock_passes_it(
    engine: AlertEngine, store: AlertStore
) -> None:
    open_alert_at_60(engine)
    assert run(engine, 100, finding(False, 100)) == []
    assert run(engine, 150, finding(True, 150)) == []  # came back: the clear timer stops
    assert tick(engine, 400) == []
    assert store.get_alert(1).status == "open"
    assert run(engine, 500, finding(False, 500)) == []
    state = store.engine_states.get(KEY)
    assert state is not None and (state.clear_since, state.due_at) == (at(500), at(620))
    assert tick(engine, 619) == []
    # No finding: the device's next sample (at 700) passes the due time, the alert
    # resolves AT the due time, not at the sample's time nor the collector's.
    [resolved] = engine.process([], {SCOPE: at(700)}, at(900))
    assert (resolved.kind, resolved.alert.status, resolved.alert.resolved_at) == (
        "resolved", "resolved", at(620),
    )  # fmt: skip
    assert resolved.evidence["health_pct"] == 64.0  # the reading that cleared it
    assert history(store, 1) == [(None, "open", at(60), 52.0), ("open", "resolved", at(620), 64.0)]
    assert store.transitions_of(1)[1].note == "condition absente depuis 2026-03-02T08:08:20+00:00"
    state = store.engine_states.get(KEY)
    assert state is not None and (state.alert_open, state.due_at, state.clear_since) == (
        False, None, None,
    )  # fmt: skip
    assert store.engine_states.with_clear_timer() == []


def test_only_the_key_s_own_clock_fires_its_timer(engine: AlertEngine, store: AlertStore) -> None:
    open_alert_at_60(engine)
    assert run(engine, 100, finding(False, 100)) == []
    # Another device, and the school's completed telemetry, are far ahead.
    assert run(engine, 2000, finding(True, 2000, key=OTHER), clocks={"s:0310001A": 3000}) == []
    assert store.get_alert(1).status == "open"
    assert tick(engine, 220) == [("resolved", 1)]  # the device itself reaches 100 + 120


def test_a_later_finding_of_the_key_fires_its_timer_first(
    engine: AlertEngine, store: AlertStore
) -> None:
    open_alert_at_60(engine)
    assert run(engine, 100, finding(False, 100)) == []
    # The next finding comes after the due time (220): resolved at 220, then the new
    # finding starts a new episode, which re-opens the same alert (within 1 h).
    assert run(engine, 250, finding(True, 250)) == [("resolved", 1)]
    assert store.get_alert(1).resolved_at == at(220)
    state = store.engine_states.get(KEY)
    assert state is not None and state.pending_since == at(250)
    assert run(engine, 310, finding(True, 310)) == []
    alert = store.get_alert(1)
    assert (alert.status, alert.since, alert.resolved_at) == (
        "open",
        at(0),
        None,
    )  # the first episode's start
    assert history(store, 1) == [
        (None, "open", at(60), 52.0),
        ("open", "resolved", at(220), 64.0),
        ("resolved", "open", at(310), 52.0),
    ]


def test_a_finding_at_the_due_time_fires_the_timer(engine: AlertEngine, store: AlertStore) -> None:
    open_alert_at_60(engine)
    assert run(engine, 100, finding(False, 100)) == []
    assert run(engine, 220, finding(True, 220)) == [("resolved", 1)]  # too late to cancel
    assert store.get_alert(1).resolved_at == at(220)


def test_a_zero_clear_duration_resolves_at_the_inactive_finding(store: AlertStore) -> None:
    engine = AlertEngine(store, lambda _rule: RuleTiming(clear_duration_s=0))
    assert run(engine, 0, finding(True, 0)) == [("opened", 1)]  # min duration 0: at once
    assert run(engine, 50, finding(False, 50)) == [("resolved", 1)]
    assert (store.get_alert(1).opened_at, store.get_alert(1).resolved_at) == (at(0), at(50))


# --- repeat interval ------------------------------------------------------------------


def test_flapping_back_within_the_repeat_interval_reopens_silently(
    engine: AlertEngine, store: AlertStore
) -> None:
    open_alert_at_60(engine)
    assert run(engine, 100, finding(False, 100)) == []
    assert tick(engine, 220) == [("resolved", 1)]
    assert run(engine, 300, finding(True, 300)) == []
    assert run(engine, 360, finding(True, 360)) == []  # re-opened, not notified again
    # The same alert, still "since" its first episode's start.
    assert [(a.id, a.status, a.resolved_at, a.since) for a in store.list_alerts()] == [
        (1, "open", None, at(0)),
    ]
    assert run(engine, 400, finding(False, 400)) == []
    assert tick(engine, 520) == []  # the technician's last news is already "resolved"
    assert history(store, 1) == [
        (None, "open", at(60), 52.0),
        ("open", "resolved", at(220), 64.0),
        ("resolved", "open", at(360), 52.0),
        ("open", "resolved", at(520), 64.0),
    ]
    assert store.transitions_of(1)[2].note == (
        "condition active depuis 2026-03-02T08:05:00+00:00 (durée minimale 1 min)"
        " ; réouverte moins de 1 h après sa résolution"
    )


def test_coming_back_after_the_repeat_interval_is_a_new_notified_alert(
    engine: AlertEngine, store: AlertStore
) -> None:
    open_alert_at_60(engine)
    assert run(engine, 100, finding(False, 100)) == []
    assert tick(engine, 220) == [("resolved", 1)]
    assert run(engine, 3760, finding(True, 3760)) == []
    # Opens at 3820, exactly 3600 s (sample time) after the resolution: a new alert.
    assert run(engine, 3820, finding(True, 3820)) == [("opened", 2)]
    assert [(a.id, a.status, a.since) for a in store.list_alerts()] == [
        (1, "resolved", at(0)),
        (2, "open", at(3760)),
    ]


def test_an_alert_reopened_by_flapping_is_still_reminded(
    engine: AlertEngine, store: AlertStore
) -> None:
    open_alert_at_60(engine)
    assert run(engine, 100, finding(False, 100)) == []
    assert tick(engine, 220) == [("resolved", 1)]
    assert run(engine, 300, finding(True, 300)) == []
    assert run(engine, 360, finding(True, 360)) == []  # re-opened silently
    assert store.get_alert(1).status == "open"
    # Open and unacknowledged, its last news ("resolved") and its re-opening are
    # both more than a repeat interval ago: the technician must be reminded.
    assert sweep(engine, 360 + 2 * 3600) == [("reminder", 1)]


# --- every finding of a batch ---------------------------------------------------------


def test_an_episode_can_open_and_resolve_inside_one_batch(
    engine: AlertEngine, store: AlertStore
) -> None:
    batch = [finding(True, 0), finding(True, 60), finding(False, 100), finding(False, 300)]
    assert run(engine, 300, *batch) == [("opened", 1), ("resolved", 1)]
    [alert] = store.list_alerts()
    assert (alert.since, alert.opened_at, alert.resolved_at) == (at(0), at(60), at(220))
    assert history(store, 1) == [(None, "open", at(60), 52.0), ("open", "resolved", at(220), 64.0)]


def test_the_clock_of_a_batch_fires_timers_after_its_findings(
    engine: AlertEngine, store: AlertStore
) -> None:
    batch = [finding(True, 0), finding(True, 60), finding(False, 100)]
    # The batch's other samples took the device's clock to 400: resolved at 220.
    assert run(engine, 400, *batch, clocks={SCOPE: 400}) == [("opened", 1), ("resolved", 1)]
    assert store.get_alert(1).resolved_at == at(220)


Sample = tuple[float, list[Finding]]  # one sample of a device: its time, its findings
FLAPPER = "0310001A/PC-0077/charging_fault"
AP = "0310001A/ap/9f2c4e/wifi_ap_fault"  # a window rule: the school's clock


def _flapper(active: bool, at_s: float) -> Finding:
    return finding(active, at_s, key=FLAPPER, rule="charging_fault", severity="warning")


def _ap(active: bool, at_s: float) -> Finding:
    return finding(
        active, at_s, key=AP, rule="wifi_ap_fault", subject="access_point", device=None,
        category="network", evidence={"degraded": 7 if active else 1},
    )  # fmt: skip


# Samples of three devices and the school's completed windows, in sample-time order.
TELEMETRY: list[tuple[str, Sample]] = [
    ("d:0310001A/PC-0042", (0, [finding(True, 0)])),
    ("d:0310001A/PC-0077", (0, [_flapper(True, 0)])),
    ("s:0310001A", (0, [_ap(True, 0)])),
    ("d:0310001A/PC-0042", (60, [finding(True, 60)])),  # opens
    ("d:0310001A/PC-0077", (60, [_flapper(True, 60)])),  # opens
    ("d:0310001A/PC-0042", (100, [finding(False, 100)])),  # due 220
    ("d:0310001A/PC-0077", (100, [_flapper(False, 100)])),  # due 220
    ("d:0310001A/PC-0042", (150, [finding(True, 150)])),  # cancels
    ("s:0310001A", (300, [_ap(False, 300)])),  # ends the episode before it opened
    ("d:0310001A/PC-0077", (400, [])),  # resolves at 220
    ("d:0310001A/PC-0077", (500, [_flapper(True, 500)])),
    ("d:0310001A/PC-0077", (560, [_flapper(True, 560)])),  # re-opens (flapping)
    ("s:0310001A", (900, [_ap(True, 900)])),
    ("d:0310001A/PC-0042", (1000, [finding(False, 1000)])),  # due 1120
    ("d:0310001A/PC-0077", (1000, [_flapper(False, 1000), _flapper(True, 1050)])),
    ("s:0310001A", (1800, [_ap(True, 1800)])),  # opens
    ("d:0310001A/PC-0042", (1200, [])),  # resolves at 1120
    ("d:0310001A/PC-0042", (5000, [finding(True, 5000), finding(True, 5100)])),  # new alert
    ("d:0310001A/PC-0077", (5000, [_flapper(False, 5000)])),
    ("s:0310001A", (6000, [_ap(False, 6000)])),
    ("d:0310001A/PC-0042", (5200, [finding(False, 5200)])),
    ("d:0310001A/PC-0077", (5300, [])),  # resolves at 5120
    ("d:0310001A/PC-0042", (5400, [])),  # resolves at 5320
    ("s:0310001A", (9000, [])),  # resolves at 6120
]


def _timing_with_ap(rule: str) -> RuleTiming:
    if rule == "wifi_ap_fault":
        return RuleTiming(min_duration_s=900, clear_duration_s=120, repeat_interval_s=3600)
    return timing(rule)


def _feed(store: AlertStore, size: int, cache: bool) -> dict[str, Any]:
    """Feed TELEMETRY in batches of `size` samples (the clocks of each batch at
    their latest sample; the collector's clock the same for all); dump the alerts,
    transitions, notifications and engine states."""
    engine = AlertEngine(store, _timing_with_ap, cache=cache)
    sent: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    for start in range(0, len(TELEMETRY), size):
        batch = TELEMETRY[start : start + size]
        findings = [f for _scope, (_t, found) in batch for f in found]
        clocks: dict[str, datetime] = {}
        for scope, (t, found) in batch:
            latest = max([at(t)] + [f.at for f in found])
            clocks[scope] = max(clocks.get(scope, latest), latest)
        for note in engine.process(findings, clocks, at(9000)):
            sent.setdefault(note.alert.id, []).append((note.kind, note.evidence))
    engine.flush()
    alerts = store.list_alerts()
    return {
        "alerts": [asdict(a) for a in alerts],
        "transitions": {a.id: [asdict(t) for t in store.transitions_of(a.id)] for a in alerts},
        "sent": sent,
        "states": store.engine_states.get_many([KEY, FLAPPER, AP]),
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_batches_of_any_size_give_the_same_alerts(backend: str, tmp_path: Path) -> None:
    results = []
    for size in range(1, len(TELEMETRY) + 1):
        with database(backend, str(tmp_path / f"{size}.sqlite3")) as db:
            results.append(_feed(db(), size, cache=size % 2 == 0))
    one_by_one = results[0]
    for size, result in enumerate(results, start=1):
        assert result == one_by_one, f"batches of {size} samples"
    alerts = [
        (a["id"], a["key"], a["status"], a["since"], a["opened_at"], a["resolved_at"])
        for a in one_by_one["alerts"]
    ]
    assert sorted(alerts) == [
        (1, KEY, "resolved", at(0), at(60), at(1120)),
        (2, FLAPPER, "resolved", at(0), at(60), at(5120)),  # since its first episode
        (3, AP, "resolved", at(900), at(1800), at(6120)),
        (4, KEY, "resolved", at(5000), at(5100), at(5320)),
    ]
    flaps = [(t["from_status"], t["to_status"], t["at"]) for t in one_by_one["transitions"][2]]
    assert flaps == [
        (None, "open", at(60)),
        ("open", "resolved", at(220)),
        ("resolved", "open", at(560)),  # flapped back: the same alert
        ("open", "resolved", at(5120)),  # the inactive reading at 1000 was cancelled
    ]
    kinds = {
        alert_id: [kind for kind, _ in notes] for alert_id, notes in one_by_one["sent"].items()
    }
    assert kinds == {
        1: ["opened", "resolved"],
        2: ["opened", "resolved"],  # its re-openings are silent, so are their ends
        3: ["opened", "resolved"],
        4: ["opened", "resolved"],
    }


def test_a_late_finding_is_ignored(engine: AlertEngine, store: AlertStore) -> None:
    assert run(engine, 10, finding(True, 10)) == []
    assert run(engine, 20, finding(False, 5)) == []  # older than the key's latest (10)
    state = store.engine_states.get(KEY)
    assert state is not None and state.pending_since == at(10)
    assert state.finding["at"] == at(10).isoformat()
    assert run(engine, 70, finding(True, 70)) == [("opened", 1)]
    assert store.get_alert(1).since == at(10)
    # With the alert open: a replayed active reading does not stop the clear timer.
    assert run(engine, 100, finding(False, 100)) == []
    assert run(engine, 110, finding(True, 90)) == []
    assert tick(engine, 220) == [("resolved", 1)]
    assert store.get_alert(1).resolved_at == at(220)


def test_a_late_finding_inside_a_batch_is_ignored(engine: AlertEngine, store: AlertStore) -> None:
    assert run(engine, 100, finding(True, 0), finding(True, 60), finding(False, 50)) == [
        ("opened", 1),
    ]
    state = store.engine_states.get(KEY)
    assert state is not None and (state.alert_open, state.clear_since) == (True, None)
    assert tick(engine, 1000) == []
    assert store.get_alert(1).status == "open"


# --- notifications on the collector's clock ---------------------------------------------


def test_open_alert_is_reminded_every_repeat_interval(
    engine: AlertEngine, store: AlertStore
) -> None:
    open_alert_at_60(engine)
    assert sweep(engine, 3659) == []
    assert run(engine, 3000, finding(True, 3000, evidence={"health_pct": 50.0})) == []
    [reminder] = engine.sweep(at(3660))  # the collector's clock, 1 h after "opened"
    assert (reminder.kind, reminder.alert.id, reminder.evidence) == (
        "reminder", 1, {"health_pct": 50.0},
    )  # fmt: skip
    assert sweep(engine, 3661) == []
    assert sweep(engine, 7259) == []
    assert sweep(engine, 7260) == [("reminder", 1)]
    state = store.engine_states.get(KEY)
    assert state is not None
    assert (state.last_notified_kind, state.last_notified_at, state.remind_at) == (
        "reminder", at(7260), at(10_860),
    )  # fmt: skip
    # Only a sweep reminds: processing findings past the reminder time does not.
    assert run(engine, 11_000, finding(True, 11_000)) == []
    assert sweep(engine, 11_000) == [("reminder", 1)]


def test_acknowledged_alert_is_not_reminded(engine: AlertEngine, store: AlertStore) -> None:
    open_alert_at_60(engine)
    store.acknowledge(1, "m.durand", comment="je passe demain", at=at(70))
    for now_s in (3660, 7260, 86_400):
        assert run(engine, now_s, finding(True, now_s)) == []
        assert sweep(engine, now_s) == []
    assert store.get_alert(1).status == "acknowledged"
    assert run(engine, 90_000, finding(False, 90_000)) == []
    assert tick(engine, 90_120) == [("resolved", 1)]  # the resolution is still news
    statuses = [(t.from_status, t.to_status, t.by) for t in store.transitions_of(1)]
    assert statuses == [
        (None, "open", "engine"),
        ("open", "acknowledged", "m.durand"),
        ("acknowledged", "resolved", "engine"),
    ]


def test_resolved_by_hand_while_still_failing_comes_back(
    engine: AlertEngine, store: AlertStore
) -> None:
    open_alert_at_60(engine)
    store.resolve(1, "m.durand", note="chargeur changé", at=at(100))
    assert run(engine, 3659, finding(True, 3659)) == []  # the engine still holds it open
    assert store.engine_states.open_but_resolved() == [(KEY, 1)]
    # The sweep takes the person's resolution in (and does not remind it).
    assert sweep(engine, 3660) == []
    assert store.engine_states.open_but_resolved() == []
    state = store.engine_states.get(KEY)
    assert state is not None
    assert (state.alert_open, state.pending_since, state.remind_at) == (False, None, None)
    # The condition must hold the minimum duration again; resolved > 1 h before.
    assert run(engine, 3700, finding(True, 3700)) == []
    assert store.list_alerts(status="open") == []
    assert run(engine, 3760, finding(True, 3760)) == [("opened", 2)]
    assert [(a.id, a.status, a.acknowledged_by, a.since) for a in store.list_alerts()] == [
        (1, "resolved", None, at(0)),
        (2, "open", None, at(3700)),
    ]
    assert [(t.to_status, t.by) for t in store.transitions_of(1)] == [
        ("open", "engine"),
        ("resolved", "m.durand"),
    ]


def test_a_clear_timer_on_an_alert_resolved_by_hand_sends_nothing(
    engine: AlertEngine, store: AlertStore
) -> None:
    open_alert_at_60(engine)
    store.resolve(1, "m.durand", note="batterie remplacée", at=at(90))
    assert run(engine, 100, finding(False, 100)) == []
    assert tick(engine, 220) == []  # already resolved: no second resolution
    assert [(t.to_status, t.by) for t in store.transitions_of(1)] == [
        ("open", "engine"),
        ("resolved", "m.durand"),
    ]
    state = store.engine_states.get(KEY)
    assert state is not None and (state.alert_open, state.due_at) == (False, None)


# --- old telemetry: recorded, notified only if still open ---------------------------------


@pytest.fixture
def mailed(store: AlertStore) -> AlertEngine:
    """An engine that writes its notifications to the outbox."""
    return AlertEngine(store, timing, outbox=True)


def test_an_old_episode_that_ended_before_the_sweep_is_recorded_but_never_mailed(
    mailed: AlertEngine, store: AlertStore
) -> None:
    # Two days later (a spool, an outage): the whole episode arrives at once.
    old = [finding(True, 0), finding(True, 60), finding(False, 100), finding(False, 300)]
    assert run(mailed, 2 * DAY, *old) == []
    [alert] = store.list_alerts()
    assert (alert.status, alert.since, alert.opened_at, alert.resolved_at) == (
        "resolved", at(0), at(60), at(220),
    )  # fmt: skip
    assert store.transitions_of(1)[0].note.endswith(" ; télémétrie arrivée en retard")
    assert sweep(mailed, 2 * DAY + 1) == []
    assert sweep(mailed, 3 * DAY) == []
    assert store.outbox.rows() == []
    state = store.engine_states.get(KEY)
    assert state is not None
    assert (state.notify_pending, state.remind_at, state.last_notified_kind) == (False, None, None)


def test_an_old_episode_still_open_at_the_sweep_is_mailed_then(
    mailed: AlertEngine, store: AlertStore
) -> None:
    assert run(mailed, 2 * DAY, finding(True, 0), finding(True, 100)) == []
    alert = store.find_open(KEY)
    assert alert is not None and (alert.since, alert.opened_at) == (at(0), at(100))
    state = store.engine_states.get(KEY)
    assert state is not None and (state.notify_pending, state.remind_at) == (True, at(2 * DAY))
    assert store.outbox.rows() == []
    # The next sweep sends its "opened", with the alert's true (sample) dates.
    [opened] = mailed.sweep(at(2 * DAY + 30))
    assert (opened.kind, opened.alert.id) == ("opened", alert.id)
    assert (opened.alert.since, opened.alert.opened_at) == (at(0), at(100))
    assert sweep(mailed, 2 * DAY + 60) == []  # once
    assert sweep(mailed, 2 * DAY + 30 + 3600) == [("reminder", 1)]
    # Its resolution is news now.
    assert run(mailed, 2 * DAY + 4000, finding(False, 4000)) == []
    assert tick(mailed, 4120, now_s=2 * DAY + 4100) == [("resolved", 1)]
    assert [(r.kind, r.created_at) for r in store.outbox.rows()] == [
        ("opened", at(2 * DAY + 30)),
        ("reminder", at(2 * DAY + 3630)),
        ("resolved", at(2 * DAY + 4100)),
    ]


def test_an_old_episode_resolved_by_hand_before_the_sweep_is_not_mailed(
    mailed: AlertEngine, store: AlertStore
) -> None:
    assert run(mailed, 2 * DAY, finding(True, 0), finding(True, 100)) == []
    store.resolve(1, "m.durand", note="déjà vu", at=at(2 * DAY + 10))
    assert sweep(mailed, 2 * DAY + 30) == []
    assert store.outbox.rows() == []
    assert store.engine_states.open_but_resolved() == []


def test_notify_max_age_is_measured_on_the_collector_s_clock(store: AlertStore) -> None:
    engine = AlertEngine(
        store, lambda _rule: RuleTiming(repeat_interval_s=3600), notify_max_age_s=600
    )
    assert run(engine, 600, finding(True, 0)) == [("opened", 1)]  # exactly 600 s old
    other = finding(True, 0, key=OTHER)
    assert summary(engine.process([other], clocks_of([other]), at(601))) == []
    assert sweep(engine, 601) == [("opened", 2)]


# --- restarts, timing, bad input --------------------------------------------------------


def test_the_lifecycle_survives_a_restart(db: Database) -> None:
    first = AlertEngine(db(), timing)
    assert run(first, 0, finding(True, 0)) == []
    restarted = AlertEngine(db(), timing)  # a new process on the same database
    assert run(restarted, 60, finding(True, 60)) == [("opened", 1)]
    assert run(restarted, 100, finding(False, 100)) == []
    # Another restart: the stored clear timer fires on the device's clock alone.
    assert tick(AlertEngine(db(), timing), 220) == [("resolved", 1)]
    store = db()
    assert run(AlertEngine(store, timing), 300, finding(True, 300)) == []
    assert run(AlertEngine(store, timing), 360, finding(True, 360)) == []  # re-opened, silent
    assert store.get_alert(1).status == "open"


def test_a_restart_keeps_the_reminder_due(db: Database) -> None:
    open_alert_at_60(AlertEngine(db(), timing))
    assert sweep(AlertEngine(db(), timing), 3659) == []
    assert sweep(AlertEngine(db(), timing), 3660) == [("reminder", 1)]


def test_per_rule_timing(store: AlertStore) -> None:
    def per_rule(rule: str) -> RuleTiming:
        if rule == "battery_replace":
            return RuleTiming(min_duration_s=0, clear_duration_s=120)
        return RuleTiming(min_duration_s=600, clear_duration_s=120)

    engine = AlertEngine(store, per_rule)
    watch = "0310001A/PC-0042/BAT0/battery_watch"
    batch = [finding(True, 0), finding(True, 0, key=watch, rule="battery_watch")]
    assert run(engine, 0, *batch) == [("opened", 1)]
    assert store.find_open(watch) is None
    assert run(engine, 599, finding(True, 599, key=watch, rule="battery_watch")) == []
    assert run(engine, 600, finding(True, 600, key=watch, rule="battery_watch")) == [
        ("opened", 2),
    ]
    assert "(durée minimale 10 min)" in store.transitions_of(2)[0].note


def test_the_production_timing_applies_per_rule(store: AlertStore) -> None:
    config = RulesConfig()
    engine = AlertEngine(store, config.timing)
    assert config.timing("battery_replace").min_duration_s == 0
    assert config.timing("charging_fault").min_duration_s > 0
    charging = "0310001A/PC-0042/charging_fault"
    batch = [finding(True, 0), finding(True, 0, key=charging, rule="charging_fault")]
    assert run(engine, 0, *batch) == [("opened", 1)]
    assert store.find_open(charging) is None
    with pytest.raises(KeyError, match="unknown rule 'nope'"):
        config.timing("nope")


def test_bad_timing_and_naive_times_are_named(store: AlertStore) -> None:
    with pytest.raises(ValidationError, match="min_duration_s"):
        RuleTiming(min_duration_s=-1)
    with pytest.raises(ValidationError, match="max_sample_age_s was removed"):
        RuleTiming.model_validate({"max_sample_age_s": 60})
    engine = AlertEngine(store, timing)
    naive = datetime(2026, 3, 2, 8, 0)
    with pytest.raises(ValueError, match=r"^now must be a timezone-aware datetime"):
        engine.process([], {}, naive)
    with pytest.raises(
        ValueError,
        match=r"^finding '0310001A/PC-0042/BAT0/battery_replace': at must be a timezone-aware",
    ):
        engine.process([replace(finding(True, 0), at=naive)], {SCOPE: at(0)}, at(0))
    with pytest.raises(ValueError, match=r"^now must be a timezone-aware datetime"):
        engine.sweep(naive)
    assert store.list_alerts() == []
    assert store.engine_states.get(KEY) is None


def test_a_naive_clock_is_refused_with_a_named_error_before_anything_changes(
    engine: AlertEngine, store: AlertStore
) -> None:
    with pytest.raises(ValueError, match=r"d:0310001A/PC-0042.*timezone-aware"):
        engine.process([finding(True, 0)], {SCOPE: datetime(2026, 3, 2, 8, 0)}, at(0))
    assert store.engine_states.get(KEY) is None


def test_a_naive_since_is_refused_with_a_named_error(
    engine: AlertEngine, store: AlertStore
) -> None:
    naive = replace(finding(True, 60), since=datetime(2026, 3, 2, 8, 0))
    with pytest.raises(
        ValueError,
        match=r"^finding '0310001A/PC-0042/BAT0/battery_replace': since must be a timezone-aware",
    ):
        run(engine, 60, naive)
    assert store.engine_states.get(KEY) is None
