"""One school's telemetry per window and day, judged once complete
(collector.alerting.school): intake, time order, access points before laptops' Wi-Fi,
silent laptops and schools, the state document (collector.alerting.persistence), and
the collector's late and stale counters (collector.alerting.core).

A day is judged only once a later day has begun somewhere in the region (its first
report `lateness_s` old): the tests feed a report on the following day, or after the
weekend, before they expect a day's verdict."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from collector.alerting import Alerting
from collector.alerting.evaluation import Evaluation
from collector.alerting.persistence import from_document, to_document
from collector.alerting.school import Gap, SchoolState, gap_chain, gap_list
from collector.alerts.model import Finding
from collector.alerts.store import AlertStore
from collector.contract import Wifi
from collector.rules import DeviceState, RulesConfig, build_window_rules
from collector.rules import persist as device_persist
from collector.rules.silent import day_end, local_day
from collector.rules.wifi import COVERED
from tests.calendars import ZONE_C, ZONE_C_SCHOOLS
from tests.rules.factory import AP, SCHOOL, sample, state, wifi

PARIS = ZoneInfo("Europe/Paris")
MON = date(2026, 11, 23)  # the week of Monday 23 November 2026: no holiday
TUE, WED, THU, FRI = (MON + timedelta(days=n) for n in range(1, 5))
SAT, SUN = MON + timedelta(days=5), MON + timedelta(days=6)
LAST_FRI = MON - timedelta(days=3)
NEXT_MON, NEXT_TUE, NEXT_WED = (MON + timedelta(days=n) for n in range(7, 10))
AP2 = "2" * 16
HOUR = 3600.0
LATENESS = 12 * HOUR
ALL = 1e12  # a connected clock by which all is complete but the latest day
CONFIG = RulesConfig()


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A sample time, Paris local."""
    return datetime.combine(day, time(hour, minute), PARIS).astimezone(UTC)


def weak(bssid: str = AP) -> Wifi:
    return wifi(-85.0, bssid_hash=bssid)


def good(bssid: str = AP) -> Wifi:
    return wifi(-55.0, bssid_hash=bssid)


def silent_after(days: int) -> RulesConfig:
    return RulesConfig.model_validate({"device_silent": {"school_days": days}})


class School:
    """One school fed as the collector feeds it: each sample through the per-sample
    evaluation (rules, then the school's intake, then the device state), with the
    connected clock at which it arrived. `region`: the first report of each day in
    the other schools (connected clock)."""

    def __init__(self, config: RulesConfig = CONFIG) -> None:
        self.config = config
        self.school = SchoolState(SCHOOL)
        self.states: dict[str, DeviceState] = {}
        self.evaluation = Evaluation(config, ZONE_C_SCHOOLS)
        self.window_rules = build_window_rules(config)
        self.clock_s = 0.0
        self.region: dict[date, float] = {}

    def send(self, device: str, ts: datetime, reading: Wifi | None = None) -> None:
        st = self.states.setdefault(device, state(device, SCHOOL))
        self.evaluation.sample(st, self.school, sample(ts, wifi=reading), self.clock_s)

    def next_day_touch(self, day: date) -> float | None:
        """The first report of a day after `day`, in this school or another of the
        region (what collector.alerting.core gives the schools)."""
        touches = list(self.school.day_touches(day + timedelta(days=1)).values())
        touches += [t for d, t in self.region.items() if d > day]
        return min(touches, default=None)

    def complete(self, clock_s: float = ALL) -> list[Finding]:
        return self.school.complete(
            clock_s, LATENESS, None, self.next_day_touch, self.states, self.config,
            self.window_rules, ZONE_C,
        )  # fmt: skip

    def judge_day(self, day: date, others_reported: bool = True) -> list[Finding]:
        found = self.school.judge_day(day, others_reported, self.config, ZONE_C)
        self.school.judged_day = day  # as the region does (collector.alerting.core)
        return found


