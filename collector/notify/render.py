"""French e-mails: the level-1 notice and the level-2 escalation packet.

Pure functions of the alert and its context. The text is French because its
readers are French school staff and contractors; dates are shown in Paris time
because that is the clock on the technician's wall (the JSON keeps UTC).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from collector.alerts.model import Alert, Severity, Status, Transition
from collector.notify.payload import AlertContext, NotificationKind, evidence_packet
from collector.notify.routing import CATEGORY_FR

PARIS = ZoneInfo("Europe/Paris")
SEVERITY_FR: dict[Severity, str] = {
    "info": "information",
    "warning": "avertissement",
    "critical": "critique",
}
STATUS_FR: dict[Status, str] = {
    "open": "ouverte",
    "acknowledged": "prise en compte",
    "resolved": "résolue",
}
KIND_FR: dict[NotificationKind, str] = {
    "opened": "Nouvelle alerte",
    "escalated": "Escalade",
    "acknowledged": "Alerte prise en compte",
    "resolved": "Alerte résolue",
}
SIGNATURE = (
    "-- \nMessage automatique de la télémétrie Lordi (Région Occitanie). "
    "Ne pas répondre à ce message."
)


@dataclass(frozen=True, slots=True)
class EmailText:
    subject: str
    body: str


def fr_datetime(at: datetime) -> str:
    """`28/11/2026 à 09:15` in Paris time."""
    return at.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")


def device_label(alert: Alert, asset_tag: str | None) -> str:
    if alert.subject == "access_point":
        ap = alert.key.split("/ap/", 1)[1].split("/", 1)[0] if "/ap/" in alert.key else "?"
        return f"point d'accès {ap}"
    if alert.subject == "school":
        return "réseau de l'établissement"
    tag = f"n° d'inventaire {asset_tag}" if asset_tag else "n° d'inventaire inconnu"
    return f"ordinateur {alert.device} ({tag})"


def _school_label(alert: Alert, ctx: AlertContext) -> str:
    name = ctx.route.school_name or "établissement absent du registre"
    return f"{name} ({alert.school})"


def _fallback_notice(ctx: AlertContext) -> list[str]:
    if not ctx.route.fallback_used:
        return []
    return [
        f"ATTENTION : l'établissement {ctx.route.uai} n'est pas dans le registre des "
        "établissements ; ce message est envoyé à l'adresse de secours. "
        "Ajoutez l'établissement au registre.",
        "",
    ]


def _since_lines(alert: Alert) -> list[str]:
    """When the condition started (its first reading) and when the alert opened (it
    had lasted the rule's minimum duration): both times the laptop measured."""
    since = alert.since or alert.opened_at
    lines = [f"Depuis : {fr_datetime(since)}"]
    if alert.opened_at != since:
        lines.append(f"Alerte ouverte le : {fr_datetime(alert.opened_at)}")
    return lines


def level1_email(kind: NotificationKind, alert: Alert, ctx: AlertContext) -> EmailText:
    """The notice to the school's level-1 technicians."""
    label = device_label(alert, ctx.asset_tag)
    subject = f"[Lordi {alert.school}] {KIND_FR[kind]} : {alert.summary} — {label}"
    lines = [
        "Bonjour,",
        "",
        *_fallback_notice(ctx),
        f"{KIND_FR[kind]} pour {_school_label(alert, ctx)}.",
        "",
        f"Quoi : {alert.summary}",
        f"Appareil : {label}",
        f"Gravité : {SEVERITY_FR[alert.severity]}",
        *_since_lines(alert),
        f"État : {STATUS_FR[alert.status]}",
    ]
    if alert.resolved_at is not None:
        lines.append(f"Résolue le : {fr_datetime(alert.resolved_at)}")
    lines += [
        f"À faire : {alert.action or 'aucune action requise'}",
        f"Niveau 2 si besoin : {ctx.route.escalation.party_name} "
        f"(prestataire {CATEGORY_FR[alert.category]})",
        f"Tableau de bord : {ctx.dashboard_url}",
        f"Référence : alerte n° {alert.id}",
        "",
        *_take_lines(alert, ctx),
        "",
        SIGNATURE,
    ]
    return EmailText(subject, "\n".join(lines))


def _take_lines(alert: Alert, ctx: AlertContext) -> list[str]:
    if ctx.alert_url:
        return [f"Pour la voir, la prendre en charge ou l'escalader : {ctx.alert_url}"]
    return [
        "Pour la prendre en charge (sur le serveur de la télémétrie) : "
        f"lordi alerts --config <collector.toml> ack {alert.id} --by <votre nom>"
    ]


def _battery_lines(packet: dict[str, Any]) -> list[str]:
    battery = packet["battery"]
    forecast = packet["forecast"]
    history = battery["capacity_history"]
    lines = [
        f"Modèle de batterie : {battery['battery_model'] or 'inconnu'}",
        f"Fabricant : {battery['battery_manufacturer'] or 'inconnu'}",
        f"Santé : {_or_unknown(battery['health_pct'], ' %')}",
        f"Cycles : {_or_unknown(battery['cycle_count'])}",
        f"Capacité nominale : {_or_unknown(battery['design_capacity_mwh'], ' mWh')}",
        f"Capacité pleine charge : {_or_unknown(battery['full_capacity_mwh'], ' mWh')}",
        f"Prévision 80 % : {forecast['date_80_pct'] or 'non disponible'}",
        f"Prévision 60 % : {forecast['date_60_pct'] or 'non disponible'}",
        f"Historique de capacité ({len(history)} relevés) :",
    ]
    lines += [f"  - {json.dumps(point, ensure_ascii=False)}" for point in history]
    return lines


def _evidence_lines(packet: dict[str, Any]) -> list[str]:
    lines = ["Relevés à l'origine de l'alerte :"]
    for name, value in packet["evidence"].items():
        lines.append(f"  - {name} : {json.dumps(value, ensure_ascii=False)}")
    return lines


def _or_unknown(value: object, unit: str = "") -> str:
    return "inconnu" if value is None else f"{value}{unit}"


def _transition_lines(transitions: Sequence[Transition]) -> list[str]:
    lines = ["Historique de l'alerte :"]
    if not transitions:
        lines.append("  (aucune transition fournie)")
    for t in transitions:
        before = STATUS_FR[t.from_status] if t.from_status else "création"
        note = f" — {t.note}" if t.note else ""
        lines.append(
            f"  - {fr_datetime(t.at)} : {before} → {STATUS_FR[t.to_status]} (par {t.by}){note}"
        )
    return lines


def level2_email(
    kind: NotificationKind, alert: Alert, transitions: Sequence[Transition], ctx: AlertContext
) -> tuple[EmailText, dict[str, Any]]:
    """The escalation e-mail (text, then the same packet as JSON) and the packet."""
    packet = evidence_packet(alert, transitions, ctx)
    esc = ctx.route.escalation
    trade = CATEGORY_FR[alert.category]
    # Sent on open (network faults) or on request: either way, an escalation.
    title = f"Escalade {trade}" if kind in ("opened", "escalated") else KIND_FR[kind]
    subject = (
        f"[Lordi {alert.school}] {title} : {alert.summary} — {device_label(alert, ctx.asset_tag)}"
    )
    lines = [
        "Bonjour,",
        "",
        *_fallback_notice(ctx),
        f"Destinataire : {esc.party_name}",
        f"Pourquoi vous : {esc.reason}",
        f"Établissement : {_school_label(alert, ctx)}, {ctx.town or 'commune inconnue'}",
        f"Contacts niveau 1 : {', '.join(r.email for r in ctx.route.level1)}",
        "",
        f"Quoi : {alert.summary} (règle {alert.rule}, gravité {SEVERITY_FR[alert.severity]})",
        f"Appareil : {device_label(alert, ctx.asset_tag)}",
        *_since_lines(alert),
        f"État : {STATUS_FR[alert.status]}",
        f"Action attendue : {alert.action or 'non précisée'}",
        "",
        *(_battery_lines(packet) if alert.subject == "battery" else _evidence_lines(packet)),
        "",
        *_transition_lines(transitions),
        "",
        f"Tableau de bord : {ctx.dashboard_url}",
        "",
        "Dossier complet (JSON) :",
        json.dumps(packet, ensure_ascii=False, indent=2, default=str),
        "",
        SIGNATURE,
    ]
    return EmailText(subject, "\n".join(lines)), packet
