"""The one owner of the alert lifecycle, in sample time: findings in, stored
transitions and notifications out.

Findings are applied one by one, in the order given; the caller gives each key's
findings in sample-time order (a device's samples arrive in order; completed
telemetry windows are judged in order). No finding of a batch is skipped, so an
episode that starts and ends inside one batch is the same alert as when its samples
arrive one by one. Per alert key (see `Finding.key`):

- **Minimum duration.** An active finding starts an episode at its time
  (`pending_since`); the alert opens at the first active finding at least
  `min_duration_s` later (at once when it is 0). An inactive finding first ends the
  episode. `opened_at` is that finding's time, `since` the episode's start.
- **Clear duration.** An inactive finding on an open alert starts the clear timer,
  due `clear_duration_s` later; an active finding before then cancels it. The alert
  resolves at the due time once the key's clock has reached it: the sample time of
  the key's `scope` (the device's latest sample, or the school's completed telemetry:
  `collector.rules.scope_of`), given to `process` as `clocks`. A finding at or after
  the due time fires the timer before it is applied.
- **Repeat interval.** When a key comes back less than `repeat_interval_s` (sample
  time) after its alert was resolved, the SAME alert is re-opened silently (resolved
  -> open), so a flapping condition is one alert with one history; later it is a new
  alert.
- A finding older than the key's latest is ignored (a replay cannot rewind a key).

Every alert time above is a sample time, so the same telemetry gives the same
alerts, transitions and evidence whatever its arrival schedule.

Notifications are about people, on the collector's clock (`now`):
- "opened" is sent when the alert opens, if it opened (in sample time) within
  `notify_max_age_s` of `now`. An alert that opens from older telemetry (spools,
  outages) is recorded and marked `notify_pending`: the next `sweep` sends its
  "opened" if it is still open then, with its true dates; if it was resolved
  meanwhile (an old episode that started and ended before it reached the collector)
  it stays in the history and is never mailed.
- "resolved" is sent when the last news sent for the key was "opened" or a reminder.
- A reminder goes out every `repeat_interval_s` (collector's clock) for an open,
  unacknowledged alert (`sweep`).
With `outbox=True` each notification is also written to the store's outbox in the
transaction that changes the alert (collector.notify.dispatch sends it).

The engine reads no clock. Its state lives in the store (`engine_state`), so the
lifecycle survives restarts. With `cache=True` the engine also keeps every key's state
in memory: a finding that changes no timer ("still true") costs no database work
until `flush()`. That needs this process to be the only one changing the keys it
caches, so it is the default with a single-writer store (SQLite) and with `owns` (a
partition's collector, which holds its partition's lock: it caches, sweeps and
fires the timers of its own schools' keys only, and forgets the others' at each
sweep when the registry moved a school away). Without the cache (several collectors
sharing a PostgreSQL store) states are read at every batch.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from collector.alerts.enginestore import EngineState
from collector.alerts.model import Alert, Finding
from collector.alerts.schema import to_json
from collector.alerts.store import AlertNotFound, AlertStore, InvalidTransition
from collector.rules import scope_of
from collector.rules.config import RuleTiming

NotificationKind = Literal["opened", "resolved", "reminder"]
Timing = Callable[[str], RuleTiming]  # rule name -> its timing (RulesConfig.timing)
Scope = Callable[[Finding], str]  # finding -> the clock that fires its key's timers
DEFAULT_NOTIFY_MAX_AGE_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Notification:
    """Something the notifiers must send: the alert as stored, and the finding's evidence."""

    kind: NotificationKind
    alert: Alert
    evidence: dict[str, Any]


