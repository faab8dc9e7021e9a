"""When a school's telemetry is complete: the connected clock (collector.alerting.clock),
which runs only while telemetry can arrive and goes on after a restart, and the
completion it drives (collector.alerting.school, .core). A window is judged once
`lateness_s` of that clock has passed since its first report arrived; a day once a
later day's first report, anywhere in the region, is that old (a day runs for hours
after its first report); both in time order, stopping at the first not ready; a
school with nothing pending follows the rest of the region."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector.alerting import Alerting
from collector.alerting.clock import DEFAULT_LATENESS_S, ConnectedClock
from collector.alerting.evaluation import Evaluation
from collector.alerting.school import SchoolState
from collector.alerts.model import Alert, Finding
from collector.alerts.store import AlertStore
from collector.rules import DeviceState, RulesConfig, build_window_rules
from collector.rules.silent import day_end
from tests.calendars import ZONE_C, ZONE_C_SCHOOLS
from tests.rules.factory import AP, sample, state, wifi

PARIS = ZoneInfo("Europe/Paris")
MON = date(2026, 11, 23)  # a school week without holidays
TUE, WED, THU, FRI = (MON + timedelta(days=n) for n in range(1, 5))
NEXT_MON = MON + timedelta(days=7)
HOUR = 3600.0
DAY = 24 * HOUR
T = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # the collector's clock: Monday 10:00 Paris
CONFIG = RulesConfig()
WINDOW_RULES = build_window_rules(CONFIG)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A sample time, Paris local."""
    return datetime.combine(day, time(hour, minute), PARIS).astimezone(UTC)


def later(seconds: float) -> datetime:
    """The collector's clock, `seconds` after T."""
    return T + timedelta(seconds=seconds)


# --- the connected clock ------------------------------------------------------------


def test_the_clock_runs_only_between_resume_and_pause() -> None:
    clock = ConnectedClock()
    assert clock.paused
    assert clock.at(later(100)) == 0.0  # not started
    clock.resume(later(0))
    assert not clock.paused
    assert clock.at(later(100)) == 100.0
    clock.pause(later(100))
    assert clock.paused
    assert clock.connected_s == 100.0
    assert clock.at(later(5000)) == 100.0  # a long outage does not count
    clock.pause(later(6000))  # already paused: nothing moves
    assert clock.at(later(7000)) == 100.0
    clock.resume(later(8000))
    assert clock.at(later(8030)) == 130.0
    clock.resume(later(8500))  # subscribed again without a disconnection: no restart
    assert clock.at(later(9000)) == 1100.0
    # A collector's clock stepping back never runs the connected clock backwards.
    assert clock.at(later(7000)) == 100.0
    clock.pause(later(9000))
    assert clock.connected_s == 1100.0


def test_restore_goes_on_from_the_saved_clock() -> None:
    clock = ConnectedClock()
    clock.restore(50_000.0)
    assert clock.paused
    assert clock.at(later(0)) == 50_000.0
    clock.restore(30_000.0)  # another school's document, saved earlier: the later one wins
    assert clock.connected_s == 50_000.0
    clock.resume(later(0))
    assert clock.at(later(30)) == 50_030.0


def test_the_default_lateness_is_twelve_hours() -> None:
    assert DEFAULT_LATENESS_S == 12 * HOUR


# --- completion of one school (collector.alerting.school) ----------------------------


class School:
    """One school fed through the per-sample evaluation, with the connected clock given
    per sample (when its report reached the collector). `region`: the first report of
    each day in the other schools (connected clock)."""

    def __init__(self, lateness_s: float = HOUR) -> None:
        self.school = SchoolState("S")
        self.states: dict[str, DeviceState] = {}
        self.evaluation = Evaluation(CONFIG, ZONE_C_SCHOOLS)
        self.lateness_s = lateness_s
        self.region: dict[date, float] = {}

    def send(self, device: str, ts: datetime, clock_s: float, rssi: float = -55.0) -> None:
        st = self.states.setdefault(device, state(device, "S"))
        self.evaluation.sample(st, self.school, sample(ts, wifi=wifi(rssi)), clock_s)

    def next_day_touch(self, day: date) -> float | None:
        """The first report of a day after `day`, in this school or another of the
        region (what collector.alerting.core gives the schools)."""
        touches = list(self.school.day_touches(day + timedelta(days=1)).values())
        touches += [t for d, t in self.region.items() if d > day]
        return min(touches, default=None)

    def complete(self, clock_s: float, frontier: datetime | None = None) -> list[Finding]:
        return self.school.complete(
            clock_s, self.lateness_s, frontier, self.next_day_touch, self.states, CONFIG,
            WINDOW_RULES, ZONE_C,
        )  # fmt: skip


