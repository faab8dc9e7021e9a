"""Silent devices: no report for N full school days (a periodic sweep, not per sample).

Weekends and holidays do not count: a laptop left at home over the Toussaint
holiday is not missing. Days are counted in the schools' local time (Europe/Paris)
so a report at 00:30 local is not filed under the previous day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from collector.alerts.model import Finding
from collector.rules.base import device_key, iso
from collector.rules.calendar import DEFAULT_HOLIDAYS, DateRange, school_days_between
from collector.rules.state import DeviceState

RULE = "device_silent"
PARIS = ZoneInfo("Europe/Paris")


def silent_devices(
    states: Iterable[DeviceState],
    now: datetime,
    school_days: int = 3,
    holidays: Sequence[DateRange] = DEFAULT_HOLIDAYS,
    tz: ZoneInfo = PARIS,
) -> list[Finding]:
    """Active findings for devices silent `school_days` full school days or more;
    inactive ones for devices whose silent condition was active and that reported
    since. Record them on the states (`DeviceState.record`) like per-sample findings.
    Devices that never reported are not known here."""
    today = now.astimezone(tz).date()
    days_since: dict[date, int] = {}  # memo: most devices share a few last-seen dates
    findings: list[Finding] = []
    for state in states:
        if state.last_seen is None:
            continue
        seen_day = state.last_seen.astimezone(tz).date()
        silent = days_since.get(seen_day)
        if silent is None:
            silent = days_since[seen_day] = school_days_between(seen_day, today, holidays)
        key = device_key(state.school, state.device, RULE)
        if silent >= school_days or state.is_active(key):
            findings.append(_finding(state, key, (silent, school_days), now, seen_day))
    return findings


def _finding(
    state: DeviceState,
    key: str,
    days: tuple[int, int],  # (school days silent, threshold)
    now: datetime,
    seen_day: date,
) -> Finding:
    silent_days, threshold_days = days
    holds = silent_days >= threshold_days
    seen = seen_day.strftime("%d/%m/%Y")
    if holds:
        summary = f"Aucun rapport depuis {silent_days} jours d'école (dernier le {seen})"
        action = (
            "Retrouver l'ordinateur : vérifier qu'il s'allume, qu'il se connecte au Wi-Fi "
            "de l'établissement et que l'agent Lordi fonctionne"
        )
    else:
        summary, action = f"L'ordinateur a de nouveau envoyé un rapport (le {seen})", ""
    return Finding(
        rule=RULE,
        key=key,
        subject="device",
        school=state.school,
        device=state.device,
        category="hardware",
        severity="warning",
        active=holds,
        at=now,
        summary=summary,
        action=action,
        evidence={
            "last_seen": iso(state.last_seen),
            "school_days_silent": silent_days,
            "threshold_school_days": threshold_days,
            "since": iso(state.last_seen) if holds else None,
        },
    )
