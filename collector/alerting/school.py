"""One school's telemetry, gathered per window and per day until it is complete,
then judged in sample-time order: access points, laptops' Wi-Fi, silence.

Samples feed the school as they arrive (`on_sample`, in each device's order):

- a laptop's school-network Wi-Fi readings wait in its `DeviceState` (`tallies`)
  until it moves to a later window, then join the school's window (`_hand_over`):
  per access point, how many laptops were seen and which were degraded; and the
  laptop's own tallies when they can matter (a reading near a threshold, a Wi-Fi
  condition in progress);
- each laptop counts once per local day it reported (the school's activity), and a
  return after a long gap is remembered (`gaps`) for the silence rule.

`complete(clock_s, ...)` judges, in time order, every window and day whose first
report reached the collector `lateness_s` of connected time ago or more
(collector.alerting.clock): each window's access-point verdict first (rules.network),
then each laptop's Wi-Fi against it (rules.wifi: a laptop under a failing access
point gets no Wi-Fi alert of its own), then, at each day's end, the day's activity,
access points gone, and silent laptops (rules.silent). It stops at the first one not
ready, so they are judged in order. A school with nothing pending follows the rest
of the region (`frontier`): a dark school's empty days complete with the others'.
The same telemetry thus gives the same findings whatever its arrival order.
Telemetry for a window or day already complete is too late: counted (`late`), left
out.

Whole-school silence needs the other schools' days: the caller calls `judge_day`
once every school has completed the day.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from collector.alerts.model import Finding
from collector.rules.base import device_key
from collector.rules.calendar import SchoolDays
from collector.rules.config import RulesConfig
from collector.rules.network import AccessPointWindow, NetworkState, judge_window, vanished
from collector.rules.reach import add_laptop
from collector.rules.silent import (
    HISTORY_DAYS,
    RULE,
    day_end,
    day_end_s,
    day_is_active,
    device_finding,
    local_day,
    local_day_at,
    school_finding,
)
from collector.rules.state import DeviceState
from collector.rules.tally import Tally, chain, merged, observe, school_wifi, tally_for
from collector.rules.wifi import DEVICE_WIFI_RULES, WindowRule
from collector.samples import Sample, Wifi

# (window start, end, margin) -> was the collector cut off from the broker then?
BrokerDown = Callable[[float, float, float], bool]
KEEP_DAYS = 400  # completed days remembered (silence spans, busiest day)
ONE_DAY = timedelta(days=1)


@dataclass(slots=True)
class WindowRecord:
    touched_s: float = 0.0  # the connected clock at its first report
    aps: dict[str, AccessPointWindow] = field(default_factory=dict)
    devices: list[tuple[str, Tally]] = field(default_factory=list)  # their own verdicts


@dataclass(slots=True)
class DayRecord:
    touched_s: float = 0.0  # the connected clock at its first report
    reported: int = 0  # laptops with at least one sample that day
    first_ts: datetime | None = None  # the day's earliest sample
    aps: set[str] = field(default_factory=set)  # access points used that day
    last_ts: datetime | None = None  # the day's latest sample


@dataclass(slots=True)
class DayResult:
    reported: int
    active: bool
    first_ts: datetime | None
    last_ts: datetime | None = None
    touched_s: float | None = None  # the connected clock at its first report


@dataclass(slots=True)
class Gap:
    last: datetime  # the laptop's sample before the gap
    back: datetime  # its first sample after it
    # The laptop's previous gap still remembered: a chain, newest first (nearly every
    # laptop has one at most; a tuple around it cost 64 bytes more per laptop, 16 MB
    # at 250,000 on the first day after the holidays, `lordi bench state`).
    earlier: Gap | None = None


def gap_list(latest: Gap | None) -> Sequence[Gap]:
    """A laptop's remembered gaps, oldest first, from its latest."""
    if latest is None:
        return ()  # nearly every laptop, every day: no list built
    out: list[Gap] = []
    while latest is not None:
        out.append(latest)
        latest = latest.earlier
    out.reverse()
    return out


def gap_chain(gaps: Iterable[Gap]) -> Gap | None:
    """The chain of `gaps` (oldest first), its latest gap first (None: no gap)."""
    latest: Gap | None = None
    for gap in gaps:
        latest = Gap(gap.last, gap.back, latest)
    return latest


@dataclass(slots=True)
class SchoolSilence:
    days: int = 0  # school days in a row without reports while others reported
    last_reported: date | None = None