def brief(findings: list[Finding]) -> list[tuple[str, bool, datetime]]:
    """(key without the school, active, at) of each finding, in order."""
    return [(f.key.removeprefix(f"{SCHOOL}/"), f.active, f.at) for f in findings]


def start_s(ts: datetime) -> int:
    return int(ts.timestamp())


AP_FAULT = f"ap/{AP}/wifi_ap_fault"


# --- intake ---------------------------------------------------------------------------


def test_each_laptop_counts_once_per_local_day() -> None:
    s = School()
    s.clock_s = 10.0
    s.send("d1", at(MON, 10))
    s.clock_s = 20.0
    s.send("d1", at(MON, 14))
    s.send("d2", at(MON, 11))
    after_midnight = at(TUE, 0, 30)
    assert after_midnight.date() == MON  # still Monday in UTC: a Tuesday in Paris
    s.clock_s = 30.0
    s.send("d1", after_midnight)
    s.send("d1", at(TUE, 8))
    mon, tue = s.school.days[MON], s.school.days[TUE]
    assert (mon.reported, mon.first_ts, mon.last_ts, mon.touched_s) == (
        2, at(MON, 10), at(MON, 14), 10.0,
    )  # fmt: skip
    assert (tue.reported, tue.first_ts, tue.last_ts, tue.touched_s) == (
        1, after_midnight, at(TUE, 8), 30.0,
    )  # fmt: skip
    assert s.school.pending() == 2  # two days, no window (no Wi-Fi reading)


def test_a_laptop_s_readings_join_the_school_s_window_when_it_moves_on() -> None:
    s = School()
    s.send("d1", at(MON, 9, 0), good())
    s.send("d1", at(MON, 9, 5), wifi(-74.0))  # past the clear level (-72), not weak
    nine = start_s(at(MON, 9))
    st = s.states["d1"]
    assert st.window_start == nine
    assert st.tallies is not None
    assert st.tallies[AP].readings == 2
    assert s.school.windows[nine].aps == {}  # still with the laptop
    s.send("d1", at(MON, 9, 20), good(AP2))  # a later window
    record = s.school.windows[nine]
    ap = record.aps[AP]
    assert (ap.seen, ap.degraded, ap.rssi_tenths, ap.rssi_laptops) == (1, [], -645, 1)
    # a reading near a threshold: its own verdict will be judged with the window
    [(device, tally)] = record.devices
    assert (device, tally.readings, tally.weak_hold) == ("d1", 2, 1)
    assert st.watch_until == nine
    assert st.window_start == start_s(at(MON, 9, 15))
    assert st.tallies is not None
    assert set(st.tallies) == {AP2}
    assert s.school.days[MON].aps == {AP, AP2}
    assert s.school.pending() == 3  # windows 9:00 and 9:15, Monday


def test_readings_off_the_school_network_do_not_count() -> None:
    s = School()
    s.send("d1", at(MON, 9), wifi(-85.0, on_school_network=False, ssid_state="other"))
    assert s.states["d1"].window_start is None
    assert s.school.windows == {}
    assert s.school.days[MON].reported == 1  # it still reported that day


def test_a_reading_for_a_complete_window_is_late_and_left_out() -> None:
    s = School()
    s.send("d1", at(MON, 9, 0), weak())
    s.clock_s = 1200.0
    s.send("d1", at(MON, 9, 20), good())
    s.complete(LATENESS)  # window 9:00 only: 9:15 was first reported at 1200
    assert s.school.final_until == at(MON, 9, 15)
    s.clock_s = LATENESS + 1
    s.send("d2", at(MON, 9, 10), weak())  # d2's first report, for window 9:00
    assert s.school.late == 1
    assert start_s(at(MON, 9)) not in s.school.windows
    assert s.states["d2"].window_start is None
    assert s.school.days[MON].reported == 2  # the day is not complete: it counts
    s.send("d2", at(MON, 9, 25), weak())  # window 9:15 is not complete
    assert s.school.late == 1
    assert s.states["d2"].window_start == start_s(at(MON, 9, 15))
    assert s.school.pending() == 2


