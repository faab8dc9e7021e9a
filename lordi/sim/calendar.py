"""When simulated laptops report: school days and school hours, in school time.

The days come from the collector's own school calendar (`collector.calendar`:
weekends, the zone's school holidays and public holidays; the simulated region is
Occitanie, zone C, as the sample registry and `lordi eval rules` say), so the
simulation and the silent-device rule agree on what a school day is. Hours are local (Europe/Paris)
and converted to UTC, as an agent's timestamps are; French lycées usually have no
class on Wednesday afternoon.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from collector.calendar import default_calendar
from collector.rules.calendar import SchoolDays

PARIS = ZoneInfo("Europe/Paris")
WEDNESDAY = 2
SIM_ZONE = "C"  # the simulated schools' holiday zone (Occitanie)


def sim_days() -> SchoolDays:
    """The simulated schools' school days: the bundled calendar of `SIM_ZONE`."""
    return default_calendar().zone(SIM_ZONE)


@dataclass(frozen=True)
class SchoolCalendar:
    school_days: SchoolDays = field(default_factory=sim_days)
    first_h: float = 8.0  # local time of the first report of a school day
    last_h: float = 17.0  # no report at or after this local time
    wednesday_last_h: float = 12.0
    interval: timedelta = field(default=timedelta(minutes=5))
    tz: ZoneInfo = PARIS

    def is_school_day(self, day: date) -> bool:
        return self.school_days.is_school_day(day)

    def days(self, first: date, count: int) -> list[date]:
        """The school days among `count` calendar days from `first`."""
        every = (first + timedelta(days=i) for i in range(count))
        return [d for d in every if self.is_school_day(d)]

    def report_times(self, day: date) -> list[datetime]:
        """Report times (UTC) of one school day; empty on a day without school."""
        if not self.is_school_day(day):
            return []
        last_h = self.wednesday_last_h if day.weekday() == WEDNESDAY else self.last_h
        start = datetime.combine(day, time(), self.tz) + timedelta(hours=self.first_h)
        end = datetime.combine(day, time(), self.tz) + timedelta(hours=last_h)
        out: list[datetime] = []
        t = start
        while t < end:
            out.append(t.astimezone(UTC))
            t += self.interval
        return out

    def iter_days(self, first: date, count: int) -> Iterator[tuple[date, list[datetime]]]:
        """(day, its report times) for every school day in the period."""
        for day in self.days(first, count):
            yield day, self.report_times(day)


def to_local_date(ts: datetime, tz: ZoneInfo = PARIS) -> date:
    return ts.astimezone(tz).date()
