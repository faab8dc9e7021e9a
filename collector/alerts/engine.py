"""The one owner of the alert lifecycle: findings in, stored transitions and notifications out.

Per alert key (see `Finding.key`):
- **Minimum duration.** An active finding starts a pending timer at its reading time
  (`Finding.at`); the alert opens once the condition has held for `min_duration_s`.
  An inactive finding before that resets the timer.
- **Clear duration.** An inactive finding on an open or acknowledged alert starts a
  clear timer; the alert resolves once the condition has stayed inactive for
  `clear_duration_s` (hysteresis in time; the rule already applied its value
  hysteresis). An active finding meanwhile cancels the timer.
- **Repeat interval.** Decision: when a key comes back less than `repeat_interval_s`
  after its alert was resolved, the SAME alert is re-opened (transition
  resolved -> open) without notification, so a flapping condition is one alert with
  one history on the worklist, not a series. Later it becomes a new alert, notified.
  An open, unacknowledged alert gets a "reminder" every `repeat_interval_s`;
  an acknowledged one is never reminded. "resolved" is notified unless the last
  notification for the key already was a "resolved" one (a silent re-open then a
  new resolution stays silent).
- Timers are also checked without findings: `process(findings, now)` ends with a
  sweep of every key whose timer expired by `now`, so rules may stay quiet while
  nothing changes. Within a batch the latest finding per key (by `at`, ties: the
  later in the list) wins; a finding older than the last one seen for its key is
  ignored (late replays cannot rewind a key).

Notifications: `process` returns them; with `outbox=True` each one is also written
to the store's outbox in the transaction that changes the alert (open, resolve), so
a crash or a mail outage cannot separate the change from its notification; a
reminder changes nothing and is enqueued alone (a crash between that and saving
the timers can repeat a reminder, never lose one). collector.notify.dispatch
sends the outbox.

The engine reads no clock. Its state lives in the store (`engine_state`), so the
lifecycle survives restarts and collectors sharing a PostgreSQL database see the same
timers. With `cache=True` (the default with a single-writer store, SQLite) the engine
also keeps every key's state in memory (about 2 KB per key): a finding that changes
no timer (the common "still true" on an open alert) then costs no database work, and
only its latest finding waits in memory until `flush()` (the collector calls it when
it saves device state, and at stop). Timer changes are written at once, as without
the cache. A shared PostgreSQL store is read at every batch instead, since other
collectors fire due timers there too. Two collectors racing to open a key get one
alert (the store's unique index) and one "opened" notification; concurrent updates of
the same key's timers are last-writer-wins, which is why collectors should own
disjoint sets of devices.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from collector.alerts.model import Alert, Finding
from collector.alerts.schema import to_json
from collector.alerts.store import AlertNotFound, AlertStore, EngineState, InvalidTransition

NotificationKind = Literal["opened", "resolved", "reminder"]
_TIMING_FIELDS = ("min_duration_s", "clear_duration_s", "repeat_interval_s")


@dataclass(frozen=True, slots=True)
class RuleTiming:
    min_duration_s: float
    clear_duration_s: float
    repeat_interval_s: float


@dataclass(frozen=True)
class LifecyclePolicy:
    """Lifecycle durations, with per-rule overrides: {"battery_replace": {"min_duration_s": 0}}."""

    min_duration_s: float = 300.0  # five minutes: one bad sample does not page anyone
    clear_duration_s: float = 900.0
    repeat_interval_s: float = 86_400.0  # at most one e-mail per alert and per day
    per_rule: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in _TIMING_FIELDS:
            _check_duration(name, getattr(self, name))
        for rule, overrides in self.per_rule.items():
            for name, value in overrides.items():
                if name not in _TIMING_FIELDS:
                    raise ValueError(
                        f"per_rule.{rule}: unknown setting {name!r}, expected one of "
                        f"{', '.join(_TIMING_FIELDS)}"
                    )
                _check_duration(f"per_rule.{rule}.{name}", value)

    def for_rule(self, rule: str) -> RuleTiming:
        values = {name: getattr(self, name) for name in _TIMING_FIELDS}
        values.update(self.per_rule.get(rule, {}))
        return RuleTiming(**values)


def _check_duration(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class Notification:
    """Something the notifiers must send: the alert as stored, and the finding's evidence."""

    kind: NotificationKind
    alert: Alert
    evidence: dict[str, Any]