def test_a_window_first_reported_in_time_is_never_late() -> None:
    s = School()  # the default lateness, 12 h
    s.clock_s = 0.0
    s.send("d1", at(MON, 8), good())  # the day's first report, live
    s.complete(LATENESS + 300)  # 20:05 in Paris: window 8:00 is judged, Monday goes on
    assert s.school.final_until == at(MON, 8, 15)
    s.clock_s = LATENESS + 1800
    s.send("d1", at(MON, 20, 30), weak())  # evening study, live: window 20:30's first
    assert s.school.late == 0
    assert start_s(at(MON, 20, 30)) in s.school.windows
    s.clock_s = 2 * LATENESS
    s.send("d2", at(TUE, 8), good())  # Tuesday's first report
    found = s.complete(3 * LATENESS - 1)  # window 20:30 is judged, with its reading
    assert brief(found) == [("d1/wifi_weak", True, at(MON, 20, 30))]
    assert s.school.final_until == at(MON, 20, 45)
    s.complete(3 * LATENESS)  # Monday, window Tue 8:00
    assert s.school.final_until == at(TUE, 8, 15)
    assert s.school.history[MON].last_ts == at(MON, 20, 30)
    assert s.school.late == 0


# --- completion: time order, access points before laptops ------------------------------


Send = tuple[str, datetime, Wifi | None]


def _two_days() -> list[Send]:
    """Monday: access point AP fails at 9:00 (five laptops weak), they move to AP2.
    Tuesday: on AP2, d0 alone is weak; L, seen Monday morning only, is silent.
    Wednesday: d1 reports at 8:00 (Tuesday can end)."""
    sends: list[Send] = [("L", at(MON, 8), None)]
    for n in range(5):
        sends += [(f"d{n}", at(MON, 9, 0), weak()), (f"d{n}", at(MON, 9, 5), weak())]
    sends += [(f"d{n}", at(MON, 9, 20), good(AP2)) for n in range(5)]
    for n in range(5):
        reading = weak(AP2) if n == 0 else good(AP2)
        sends += [(f"d{n}", at(TUE, 9, 0), reading), (f"d{n}", at(TUE, 9, 5), reading)]
    return [*sends, ("d1", at(WED, 8), None)]


def test_windows_and_days_are_judged_in_time_order() -> None:
    s = School(silent_after(1))
    for device, ts, reading in _two_days():  # all before any completion
        s.send(device, ts, reading)
    findings = s.complete()
    assert brief(findings) == [
        (AP_FAULT, True, at(MON, 9)),
        ("d0/wifi_weak", True, at(TUE, 9)),
        (AP_FAULT, False, day_end(TUE)),  # not used on an active day: cleared
        ("L/device_silent", True, day_end(TUE)),
    ]
    assert s.school.final_until == day_end(TUE)
    assert s.school.pending() == 1  # Wednesday, until a later day begins


def test_judged_as_they_complete_live_the_findings_are_the_same() -> None:
    bulk = School(silent_after(1))
    for device, ts, reading in _two_days():
        bulk.send(device, ts, reading)
    expected = bulk.complete()
    live = School(silent_after(1))
    base = at(MON, 0).timestamp()
    found: list[Finding] = []
    finals: dict[date, datetime | None] = {}  # how far complete at each day's first report
    for device, ts, reading in sorted(_two_days(), key=lambda send: send[1]):
        live.clock_s = ts.timestamp() - base + 60  # each report a minute after it was taken
        found += live.complete(live.clock_s)
        finals.setdefault(local_day(ts), live.school.final_until)
        live.send(device, ts, reading)
    found += live.complete()
    assert found == expected
    assert live.school.late == 0
    # Monday's windows were judged before Tuesday's reports came in, Monday itself
    # only once Tuesday's first report was 12 h old (and Tuesday's windows with it).
    assert finals == {MON: None, TUE: at(MON, 9, 30), WED: at(TUE, 9, 15)}


