"""The JSON documents sent out: the escalation packet, the webhook event, and the
retained per-school alert list. Pure functions; field names are a public contract
documented in docs/alert-routing.md (add fields freely, never rename or remove one
without bumping `SCHEMA_VERSION`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from collector.alerts.model import Alert, Transition
from collector.notify.routing import Route

SCHEMA_VERSION = 1
WEBHOOK_SCHEMA = "lordi.alert-event"
NotificationKind = Literal["opened", "escalated", "acknowledged", "resolved"]
OPEN_STATUSES = frozenset({"open", "acknowledged"})
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}

# The evidence keys the packet reads (rules put them in Finding.evidence); the
# first name present wins. Anything else stays available under "evidence".
EVIDENCE_KEYS: dict[str, tuple[str, ...]] = {
    "battery_name": ("battery", "battery_name"),
    "battery_model": ("battery_model", "model"),
    "battery_manufacturer": ("battery_manufacturer", "manufacturer"),
    "health_pct": ("health_pct",),
    "design_capacity_mwh": ("design_capacity_mwh",),
    "full_capacity_mwh": ("full_capacity_mwh",),
    "cycle_count": ("cycle_count", "cycles"),
    "capacity_history": ("capacity_history",),
}
FORECAST_KEYS: dict[str, tuple[str, ...]] = {
    "date_80_pct": ("date_80_pct", "date_80", "forecast_80_pct", "predicted_80_date"),
    "date_60_pct": ("date_60_pct", "date_60", "forecast_60_pct", "predicted_60_date"),
    "fade_pct_per_year": ("fade_pct_per_year", "slope_pct_per_year"),
    "fade_pct_per_day": ("fade_pct_per_day",),  # what collector.rules.battery records
}


@dataclass(frozen=True, slots=True)
class AlertContext:
    """What the registry and the settings add to an alert for its readers."""

    route: Route
    town: str | None
    asset_tag: str | None
    dashboard_url: str
    # The alert's page in the web worklist (`[alerts.notify] web_url`); None: the
    # e-mail names the `lordi alerts` command instead.
    alert_url: str | None = None


def to_jsonable(value: Any) -> Any:
    """Datetimes as ISO 8601 strings, containers recursively; the rest unchanged."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return value


def _pick(source: Mapping[str, Any], names: Iterable[str]) -> Any:
    for name in names:
        if source.get(name) is not None:
            return source[name]
    return None


def _forecast(evidence: Mapping[str, Any]) -> dict[str, Any]:
    nested = evidence.get("forecast")
    source = nested if isinstance(nested, Mapping) else evidence
    return {field: _pick(source, names) for field, names in FORECAST_KEYS.items()}


def alert_summary(alert: Alert, asset_tag: str | None) -> dict[str, Any]:
    """The alert fields every document shares."""
    return {
        "id": alert.id,
        "key": alert.key,
        "rule": alert.rule,
        "subject": alert.subject,
        "category": alert.category,
        "severity": alert.severity,
        "status": alert.status,
        "device": alert.device,
        "asset_tag": asset_tag,
        "summary": alert.summary,
        "action": alert.action,
        "since": (alert.since or alert.opened_at).isoformat(),
        "opened_at": alert.opened_at.isoformat(),
        "updated_at": alert.updated_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "acknowledged_by": alert.acknowledged_by,
        "escalated_to": alert.escalated_to,
    }


def transition_doc(t: Transition) -> dict[str, Any]:
    return {
        "at": t.at.isoformat(),
        "from_status": t.from_status,
        "to_status": t.to_status,
        "by": t.by,
        "note": t.note,
        "evidence": to_jsonable(t.evidence),
    }


def evidence_packet(
    alert: Alert, transitions: Sequence[Transition], ctx: AlertContext
) -> dict[str, Any]:
    """Everything a level-2 contractor needs to act without calling back."""
    evidence = alert.evidence
    battery = {field: _pick(evidence, names) for field, names in EVIDENCE_KEYS.items()}
    battery["capacity_history"] = to_jsonable(battery["capacity_history"] or [])
    return {
        "alert": alert_summary(alert, ctx.asset_tag),
        "school": {"uai": alert.school, "name": ctx.route.school_name, "town": ctx.town},
        "battery": battery,
        "forecast": to_jsonable(_forecast(evidence)),
        "evidence": to_jsonable(evidence),
        "transitions": [transition_doc(t) for t in transitions],
        "dashboard_url": ctx.dashboard_url,
    }


def routing_doc(route: Route) -> dict[str, Any]:
    esc = route.escalation
    return {
        "level1": [r.email for r in route.level1],
        "level2": {
            "party_id": esc.party_id,
            "party_name": esc.party_name,
            "category": esc.category,
            "reason": esc.reason,
        },
        "fallback": route.fallback_used,
        "problem": route.problem,
    }


def webhook_document(
    kind: NotificationKind,
    alert: Alert,
    transitions: Sequence[Transition],
    ctx: AlertContext,
    sent_at: datetime,
) -> dict[str, Any]:
    """The helpdesk / contractor webhook body. Top-level names avoid apprise's
    reserved JSON fields (version, title, message, type, attachments)."""
    return {
        "schema": WEBHOOK_SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "event": kind,
        "sent_at": sent_at.isoformat(),
        "routing": routing_doc(ctx.route),
        "packet": evidence_packet(alert, transitions, ctx),
    }


def alert_topic_state(alerts: Iterable[tuple[Alert, str | None]]) -> list[dict[str, Any]]:
    """The retained list for `lordi/v1/<UAI>/alerts`: open and acknowledged alerts
    (with their asset tags), most severe first, then oldest first."""
    current = [(a, tag) for a, tag in alerts if a.status in OPEN_STATUSES]
    current.sort(key=lambda pair: (_SEVERITY_RANK[pair[0].severity], pair[0].opened_at))
    return [alert_summary(a, tag) for a, tag in current]
