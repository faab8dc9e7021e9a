"""From validated samples to alerts and notifications: the rules, the device state,
the lifecycle engine and the notifier, wired together.

Per batch (after the time-series store confirmed it): every sample goes through the
per-sample rules against its device's state, then the state folds the sample in.
Every `sweep_interval_s` of sample time, the sweeps run over all states: silent
devices, and the access-point / school correlation whose network findings replace
the per-device Wi-Fi findings they cover. The engine turns findings into alerts
and, with a notifier, writes each notification to the store's outbox in the same
transaction as the alert change; the outbox is delivered at once, and retried at
every sweep (collector.notify.dispatch). Nothing here reads the clock: `now` is
given, so the same code runs live and over a simulated week.

Device state is saved (whole, collector.rules.persist) at every sweep for the
devices that changed and by `stop()`; `restore()` reloads it at start, and a device
this process has not seen is looked up in the store on its first sample (another
collector sharing the PostgreSQL store may have saved it).

`take_lines()` drains line protocol for the time series: the alerts' open/resolve
changes (read back from the store's transitions, whoever made them) and, at most
once per `forecast_interval_s` of sweeps, the devices predicted to cross 80 % / 60 %
per school and term.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from collector.alerts.devices import SavedDevice
from collector.alerts.engine import AlertEngine, LifecyclePolicy, Notification
from collector.alerts.model import Alert, Finding
from collector.alerts.series import alert_lines, forecast_lines
from collector.alerts.store import AlertStore
from collector.notify.deliver import Notifier
from collector.notify.dispatch import OutboxDeliverer
from collector.rules import (
    RULE_NAMES,
    DeviceState,
    RulesConfig,
    build_rules,
    correlate_network,
    silent_devices,
    suppress_covered,
)
from collector.rules.calendar import DEFAULT_TERMS, Term
from collector.rules.history import points
from collector.rules.network import DEVICE_WIFI_RULES
from collector.rules.persist import battery_model, from_document, saved_history, to_document
from collector.rules.rollup import devices_by_term
from collector.samples import Sample

log = logging.getLogger(__name__)

NETWORK_RULES = ("wifi_ap_fault", "wifi_school_fault")
DeviceKey = tuple[str, str]


def lifecycle_from(config: RulesConfig) -> LifecyclePolicy:
    """The engine's per-rule timing, from the rules' configuration (one source)."""
    fields = ("min_duration_s", "clear_duration_s", "repeat_interval_s")
    per_rule = {
        rule: {name: float(getattr(config.timing(rule), name)) for name in fields}
        for rule in (*RULE_NAMES, *NETWORK_RULES)
    }
    return LifecyclePolicy(per_rule=per_rule)


class Alerting:
    def __init__(
        self,
        config: RulesConfig,
        store: AlertStore,
        notifier: Notifier | None = None,
        sweep_interval_s: float = 300.0,
        *,
        forecast_interval_s: float = 3600.0,
        save_interval_s: float | None = None,
        terms: Sequence[Term] = DEFAULT_TERMS,
        engine_cache: bool | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.notifier = notifier
        self.rules = build_rules(config)
        # Without a notifier (evaluation, tests) nothing would ever empty the outbox.
        # engine_cache (default: with a single-writer store) trades memory, about 2 KB
        # per alert key, for no database work on "still true" findings (AlertEngine).
        self.engine = AlertEngine(
            store, lifecycle_from(config), outbox=notifier is not None, cache=engine_cache
        )
        self.deliverer = (
            None if notifier is None else OutboxDeliverer(store, notifier, enrich=self.with_history)
        )
        self.states: dict[DeviceKey, DeviceState] = {}
        self.sweep_interval = timedelta(seconds=sweep_interval_s)
        self.forecast_interval = timedelta(seconds=forecast_interval_s)
        # Device state is saved at the first sweep after this much time (default: every
        # sweep); about 0.1 ms per changed device here (docs/alerts.md).
        self.save_interval = timedelta(seconds=save_interval_s or sweep_interval_s)
        self._last_save: datetime | None = None
        self.terms = tuple(terms)
        self._last_sweep: datetime | None = None
        self._last_forecast: datetime | None = None
        self._network_active: frozenset[str] = frozenset()
        self._covered: frozenset[DeviceKey] = frozenset()
        self._lock = threading.Lock()  # the ingest thread and a sweep timer may both call
        self.sent: list[Notification] = []  # what the engine notified (tests, eval)
        self._dirty: set[DeviceKey] = set()  # devices changed since the last save
        self._lines: list[str] = []  # forecast points waiting for take_lines
        # Status changes already written as lines: where the last run got to, else
        # from the first one (a store from before the cursor was kept: its history
        # is written once, 10,000 changes a flush; the same points if written before).
        self._feed_cursor = store.feed.saved_cursor() or 0
        self._written_cursor = self._feed_cursor

    def on_samples(self, accepted: Iterable[tuple[str, str, Sample]], now: datetime) -> None:
        """Evaluate a confirmed batch; sweep too when the sweep interval has passed."""
        with self._lock:
            batch = sorted(accepted, key=lambda a: a[2].ts)
            self._load_unknown({(school, device) for school, device, _ in batch})
            findings: list[Finding] = []
            for school, device, sample in batch:
                state = self.states.get((school, device))
                if state is None:
                    state = DeviceState(device=device, school=school)
                    self.states[(school, device)] = state
                found = [f for rule in self.rules for f in rule.evaluate(state, sample, sample.ts)]
                state.apply(sample, found, self.config.trust)
                self._dirty.add((school, device))
                findings.extend(found)
            findings = self._covered_as_clear(findings)
            sweeping = self._last_sweep is None or now - self._last_sweep >= self.sweep_interval
            if sweeping:
                findings += self._sweep_findings(now)
            self._notify(self.engine.process(findings, now), now, sweeping)

    def sweep(self, now: datetime) -> None:
        """Run the sweeps now (a timer calls this when no traffic arrives): silent
        devices, network correlation, device saving, outbox retries, forecast."""
        with self._lock:
            self._notify(self.engine.process(self._sweep_findings(now), now), now, True)

    def tick(self, now: datetime) -> bool:
        """Sweep if the sweep interval has passed since the last sweep (call it from
        the collector's loop so silent devices, outbox retries and saves happen even
        when no telemetry arrives). True when it swept."""
        with self._lock:
            if self._last_sweep is not None and now - self._last_sweep < self.sweep_interval:
                return False
            self._notify(self.engine.process(self._sweep_findings(now), now), now, True)
            return True

    def stop(self) -> int:
        """Save every changed device (call when the collector stops)."""
        with self._lock:
            return self._save_devices()

    def take_lines(self) -> list[str]:
        """Line protocol not yet taken: alert open/resolve changes, forecast counts."""
        with self._lock:
            changes, self._feed_cursor = self.store.feed.after(self._feed_cursor)
            lines, self._lines = [*alert_lines(changes), *self._lines], []
            return lines

    def lines_written(self) -> None:
        """Everything `take_lines` returned so far is in the time series: remember how
        far (a restart resumes there; before that, a crash makes it write them again,
        which gives the same points)."""
        with self._lock:
            if self._feed_cursor != self._written_cursor:
                self.store.feed.save_cursor(self._feed_cursor)
                self._written_cursor = self._feed_cursor

    def _covered_as_clear(self, findings: list[Finding]) -> list[Finding]:
        """A device under a failing access point gets no Wi-Fi alert of its own: its
        active Wi-Fi findings become clear findings, which also resets the engine's
        pending timers (merely dropping them would let a timer started before the
        network fault showed open the alert anyway)."""
        if not self._covered:
            return findings
        kept = suppress_covered(findings, self._covered)
        if len(kept) == len(findings):
            return findings
        dropped = [f for f in findings if f not in kept]
        return kept + [replace(f, active=False) for f in dropped]

    # --- device state -------------------------------------------------------------

    def save_devices(self) -> int:
        """Store the whole rule state of each device changed since the last save."""
        with self._lock:
            return self._save_devices()

    def _save_devices(self) -> int:
        rows = [
            SavedDevice(school, device, battery_model(state), state.last_seen, to_document(state))
            for (school, device) in sorted(self._dirty)
            if (state := self.states.get((school, device))) is not None
        ]
        self.store.device_states.put_many(rows)
        self._dirty = set()
        # With its cache, the engine keeps "still true" findings in memory (their
        # timers did not change): stored at the same pace as the device state.
        self.engine.flush()
        return len(rows)

    def restore(self) -> int:
        """Reload every saved device state after a restart: trust, conditions in
        progress, fade estimates, capacity history, last sighting and Wi-Fi."""
        with self._lock:
            saved = self.store.device_states.all()
            for record in saved:
                self.states[(record.school, record.device)] = _from_saved(record)
            # The network correlation's hysteresis: which network faults were active.
            self._network_active = frozenset(
                alert.key
                for status in ("open", "acknowledged")
                for alert in self.store.list_alerts(status=status)
                if alert.rule in NETWORK_RULES
            )
            return len(saved)

    def _load_unknown(self, keys: set[DeviceKey]) -> None:
        missing = [key for key in keys if key not in self.states]
        if missing:
            for key, record in self.store.device_states.get_many(missing).items():
                self.states[key] = _from_saved(record)

    def with_history(self, alert: Alert) -> Alert:
        """The alert with its battery's weekly capacity history in the evidence (for
        the escalation packet), from memory or, if this process does not hold the
        device, from the store."""
        name = alert.evidence.get("battery")
        if alert.subject != "battery" or alert.device is None or not isinstance(name, str):
            return alert
        state = self.states.get((alert.school, alert.device))
        if state is not None and name in state.batteries:
            history = points(state.batteries[name].history)
        else:
            record = self.store.device_states.get_many([(alert.school, alert.device)])
            saved = record.get((alert.school, alert.device))
            history = saved_history(saved.derived, name) if saved else []
        if not history:
            return alert
        return replace(alert, evidence={**alert.evidence, "capacity_history": history})

    # --- sweeps ---------------------------------------------------------------------

    def _sweep_findings(self, now: datetime) -> list[Finding]:
        self._last_sweep = now
        if self._last_save is None or now - self._last_save >= self.save_interval:
            self._last_save = now
            self._save_devices()
        states = self.states.values()
        network = correlate_network(states, now, self.config, self._network_active)
        self._network_active, self._covered = network.active_keys, network.covered
        silent = self._seen_elsewhere(
            silent_devices(states, now, self.config.device_silent.school_days)
        )
        for finding in silent:
            key = (finding.school, finding.device or "")
            state = self.states.get(key)
            if state is not None:
                state.record([finding])
                self._dirty.add(key)
        self._forecast(now)
        return [*network.findings, *silent, *self._clear_covered_wifi(now)]

    def _seen_elsewhere(self, silent: list[Finding]) -> list[Finding]:
        """Drop "silent" findings for devices the store says reported later than this
        process saw (another collector sharing the store got their messages), and
        take that later sighting; then judge those devices again."""
        active = [(f.school, f.device) for f in silent if f.active and f.device]
        if not active:
            return silent
        newer: set[DeviceKey] = set()
        for key, record in self.store.device_states.get_many(active).items():
            state = self.states.get(key)
            if (
                state
                and record.last_seen
                and (not state.last_seen or record.last_seen > state.last_seen)
            ):
                state.last_seen = record.last_seen
                newer.add(key)
        if not newer:
            return silent
        kept = [f for f in silent if (f.school, f.device) not in newer]
        rejudged = [self.states[key] for key in sorted(newer)]
        days = self.config.device_silent.school_days
        return kept + silent_devices(rejudged, silent[0].at, days)

    def _forecast(self, now: datetime) -> None:
        if self._last_forecast is not None and now - self._last_forecast < self.forecast_interval:
            return
        self._last_forecast = now
        self._lines += forecast_lines(devices_by_term(self.states.values(), self.terms), now)

    def _clear_covered_wifi(self, now: datetime) -> list[Finding]:
        """Clear findings for the Wi-Fi conditions of devices the network fault covers."""
        out: list[Finding] = []
        for school, device in self._covered:
            state = self.states.get((school, device))
            for key in list(state.conditions or {}) if state else []:
                rule = key.rsplit("/", 1)[-1]
                if rule in DEVICE_WIFI_RULES:
                    out.append(
                        Finding(
                            rule=rule,
                            key=key,
                            subject="device",
                            school=school,
                            device=device,
                            category="hardware",
                            severity="info",
                            active=False,
                            at=now,
                            summary="couvert par l'alerte réseau du point d'accès",
                        )
                    )
        return out

    def _notify(self, notifications: Sequence[Notification], now: datetime, retry: bool) -> None:
        """The engine already put the notifications in the outbox: send them now
        (and, at a sweep, whatever earlier failures are due again)."""
        self.sent.extend(notifications)
        if self.deliverer is not None and (notifications or retry):
            self.deliverer.deliver_due(now)


def _from_saved(record: SavedDevice) -> DeviceState:
    return from_document(record.school, record.device, record.last_seen, record.derived)