def test_a_window_is_complete_lateness_after_its_first_report_arrived() -> None:
    s = School()
    s.send("a", at(MON, 9, 0), clock_s=100)
    s.send("b", at(MON, 9, 5), clock_s=2000)  # a later report does not push it back
    assert s.school.windows[int(at(MON, 9).timestamp())].touched_s == 100
    assert s.school.days[MON].touched_s == 100
    assert s.complete(100 + HOUR - 1) == []
    assert s.school.final_until is None
    assert s.school.pending() == 2
    s.complete(100 + HOUR)
    assert s.school.final_until == at(MON, 9, 15)
    # The day goes on: its first report being an hour old does not end it.
    assert set(s.school.days) == {MON}
    assert s.school.history == {}


def test_a_day_is_complete_lateness_after_a_later_day_s_first_report() -> None:
    s = School()
    s.send("a", at(MON, 8), clock_s=0)
    s.complete(20 * HOUR)  # Monday's first report is 20 h old, no later day has begun
    assert s.school.final_until == at(MON, 8, 15)
    assert set(s.school.days) == {MON}
    s.send("b", at(TUE, 8), clock_s=30 * HOUR)  # Tuesday's first report
    s.send("a", at(TUE, 7), clock_s=31 * HOUR)  # an earlier sample, reported later
    assert s.school.days[TUE].touched_s == 30 * HOUR  # the first to arrive, not the earliest
    assert s.complete(31 * HOUR - 1) == []
    assert s.school.final_until == at(MON, 8, 15)
    s.complete(31 * HOUR)  # Monday; window Tue 7:00 was first reported at 31 h
    assert s.school.final_until == day_end(MON)
    assert s.school.history[MON].reported == 1
    assert s.school.history[MON].touched_s == 0
    s.complete(32 * HOUR)  # Tuesday's windows; Tuesday itself goes on
    assert s.school.final_until == at(TUE, 8, 15)
    assert set(s.school.days) == {TUE}


def test_a_later_day_anywhere_in_the_region_completes_the_day() -> None:
    s = School()
    s.send("a", at(FRI, 9), clock_s=0)
    s.region[THU] = 0.0  # an earlier day elsewhere does not end Friday
    s.complete(3 * DAY)  # the weekend: nothing reports, Friday goes on
    assert s.school.final_until == at(FRI, 9, 15)
    assert s.school.pending() == 1
    s.region[NEXT_MON] = 3 * DAY  # another school's first report on Monday
    assert s.complete(3 * DAY + HOUR - 1) == []
    assert s.school.pending() == 1
    s.complete(3 * DAY + HOUR)
    assert s.school.final_until == day_end(FRI)
    assert s.school.pending() == 0


def test_completion_stops_at_the_first_window_not_ready() -> None:
    s = School()
    s.send("a", at(MON, 9, 20), clock_s=0)  # window 9:15, first reported at 0
    s.send("b", at(MON, 9, 5), clock_s=1000)  # window 9:00, first reported at 1000
    s.complete(HOUR)  # 9:15 is ready, but 9:00 comes first and is not
    assert s.school.final_until is None
    assert s.school.pending() == 3
    s.complete(1000 + HOUR)
    assert s.school.final_until == at(MON, 9, 30)
    assert s.school.pending() == 1  # Monday, until a later day begins