class AlertEngine:
    """With `outbox=True`, every notification is also written to the store's outbox
    in the transaction that makes the alert change (a reminder, which changes
    nothing, in its own); a deliverer sends it from there."""

    def __init__(
        self,
        store: AlertStore,
        policy: LifecyclePolicy | None = None,
        *,
        outbox: bool = False,
        cache: bool | None = None,
    ) -> None:
        self._store = store
        self._policy = policy or LifecyclePolicy()
        self._outbox = outbox
        # Default: cache with a single-writer store (SQLite); a shared PostgreSQL store
        # is read at every batch, since other collectors fire timers there too.
        self._cache = store.single_writer if cache is None else cache
        self._known: dict[str, EngineState] = {}  # key -> state as stored (+ latest finding)
        self._unsaved: set[str] = set()  # keys whose latest finding is not stored yet

    def _kind(self, kind: NotificationKind) -> NotificationKind | None:
        return kind if self._outbox else None

    def process(self, findings: Sequence[Finding], now: datetime) -> list[Notification]:
        """Apply a batch of findings, then fire every timer expired by `now`."""
        if now.tzinfo is None:
            raise ValueError(f"now must be a timezone-aware datetime, got {now!r}")
        latest = _latest_per_key(findings)
        touched = list(latest)
        try:
            self._save(self._apply_all(latest))
            notifications: list[Notification] = []
            fired = [self._known.get(s.key, s) for s in self._store.due_engine_states(now)]
            touched += [state.key for state in fired]
            for state in fired:
                notifications.extend(self._fire(state, now))
            self._save(fired)
        except BaseException:
            # Cached states may have changed in place without being stored: forget
            # them (and their unsaved findings), the store is right.
            for key in touched:
                self._known.pop(key, None)
                self._unsaved.discard(key)
            raise
        return notifications

    def _apply_all(self, latest: Mapping[str, Finding]) -> list[EngineState]:
        """Apply each key's latest finding; the states to store. With the cache, a
        state whose timers did not change ("still true") waits for `flush()`."""
        states = self._load(latest)
        changed: list[EngineState] = []
        for key in sorted(latest):
            before = states.get(key)
            timers = None if before is None else _timers(before)
            state = self._apply(before, latest[key])
            if state is None:
                continue
            if self._cache and timers == _timers(state):
                self._unsaved.add(key)
                continue
            changed.append(state)
        return changed

    def flush(self) -> int:
        """Store the latest finding of every key whose timers did not change since it
        was last stored (with the cache only; the collector calls this when it saves
        device state, and at stop). Returns how many keys were written."""
        states = [self._known[key] for key in sorted(self._unsaved) if key in self._known]
        self._store.put_engine_findings(states)
        self._unsaved.clear()
        return len(states)

    def _load(self, keys: Mapping[str, Finding]) -> dict[str, EngineState]:
        """The stored state of each key: from the cache when it holds the key."""
        if not self._cache:
            return self._store.get_engine_states(keys)
        known = self._known
        missing = [key for key in keys if key not in known]
        if missing:
            known.update(self._store.get_engine_states(missing))
        return {key: known[key] for key in keys if key in known}

    def _save(self, states: list[EngineState]) -> None:
        self._store.put_engine_states(states)
        if self._cache:
            for state in states:
                self._known[state.key] = state
                self._unsaved.discard(state.key)

    def _apply(self, state: EngineState | None, finding: Finding) -> EngineState | None:
        """Update the key's timers for one finding; None when there is nothing to store."""
        if state is None:
            if not finding.active:
                return None  # never seen active: nothing to clear
            state = EngineState(key=finding.key, rule=finding.rule)
        elif state.finding and finding.at < datetime.fromisoformat(state.finding["at"]):
            return None  # a late replay must not rewind the key
        timing = self._policy.for_rule(finding.rule)
        state.rule = finding.rule
        state.finding = _finding_to_json(finding)
        if finding.active:
            state.clear_since = None
            if state.alert_open:
                state.due_at = _reminder_due(state, timing)
            elif state.pending_since is None:
                state.pending_since = finding.at
                state.due_at = finding.at + timedelta(seconds=timing.min_duration_s)
        else:
            state.pending_since = None
            if not state.alert_open:
                state.due_at = None
            elif state.clear_since is None:
                state.clear_since = finding.at
                state.due_at = finding.at + timedelta(seconds=timing.clear_duration_s)
        return state

    def _fire(self, state: EngineState, now: datetime) -> list[Notification]:
        # As the store would give it back (evidence through JSON), cached or not.
        finding = _finding_from_json(json.loads(to_json(state.finding)))
        timing = self._policy.for_rule(state.rule)
        state.due_at = None
        if state.alert_open and state.clear_since is not None:
            return self._resolve(state, finding, now)
        if state.alert_open:
            return self._remind(state, finding, now, timing)
        if state.pending_since is not None:
            return self._open(state, finding, now, timing)
        return []

    def _open(
        self, state: EngineState, finding: Finding, now: datetime, timing: RuleTiming
    ) -> list[Notification]:
        since = _iso(state.pending_since)
        note = f"condition active depuis {since} (durée minimale {_human(timing.min_duration_s)})"
        recent = self._recently_resolved(state, now, timing)
        notifications: list[Notification] = []
        if recent is not None:  # flapped back: same alert, no new notification
            note += f" ; réouverte moins de {_human(timing.repeat_interval_s)} après sa résolution"
            alert = self._reopen(recent, finding, now, note)
        else:
            alert, created = self._store.try_open_alert(
                finding, now, note, notify=self._kind("opened")
            )
            if created:
                state.last_notified_at, state.last_notified_kind = now, "opened"
                notifications.append(Notification("opened", alert, finding.evidence))
            elif _before(state.last_notified_at, alert.opened_at):
                # Another collector opened it first, and notified it then.
                state.last_notified_at, state.last_notified_kind = alert.opened_at, "opened"
        state.pending_since = None
        state.alert_open, state.alert_id = True, alert.id
        state.due_at = _reminder_due(state, timing)  # _remind skips acknowledged alerts
        return notifications

    def _reopen(self, recent: Alert, finding: Finding, now: datetime, note: str) -> Alert:
        try:
            return self._store.transition(
                recent.id, "open", "engine", note=note, evidence=finding.evidence, at=now
            )
        except InvalidTransition:
            existing = self._store.find_open(finding.key)  # another collector was first
            if existing is None:
                raise
            return existing

    def _recently_resolved(
        self, state: EngineState, now: datetime, timing: RuleTiming
    ) -> Alert | None:
        if state.alert_id is None:
            return None
        try:
            alert = self._store.get_alert(state.alert_id)
        except AlertNotFound:
            return None
        if alert.status != "resolved" or alert.resolved_at is None:
            return None
        recent = now - alert.resolved_at < timedelta(seconds=timing.repeat_interval_s)
        return alert if recent else None

    def _resolve(self, state: EngineState, finding: Finding, now: datetime) -> list[Notification]:
        assert state.alert_id is not None and state.clear_since is not None
        note = f"condition absente depuis {_iso(state.clear_since)}"
        state.alert_open, state.clear_since = False, None
        # Not when the technician's last news already says "resolved".
        notify = state.last_notified_kind != "resolved"
        try:
            alert = self._store.resolve(
                state.alert_id,
                "engine",
                note=note,
                evidence=finding.evidence,
                at=now,
                notify=self._kind("resolved") if notify else None,
            )
        except InvalidTransition:
            return []  # resolved meanwhile, by a person or another collector
        if not notify:
            return []
        state.last_notified_at, state.last_notified_kind = now, "resolved"
        return [Notification("resolved", alert, finding.evidence)]

    def _remind(
        self, state: EngineState, finding: Finding, now: datetime, timing: RuleTiming
    ) -> list[Notification]:
        assert state.alert_id is not None
        alert = self._store.get_alert(state.alert_id)
        if alert.status == "resolved":
            # Resolved by a person while the condition still holds: it must hold for
            # the minimum duration again before the alert comes back.
            state.alert_open, state.pending_since = False, now
            state.due_at = now + timedelta(seconds=timing.min_duration_s)
            return []
        if alert.status == "acknowledged":
            return []  # acknowledged: the technician knows, never remind
        due = _reminder_due(state, timing)
        if due > now:
            state.due_at = due
            return []
        state.last_notified_at, state.last_notified_kind = now, "reminder"
        state.due_at = _reminder_due(state, timing)
        if self._outbox:
            self._store.enqueue(alert.id, "reminder", now)
        return [Notification("reminder", alert, finding.evidence)]