def test_an_access_point_fault_covers_its_laptops_own_wifi() -> None:
    s = School()
    for minute in (0, 5):  # 9:00: d0 alone is weak on AP
        for n in range(5):
            s.send(f"d{n}", at(MON, 9, minute), weak() if n == 0 else good())
    for minute in (15, 20):  # 9:15: all five weak on AP; e0 weak alone on AP2
        for n in range(5):
            s.send(f"d{n}", at(MON, 9, minute), weak())
        s.send("e0", at(MON, 9, minute), weak(AP2))
    findings = s.complete()
    assert brief(findings) == [
        ("d0/wifi_weak", True, at(MON, 9)),
        (AP_FAULT, True, at(MON, 9, 15)),
        ("d0/wifi_weak", False, at(MON, 9, 15)),  # the access point speaks for it
        ("e0/wifi_weak", True, at(MON, 9, 15)),  # AP2 has too few laptops to judge
    ]
    fault, cleared = findings[1], findings[2]
    assert fault.evidence["devices"] == ["d0", "d1", "d2", "d3", "d4"]
    assert fault.evidence["devices_seen"] == 5
    assert (cleared.summary, cleared.evidence["covered"]) == (COVERED, True)
    assert s.states["d0"].conditions is None


# --- silent laptops -------------------------------------------------------------------


def _silent_laptop_week(return_after_completion: bool) -> tuple[School, list[Finding]]:
    """L reports on Monday, then not until Friday 9:30; A and B report every day.
    Completed once Friday has begun (Thursday can be judged), then again after the
    weekend, L's return coming after the first completion or before it."""
    s = School()  # silent after 3 school days
    s.send("L", at(MON, 10))
    findings: list[Finding] = []
    for day in (MON, TUE, WED, THU):
        s.send("A", at(day, 9))
        s.send("B", at(day, 9))
    s.send("A", at(FRI, 9))  # Friday begins: Thursday can be judged
    if return_after_completion:
        findings += s.complete()
        assert brief(findings) == [("L/device_silent", True, day_end(THU))]
        assert s.school.final_until == day_end(THU)  # Friday goes on: L is in time
    s.send("B", at(FRI, 9))
    s.send("L", at(FRI, 9, 30))  # back
    s.send("A", at(NEXT_MON, 9))  # after the weekend: Friday can be judged
    findings += s.complete()
    assert s.school.late == 0
    return s, findings


@pytest.mark.parametrize("order", ["return after completion", "return before completion"])
def test_a_laptop_silent_for_n_active_school_days(order: str) -> None:
    s, findings = _silent_laptop_week(order == "return after completion")
    assert brief(findings) == [
        ("L/device_silent", True, day_end(THU)),  # the end of the third day
        ("L/device_silent", False, at(FRI, 9, 30)),  # its next sample
    ]
    opened = findings[0]
    assert opened.since == at(MON, 10)  # its last sample
    assert opened.evidence["school_days_silent"] == 3
    assert s.states["L"].conditions is None
    assert s.school.gaps == {}


def test_a_silent_laptop_s_findings_do_not_depend_on_when_it_returns() -> None:
    after, found_after = _silent_laptop_week(return_after_completion=True)
    before, found_before = _silent_laptop_week(return_after_completion=False)
    assert found_after == found_before
    assert to_document(after.school, 0.0) == to_document(before.school, 0.0)