class AlertEngine:
    def __init__(
        self,
        store: AlertStore,
        timing: Timing,
        *,
        scope: Scope = scope_of,
        outbox: bool = False,
        cache: bool | None = None,
        owns: Callable[[str], bool] | None = None,
        notify_max_age_s: float = DEFAULT_NOTIFY_MAX_AGE_S,
    ) -> None:
        self._store = store
        self._states = store.engine_states
        self._timing = timing
        self._scope = scope
        self._outbox = outbox
        self._max_age = timedelta(seconds=notify_max_age_s)
        self._owns = owns  # school -> this process's (None: every school)
        self._cache = (store.single_writer or owns is not None) if cache is None else cache
        self._known: dict[str, EngineState] = {}  # key -> state (cache only)
        self._unsaved: set[str] = set()  # keys whose latest finding is not stored yet
        # Clear timers per scope (cache only; without the cache the store is asked).
        self._timers: dict[str, dict[str, datetime]] = {}
        self._reindex = self._cache  # load the stored timers before the first use

    # --- findings -------------------------------------------------------------------

    def process(
        self, findings: Sequence[Finding], clocks: Mapping[str, datetime], now: datetime
    ) -> list[Notification]:
        """Apply the findings in order, then fire every clear timer its scope's clock
        (`clocks`: scope -> sample time reached) has passed. `now`: the collector's
        clock, for notifications only."""
        _aware("now", now)
        for scope, clock in clocks.items():
            if clock.tzinfo is None:
                _aware(f"clock of {scope!r}", clock)
        for finding in findings:  # the names only built for the error
            if finding.at.tzinfo is None:
                _aware(f"finding {finding.key!r}: at", finding.at)
            if finding.since is not None and finding.since.tzinfo is None:
                _aware(f"finding {finding.key!r}: since", finding.since)
        states = self._load({f.key for f in findings})
        before = {key: _timers(state) for key, state in states.items()}
        out: list[Notification] = []
        try:
            with self._store.unit():  # the batch's transitions: one commit, not one each
                for finding in findings:
                    state = states.get(finding.key)
                    if state is not None and _timer_expired(state, finding.at):
                        out += self._resolve(state, now)
                    state = self._apply(state, finding, now, out)
                    if state is not None:
                        states[finding.key] = state
            self._save(states, before)
            fired = self._expired(clocks)
            with self._store.unit():
                for state in fired:
                    out += self._resolve(state, now)
            self._save({s.key: s for s in fired}, {})
        except BaseException:
            self._forget(states)
            raise
        return out

    def _apply(
        self, state: EngineState | None, finding: Finding, now: datetime, out: list[Notification]
    ) -> EngineState | None:
        if state is None:
            if not finding.active:
                return None  # never seen active: nothing to clear
            state = EngineState(key=finding.key, rule=finding.rule, scope=self._scope(finding))
        elif state.finding and finding.at < datetime.fromisoformat(state.finding["at"]):
            return None  # a late replay must not rewind the key
        state.rule = finding.rule
        state.finding = _finding_to_json(finding)
        if finding.active:
            if state.alert_open:
                state.clear_since = state.due_at = None
                return state
            if state.pending_since is None:
                state.pending_since = finding.since or finding.at
            timing = self._timing(finding.rule)
            if finding.at - state.pending_since >= timedelta(seconds=timing.min_duration_s):
                out += self._open(state, finding, now, timing)
            return state
        state.pending_since = None
        if state.alert_open and state.clear_since is None:
            state.clear_since = finding.at
            clear_s = self._timing(finding.rule).clear_duration_s
            state.due_at = finding.at + timedelta(seconds=clear_s)
            if clear_s == 0:
                out += self._resolve(state, now)
        return state

    # --- transitions ----------------------------------------------------------------

    def _open(
        self, state: EngineState, finding: Finding, now: datetime, timing: RuleTiming
    ) -> list[Notification]:
        at, since = finding.at, state.pending_since or finding.at
        minimum = _human(timing.min_duration_s)
        note = f"condition active depuis {_iso(since)} (durée minimale {minimum})"
        fresh = now - at <= self._max_age
        recent = self._recently_resolved(state, at, timing)
        state.pending_since = None
        if recent is not None:  # flapped back: the same alert
            note += f" ; réouverte moins de {_human(timing.repeat_interval_s)} après sa résolution"
            # Silent, unless nothing was ever sent about it (it was opened late).
            news = state.last_notified_kind is None
            alert = self._reopen(recent, finding, now, note, news and fresh)
            state.alert_open, state.alert_id = True, alert.id
            if news:
                return self._opened(state, alert, finding, now, fresh)
            repeat = timedelta(seconds=timing.repeat_interval_s)
            state.remind_at = (state.last_notified_at or now) + repeat
            return []
        if not fresh:
            note += " ; télémétrie arrivée en retard"
        alert, created = self._store.try_open_alert(
            finding,
            at,
            note,
            notify=self._kind("opened") if fresh else None,
            since=since,
            queued_at=now,
        )
        state.alert_open, state.alert_id = True, alert.id
        if created:
            state.last_notified_at = state.last_notified_kind = None
            return self._opened(state, alert, finding, now, fresh)
        # Another collector opened it first, and notified it then.
        state.last_notified_at, state.last_notified_kind = now, "opened"
        state.notify_pending = False
        state.remind_at = now + timedelta(seconds=timing.repeat_interval_s)
        return []

    def _opened(
        self, state: EngineState, alert: Alert, finding: Finding, now: datetime, fresh: bool
    ) -> list[Notification]:
        """Book-keeping of an alert just opened: notified now, or at the next sweep."""
        if not fresh:
            state.notify_pending, state.remind_at = True, now
            return []
        state.notify_pending = False
        state.last_notified_at, state.last_notified_kind = now, "opened"
        repeat_s = self._timing(state.rule).repeat_interval_s
        state.remind_at = now + timedelta(seconds=repeat_s)
        return [Notification("opened", alert, finding.evidence)]

    def _reopen(
        self,
        recent: Alert,
        finding: Finding,
        now: datetime,
        note: str,
        notify: bool,
    ) -> Alert:
        try:
            return self._store.transition(
                recent.id,
                "open",
                "engine",
                note=note,
                evidence=finding.evidence,
                at=finding.at,
                notify=self._kind("opened") if notify else None,
                queued_at=now,
            )
        except InvalidTransition:
            existing = self._store.find_open(finding.key)  # another collector was first
            if existing is None:
                raise
            return existing

    def _recently_resolved(
        self, state: EngineState, at: datetime, timing: RuleTiming
    ) -> Alert | None:
        if state.alert_id is None:
            return None
        try:
            alert = self._store.get_alert(state.alert_id)
        except AlertNotFound:
            return None
        if alert.status != "resolved" or alert.resolved_at is None:
            return None
        recent = at - alert.resolved_at < timedelta(seconds=timing.repeat_interval_s)
        return alert if recent else None

    def _resolve(self, state: EngineState, now: datetime) -> list[Notification]:
        """The clear timer expired: resolve at its due time (a sample time)."""
        due, since = state.due_at, state.clear_since
        assert due is not None and since is not None and state.alert_id is not None
        finding = _finding_from_json(state.finding)
        told = state.last_notified_kind in ("opened", "reminder")
        state.alert_open, state.clear_since, state.due_at = False, None, None
        state.notify_pending, state.remind_at = False, None
        try:
            alert = self._store.resolve(
                state.alert_id,
                "engine",
                note=f"condition absente depuis {_iso(since)}",
                evidence=finding.evidence,
                at=due,
                notify=self._kind("resolved") if told else None,
                queued_at=now,
            )
        except InvalidTransition:
            return []  # resolved meanwhile, by a person or another collector
        if not told:
            return []
        state.last_notified_at, state.last_notified_kind = now, "resolved"
        return [Notification("resolved", alert, finding.evidence)]

    def _kind(self, kind: NotificationKind) -> NotificationKind | None:
        return kind if self._outbox else None

    # --- the collector's clock: late "opened", reminders, people's resolutions -------

    def sweep(self, now: datetime) -> list[Notification]:
        """Send the "opened" of alerts opened from late telemetry that are still open,
        remind open unacknowledged alerts, and take in alerts a person resolved."""
        _aware("now", now)
        self._forget_foreign()
        mine = self._mine()
        changed: dict[str, EngineState] = {}
        for key, _alert_id in self._states.open_but_resolved():
            if not mine(key):
                continue  # another partition's
            state = self._current(key)
            if state is not None:
                _closed_by_person(state)
                changed[key] = state
        out: list[Notification] = []
        with self._store.unit():
            for stored in self._states.to_remind(now):
                if not mine(stored.key):
                    continue
                state = self._known.get(stored.key, stored) if self._cache else stored
                if state.key in changed:
                    continue
                out += self._remind(state, now)
                changed[state.key] = state
        self._save(changed, {})
        return out

    def _remind(self, state: EngineState, now: datetime) -> list[Notification]:
        state.remind_at = None
        if not state.alert_open or state.alert_id is None:
            state.notify_pending = False
            return []
        alert = self._store.get_alert(state.alert_id)
        finding = _finding_from_json(state.finding)
        repeat = timedelta(seconds=self._timing(state.rule).repeat_interval_s)
        if alert.status == "resolved":
            _closed_by_person(state)
            return []
        if state.notify_pending:
            state.notify_pending = False
            if self._outbox:
                self._store.enqueue(alert.id, "opened", now)
            state.last_notified_at, state.last_notified_kind = now, "opened"
            state.remind_at = now + repeat
            return [Notification("opened", alert, finding.evidence)]
        if alert.status == "acknowledged":
            return []  # the technician knows: never reminded
        if state.last_notified_at is not None and state.last_notified_at + repeat > now:
            state.remind_at = state.last_notified_at + repeat  # not due yet
            return []
        if self._outbox:
            self._store.enqueue(alert.id, "reminder", now)
        state.last_notified_at, state.last_notified_kind = now, "reminder"
        state.remind_at = now + repeat
        return [Notification("reminder", alert, finding.evidence)]

    # --- state in memory and in the store ---------------------------------------------

    def flush(self) -> int:
        """Store the latest finding of every key whose timers did not change since it
        was last stored (with the cache only). Returns how many keys were written."""
        states = [self._known[key] for key in sorted(self._unsaved) if key in self._known]
        self._states.put_findings(states)
        self._unsaved.clear()
        return len(states)

    def _load(self, keys: Iterable[str]) -> dict[str, EngineState]:
        if not self._cache:
            return self._states.get_many(keys)
        known = self._known
        wanted = set(keys)
        missing = [key for key in wanted if key not in known]
        if missing:
            known.update(self._states.get_many(missing))
        return {key: known[key] for key in wanted if key in known}

    def _current(self, key: str) -> EngineState | None:
        return self._load([key]).get(key)

    def _save(
        self, states: Mapping[str, EngineState], before: Mapping[str, tuple[Any, ...]]
    ) -> None:
        """Store the states whose timers changed; with the cache, the others only
        wait for `flush()`."""
        changed = [
            state
            for key, state in sorted(states.items())
            if not (self._cache and key in before and before[key] == _timers(state))
        ]
        self._states.put_many(changed)
        if not self._cache:
            return
        for key, state in states.items():
            self._known[key] = state
            self._index(state)
        for state in changed:
            self._unsaved.discard(state.key)
        self._unsaved.update(
            key for key in states if key in before and before[key] == _timers(states[key])
        )

    def _index(self, state: EngineState) -> None:
        timers = self._timers.get(state.scope)
        if state.due_at is not None:
            if timers is None:
                timers = self._timers[state.scope] = {}
            timers[state.key] = state.due_at
        elif timers is not None:
            timers.pop(state.key, None)
            if not timers:
                del self._timers[state.scope]

    def _expired(self, clocks: Mapping[str, datetime]) -> list[EngineState]:
        """States whose clear timer their scope's clock has passed, in (due, key) order."""
        if not clocks:
            return []
        if self._cache:
            if self._reindex:
                mine = self._mine()
                for stored in self._states.with_clear_timer():
                    if mine(stored.key):
                        self._index(self._known.setdefault(stored.key, stored))
                self._reindex = False
            keys = [
                key
                for scope, clock in clocks.items()
                for key, due in self._timers.get(scope, {}).items()
                if due <= clock
            ]
            states = [self._known[key] for key in keys if _timer_expired(self._known[key], None)]
        else:
            latest = max(clocks.values())
            states = [
                s
                for s in self._states.with_clear_timer(until=latest)
                if s.scope in clocks and _timer_expired(s, clocks[s.scope])
            ]
        return sorted(states, key=lambda s: (s.due_at, s.key))

    def _mine(self) -> Callable[[str], bool]:
        """For one pass over stored keys: is the key this process's to judge (every
        key starts with its school)? `owns` asked once per school (it reads the
        registry in force: ~47 µs for 500 schools, measured)."""
        if self._owns is None:
            return lambda _key: True
        owns = functools.cache(self._owns)
        return lambda key: owns(key.partition("/")[0])

    def _forget_foreign(self) -> None:
        """With partitions: drop the cached keys of schools the registry moved to
        another partition (their new owner reads them from the store; a finding not
        stored yet is lost with them, as with a killed process). Not written back:
        the new owner may already have changed them."""
        if not (self._cache and self._owns is not None and self._known):
            return
        owns = self._owns
        gone = {school for school in {key.partition("/")[0] for key in self._known}
                if not owns(school)}  # fmt: skip
        if not gone:
            return
        for key in [k for k in self._known if k.partition("/")[0] in gone]:
            del self._known[key]
            self._unsaved.discard(key)
        self._timers.clear()
        self._reindex = True

    def _forget(self, states: Mapping[str, EngineState]) -> None:
        """After a failure: cached states may have changed in place without being
        stored; forget them (the store is right; timers are reloaded when next needed)."""
        if not self._cache:
            return
        for key in states:
            self._known.pop(key, None)
            self._unsaved.discard(key)
        self._timers.clear()
        self._reindex = True


