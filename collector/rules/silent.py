"""Silent laptops and silent schools, judged on completed school days in sample time.

A school day counts for silence when it is a school day by the school's calendar
(its holiday zone's: weekends, school and public holidays do not count, in the
schools' local time, Europe/Paris; collector.rules.calendar) and the school
reported that day: at least `device_silent.school_active_share` as many of its
laptops as on its busiest day of the previous four weeks, and at least
`school_active_min_devices` (`day_is_active`). Then:

- a laptop is **silent** when its school reported on `device_silent.school_days`
  such days after its last sample without it: the condition starts at its last
  sample (`since`) and holds from the end of that Nth day (`opened` time); it ends
  at its next sample;
- a **school** is silent when, on `school_silent.school_days` school days in a row,
  it did not report while other schools of the region did: one network alert for the
  school, not one per laptop (its laptops' silence does not count those days).

collector.alerting.school decides when a day is complete; this module holds the
calendar arithmetic and the findings.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from collector.alerts.model import Finding
from collector.rules.base import device_key, iso, school_key
from collector.rules.calendar import SchoolDays

RULE = "device_silent"
SCHOOL_RULE = "school_silent"
PARIS = ZoneInfo("Europe/Paris")
HISTORY_DAYS = 28  # the busiest day is looked for in this many days before


def local_day(at: datetime, tz: ZoneInfo = PARIS) -> date:
    if tz is PARIS:
        return local_day_at(at.timestamp())
    return at.astimezone(tz).date()


def local_day_at(epoch_s: float) -> date:
    """The Paris date at `epoch_s`: looked up by UTC hour (Paris is a whole number of
    hours from UTC, so the date cannot change within one), as every sample asks."""
    return _paris_day_of_hour(int(epoch_s // 3600))


@lru_cache(maxsize=16_384)  # 680 days of hours: every sample's hour is one of a few
def _paris_day_of_hour(hour: int) -> date:
    return datetime.fromtimestamp(hour * 3600, PARIS).date()


def day_end(day: date, tz: ZoneInfo = PARIS) -> datetime:
    """Midnight at the end of `day`, local time, as a UTC datetime."""
    return datetime.combine(day + timedelta(days=1), time(0), tz).astimezone(UTC)


@lru_cache(maxsize=4096)
def day_end_s(day: date) -> float:
    """`day_end(day)` in Paris, as epoch seconds (asked for every sample)."""
    return day_end(day).timestamp()


def day_is_active(  # noqa: PLR0917 - the day, its count, and what it is compared with
    day: date,
    reported: int,
    busiest_before: int,
    share: float,
    min_devices: int,
    calendar: SchoolDays,
) -> bool:
    """A school day of the school's calendar on which it reported (see the module's
    docstring)."""
    if not calendar.is_school_day(day):
        return False
    return reported >= max(min_devices, share * max(busiest_before, reported))


def device_finding(  # noqa: PLR0917 - a silent laptop's finding
    school: str,
    device: str,
    at: datetime,
    holds: bool,
    last_seen: datetime,
    silent_days: int,
    threshold_days: int,
) -> Finding:
    seen = local_day(last_seen).strftime("%d/%m/%Y")
    if holds:
        summary = (
            f"Aucun rapport depuis {silent_days} jours d'école où l'établissement a "
            f"rapporté (dernier le {seen})"
        )
        action = (
            "Retrouver l'ordinateur : vérifier qu'il s'allume, qu'il se connecte au Wi-Fi "
            "de l'établissement et que l'agent Lordi fonctionne"
        )
    else:
        summary, action = (
            f"L'ordinateur a de nouveau envoyé un rapport (le {local_day(at):%d/%m/%Y})",
            "",
        )
    return Finding(
        rule=RULE,
        key=device_key(school, device, RULE),
        subject="device",
        school=school,
        device=device,
        category="hardware",
        severity="warning",
        active=holds,
        at=at,
        summary=summary,
        action=action,
        evidence={
            "last_seen": iso(last_seen),
            "school_days_silent": silent_days,
            "threshold_school_days": threshold_days,
            "since": iso(last_seen) if holds else None,
            "ts": iso(at),
        },
        since=last_seen if holds else None,
    )


def school_finding(  # noqa: PLR0917 - a silent school's finding
    school: str,
    at: datetime,
    holds: bool,
    last_reported: date | None,
    silent_days: int,
    threshold_days: int,
    since: datetime | None = None,
) -> Finding:
    """`since`: the school's last report before the silence (its condition start)."""
    if holds:
        last = (
            f" (dernier jour avec des rapports : {last_reported:%d/%m/%Y})" if last_reported else ""
        )
        summary = (
            f"Aucun ordinateur de l'établissement n'a rapporté depuis {silent_days} "
            f"jour(s) d'école{last}"
        )
        action = (
            "Vérifier l'accès de l'établissement à Internet et au serveur Lordi (lien, "
            "pare-feu, proxy) ; escalader au prestataire réseau"
        )
    else:
        summary, action = "Les ordinateurs de l'établissement rapportent de nouveau", ""
    return Finding(
        rule=SCHOOL_RULE,
        key=school_key(school, SCHOOL_RULE),
        subject="school",
        school=school,
        device=None,
        category="network",
        severity="critical",
        active=holds,
        at=at,
        summary=summary,
        action=action,
        evidence={
            "last_day_reported": None if last_reported is None else last_reported.isoformat(),
            "school_days_silent": silent_days,
            "threshold_school_days": threshold_days,
            "since": iso(since) if holds else None,
            "ts": iso(at),
        },
        since=since if holds else None,
    )