def test_a_day_waits_for_its_windows() -> None:
    s = School()
    s.send("a", at(MON, 9, 0), clock_s=0)  # the day's first report
    s.send("b", at(TUE, 8, 0), clock_s=100)  # Tuesday's first report
    s.send("a", at(MON, 15, 0), clock_s=20_000)  # Monday afternoon's window, spooled
    s.complete(100 + HOUR)  # Tuesday's first report is an hour old, 15:00 is not
    assert s.school.final_until == at(MON, 9, 15)  # up to the end of the window judged
    assert set(s.school.days) == {MON, TUE}
    s.complete(20_000 + HOUR)  # window 15:00, Monday, then window Tue 8:00
    assert s.school.final_until == at(TUE, 8, 15)
    assert set(s.school.days) == {TUE}


def test_a_school_with_nothing_pending_follows_the_region() -> None:
    s = School()
    assert s.complete(HOUR, frontier=at(TUE, 0)) == []
    assert s.school.final_until == at(TUE, 0)
    s.complete(2 * HOUR, frontier=at(MON, 0))  # never back
    assert s.school.final_until == at(TUE, 0)
    s.send("a", at(TUE, 9), clock_s=3 * HOUR)
    s.complete(3 * HOUR + 1, frontier=at(TUE, 12))  # something pending: its own pace
    assert s.school.final_until == at(TUE, 0)
    s.complete(4 * HOUR, frontier=at(WED, 0))
    assert s.school.final_until == at(TUE, 9, 15)  # Tuesday is still pending
    s.region[WED] = 5 * HOUR
    s.complete(6 * HOUR, frontier=at(WED, 0))
    assert s.school.final_until == day_end(TUE)


def test_day_touches_are_each_day_s_first_report_pending_or_completed() -> None:
    s = School()
    s.send("a", at(MON, 9), clock_s=10)
    s.send("a", at(TUE, 9), clock_s=20)
    s.send("b", at(TUE, 10), clock_s=30)
    s.send("a", at(WED, 9), clock_s=40)
    s.complete(20 + HOUR)  # Monday, window Tue 9:00; window Tue 10:00 is not ready
    assert set(s.school.history) == {MON}
    assert set(s.school.days) == {TUE, WED}
    assert s.school.day_touches(MON) == {MON: 10, TUE: 20, WED: 40}
    assert s.school.day_touches(TUE) == {TUE: 20, WED: 40}
    assert s.school.day_touches(THU) == {}


# --- through Alerting: pause, restart, the region -----------------------------------


def progress(school: SchoolState) -> tuple[datetime | None, int]:
    """How far the school is complete, and what it still waits for."""
    return school.final_until, school.pending()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AlertStore]:
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.sqlite3'}")
    store.create_tables()
    yield store
    store.close()


def test_nothing_completes_during_a_broker_outage(store: AlertStore) -> None:
    alerting = Alerting(CONFIG, store, lateness_s=HOUR, calendar=ZONE_C_SCHOOLS)
    alerting.on_samples([("A", "a1", sample(at(MON, 9), wifi=wifi()))], at(MON, 9, 1))
    tuesday = at(TUE, 8, 1)  # 23 h of connected time later
    alerting.on_samples([("A", "a1", sample(at(TUE, 8), wifi=wifi()))], tuesday)
    school = alerting.schools["A"]
    assert progress(school) == (at(MON, 9, 15), 3)  # Monday, Tuesday and its window
    alerting.pause(tuesday + timedelta(minutes=30))
    back = tuesday + timedelta(days=3)
    alerting.sweep(back)  # three days later, still disconnected
    assert progress(school) == (at(MON, 9, 15), 3)
    alerting.resume(back)
    alerting.sweep(back + timedelta(seconds=1799))
    assert progress(school) == (at(MON, 9, 15), 3)
    alerting.sweep(back + timedelta(seconds=1800))  # Tuesday's first report: 1 h old
    assert progress(school) == (at(TUE, 8, 15), 1)


