"""The ground truth's vocabulary: a physical cause and the alerts it implies, and
the schools' local time (the causes happen at local hours)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


@dataclass(frozen=True)
class Cause:
    name: str
    school: str
    device: str | None = None
    expect: tuple[tuple[str, str], ...] = ()  # (alert key, rule); empty: no alert
    # When the condition started, as the alert's "since" must say: (earliest, latest).
    since: tuple[datetime, datetime] | None = None


def at(day: date, hour: float) -> datetime:
    """Local time in Paris on `day`, as UTC."""
    return datetime.combine(day, time(0), PARIS).astimezone(UTC) + timedelta(hours=hour)
