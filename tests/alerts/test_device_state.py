"""The whole device state survives a collector restart (SQLite and the real
PostgreSQL server): a minimum-duration window in progress, untrusted readings
awaiting confirmation, and devices another collector saved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.alerting import Alerting
from collector.alerts.model import Alert
from collector.contract import Sample
from collector.rules import RulesConfig
from tests.alerts.helpers import Database
from tests.rules.factory import battery, sample

T0 = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)  # a Tuesday, in term
SCHOOL, DEVICE = "0341234A", "dev-1"


def _not_charging(minutes: int) -> Sample:
    cell = battery(90.0, plugged=True, status="not_charging", percent=40.0)
    return sample(T0 + timedelta(minutes=minutes), [cell])


def _feed(alerting: Alerting, smp: Sample) -> None:
    alerting.on_samples([(SCHOOL, DEVICE, smp)], smp.ts)


def _charging_alert(db: Database, restart_after: int | None) -> Alert:
    """Not charging from minute 0 (charging_fault waits 30 min); optionally stop the
    collector after `restart_after` minutes and go on with a new one."""
    alerting = Alerting(RulesConfig(), db())
    restarts = 0
    for minute in (0, 10, 20, 31):
        if restart_after is not None and restarts == 0 and minute > restart_after:
            restarts += 1
            alerting.stop()
            alerting = Alerting(RulesConfig(), db())
            assert alerting.restore() == 1
        _feed(alerting, _not_charging(minute))
        if minute < 30:
            assert alerting.store.list_alerts() == []
    assert restarts == (0 if restart_after is None else 1)
    [alert] = alerting.store.list_alerts()
    return alert


def test_a_restart_inside_the_minimum_duration_keeps_the_timer(db: Database) -> None:
    alert = _charging_alert(db, restart_after=15)
    assert (alert.rule, alert.opened_at) == ("charging_fault", T0 + timedelta(minutes=31))
    assert alert.since == T0  # the episode's start, in sample time
    # The condition's start survived: the evidence counts from minute 0, not 15.
    assert alert.evidence["since"] == T0.isoformat()
    assert alert.evidence["duration_s"] == 31 * 60
    assert "depuis 31 min" in alert.summary


def test_restarted_and_uninterrupted_collectors_agree(db: Database, postgres: Database) -> None:
    restarted = _charging_alert(db, restart_after=15)
    straight = _charging_alert(postgres, restart_after=None)
    fields = ("opened_at", "summary", "evidence")
    assert {f: getattr(restarted, f) for f in fields} == {f: getattr(straight, f) for f in fields}


def test_an_unconfirmed_collapse_stays_untrusted_across_a_restart(db: Database) -> None:
    first = Alerting(RulesConfig(), db())
    _feed(first, sample(T0, [battery(90.0)]))
    _feed(first, sample(T0 + timedelta(hours=1), [battery(50.0)]))  # a collapse: 1 of 3
    first.stop()
    second = Alerting(RulesConfig(), db())
    second.restore()
    _feed(second, sample(T0 + timedelta(hours=2), [battery(50.0)]))  # 2 of 3: still doubted
    assert second.store.list_alerts() == []
    bat = second.state(SCHOOL, DEVICE).batteries["BAT0"]
    assert (bat.collapse_from_pct, bat.collapse_seen, bat.untrusted_samples) == (90.0, 2, 2)
    _feed(second, sample(T0 + timedelta(hours=3), [battery(50.0)]))  # confirmed
    assert [a.rule for a in second.store.list_alerts()] == ["battery_replace"]


def test_a_device_new_to_this_collector_starts_from_the_saved_state(db: Database) -> None:
    """With several collectors, a device's messages may reach one that has not seen
    it: that one loads the device from the shared store on its first sample."""
    first = Alerting(RulesConfig(), db())
    for day in range(3):
        _feed(first, sample(T0 + timedelta(days=day), [battery(80.0 - day)]))
    first.stop()
    other = Alerting(RulesConfig(), db())  # started before the device was saved
    _feed(other, sample(T0 + timedelta(days=3), [battery(77.0)]))
    bat = other.state(SCHOOL, DEVICE).batteries["BAT0"]
    assert (bat.fade.n, bat.last_health_pct) == (4, 77.0)
    assert len(bat.history) == 18  # one ISO week so far


def _daily(alerting: Alerting, device: str, days: range) -> None:
    for day in days:
        ts = T0 + timedelta(days=day)
        alerting.on_samples([(SCHOOL, device, sample(ts, [battery(90.0)]))], ts)


def test_a_laptop_that_stops_reporting_is_silent_from_its_last_sample(db: Database) -> None:
    """dev-1 reports on Tuesday only, dev-2 every school day: once Wednesday to
    Friday are complete (dev-2's Monday sample, 12 h of the collector's connected
    clock later), dev-1 is silent since Tuesday."""
    alerting = Alerting(RulesConfig(), db())
    _daily(alerting, DEVICE, range(1))
    _daily(alerting, "dev-2", range(4))  # Tuesday to Friday
    assert alerting.store.list_alerts() == []
    _daily(alerting, "dev-2", range(6, 7))  # Monday 9 Nov
    assert alerting.store.list_alerts() == []  # Friday goes on until Monday's is old
    alerting.sweep(T0 + timedelta(days=6, hours=13))
    [alert] = alerting.store.list_alerts()
    friday_end = datetime(2026, 11, 6, 23, 0, tzinfo=UTC)  # midnight in Paris
    assert (alert.rule, alert.device, alert.status) == ("device_silent", DEVICE, "open")
    assert (alert.since, alert.opened_at) == (T0, friday_end)  # sample times