def test_a_low_activity_day_does_not_count() -> None:
    s = School()
    for device in ("L", "A", "B", "C"):  # the busiest day: four laptops
        s.send(device, at(MON, 9))
    # Wednesday: 1 < 30 % of 4; the next Monday: Friday can be judged
    reporting = {TUE: "ABC", WED: "A", THU: "ABC", FRI: "ABC", NEXT_MON: "A"}
    for day, devices in reporting.items():
        for device in devices:
            s.send(device, at(day, 9))
    findings = s.complete()
    assert not s.school.history[WED].active
    assert s.school.history[THU].active
    assert brief(findings) == [("L/device_silent", True, day_end(FRI))]  # not Thursday's
    assert findings[0].evidence["school_days_silent"] == 3


def test_weekends_do_not_count() -> None:
    s = School()
    s.send("L", at(THU, 10))
    for day in (THU, FRI, SAT, SUN, NEXT_MON, NEXT_TUE, NEXT_WED):
        s.send("A", at(day, 9))  # A reports every day, the weekend too
    findings = s.complete()
    assert not s.school.history[SAT].active
    assert not s.school.history[SUN].active
    assert NEXT_WED not in s.school.history  # no later day yet
    assert brief(findings) == [("L/device_silent", True, day_end(NEXT_TUE))]  # Fri, Mon, Tue


def test_a_short_absence_is_not_remembered() -> None:
    s = School()
    s.send("L", at(MON, 10))
    s.send("L", at(WED, 10))  # one school day without it: no gap to remember
    assert s.school.gaps == {}
    s.send("M", at(MON, 10))
    s.send("M", at(FRI, 10))  # three: remembered for the silence rule
    assert [(g.last, g.back) for g in gap_list(s.school.gaps["M"])] == [(at(MON, 10), at(FRI, 10))]


# --- silent schools -------------------------------------------------------------------


def _dark_tuesday_and_wednesday() -> School:
    """A school whose laptops report Monday and Thursday, none Tuesday and Wednesday;
    Monday and Thursday completed (Friday has begun)."""
    s = School(silent_after(1))
    s.send("x1", at(MON, 9))
    s.send("x1", at(MON, 16))
    s.send("x2", at(MON, 9, 30))
    s.send("x1", at(THU, 8, 40))
    s.send("x2", at(THU, 8, 10))
    assert s.complete() == []
    assert set(s.school.history) == {MON}  # Thursday goes on until a later day begins
    s.send("x1", at(FRI, 8))
    findings = s.complete()
    # The school's silent days are not its laptops' silent days.
    assert [f for f in findings if f.rule == "device_silent"] == []
    assert set(s.school.history) == {MON, THU}
    return s


@pytest.mark.parametrize(
    ("threshold", "opened_on"), [(1, [TUE, WED]), (2, [WED])], ids=["1 day", "2 days"]
)
def test_a_silent_school_while_others_reported(threshold: int, opened_on: list[date]) -> None:
    s = _dark_tuesday_and_wednesday()
    s.config = RulesConfig.model_validate(
        {"device_silent": {"school_days": 1}, "school_silent": {"school_days": threshold}}
    )
    found = [f for day in (MON, TUE, WED, THU) for f in s.judge_day(day)]
    assert brief(found) == [("school_silent", True, day_end(d)) for d in opened_on] + [
        ("school_silent", False, at(THU, 8, 10))  # the first sample of its next active day
    ]
    opened = found[0]
    assert opened.since == at(MON, 16)  # its last report before the silence
    assert opened.evidence["last_day_reported"] == MON.isoformat()
    assert opened.evidence["school_days_silent"] == threshold
    assert (s.school.silence.days, s.school.silence.last_reported) == (0, THU)


def test_no_silent_school_when_no_other_school_reported() -> None:
    s = _dark_tuesday_and_wednesday()
    assert s.judge_day(MON, others_reported=False) == []
    assert s.judge_day(TUE, others_reported=False) == []
    assert s.school.silence.days == 0
    assert s.judge_day(WED, others_reported=True) != []  # one day with the others
    assert s.school.silence.days == 1
    assert brief(s.judge_day(THU, others_reported=False)) == [
        ("school_silent", False, at(THU, 8, 10))
    ]