def _timer_expired(state: EngineState, clock: datetime | None) -> bool:
    """A clear timer set and (when `clock` is given) expired by it."""
    if state.due_at is None or state.clear_since is None or not state.alert_open:
        return False
    return clock is None or state.due_at <= clock


def _closed_by_person(state: EngineState) -> None:
    """A person resolved the alert: the condition must be seen again (for the
    minimum duration) before the key has an alert again."""
    state.alert_open, state.pending_since, state.clear_since = False, None, None
    state.due_at = state.remind_at = None
    state.notify_pending = False


def _timers(state: EngineState) -> tuple[Any, ...]:
    """Every field of the state but the latest finding."""
    return (
        state.rule, state.scope, state.pending_since, state.clear_since,
        state.last_notified_at, state.last_notified_kind, state.alert_id, state.alert_open,
        state.due_at, state.remind_at, state.notify_pending,
    )  # fmt: skip


def _aware(name: str, at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {at!r}")


def _finding_to_json(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule, "key": finding.key, "subject": finding.subject,
        "school": finding.school, "device": finding.device, "category": finding.category,
        "severity": finding.severity, "active": finding.active, "at": finding.at.isoformat(),
        "summary": finding.summary, "action": finding.action, "evidence": finding.evidence,
        "since": None if finding.since is None else finding.since.isoformat(),
    }  # fmt: skip


def _finding_from_json(data: Mapping[str, Any]) -> Finding:
    # As the store gives it back (evidence through JSON), cached or not.
    data = json.loads(to_json(data))
    since = data.get("since")
    return Finding(
        **{
            **data,
            "at": datetime.fromisoformat(data["at"]),
            "since": None if since is None else datetime.fromisoformat(since),
        }
    )


def _iso(at: datetime | None) -> str:
    return at.isoformat(timespec="seconds") if at is not None else "?"


def _human(seconds: float) -> str:
    """A duration for technician-facing notes, in French units."""
    for unit_s, unit in ((86_400, "j"), (3_600, "h"), (60, "min")):
        if seconds >= unit_s and seconds % unit_s == 0:
            return f"{int(seconds // unit_s)} {unit}"
    return f"{seconds:g} s"
