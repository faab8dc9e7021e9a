"""From confirmed samples to alerts and notifications, in sample time: the parts,
wired together.

- `on_samples` (each confirmed batch, in arrival order; each device's samples in
  its own order): the per-sample rules (evaluation.py), whose findings go to the
  engine at once with the device's clock; the sample joins its school's telemetry
  (school.py).
- `sweep` (every `sweep_interval_s` of the collector's clock, from `on_samples` or
  `tick`): each school's windows and days first reported `lateness_s` of connected
  time ago (clock.py) are judged in order: access points, laptops' Wi-Fi, silent
  laptops (school.py), then silent schools once every school has completed a day;
  then the engine's notifications on the collector's clock (late "opened",
  reminders, alerts resolved by people), device and school state saved, forecast,
  outbox.
- The engine (collector.alerts.engine) owns the lifecycle; every alert time is a
  sample time.

The collector's clock (`now`) only decides when a window is complete (clock.py) and
when people are notified. The same telemetry gives the same alerts whatever its arrival
schedule, within the bounded lateness (docs/alerts.md, "Time").

State (device, school, engine) is saved at sweeps for what changed and at `stop()`;
`restore()` reloads it at start. A device this process has not seen is looked up in
the store on its first sample (failover between collectors sharing PostgreSQL).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from collector.alerting.clock import DEFAULT_LATENESS_S, ConnectedClock
from collector.alerting.evaluation import Evaluation
from collector.alerting.feed import AlertLines
from collector.alerting.persistence import from_document as school_from
from collector.alerting.persistence import to_document as school_document
from collector.alerting.school import SchoolState
from collector.alerts.devices import SavedDevice
from collector.alerts.engine import DEFAULT_NOTIFY_MAX_AGE_S, AlertEngine, Notification
from collector.alerts.model import Alert, Finding
from collector.alerts.store import AlertStore
from collector.notify.deliver import Notifier
from collector.notify.dispatch import OutboxDeliverer
from collector.notify.worker import OutboxWorker
from collector.rules import (
    DeviceState,
    RulesConfig,
    build_window_rules,
    device_scope,
    school_scope,
)
from collector.rules.calendar import Calendar
from collector.rules.history import points
from collector.rules.persist import battery_model, from_document, saved_history, to_document
from collector.rules.silent import day_end, local_day
from collector.samples import Sample

log = logging.getLogger(__name__)

DeviceKey = tuple[str, str]


class Alerting:
    def __init__(
        self,
        config: RulesConfig,
        store: AlertStore,
        notifier: Notifier | None = None,
        sweep_interval_s: float = 300.0,
        *,
        lateness_s: float = DEFAULT_LATENESS_S,
        notify_max_age_s: float = DEFAULT_NOTIFY_MAX_AGE_S,
        forecast_interval_s: float = 3600.0,
        save_interval_s: float | None = None,
        calendar: Calendar | None = None,
        engine_cache: bool | None = None,
        deliver_in_background: bool = False,
        owns: Callable[[str], bool] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.notifier = notifier
        # Each school's school days and terms, from its holiday zone (the registry's);
        # by default the bundled data with no zone: weekdays but public holidays.
        self.calendar = calendar if calendar is not None else _no_zones()
        self.evaluation = Evaluation(config, self.calendar)
        self.window_rules = build_window_rules(config)
        # Without a notifier (evaluation, tests) nothing would ever empty the outbox.
        # engine_cache (default: with a single-writer store, or with partitions:
        # `owns`, school -> this collector's) trades memory, about 2 KB per alert key,
        # for no database work on "still true" findings.
        self._owns = owns  # with partitions: school -> this collector's (restore too)
        self.engine = AlertEngine(
            store,
            config.timing,
            outbox=notifier is not None,
            cache=engine_cache,
            owns=owns,
            notify_max_age_s=notify_max_age_s,
        )
        self.deliverer = (
            None if notifier is None else OutboxDeliverer(store, notifier, enrich=self.with_history)
        )
        # The collector's: the outbox is sent by its own thread, never by the one that
        # commits telemetry (collector/notify/worker.py). Without it (tests, tools),
        # the calling thread sends it at once.
        self.worker: OutboxWorker | None = None
        if notifier is not None and deliver_in_background:
            locked = OutboxDeliverer(store, notifier, enrich=self._with_history_locked)
            self.worker = OutboxWorker(locked)
            self.worker.start()
        if not lateness_s > 0:
            raise ValueError(f"lateness_s must be > 0 seconds, got {lateness_s!r}")
        self.lateness_s = lateness_s
        self.clock = ConnectedClock()
        self.lines = AlertLines(store, forecast_interval_s, self.calendar)
        self.devices: dict[str, dict[str, DeviceState]] = {}  # school -> device -> state
        self.schools: dict[str, SchoolState] = {}
        self.sweep_interval = timedelta(seconds=sweep_interval_s)
        # Device state is saved at the first sweep after this much time (default: every
        # sweep); about 0.1 ms per changed device here (docs/alerts.md).
        self.save_interval = timedelta(seconds=save_interval_s or sweep_interval_s)
        self._last_save: datetime | None = None
        self._last_sweep: datetime | None = None
        self._started = False  # resumed or paused at least once
        self._now: datetime | None = None  # the latest collector's clock given
        self._lock = threading.Lock()  # the ingest thread and a sweep timer may both call
        self.sent: list[Notification] = []  # what the engine notified (tests, eval)
        # Devices changed since the last save, per school: a set of the device ids the
        # states are keyed by (no tuple per device: ~100 B each at 250,000 devices).
        self._dirty: dict[str, set[str]] = {}

    # --- the collector's calls ----------------------------------------------------

    def on_samples(self, accepted: Iterable[tuple[str, str, Sample]], now: datetime) -> None:
        """Evaluate a confirmed batch; sweep too when the sweep interval has passed."""
        with self._lock:
            findings, clocks = self._evaluate(accepted, now)
            self._notify(self.engine.process(findings, clocks, now), now, False)
            if self._last_sweep is None or now - self._last_sweep >= self.sweep_interval:
                self._sweep(now)

    def evaluate(self, accepted: Iterable[tuple[str, str, Sample]], now: datetime) -> list[Finding]:
        """Only the per-sample part of `on_samples` (rules and state, no engine): the
        seam `lordi bench state` measures."""
        with self._lock:
            return self._evaluate(accepted, now)[0]

    def _evaluate(
        self, accepted: Iterable[tuple[str, str, Sample]], now: datetime
    ) -> tuple[list[Finding], dict[str, datetime]]:
        if not self._started:
            self._resume(now)
        self._saw(now)
        runs = _runs(accepted)
        self._load_unknown({(school, device) for school, device, _ in runs})
        clock_s = self.clock.at(now)
        findings: list[Finding] = []
        clocks: dict[str, datetime] = {}
        for school, device, samples in runs:
            state = self._state(school, device)
            findings += self.evaluation.samples(state, self._school(school), samples, clock_s)
            if state.last_seen is not None:
                clocks[device_scope(school, device)] = state.last_seen
            self._changed(school).add(state.device)
        return findings, clocks

    def complete(self, now: datetime) -> int:
        """Only the completion part of a sweep (windows and days judged, findings to
        the engine, no notification): the seam `lordi bench state` measures. Returns
        how many findings it gave."""
        with self._lock:
            if not self._started:
                self._resume(now)
            findings, clocks = self._complete(now)
            self.sent.extend(self.engine.process(findings, clocks, now))
            return len(findings)

    def sweep(self, now: datetime) -> None:
        """Run the sweep now (see the module's docstring)."""
        with self._lock:
            if not self._started:
                self._resume(now)
            self._sweep(now)

    def tick(self, now: datetime) -> bool:
        """Sweep if the sweep interval has passed since the last sweep (the collector's
        loop calls it, so completion, reminders, outbox retries and saves happen even
        when no telemetry arrives). True when it swept."""
        with self._lock:
            if self._last_sweep is not None and now - self._last_sweep < self.sweep_interval:
                return False
            if not self._started:
                self._resume(now)
            self._sweep(now)
            return True

    def resume(self, now: datetime) -> None:
        """Telemetry can arrive (the collector subscribed): the connected clock runs
        (clock.py). No lock: the MQTT thread calls it; it sets two attributes."""
        self._resume(now)

    def pause(self, now: datetime) -> None:
        """Telemetry cannot arrive (disconnected from the broker): the connected clock
        stops until `resume`."""
        self._started = True
        self.clock.pause(now)

    def _resume(self, now: datetime) -> None:
        self._started = True
        self.clock.resume(now)

    def _saw(self, now: datetime) -> None:
        if self._now is None or now > self._now:
            self._now = now

    def stop(self) -> int:
        """Save every changed device and school (call when the collector stops), then
        let the outbox's worker send what is due."""
        with self._lock:
            saved = self._save()
        if self.worker is not None:
            self.worker.stop()
        return saved

    def take_lines(self) -> list[str]:
        """Line protocol not yet taken: alert open/resolve changes, forecast counts."""
        with self._lock:
            return self.lines.take()

    def lines_written(self) -> None:
        with self._lock:
            self.lines.written()

    # --- completion -------------------------------------------------------------------

    def _sweep(self, now: datetime) -> None:
        self._saw(now)
        self._last_sweep = now
        self.calendar.warn_uncovered(local_day(now))  # once per zone and school year
        findings, clocks = self._complete(now)
        notifications = self.engine.process(findings, clocks, now)
        notifications += self.engine.sweep(now)
        if self._last_save is None or now - self._last_save >= self.save_interval:
            self._last_save = now
            self._save()
        self.lines.forecast(self.states(), now)
        self._notify(notifications, now, True)

    def _complete(self, now: datetime) -> tuple[list[Finding], dict[str, datetime]]:
        """Judge every school's windows and days that are complete, then the days every
        school has completed (whole-school silence)."""
        clock_s = self.clock.at(now)
        frontier = self._frontier()
        next_day_touch = self._day_touches()
        findings: list[Finding] = []
        clocks: dict[str, datetime] = {}
        for school in sorted(self.schools):
            state = self.schools[school]
            findings += state.complete(
                clock_s, self.lateness_s, frontier, next_day_touch,
                self.devices.get(school, {}), self.config, self.window_rules,
                self.calendar.for_school(school), broker_down=self.clock.down_during,
            )  # fmt: skip
            if state.final_until is not None:
                clocks[school_scope(school)] = state.final_until
            self._changed(school).update(state.touched)
            state.touched.clear()
        return findings + self._region_days(), clocks

    def _day_touches(self) -> Callable[[date], float | None]:
        """Day -> the connected clock at the first report of a later day, anywhere in
        the region (None: no later day yet)."""
        pending = [d for s in self.schools.values() for d in s.days]
        if not pending:
            return lambda _day: None
        touches: dict[date, float] = {}
        for school in self.schools.values():
            for day, touched_s in school.day_touches(min(pending)).items():
                touches[day] = min(touched_s, touches.get(day, touched_s))
        ordered = sorted(touches.items())

        def after(day: date) -> float | None:
            later = [t for d, t in ordered if d > day]
            return min(later) if later else None

        return after

    def _frontier(self) -> datetime | None:
        """How far the region is complete, for schools with nothing pending: the first
        window or day some school still waits for, else the furthest any school got."""
        pending = [p for s in self.schools.values() if (p := s.earliest_pending()) is not None]
        if pending:
            return min(pending)
        done = [s.final_until for s in self.schools.values() if s.final_until is not None]
        return max(done, default=None)

    def _region_days(self) -> list[Finding]:
        """Whole-school silence, for each day every school has completed."""
        finals = [s.final_until for s in self.schools.values()]
        if not finals or any(f is None for f in finals):
            return []
        region_until = min(f for f in finals if f is not None)
        findings: list[Finding] = []
        for day in _days_to_judge(self.schools.values(), region_until):
            active = {
                name
                for name, school in self.schools.items()
                if (result := school.history.get(day)) is not None and result.active
            }
            for name in sorted(self.schools):
                school = self.schools[name]
                if school.judged_day is not None and school.judged_day >= day:
                    continue
                others = bool(active - {name})
                findings += school.judge_day(
                    day, others, self.config, self.calendar.for_school(name)
                )
                school.judged_day = day
        return findings

    # --- device and school state ----------------------------------------------------

    def states(self) -> Iterator[DeviceState]:
        for states in self.devices.values():
            yield from states.values()

    def state(self, school: str, device: str) -> DeviceState | None:
        return self.devices.get(school, {}).get(device)

    def _state(self, school: str, device: str) -> DeviceState:
        states = self.devices.get(school)
        if states is None:
            states = self.devices[school] = {}
        state = states.get(device)
        if state is None:
            state = states[device] = DeviceState(device=device, school=school)
        return state

    def _school(self, school: str) -> SchoolState:
        state = self.schools.get(school)
        if state is None:
            state = self.schools[school] = SchoolState(school)
            self.devices.setdefault(school, {})
        return state

    def device_count(self) -> int:
        return sum(len(states) for states in self.devices.values())

    def save_devices(self, limit: int | None = None) -> int:
        """Store the state of each device and school changed since the last save
        (`limit`: at most that many devices, in key order; the bench's seam)."""
        with self._lock:
            return self._save(limit)

    def _changed(self, school: str) -> set[str]:
        changed = self._dirty.get(school)
        if changed is None:
            changed = self._dirty[school] = set()
        return changed

    def _save(self, limit: int | None = None) -> int:
        keys = sorted((s, d) for s, devices in self._dirty.items() for d in devices)[:limit]
        rows = [
            SavedDevice(school, device, battery_model(state), state.last_seen, to_document(state))
            for (school, device) in keys
            if (state := self.state(school, device)) is not None
        ]
        self.store.device_states.put_many(rows)
        clock_s = self.clock.at(self._now or datetime.now(UTC))
        # Every school: each document carries the connected clock (restored from them).
        self.store.school_states.put_many(
            [
                (s, school_document(self.schools[s], clock_s, self.clock.outages))
                for s in sorted(self.schools)
            ]
        )
        for school, device in keys:
            self._dirty[school].discard(device)
        self._dirty = {s: devices for s, devices in self._dirty.items() if devices}
        # With its cache, the engine keeps "still true" findings in memory (their
        # timers did not change): stored at the same pace as the device state.
        self.engine.flush()
        return len(rows)

    def restore(self) -> int:
        """Reload the saved device and school state after a restart; with partitions
        (`owns`), only this collector's schools: the others are another's to judge."""
        owns = None if self._owns is None else functools.cache(self._owns)  # per school
        with self._lock:
            saved = [r for r in self.store.device_states.all() if owns is None or owns(r.school)]
            for record in saved:
                self._state(record.school, record.device)  # the school's dict
                self.devices[record.school][record.device] = _from_saved(record)
            for name, doc in self.store.school_states.all().items():
                if owns is not None and not owns(name):
                    continue
                self.schools[name] = school_from(name, doc)
                self.clock.restore(float(doc.get("clock_s", 0.0)), doc.get("outages", []))
            for name in list(self.devices):
                self._school(name)
            return len(saved)

    def _load_unknown(self, keys: set[DeviceKey]) -> None:
        missing = [key for key in keys if self.state(*key) is None]
        if missing:
            for (school, device), record in self.store.device_states.get_many(missing).items():
                self._school(school)
                self.devices[school][device] = _from_saved(record)

    def with_history(self, alert: Alert) -> Alert:
        """The alert with its battery's weekly capacity history in the evidence (for
        the escalation packet), from memory or, if this process does not hold the
        device, from the store."""
        name = alert.evidence.get("battery")
        if alert.subject != "battery" or alert.device is None or not isinstance(name, str):
            return alert
        state = self.state(alert.school, alert.device)
        if state is not None and name in state.batteries:
            history = points(state.batteries[name].history)
        else:
            record = self.store.device_states.get_many([(alert.school, alert.device)])
            saved = record.get((alert.school, alert.device))
            history = saved_history(saved.derived, name) if saved else []
        if not history:
            return alert
        return replace(alert, evidence={**alert.evidence, "capacity_history": history})

    def _notify(self, notifications: Sequence[Notification], now: datetime, retry: bool) -> None:
        """The engine already put the notifications in the outbox: send them now
        (and, at a sweep, whatever earlier failures are due again)."""
        self.sent.extend(notifications)
        if not (notifications or retry):
            return
        if self.worker is not None:
            self.worker.wake()
        elif self.deliverer is not None:
            self.deliverer.deliver_due(now)

    def _with_history_locked(self, alert: Alert) -> Alert:
        with self._lock:  # the worker's thread: the device states are the ingest's
            return self.with_history(alert)

    # --- figures ----------------------------------------------------------------------

    def figures(self) -> dict[str, int]:
        """Counters for the collector's statistics."""
        return {
            "samples_stale": self.evaluation.stale,
            "samples_late": sum(s.late for s in self.schools.values()),
            "pending_windows_and_days": sum(s.pending() for s in self.schools.values()),
        }

    def census(self) -> dict[str, int]:
        """`figures()` and the devices held in memory, under the lock: for another
        thread than the collector's (its metrics, collector/metrics.py)."""
        with self._lock:
            return {**self.figures(), "devices": self.device_count()}


def _no_zones() -> Calendar:
    from collector.calendar import default_calendar  # noqa: PLC0415 - loads the data

    return default_calendar()


def _days_to_judge(schools: Iterable[SchoolState], until: datetime) -> list[date]:
    """Completed days (by `until`) some school has not judged yet, in order."""
    schools = list(schools)
    starts = [
        s.judged_day + timedelta(days=1)
        if s.judged_day is not None
        else min(s.history, default=None)
        for s in schools
    ]
    known = [d for d in starts if d is not None]
    if not known:
        return []
    days: list[date] = []
    day = min(known)
    while day_end(day) <= until:
        days.append(day)
        day += timedelta(days=1)
    return days


def _from_saved(record: SavedDevice) -> DeviceState:
    return from_document(record.school, record.device, record.last_seen, record.derived)


def _runs(accepted: Iterable[tuple[str, str, Sample]]) -> list[tuple[str, str, list[Sample]]]:
    """The batch as runs of consecutive samples of one device (a spooled message's),
    in order."""
    runs: list[tuple[str, str, list[Sample]]] = []
    last: tuple[str, str] | None = None
    samples: list[Sample] = []
    for school, device, sample in accepted:
        if last is None or device != last[1] or school != last[0]:
            last, samples = (school, device), []
            runs.append((school, device, samples))
        samples.append(sample)
    return runs
