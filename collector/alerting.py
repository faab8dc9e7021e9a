"""From validated samples to alerts and notifications: the rules, the device state,
the lifecycle engine and the notifier, wired together.

Per batch (after the time-series store confirmed it): every sample goes through the
per-sample rules against its device's state, then the state folds the sample in.
Every `sweep_interval_s` of sample time, the sweeps run over all states: silent
devices, and the access-point / school correlation whose network findings replace
the per-device Wi-Fi findings they cover. The engine turns findings into alerts;
the notifier sends what the engine says must be sent. Nothing here reads the clock:
`now` is given, so the same code runs live and over a simulated week.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, replace
from datetime import datetime, timedelta

from collector.alerts.engine import AlertEngine, LifecyclePolicy, Notification
from collector.alerts.model import Finding
from collector.alerts.store import AlertStore
from collector.contract import Sample
from collector.notify.deliver import Channel, Notifier
from collector.notify.payload import NotificationKind
from collector.rules import (
    RULE_NAMES,
    DeviceState,
    RulesConfig,
    build_rules,
    correlate_network,
    silent_devices,
    suppress_covered,
)
from collector.rules.forecast import FadeEstimator
from collector.rules.network import DEVICE_WIFI_RULES

log = logging.getLogger(__name__)

NETWORK_RULES = ("wifi_ap_fault", "wifi_school_fault")
MAX_DELIVERY_ATTEMPTS = 12  # with a 5-minute sweep: an hour of retries


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
    ) -> None:
        self.config = config
        self.store = store
        self.notifier = notifier
        self.rules = build_rules(config)
        self.engine = AlertEngine(store, lifecycle_from(config))
        self.states: dict[tuple[str, str], DeviceState] = {}
        self.sweep_interval = timedelta(seconds=sweep_interval_s)
        self._last_sweep: datetime | None = None
        self._network_active: frozenset[str] = frozenset()
        self._covered: frozenset[tuple[str, str]] = frozenset()
        self._lock = threading.Lock()  # the ingest thread and a sweep timer may both call
        self.sent: list[Notification] = []  # what was handed to the notifier (tests, eval)
        self._dirty: set[tuple[str, str]] = set()  # devices changed since the last save
        # Deliveries that failed on some channels: (kind, alert id, channels, attempts),
        # retried at each sweep until they succeed or MAX_DELIVERY_ATTEMPTS.
        self.retries: list[tuple[NotificationKind, int, frozenset[Channel], int]] = []

    def on_samples(self, accepted: Iterable[tuple[str, str, Sample]], now: datetime) -> None:
        """Evaluate a confirmed batch; sweep too when the sweep interval has passed."""
        with self._lock:
            findings: list[Finding] = []
            for school, device, sample in sorted(accepted, key=lambda a: a[2].ts):
                state = self.states.get((school, device))
                if state is None:
                    state = DeviceState(device=device, school=school)
                    self.states[(school, device)] = state
                found = [f for rule in self.rules for f in rule.evaluate(state, sample, sample.ts)]
                state.apply(sample, found, self.config.trust)
                self._dirty.add((school, device))
                findings.extend(found)
            findings = self._covered_as_clear(findings)
            if self._last_sweep is None or now - self._last_sweep >= self.sweep_interval:
                findings += self._sweep_findings(now)
            self._deliver(self.engine.process(findings, now))

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

    def sweep(self, now: datetime) -> None:
        """Run the sweeps now (a timer calls this when no traffic arrives)."""
        with self._lock:
            self._deliver(self.engine.process(self._sweep_findings(now), now))

    def _retry_deliveries(self) -> None:
        if self.notifier is None or not self.retries:
            return
        pending, self.retries = self.retries, []
        for kind, alert_id, channels, attempts in pending:
            alert = self.store.get_alert(alert_id)
            report = self.notifier.send(
                kind,
                alert,
                self.store.transitions_of(alert_id),
                only=channels,
            )
            failed = frozenset(report.failed_channels)
            if failed and attempts + 1 < MAX_DELIVERY_ATTEMPTS:
                self.retries.append((kind, alert_id, failed, attempts + 1))
            elif failed:
                log.error(
                    "alert %s %s: giving up on %s after %d attempts",
                    alert_id,
                    kind,
                    ", ".join(sorted(failed)),
                    MAX_DELIVERY_ATTEMPTS,
                )

    def save_devices(self) -> int:
        """Store each changed device's last sighting, battery model and fade estimate
        (what `lordi alerts forecast` rolls up per school and term)."""
        for school, device in sorted(self._dirty):
            state = self.states[(school, device)]
            batteries = {
                name: {"model": b.model, "fade": asdict(b.fade)}
                for name, b in state.batteries.items()
            }
            model = next((b.model for b in state.batteries.values() if b.model), None)
            self.store.upsert_device(
                school,
                device,
                battery_model=model,
                last_seen=state.last_seen,
                derived={"batteries": batteries},
            )
        saved, self._dirty = len(self._dirty), set()
        return saved

    def restore(self) -> int:
        """Reload what `save_devices` stored (last sighting, battery models and fade
        estimates) after a restart: the silent-device sweep must still know the
        laptops that stopped reporting, and forecasts keep their history. Trust and
        duration state is not saved; it rebuilds from the next samples."""
        count = 0
        for record in self.store.list_devices():
            state = DeviceState(
                device=record.device, school=record.school, last_seen=record.last_seen
            )
            for name, saved in record.derived.get("batteries", {}).items():
                battery = state.battery(name)
                battery.model = saved.get("model")
                if "fade" in saved:
                    battery.fade = FadeEstimator(**saved["fade"])
            self.states[(record.school, record.device)] = state
            count += 1
        return count

    def _sweep_findings(self, now: datetime) -> list[Finding]:
        self._last_sweep = now
        self.save_devices()
        self._retry_deliveries()
        states = self.states.values()
        network = correlate_network(states, now, self.config, self._network_active)
        self._network_active, self._covered = network.active_keys, network.covered
        silent = silent_devices(states, now, self.config.device_silent.school_days)
        for finding in silent:
            state = self.states.get((finding.school, finding.device or ""))
            if state is not None:
                state.record([finding])
        return [*network.findings, *silent, *self._clear_covered_wifi(now)]

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

    def _deliver(self, notifications: Sequence[Notification]) -> None:
        for note in notifications:
            self.sent.append(note)
            if self.notifier is None:
                continue
            transitions = self.store.transitions_of(note.alert.id)
            # A reminder of an unacknowledged alert goes out as the "opened" message again.
            kind: NotificationKind = "opened" if note.kind == "reminder" else note.kind
            report = self.notifier.send(kind, note.alert, transitions)
            if not report.ok:
                # The alert and its transitions are stored; the failed channels are
                # retried at the next sweeps (in memory: a restart forgets them).
                failed = frozenset(report.failed_channels)
                log.warning(
                    "alert %s %s: delivery failed on %s; will retry",
                    note.alert.id,
                    note.kind,
                    ", ".join(sorted(failed)),
                )
                self.retries.append((kind, note.alert.id, failed, 1))
