"""The technicians' worklist: one service for the `lordi alerts` command and the web.

Every read and every action names a `Scope`: the schools its caller may see (a
school technician: their UAI codes; the region: `None`, every school). An alert,
device or export outside the scope is answered exactly as a missing one
(`AlertNotFound`), so nobody learns what another school has by trying ids.

Actions are the alert store's transitions, recorded with the person's name; the
notifications they cause (a take reaches the helpdesk webhook and the retained
MQTT list; an escalation the level-2 contractor with the evidence packet) enter the
outbox in the same transaction and are sent at once when a `Notifier` is wired in;
what fails is retried by the collector's sweeps, as for any notification.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from collector.alerts.forecasts import TermForecast
from collector.alerts.model import Alert, Transition
from collector.alerts.schema import alerts, devices
from collector.alerts.store import AlertNotFound, AlertStore, DeviceRecord
from collector.notify.deliver import Notifier
from collector.notify.dispatch import OutboxDeliverer, PassResult
from collector.notify.routing import route
from collector.rules.forecast import FadeEstimator
from collector.rules.persist import saved_history

log = logging.getLogger(__name__)
Scope = frozenset[str] | None  # the schools one may see; None: every school (region)

# Why a person closes an alert: the code is kept in the transition's evidence.
RESOLVE_REASONS: dict[str, str] = {
    "battery_replaced": "Batterie remplacée",
    "charger_replaced": "Chargeur remplacé",
    "laptop_returned": "Ordinateur rendu ou échangé",
    "repaired": "Réparé sur place",
    "network_fixed": "Réseau ou point d'accès réparé",
    "not_reproduced": "Problème non constaté",
    "other": "Autre",
}

CSV_FIELDS = (
    "id",
    "school",
    "device",
    "asset_tag",
    "rule",
    "category",
    "severity",
    "status",
    "since",
    "opened_at",
    "summary",
    "action",
    "acknowledged_by",
    "escalated_to",
)
REPLACE_RULE = "battery_replace"  # an open one means: this laptop needs a battery


class WorklistError(ValueError):
    """A request the worklist refuses. The message, in French (technicians read it
    on the page), names the form field and the value."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """What happened to the notifications of one action, sent at once."""

    sent: int = 0
    retrying: int = 0  # failed now; the collector's sweeps try again
    failed: int = 0  # given up
    attempted: bool = True  # False: no notifier here, the collector sends them

    @classmethod
    def of(cls, result: PassResult) -> Delivery:
        return cls(result.sent, result.retried, result.failed)


@dataclass(frozen=True, slots=True)
class Escalation:
    alert: Alert
    party: str  # the level-2 party's id in the registry
    party_name: str
    delivery: Delivery


@dataclass(frozen=True, slots=True)
class BatteryView:
    name: str
    history: list[dict[str, Any]]  # weekly capacity points, oldest first
    date_80_pct: datetime | None
    date_60_pct: datetime | None


@dataclass(frozen=True, slots=True)
class DeviceView:
    record: DeviceRecord
    asset_tag: str | None
    batteries: list[BatteryView]
    alerts: list[Alert]  # the device's alerts, unresolved first


@dataclass(frozen=True, slots=True)
class SchoolSummary:
    school: str
    name: str | None
    devices: int
    open_alerts: int
    critical: int
    unacknowledged: int
    to_replace: int  # laptops with an open battery-replacement alert
    forecast: list[TermForecast] = field(default_factory=list)


def in_scope(scope: Scope, school: str) -> bool:
    return scope is None or school in scope


class Worklist:
    def __init__(
        self,
        store: AlertStore,
        notifier: Notifier | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.notifier = notifier
        self._clock = clock
        self._deliverer = (
            None
            if notifier is None
            else OutboxDeliverer(store, notifier, enrich=lambda a: with_saved_history(store, a))
        )

    # --- reading --------------------------------------------------------------------

    def alerts(
        self, scope: Scope, school: str, *, include_resolved: bool = False
    ) -> list[Alert]:
        """The school's worklist: unresolved alerts, most severe then oldest first."""
        if not in_scope(scope, school):
            raise AlertNotFound(f"school {school!r}: not found")
        return self.store.list_alerts(school=school, unresolved=not include_resolved)

    def alert(self, alert_id: int, scope: Scope) -> Alert:
        alert = self.store.get_alert(alert_id)
        if not in_scope(scope, alert.school):
            raise AlertNotFound(f"alert id {alert_id}: no such alert")
        return alert

    def history(self, alert_id: int, scope: Scope) -> list[Transition]:
        self.alert(alert_id, scope)
        return self.store.transitions_of(alert_id)

    def asset_tag(self, school: str, device: str | None) -> str | None:
        if device is None:
            return None
        if self.notifier is not None:
            tag = self.notifier.asset_tag(school, device)
            if tag is not None:
                return tag
        record = self.store.get_device(school, device)
        return None if record is None else record.asset_tag

    def asset_tags(self, rows: Sequence[Alert]) -> dict[int, str | None]:
        """Each alert's laptop's asset tag (None: unknown or not a laptop), in one
        query for the whole list (the registry's tag first, as in e-mails)."""
        keys = {(a.school, a.device) for a in rows if a.device is not None}
        enrolled = self.store.device_states.asset_tags(keys)
        registry = self.notifier.registry if self.notifier is not None else None
        out: dict[int, str | None] = {}
        for a in rows:
            tag = registry.asset_tag(a.school, a.device) if registry else None
            out[a.id] = tag or (enrolled.get((a.school, a.device)) if a.device else None)
        return out

    def party_name(self, party: str | None) -> str | None:
        """A level-2 party's name from the registry (its id when unknown)."""
        if party is None or self.notifier is None:
            return party
        contractor = self.notifier.registry.contractors.get(party)
        return party if contractor is None else contractor.name

    def school_name(self, school: str) -> str | None:
        if self.notifier is None:
            return None
        entry = self.notifier.registry.schools.get(school)
        return None if entry is None else entry.name

    def device(self, scope: Scope, school: str, device: str) -> DeviceView:
        record = self.store.get_device(school, device) if in_scope(scope, school) else None
        if record is None:
            raise AlertNotFound(f"device {school}/{device}: not found")
        batteries = []
        for name, doc in sorted(record.derived.get("batteries", {}).items()):
            fade = FadeEstimator(**doc["fade"]) if isinstance(doc.get("fade"), dict) else None
            batteries.append(
                BatteryView(
                    name,
                    saved_history(record.derived, name),
                    fade.predicted_date(80.0) if fade else None,
                    fade.predicted_date(60.0) if fade else None,
                )
            )
        found = self.store.list_alerts(school=school, device=device)
        found.sort(key=lambda a: a.status == "resolved")
        return DeviceView(record, self.asset_tag(school, device), batteries, found)

    def forecast(self, scope: Scope) -> dict[str, list[TermForecast]]:
        return self.store.forecasts.of(None if scope is None else sorted(scope))

    def overview(self, scope: Scope = None) -> list[SchoolSummary]:
        """Per school: laptops known, open alerts, laptops to replace, forecast. A few
        grouped queries, whatever the fleet's size."""
        unresolved = alerts.c.status != "resolved"
        per_school = sa.select(
            alerts.c.school,
            sa.func.count(),
            sa.func.count().filter(alerts.c.severity == "critical"),
            sa.func.count().filter(alerts.c.status == "open"),
            sa.func.count(sa.distinct(alerts.c.device)).filter(alerts.c.rule == REPLACE_RULE),
        ).where(unresolved)
        counted = sa.select(devices.c.school, sa.func.count())
        if scope is not None:
            per_school = per_school.where(alerts.c.school.in_(sorted(scope)))
            counted = counted.where(devices.c.school.in_(sorted(scope)))
        with self.store.engine.connect() as conn:
            alert_rows = {r[0]: r[1:] for r in conn.execute(per_school.group_by(alerts.c.school))}
            device_rows: dict[str, int] = {
                r[0]: r[1] for r in conn.execute(counted.group_by(devices.c.school))
            }
        forecast = self.forecast(scope)
        names = set(alert_rows) | set(device_rows) | set(forecast)
        if self.notifier is not None:
            names |= {s for s in self.notifier.registry.schools if in_scope(scope, s)}
        summaries = []
        for school in sorted(names):
            n, critical, unacked, replace_n = alert_rows.get(school, (0, 0, 0, 0))
            summaries.append(
                SchoolSummary(
                    school, self.school_name(school), int(device_rows.get(school, 0)),
                    int(n), int(critical), int(unacked), int(replace_n),
                    forecast.get(school, []),
                )
            )  # fmt: skip
        return summaries

    def csv(self, rows: Sequence[Alert]) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_FIELDS)
        tags = self.asset_tags(rows)
        for a in rows:
            values: dict[str, Any] = {
                "since": (a.since or a.opened_at).isoformat(),
                "opened_at": a.opened_at.isoformat(),
                "asset_tag": tags[a.id],
            }
            writer.writerow([values[f] if f in values else getattr(a, f) for f in CSV_FIELDS])
        return out.getvalue()

    # --- actions --------------------------------------------------------------------

    def take(self, alert_id: int, by: str, scope: Scope, comment: str = "") -> Alert:
        self.alert(alert_id, scope)
        alert = self.store.acknowledge(alert_id, _name(by), comment=comment, notify="acknowledged")
        self._deliver(alert_id)
        return alert

    def comment(self, alert_id: int, by: str, text: str, scope: Scope) -> Alert:
        self.alert(alert_id, scope)
        if not text.strip():
            raise WorklistError("texte : le commentaire est vide")
        return self.store.comment(alert_id, _name(by), text.strip())

    def resolve(
        self, alert_id: int, by: str, reason: str, scope: Scope, note: str = ""
    ) -> Alert:
        """A person closes the alert, saying why (a code of `RESOLVE_REASONS`). The
        contractor of an escalated alert is told."""
        current = self.alert(alert_id, scope)
        if reason not in RESOLVE_REASONS:
            raise WorklistError(
                f"motif : {reason!r} n'est pas un motif connu "
                f"({', '.join(sorted(RESOLVE_REASONS))})"
            )
        if reason == "other" and not note.strip():
            raise WorklistError("texte : précisez ce qui a été fait quand le motif est « Autre »")
        text = RESOLVE_REASONS[reason] + (f" — {note.strip()}" if note.strip() else "")
        notify = "resolved" if current.escalated_to else None
        alert = self.store.resolve(
            alert_id, _name(by), note=text, evidence={"reason": reason}, notify=notify
        )
        if notify:
            self._deliver(alert_id)
        return alert

    def escalate(self, alert_id: int, by: str, scope: Scope, note: str = "") -> Escalation:
        """Send the alert to its school's level-2 contractor for its category, with
        the evidence packet (e-mail and webhook, as configured in the registry)."""
        current = self.alert(alert_id, scope)
        if self.notifier is None:
            raise WorklistError("escalade : aucun registre des établissements n'est configuré")
        esc = route(current, self.notifier.registry).escalation
        alert = self.store.escalate(
            alert_id, esc.party_id, _name(by), note=note.strip(), notify="escalated"
        )
        return Escalation(alert, esc.party_id, esc.party_name, self._deliver(alert_id))

    def _deliver(self, alert_id: int) -> Delivery:
        """Send the action's notifications now. The action itself is already
        recorded with them in the outbox, so if sending cannot even start (a
        collector holding the SQLite write lock at that instant), the collector's
        next sweep sends them: the person's action never fails for it."""
        if self._deliverer is None:
            return Delivery(attempted=False)
        try:
            return Delivery.of(self._deliverer.deliver_due(self._clock(), alert_id=alert_id))
        except sa.exc.OperationalError as exc:
            log.warning("alert %d: notifications left to the collector (%s)", alert_id, exc.orig)
            return Delivery(attempted=False)


def _name(by: str) -> str:
    by = by.strip()
    if not by or len(by) > 128:
        raise WorklistError(f"par : un nom de 1 à 128 caractères est requis (reçu {by!r})")
    return by


def with_saved_history(store: AlertStore, alert: Alert) -> Alert:
    """The alert with its battery's weekly capacity history (from the saved device
    state) in the evidence, for the escalation packet."""
    name = alert.evidence.get("battery")
    if alert.subject != "battery" or alert.device is None or not isinstance(name, str):
        return alert
    saved = store.device_states.get_many([(alert.school, alert.device)])
    record = saved.get((alert.school, alert.device))
    history = saved_history(record.derived, name) if record else []
    if not history:
        return alert
    return replace(alert, evidence={**alert.evidence, "capacity_history": history})