def _latest_per_key(findings: Sequence[Finding]) -> dict[str, Finding]:
    latest: dict[str, Finding] = {}
    for finding in findings:
        if finding.at.tzinfo is None:
            raise ValueError(
                f"finding {finding.key!r}: at must be timezone-aware, got {finding.at!r}"
            )
        if finding.key not in latest or finding.at >= latest[finding.key].at:
            latest[finding.key] = finding
    return latest


def _timers(state: EngineState) -> tuple[Any, ...]:
    """Every field of the state but the latest finding."""
    return (
        state.rule, state.pending_since, state.clear_since, state.last_notified_at,
        state.last_notified_kind, state.alert_id, state.alert_open, state.due_at,
    )  # fmt: skip


def _reminder_due(state: EngineState, timing: RuleTiming) -> datetime:
    # Never notified (e.g. silently re-opened before any notification): remind at once.
    base = state.last_notified_at or state.pending_since or _finding_from_json(state.finding).at
    return base + timedelta(seconds=timing.repeat_interval_s)


def _before(earlier: datetime | None, later: datetime) -> bool:
    return earlier is None or earlier < later


def _finding_to_json(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule, "key": finding.key, "subject": finding.subject,
        "school": finding.school, "device": finding.device, "category": finding.category,
        "severity": finding.severity, "active": finding.active, "at": finding.at.isoformat(),
        "summary": finding.summary, "action": finding.action, "evidence": finding.evidence,
    }  # fmt: skip


def _finding_from_json(data: Mapping[str, Any]) -> Finding:
    return Finding(**{**data, "at": datetime.fromisoformat(data["at"])})


def _iso(at: datetime | None) -> str:
    return at.isoformat(timespec="seconds") if at is not None else "?"


def _human(seconds: float) -> str:
    """A duration for technician-facing notes, in French units."""
    for unit_s, unit in ((86_400, "j"), (3_600, "h"), (60, "min")):
        if seconds >= unit_s and seconds % unit_s == 0:
            return f"{int(seconds // unit_s)} {unit}"
    return f"{seconds:g} s"