def test_the_clock_goes_on_after_a_restart(store: AlertStore) -> None:
    alerting = Alerting(CONFIG, store, lateness_s=HOUR, calendar=ZONE_C_SCHOOLS)
    alerting.on_samples([("A", "a1", sample(at(MON, 9), wifi=wifi()))], later(0))
    alerting.on_samples([("A", "a2", sample(at(MON, 9, 20), wifi=wifi()))], later(1200))
    alerting.stop()

    restarted = Alerting(CONFIG, store, lateness_s=HOUR, calendar=ZONE_C_SCHOOLS)
    restarted.restore()
    assert restarted.clock.connected_s == 1200.0
    back = at(WED, 12)  # two days later
    restarted.resume(back)
    restarted.sweep(back + timedelta(seconds=2399))
    school = restarted.schools["A"]
    assert progress(school) == (None, 3)
    restarted.sweep(back + timedelta(seconds=2400))  # window 9:00: first report at 0
    assert progress(school) == (at(MON, 9, 15), 2)
    restarted.sweep(back + timedelta(seconds=3600))  # window 9:15: first report at 1200
    assert progress(school) == (at(MON, 9, 30), 1)  # Monday goes on
    a2 = restarted.state("A", "a2")
    assert a2 is not None
    assert a2.window_start is None  # its readings, held in its state, were judged
    wednesday = back + timedelta(hours=1)  # the connected clock: 4800
    restarted.on_samples([("A", "a1", sample(at(WED, 12), wifi=wifi()))], wednesday)
    restarted.sweep(wednesday + timedelta(seconds=3599))
    assert progress(school) == (at(MON, 9, 30), 3)
    restarted.sweep(wednesday + timedelta(seconds=3600))
    assert progress(school) == (at(WED, 12, 15), 1)
    assert school.history[MON].reported == 2


def test_a_restart_after_a_quiet_spell_goes_on_from_where_the_clock_stopped(
    store: AlertStore,
) -> None:
    alerting = Alerting(CONFIG, store, lateness_s=12 * HOUR, calendar=ZONE_C_SCHOOLS)
    alerting.on_samples([("A", "a1", sample(at(MON, 9), wifi=wifi()))], at(MON, 9, 1))
    alerting.tick(at(MON, 12, 1))  # three quiet hours: no device or school changed
    alerting.stop()
    restarted = Alerting(CONFIG, store, lateness_s=12 * HOUR, calendar=ZONE_C_SCHOOLS)
    restarted.restore()
    assert restarted.clock.connected_s == 3 * HOUR
    back = at(TUE, 7)
    restarted.resume(back)
    school = restarted.schools["A"]
    restarted.sweep(back + timedelta(hours=9) - timedelta(seconds=1))
    assert progress(school) == (None, 2)
    restarted.sweep(back + timedelta(hours=9))  # window 9:00: 12 h after its first report
    assert progress(school) == (at(MON, 9, 15), 1)


def _school_silent(store: AlertStore) -> list[Alert]:
    return [a for a in store.list_alerts() if a.rule == "school_silent"]


def test_a_dark_school_follows_the_region_and_is_judged_silent(store: AlertStore) -> None:
    alerting = Alerting(CONFIG, store, lateness_s=HOUR, calendar=ZONE_C_SCHOOLS)

    def report(day: date, *schools: str) -> datetime:
        """Each school's laptop reports at 9:00, received a minute later."""
        batch = [(s, f"{s.lower()}1", sample(at(day, 9), wifi=wifi())) for s in schools]
        alerting.on_samples(batch, at(day, 9, 1))
        return at(day, 9, 1)

    report(MON, "A", "B")
    alerting.sweep(at(MON, 11))  # the windows 9:00; Monday goes on
    school_a, school_b = alerting.schools["A"], alerting.schools["B"]
    assert progress(school_b) == (at(MON, 9, 15), 1)
    tuesday = report(TUE, "A")  # only A reports
    alerting.sweep(tuesday + timedelta(minutes=59))
    assert progress(school_b) == (at(MON, 9, 15), 1)
    alerting.sweep(tuesday + timedelta(hours=1))  # A's Tuesday ends B's Monday too
    assert progress(school_b) == (day_end(MON), 0)
    assert school_b.history[MON].active
    assert progress(school_a) == (at(TUE, 9, 15), 1)
    assert school_b.judged_day == MON
    wednesday = report(WED, "A")
    alerting.sweep(wednesday + timedelta(minutes=59))
    assert school_a.final_until == at(TUE, 9, 15)
    assert _school_silent(store) == []  # Tuesday is not complete: not judged yet
    alerting.sweep(wednesday + timedelta(hours=1))  # A completes Tuesday
    alerting.sweep(wednesday + timedelta(hours=1, minutes=5))
    assert school_a.final_until == at(WED, 9, 15)
    # B has nothing pending: it follows the first day the region waits for.
    assert progress(school_b) == (day_end(TUE), 0)
    assert school_b.judged_day == TUE
    [alert] = _school_silent(store)
    assert (alert.key, alert.status, alert.opened_at) == ("B/school_silent", "open", day_end(TUE))
    assert alert.since == at(MON, 9)  # B's last report before the silence