def test_school_silence_counts_school_days_of_a_known_school_only() -> None:
    s = _dark_tuesday_and_wednesday()
    assert s.judge_day(MON - timedelta(days=3)) == []  # before its first day
    assert s.judge_day(SAT) == []  # not a school day
    assert s.school.silence.days == 0
    disabled = RulesConfig.model_validate({"enabled": ["device_silent"]})
    assert s.school.judge_day(TUE, True, disabled, ZONE_C) == []


def test_pending_counts_windows_and_days_not_complete() -> None:
    s = School()
    assert s.school.pending() == 0
    s.send("d1", at(MON, 9), good())
    s.send("d1", at(MON, 9, 20), good())
    s.send("d1", at(TUE, 9), good())
    assert s.school.pending() == 5  # three windows, two days
    s.complete()
    assert s.school.pending() == 1  # Tuesday, until a later day begins
    assert set(s.school.days) == {TUE}


# --- the state document ---------------------------------------------------------------


def _saved_week() -> School:
    """A school with something of everything in its state, Thursday morning:
    windows and a day not complete, completed days, an access point at fault, a
    laptop back after a silence, a whole-school silence, a late sample."""
    s = School(silent_after(2))
    for day, clock_s in ((LAST_FRI, 10.0), (TUE, 20.0), (WED, 30.0)):  # none on Monday
        s.clock_s = clock_s
        for n in range(5):
            s.send(f"d{n}", at(day, 9, 0), weak())
            s.send(f"d{n}", at(day, 9, 5), weak())
    s.send("L", at(LAST_FRI, 9, 30))
    s.region[THU] = 1000.0  # Thursday's first report, in another school
    found = s.complete(1000.0 + LATENESS)
    assert (AP_FAULT, True, at(LAST_FRI, 9)) in brief(found)
    assert ("L/device_silent", True, day_end(WED)) in brief(found)
    assert s.school.final_until == day_end(WED)
    assert s.judge_day(LAST_FRI) == []
    assert brief(s.judge_day(MON)) == [("school_silent", True, day_end(MON))]
    s.clock_s = 1000.0 + LATENESS + 10
    s.send("d0", at(WED, 9, 10), weak())  # late: window Wed 9:00 is complete
    s.clock_s = 100_000.0
    for minute in (0, 5, 20):
        for n in range(5):
            s.send(f"d{n}", at(THU, 9, minute), weak())
        s.send("e0", at(THU, 9, minute), wifi(-80.0, bssid_hash=AP2))
    s.send("L", at(THU, 10))  # back
    return s


def _json(doc: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(doc))
    return loaded


def _restarted(saved: School, clock_s: float) -> School:
    """The same school after a restart: its document and its laptops' documents
    through JSON, as the store keeps them."""
    out = School(saved.config)
    out.region = dict(saved.region)  # the other schools' own documents
    out.school = from_document(SCHOOL, _json(to_document(saved.school, clock_s)))
    for device, st in saved.states.items():
        doc = _json(device_persist.to_document(st))
        out.states[device] = device_persist.from_document(SCHOOL, device, st.last_seen, doc)
    return out


