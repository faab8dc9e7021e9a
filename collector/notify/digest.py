"""The level-1 digest: one e-mail per school listing the alerts of a period.

On a school's first day hundreds of worn batteries open alerts within minutes; one
e-mail each would bury the technicians' inbox. With digest times configured
(`[alerts.notify.digest] times`, or a school's own `digest_times` in the registry),
an alert event whose level-1 e-mail is not urgent waits in the outbox for the
school's next digest time (collector.alerts.outbox `defer`), and one e-mail then
lists every alert opened, resolved or still unacknowledged since the last one.
Critical alerts (`immediate`) are e-mailed at once as before; webhooks, the MQTT
alert topic and level-2 e-mails are never held.

Times of day are the school's wall clock (Paris time): "07:45" is 07:45 in winter
and in summer. The text is French, like the other e-mails (collector/notify/render.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from collector.alerts.model import Alert
from collector.notify.render import (
    PARIS,
    SEVERITY_FR,
    SIGNATURE,
    EmailText,
    device_label,
    fr_datetime,
)

# The events a digest gathers; a reminder is an unacknowledged alert's "opened" again.
DIGEST_KINDS: frozenset[str] = frozenset({"opened", "resolved", "reminder"})
SECTION_FR = {
    "opened": "Nouvelles alertes",
    "reminder": "Toujours ouvertes, non prises en compte",
    "resolved": "Alertes résolues",
}


def _clock_time(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _at(day: date, when: time) -> datetime:
    """`when` on `day` on the Paris wall clock, in UTC. A time the clocks skip in
    spring (02:30 on that night) is read as the hour after; a time they repeat in
    autumn, as its first occurrence."""
    return datetime.combine(day, when, tzinfo=PARIS).astimezone(UTC)


def next_digest(times: Sequence[str], now: datetime) -> datetime:
    """The first of the daily `times` ("HH:MM", Paris time) strictly after `now`, in UTC."""
    if not times:
        raise ValueError("next_digest: no digest time")
    moments = sorted({_clock_time(t) for t in times})
    today = now.astimezone(PARIS).date()
    for offset in (0, 1, 2):  # two days always hold the next one, even over a DST night
        day = today + timedelta(days=offset)
        for when in moments:
            at = _at(day, when)
            if at > now:
                return at
    raise AssertionError("unreachable: a daily time always comes within two days")


@dataclass(frozen=True, slots=True)
class DigestItem:
    kind: str  # opened, resolved, reminder
    alert: Alert  # as it is now, read back from the store
    asset_tag: str | None
    alert_url: str | None  # its page in the web worklist, when configured


def _item_line(item: DigestItem) -> list[str]:
    alert = item.alert
    line = f"- {device_label(alert, item.asset_tag)} : {alert.summary}"
    if alert.severity != "warning":
        line += f" ({SEVERITY_FR[alert.severity]})"
    lines = [line]
    if item.kind != "resolved" and alert.status == "resolved" and alert.resolved_at:
        lines.append(f"  Résolue depuis, le {fr_datetime(alert.resolved_at)}")
    elif item.kind == "resolved" and alert.resolved_at:
        lines.append(f"  Résolue le {fr_datetime(alert.resolved_at)}")
    else:
        lines.append(f"  Depuis le {fr_datetime(alert.since or alert.opened_at)}")
        if alert.action:
            lines.append(f"  À faire : {alert.action}")
    reference = f"alerte n° {alert.id}"
    lines.append(f"  Référence : {reference}" + (f" — {item.alert_url}" if item.alert_url else ""))
    return lines


def _sorted(items: Sequence[DigestItem]) -> list[DigestItem]:
    """One line per alert and event; an alert opened then resolved before the
    digest shows once, under the event queued first, with its current state."""
    seen: set[int] = set()
    out: list[DigestItem] = []
    for item in sorted(items, key=lambda i: (i.alert.since or i.alert.opened_at, i.alert.id)):
        if item.alert.id in seen:
            continue
        seen.add(item.alert.id)
        out.append(item)
    return out


def digest_email(
    uai: str,
    school_name: str | None,
    items: Sequence[DigestItem],
    now: datetime,
    footer: Sequence[str] = (),
) -> EmailText:
    """The school's digest: its alert events, grouped by kind."""
    by_kind: dict[str, list[DigestItem]] = {kind: [] for kind in SECTION_FR}
    for item in _sorted(items):
        by_kind[item.kind if item.kind in SECTION_FR else "opened"].append(item)
    counts = [f"{len(v)} {SECTION_FR[k].lower()}" for k, v in by_kind.items() if v]
    name = school_name or "établissement absent du registre"
    subject = f"[Lordi {uai}] Résumé du {fr_datetime(now)} : {', '.join(counts)}"
    lines = [
        "Bonjour,",
        "",
        f"Résumé des alertes de {name} ({uai}) depuis le précédent envoi.",
        "Les alertes critiques sont envoyées à part, dès qu'elles s'ouvrent.",
        "",
    ]
    for kind, group in by_kind.items():
        if not group:
            continue
        lines += [f"{SECTION_FR[kind]} ({len(group)}) :", ""]
        for item in group:
            lines += _item_line(item)
        lines.append("")
    lines += [*footer, "", SIGNATURE]
    return EmailText(subject, "\n".join(lines))