def test_the_clock_remembers_the_broker_outages() -> None:
    clock = ConnectedClock()
    t0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    clock.pause(t0)  # not started: nothing lost
    clock.resume(t0)
    clock.pause(t0 + timedelta(hours=1))
    assert clock.outages == [((t0 + timedelta(hours=1)).timestamp(), None)]
    s = (t0 + timedelta(hours=1)).timestamp()
    assert clock.down_during(s + 3600, s + 4500, 0)  # still down
    clock.resume(t0 + timedelta(hours=2))
    e = (t0 + timedelta(hours=2)).timestamp()
    assert clock.outages == [(s, e)]
    assert clock.down_during(s - 900, s + 1, 0)  # the window it began in
    assert not clock.down_during(s - 900, s, 0)  # the one before
    assert clock.down_during(e + 100, e + 1000, 600)  # within the reconnection margin
    assert not clock.down_during(e + 600, e + 1500, 600)
    again = ConnectedClock()
    again.restore(10.0, [[s, e]])
    again.restore(5.0, [[s, e]])  # another school's copy: once
    assert again.outages == [(s, e)]


def _cut_off_hour(alerting: Alerting, received: datetime, cause: str) -> None:
    """Six laptops on one access point unable to connect from 10:00 to 11:00 (Paris),
    then online, their reports arriving at `received` (spooled)."""
    from collector.contract import Connectivity  # noqa: PLC0415

    batch = []
    for minute in range(0, 120, 15):
        cut = minute < 60
        block = Connectivity(
            broker_ok=not cut, school_online_s=0.0 if cut else 900.0,
            school_unreachable_s=900.0 if cut else 0.0, failure=cause if cut else None,
        )  # fmt: skip
        ts = at(MON, 10 + minute // 60, minute % 60)
        for n in range(6):
            smp = sample(ts, wifi=wifi()).model_copy(update={"connectivity": block})
            batch.append(("A", f"a{n}", smp))
    alerting.on_samples(batch, received)


def _reach_alerts(store: AlertStore) -> list[str]:
    return sorted(a.key for a in store.list_alerts() if a.rule == "ap_unreachable")


@pytest.mark.parametrize("cause", ["connect", "timeout", "dns"])
def test_laptops_cut_off_while_the_broker_was_away_are_not_a_school_fault(
    tmp_path: Path, cause: str
) -> None:
    """The collector lost the broker 9:55-11:00: laptops that could not connect then
    were cut off by the broker's absence (no alert), unless their school's DNS
    failed. The same telemetry with the broker up gives one ap_unreachable. The
    outage is kept through a restart."""
    results = {}
    for outage in (True, False):
        store = AlertStore(f"sqlite:///{tmp_path / f'{cause}-{outage}.sqlite3'}")
        store.create_tables()
        alerting = Alerting(CONFIG, store, lateness_s=HOUR, calendar=ZONE_C_SCHOOLS)
        alerting.resume(at(MON, 8))
        alerting.on_samples([("A", "a0", sample(at(MON, 8), wifi=wifi()))], at(MON, 8, 1))
        if outage:
            alerting.pause(at(MON, 9, 55))
            alerting.resume(at(MON, 11))
            alerting.stop()
            restarted = Alerting(CONFIG, store, lateness_s=HOUR, calendar=ZONE_C_SCHOOLS)
            restarted.restore()
            assert restarted.clock.outages == alerting.clock.outages
            alerting = restarted
            alerting.resume(at(MON, 11))
        _cut_off_hour(alerting, at(MON, 12), cause)
        alerting.sweep(at(MON, 14))
        results[outage] = _reach_alerts(store)
        store.close()
    key = f"A/ap/{AP}/ap_unreachable"
    assert results[False] == [key]
    assert results[True] == ([key] if cause == "dns" else [])