def test_a_school_state_survives_its_document() -> None:
    saved = _saved_week()
    school = saved.school
    assert school.windows and school.days and school.history and school.gaps
    assert school.network.faulty_aps == {AP}
    assert (school.silence.days, school.judged_day, school.late) == (1, MON, 1)
    doc = _json(to_document(school, 123_456.0))
    assert doc["clock_s"] == 123_456.0
    restored = from_document(SCHOOL, doc)
    assert _json(to_document(restored, 123_456.0)) == doc
    assert restored.final_until == school.final_until == day_end(WED)
    assert restored.windows.keys() == school.windows.keys()
    for start, window in school.windows.items():
        again = restored.windows[start]
        assert again.touched_s == window.touched_s == 100_000.0
        assert again.aps == window.aps
        assert [d for d, _ in again.devices] == [d for d, _ in window.devices]
    assert restored.days == school.days
    assert restored.days[THU].touched_s == 100_000.0
    assert restored.history == school.history
    touched = {d: r.touched_s for d, r in restored.history.items()}
    assert touched == {LAST_FRI: 10.0, TUE: 20.0, WED: 30.0}
    assert restored.gaps == school.gaps
    assert restored.network == school.network
    assert restored.silence == school.silence
    assert (restored.judged_day, restored.late) == (MON, 1)


def test_two_gaps_of_a_laptop_keep_their_order_through_the_document() -> None:
    # A laptop back from two silences not judged yet (its gaps are a chain, latest
    # first): both remembered, oldest first, after a save and a restore.
    school = SchoolState(SCHOOL)
    first = Gap(at(MON, 10), at(WED, 9))
    second = Gap(at(WED, 10), at(FRI, 9))
    latest = gap_chain([first, second])
    assert latest == Gap(second.last, second.back, first)
    school.gaps["M"] = latest
    assert gap_list(latest) == [first, latest]
    restored = from_document(SCHOOL, _json(to_document(school, 0.0)))
    again = [(g.last, g.back) for g in gap_list(restored.gaps["M"])]
    assert again == [(at(MON, 10), at(WED, 9)), (at(WED, 10), at(FRI, 9))]
    assert gap_list(None) == ()


def test_a_restored_school_completes_the_same_way() -> None:
    original = _saved_week()
    restored = _restarted(_saved_week(), 100_000.0)

    def finish(s: School) -> list[Finding]:
        assert s.complete(100_000.0 + LATENESS - 1) == []  # first reported at 100,000
        found = s.complete(100_000.0 + LATENESS)  # Thursday's windows; Thursday goes on
        s.region[FRI] = 150_000.0  # Friday's first report, in another school
        assert s.complete(150_000.0 + LATENESS - 1) == []
        found += s.complete(150_000.0 + LATENESS)
        assert s.school.final_until == day_end(THU)
        return found + [f for day in (TUE, WED, THU) for f in s.judge_day(day)]

    expected = finish(original)
    assert finish(restored) == expected
    assert brief(expected) == [
        (AP_FAULT, True, at(THU, 9)),
        ("e0/wifi_weak", True, at(THU, 9)),
        (AP_FAULT, True, at(THU, 9, 15)),
        ("e0/wifi_weak", True, at(THU, 9, 15)),
        ("L/device_silent", False, at(THU, 10)),
        ("school_silent", False, at(TUE, 9)),
    ]
    assert expected[1].evidence["rssi_dbm"] == -80.0  # the latest reading, restored too
    assert _json(to_document(restored.school, 1.0)) == _json(to_document(original.school, 1.0))
    for device, st in original.states.items():
        assert device_persist.to_document(restored.states[device]) == (
            device_persist.to_document(st)
        )


# --- the collector's counters ---------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AlertStore]:
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.sqlite3'}")
    store.create_tables()
    yield store
    store.close()


def _batch(device: str, ts: datetime) -> list[tuple[str, str, Any]]:
    return [(SCHOOL, device, sample(ts, wifi=good()))]