class SchoolState:
    def __init__(self, school: str) -> None:
        self.school = school
        self._final_until: datetime | None = None  # windows and days before: complete
        self._final_s = -math.inf  # the same, as epoch seconds (-inf: none)
        # The local day of the last sample: (start, end) in epoch seconds, the day,
        # and its start as a datetime (compared with the device's previous sample).
        self._day_span: tuple[float, float, date, datetime] | None = None
        self.windows: dict[int, WindowRecord] = {}  # start (epoch s) -> window
        self.days: dict[date, DayRecord] = {}
        self.history: dict[date, DayResult] = {}  # completed days
        self.network = NetworkState()
        self.gaps: dict[str, Gap] = {}  # each laptop's latest gap (gap_list: all)
        self.silence = SchoolSilence()
        self.judged_day: date | None = None  # whole-school silence judged through it
        self.late = 0  # samples too late for a complete window or day
        self.touched: set[str] = set()  # devices whose state completion changed

    # --- arrival --------------------------------------------------------------------

    def on_sample(
        self,
        state: DeviceState,
        sample: Sample,
        config: RulesConfig,
        calendar: SchoolDays,
        clock_s: float,
    ) -> None:
        """Take a new sample of `state`'s device in (before `state.apply`); `clock_s`:
        the connected clock now; `calendar`: the school's (its holiday zone's)."""
        ts, prev = sample.ts, state.last_seen
        ts_s = ts.timestamp()
        span = self._day_span  # the local day of the last sample, most often this one's
        if span is None or not span[0] <= ts_s < span[1]:
            day = local_day_at(ts_s)
            start_s = day_end_s(day - ONE_DAY)
            span = (start_s, day_end_s(day), day, datetime.fromtimestamp(start_s, UTC))
            self._day_span = span
        _, day_end, day, day_start = span
        final_s = self._final_s
        late = day_end <= final_s  # its day was judged already
        # (prev < ts: an older sample never gets here, collector.alerting.evaluation)
        if prev is None or prev < day_start:  # a new day for the laptop
            if not late:
                self._count_day(day, ts, clock_s)
            if prev is not None:
                self._remember_gap(state, prev, ts, config, calendar)
        record = self.days.get(day)
        if record is not None and (record.last_ts is None or ts > record.last_ts):
            record.last_ts = ts
        window_s = config.network.window_s
        start = int(ts_s) // window_s * window_s
        if state.window_start is not None and state.window_start != start:
            self._hand_over(state, config)
        wifi = school_wifi(sample)
        if wifi is not None:
            head = state.tally  # of this window (a previous one was just handed over)
            if start + window_s <= final_s:  # its window is complete already
                late = True
            elif head is not None and head.bssid == wifi.bssid_hash:
                # Most often: the window's first access point (a laptop seldom roams
                # within a window), counted for the day already (a window lies
                # within an hour, so within a day).
                observe(head, wifi, ts, config, sample.connectivity)
            else:
                self._tally(state, sample, wifi, start, day, config, clock_s)
        self.late += late  # once per sample too late for a window or day

    @property
    def final_until(self) -> datetime | None:
        return self._final_until

    @final_until.setter
    def final_until(self, until: datetime | None) -> None:
        self._final_until = until
        self._final_s = -math.inf if until is None else until.timestamp()

    def _tally(  # noqa: PLR0917 - a reading, where it goes, when
        self,
        state: DeviceState,
        sample: Sample,
        wifi: Wifi,
        start: int,
        day: date,
        config: RulesConfig,
        clock_s: float,
    ) -> None:
        if state.window_start is None:
            if start not in self.windows:
                self.windows[start] = WindowRecord(clock_s)
            # The window's own int, shared by its laptops (28 B each otherwise).
            state.window_start = _shared(self.windows, start)
            state.tally = None
        # The hash is shared by every laptop of the access point: one string for all.
        assert wifi.bssid_hash is not None
        bssid = sys.intern(wifi.bssid_hash)
        state.tally, tally = tally_for(state.tally, bssid)
        observe(tally, wifi, sample.ts, config, sample.connectivity)
        self.days[day].aps.add(bssid)  # the day counted at its first sample, just above

    def _complete_at(self, end_s: float) -> bool:
        """Is the window or day ending at `end_s` (epoch s) complete already?"""
        return end_s <= self._final_s

    def _count_day(self, day: date, ts: datetime, clock_s: float) -> None:
        """Count the laptop for `day` (not complete yet)."""
        record = self.days.get(day)
        if record is None:
            record = self.days[day] = DayRecord(clock_s)
        record.reported += 1
        if record.first_ts is None or ts < record.first_ts:
            record.first_ts = ts

    def _remember_gap(
        self,
        state: DeviceState,
        prev: datetime,
        ts: datetime,
        config: RulesConfig,
        calendar: SchoolDays,
    ) -> None:
        """A return after enough school days to be silent, or ending a silence."""
        if not state.is_active(device_key(self.school, state.device, RULE)):
            days, day, last = 0, local_day(prev) + timedelta(days=1), local_day(ts)
            while day < last and days < config.device_silent.school_days:
                days += calendar.is_school_day(day)
                day += timedelta(days=1)
            if days < config.device_silent.school_days:
                return
        self.gaps[state.device] = Gap(prev, ts, self.gaps.get(state.device))

    def _hand_over(self, state: DeviceState, config: RulesConfig) -> None:
        """The device's tallies of its last window join the school's window."""
        start, tallies = state.window_start, chain(state.tally)
        state.window_start, state.tally = None, None
        assert start is not None
        record = self.windows.get(start)
        if record is None or self._complete_at(start + config.network.window_s):
            return  # its window was judged while it held them: counted when they came
        for tally in tallies:
            ap = record.aps.get(tally.bssid)
            if ap is None:
                ap = record.aps[tally.bssid] = AccessPointWindow()
            ap.seen += 1
            if tally.is_degraded:
                ap.degraded.append(state.device)
            mean = tally.mean_rssi_dbm
            if mean is not None:
                ap.rssi_tenths += round(mean * 10)
                ap.rssi_laptops += 1
            add_laptop(ap, state.device, tally, config)
        final_s = self.final_until.timestamp() if self.final_until else 0.0
        watched = state.watch_until >= final_s and state.watch_until > 0
        if watched or _has_wifi_condition(state) or any(t.near_threshold for t in tallies):
            record.devices.append((state.device, merged(tallies)))
            state.watch_until = max(state.watch_until, start)

    # --- completion -----------------------------------------------------------------

    def complete(  # noqa: PLR0917 - the clock, the bound, the region, the rules
        self,
        clock_s: float,
        lateness_s: float,
        frontier: datetime | None,
        next_day_touch: Callable[[date], float | None],
        states: Mapping[str, DeviceState],
        config: RulesConfig,
        window_rules: list[WindowRule],
        calendar: SchoolDays,
        *,
        broker_down: BrokerDown | None = None,
    ) -> list[Finding]:
        """Judge, in time order, every window first reported `lateness_s` ago
        (connected clock) or more, and every day once a later day's first report in
        the region is that old (`next_day_touch`: a day runs for hours after its
        first report); stop at the first that is not ready. With nothing left pending,
        the school is complete up to `frontier` (the region's)."""
        window_s = config.network.window_s
        events: list[tuple[float, int, int | date]] = [
            (start + window_s, 0, start) for start in self.windows
        ]
        events += [(day_end(d).timestamp(), 1, d) for d in self.days]
        findings: list[Finding] = []
        for end, kind, what in sorted(events):
            if kind == 0:
                assert isinstance(what, int)
                if self.windows[what].touched_s + lateness_s > clock_s:
                    break
                findings += self._complete_window(what, states, config, window_rules, broker_down)
            else:
                assert isinstance(what, date)
                after = next_day_touch(what)
                if after is None or after + lateness_s > clock_s:
                    break
                findings += self._complete_day(what, states, config, calendar)
            self._advance(datetime.fromtimestamp(end, UTC))
        if not self.windows and not self.days and frontier is not None:
            self._advance(frontier)
        return findings

    def day_touches(self, since: date) -> dict[date, float]:
        """The connected clock at the first report of each day from `since` on."""
        out = {d: r.touched_s for d, r in self.days.items() if d >= since}
        out.update((d, r.touched_s) for d, r in self.history.items() if d >= since and r.touched_s)
        return out

    def _advance(self, until: datetime) -> None:
        if self.final_until is None or until > self.final_until:
            self.final_until = until

    def earliest_pending(self) -> datetime | None:
        """The start of the first window or day not complete yet."""
        starts = [datetime.fromtimestamp(s, UTC) for s in self.windows]
        starts += [day_end(d - timedelta(days=1)) for d in self.days]
        return min(starts, default=None)

    def _complete_window(
        self,
        start_s: int,
        states: Mapping[str, DeviceState],
        config: RulesConfig,
        window_rules: list[WindowRule],
        broker_down: BrokerDown | None = None,
    ) -> list[Finding]:
        record = self.windows[start_s]
        for device in sorted(states):  # still holding readings: absent since
            state = states[device]
            if state.window_start is not None and state.window_start <= start_s:
                self._hand_over(state, config)
                self.touched.add(device)
        del self.windows[start_s]
        start = datetime.fromtimestamp(start_s, UTC)
        central = broker_down is not None and broker_down(
            start_s, start_s + config.network.window_s, config.network.outage_margin_s
        )
        verdict = judge_window(
            self.school, start, record.aps, self.network, config, broker_down=central
        )
        findings = list(verdict.findings)
        for device, tally in sorted(record.devices, key=lambda pair: pair[0]):
            judged = states.get(device)
            if judged is None:
                continue
            covered = device in verdict.covered
            for rule in window_rules:
                finding = rule.judge_window(judged, tally, start, covered)
                if finding is not None:
                    judged.record([finding])
                    findings.append(finding)
                    self.touched.add(device)
        return findings

    def _complete_day(
        self,
        day: date,
        states: Mapping[str, DeviceState],
        config: RulesConfig,
        calendar: SchoolDays,
    ) -> list[Finding]:
        record = self.days.pop(day, DayRecord())
        cfg = config.device_silent
        busiest = max(
            (r.reported for d, r in self.history.items() if 0 < (day - d).days <= HISTORY_DAYS),
            default=0,
        )
        active = day_is_active(
            day, record.reported, busiest, cfg.school_active_share, cfg.school_active_min_devices,
            calendar,
        )  # fmt: skip
        self.history[day] = DayResult(
            record.reported, active, record.first_ts, record.last_ts, record.touched_s
        )
        for old in [d for d in self.history if (day - d).days > KEEP_DAYS]:
            del self.history[old]
        findings: list[Finding] = []
        if active:
            findings += vanished(self.school, day_end(day), record.aps, self.network, config)
        return findings + self._silent_laptops(day, active, states, config)

    def _silent_laptops(
        self, day: date, active: bool, states: Mapping[str, DeviceState], config: RulesConfig
    ) -> list[Finding]:
        """Per laptop: silent through `day` (it did not report, its school did)? And
        the silences that end on `day`."""
        threshold = config.device_silent.school_days
        end = day_end(day)
        findings: list[Finding] = []
        for device in sorted(states):
            state = states[device]
            gaps = gap_list(self.gaps.get(device))
            last = _last_before(state, gaps, day)
            key = device_key(self.school, device, RULE)
            if last is not None and active:
                silent_days = self._active_days_between(local_day(last), day)
                if silent_days >= threshold:
                    found = device_finding(
                        self.school, device, end, True, last, silent_days, threshold
                    )
                    state.record([found])
                    findings.append(found)
                    self.touched.add(device)
            ended = [g for g in gaps if local_day(g.back) <= day]
            for gap in ended:
                if state.is_active(key):
                    back = gap.back if local_day(gap.back) == day else end  # late: at the day's end
                    found = device_finding(self.school, device, back, False, gap.last, 0, threshold)
                    state.record([found])
                    findings.append(found)
                    self.touched.add(device)
            if ended:
                kept = gap_chain(g for g in gaps if local_day(g.back) > day)
                if kept is not None:
                    self.gaps[device] = kept
                else:
                    del self.gaps[device]
        return findings

    def _active_days_between(self, after: date, through: date) -> int:
        """Completed active days of the school strictly after `after`, up to `through`."""
        count, day = 0, after + timedelta(days=1)
        while day <= through:
            result = self.history.get(day)
            count += bool(result and result.active)
            day += timedelta(days=1)
        return count

    def judge_day(
        self, day: date, others_reported: bool, config: RulesConfig, calendar: SchoolDays
    ) -> list[Finding]:
        """Whole-school silence on a completed `day`; `others_reported`: another school
        of the region was active that day."""
        first = min(self.history, default=None)
        if first is None or day < first:
            return []  # the school was not known yet
        if not config.is_enabled("school_silent") or not calendar.is_school_day(day):
            return []
        result = self.history.get(day)
        threshold = config.school_silent.school_days
        silence = self.silence
        if result is not None and result.active:
            findings: list[Finding] = []
            if silence.days >= threshold:
                at = result.first_ts or day_end(day)
                findings.append(
                    school_finding(self.school, at, False, silence.last_reported, 0, threshold)
                )
            silence.days, silence.last_reported = 0, day
            return findings
        if not others_reported:
            return []
        silence.days += 1
        if silence.days < threshold:
            return []
        last = self.history.get(silence.last_reported) if silence.last_reported else None
        since = last.last_ts if last is not None else None
        return [
            school_finding(
                self.school, day_end(day), True, silence.last_reported, silence.days, threshold,
                since,
            )
        ]  # fmt: skip

    def pending(self) -> int:
        """Windows and days gathered, not complete yet."""
        return len(self.windows) + len(self.days)


def _shared(windows: dict[int, WindowRecord], start: int) -> int:
    """The key object `windows` holds for `start`."""
    for key in windows:  # few open windows per school
        if key == start:
            return key
    return start


def _has_wifi_condition(state: DeviceState) -> bool:
    conditions = state.conditions
    return conditions is not None and any(
        k.rsplit("/", 1)[-1] in DEVICE_WIFI_RULES for k in conditions
    )


def _last_before(state: DeviceState, gaps: Sequence[Gap], day: date) -> datetime | None:
    """The laptop's last sample before `day` if it sent none on `day` (None if it did,
    or never reported): from a remembered gap around `day`, or its latest sample."""
    for gap in gaps:
        if local_day(gap.last) < day < local_day(gap.back):
            return gap.last
    if state.last_seen is not None and local_day(state.last_seen) < day:
        return state.last_seen
    return None