def test_figures_count_late_and_stale_samples(store: AlertStore) -> None:
    alerting = Alerting(CONFIG, store, lateness_s=HOUR, calendar=ZONE_C_SCHOOLS)
    arrival = at(MON, 9, 1)
    alerting.on_samples(_batch("a", at(MON, 9)), arrival)  # the connected clock: 0
    alerting.on_samples(_batch("a", at(MON, 9, 20)), arrival + timedelta(minutes=20))
    alerting.sweep(arrival + timedelta(hours=1))  # window 9:00 only
    assert alerting.schools[SCHOOL].final_until == at(MON, 9, 15)
    assert alerting.figures() == {
        "samples_stale": 0, "samples_late": 0, "pending_windows_and_days": 2,
    }  # fmt: skip
    later = arrival + timedelta(hours=1, minutes=1)
    alerting.on_samples(_batch("b", at(MON, 9, 5)), later)  # for window 9:00: late
    alerting.on_samples(_batch("a", at(MON, 9, 20)), later)  # a resend: stale
    alerting.on_samples(_batch("a", at(MON, 9, 10)), later)  # older than its latest: stale
    assert alerting.figures() == {
        "samples_stale": 2, "samples_late": 1, "pending_windows_and_days": 2,
    }  # fmt: skip
    assert alerting.schools[SCHOOL].days[MON].reported == 2  # b's day is not complete


def test_a_late_sample_counts_once(store: AlertStore) -> None:
    alerting = Alerting(CONFIG, store, lateness_s=HOUR, calendar=ZONE_C_SCHOOLS)
    alerting.on_samples(_batch("a", at(MON, 9)), at(MON, 9, 1))
    alerting.on_samples(_batch("a", at(TUE, 8)), at(TUE, 8, 1))  # Tuesday's first report
    alerting.sweep(at(TUE, 9, 1))  # window 9:00, Monday, window Tue 8:00 complete
    school = alerting.schools[SCHOOL]
    assert school.final_until == at(TUE, 8, 15)
    # c's first sample of Monday, with a school Wi-Fi reading: its day and its window
    # are complete, it is one late sample.
    alerting.on_samples(_batch("c", at(MON, 9, 10)), at(TUE, 9, 2))
    assert alerting.figures()["samples_late"] == 1
    assert school.history[MON].reported == 1


def test_a_late_sample_without_a_school_wifi_reading_counts_too(store: AlertStore) -> None:
    alerting = Alerting(CONFIG, store, lateness_s=HOUR, calendar=ZONE_C_SCHOOLS)
    alerting.on_samples(_batch("a", at(MON, 9)), at(MON, 9, 1))
    alerting.on_samples(_batch("b", at(TUE, 8)), at(TUE, 8, 1))  # Tuesday's first report
    alerting.sweep(at(TUE, 9, 1))  # window 9:00, Monday, window Tue 8:00 complete
    school = alerting.schools[SCHOOL]
    assert school.final_until == at(TUE, 8, 15)
    # a's Monday evening at home (no Wi-Fi reading), sent the next morning: too late
    alerting.on_samples([(SCHOOL, "a", sample(at(MON, 20)))], at(TUE, 9, 2))
    assert alerting.figures()["samples_stale"] == 0
    assert school.history[MON].last_ts == at(MON, 9)  # left out of Monday
    assert alerting.figures()["samples_late"] == 1


def test_reachability_survives_the_school_document() -> None:
    """A pending window's reachability per access point and the open reachability
    faults go through the document (JSON, as the store keeps it)."""
    from collector.alerting.school import SchoolState, WindowRecord  # noqa: PLC0415
    from collector.rules.network import AccessPointWindow, NetworkState, Reach  # noqa: PLC0415

    school = SchoolState(SCHOOL)
    reach = Reach(7, ["d0", "d1"], 600, 2400, 1, 2, {"dns": 1, "tls": 1})
    school.windows[1_700_000_100] = WindowRecord(
        5.0, {AP: AccessPointWindow(7, [], -5800, 7, reach), "b" * 16: AccessPointWindow(2)}
    )
    school.network = NetworkState({"c" * 16}, False, {AP}, True)
    doc = _json(to_document(school, 1.0))
    restored = from_document(SCHOOL, doc)
    assert restored.windows[1_700_000_100].aps == school.windows[1_700_000_100].aps
    assert restored.network == school.network
    assert _json(to_document(restored, 1.0)) == doc
