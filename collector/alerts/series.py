"""Alert status changes and forecast counts as InfluxDB line protocol (for Grafana).

Two measurements, a public contract of the dashboards (docs/alerts.md):

    alert,alert_key=<k>,category=<c>,device=<d>,rule=<r>,school=<s>,severity=<v> open=1i,
          alert_id=42i,since_ms=<ms>i <ms>  (one line)
    forecast,school=<s>,term=<t> devices_below_80=3i,devices_below_60=1i <ms>

`open` is 1i when the alert (re-)opened and 0i when it resolved, at the
transition's time (a sample time when the engine made it: collector.alerts.engine);
an open point also carries `since_ms`, when its condition started; `device` is
absent for access-point and school alerts (a tag cannot be empty). `alert_key` is the
alert's key (`collector.alerts.model.Finding`: one unresolved alert per key): without
it, two alerts with the same other tags (two access points of a school, two batteries
of a laptop) would be one series, and when they change at the same time (one window,
one sample) one point would overwrite the other. Timestamps are in milliseconds,
like the telemetry series.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from collector.alerts.feed import StatusChange

# Tag values: no backslash before the separators escaped here (as collector.lineproto).
_TAG_ESCAPE = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\\": "/"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _tag(value: str) -> str:
    return value.translate(_TAG_ESCAPE)


def _ms(at: datetime) -> int:
    return (at - _EPOCH) // _MS


def alert_line(change: StatusChange) -> str:
    tags = [("alert_key", change.key), ("category", change.category)]
    if change.device:
        tags.append(("device", change.device))
    tags += [("rule", change.rule), ("school", change.school), ("severity", change.severity)]
    tag_text = ",".join(f"{k}={_tag(v)}" for k, v in tags)
    fields = f"open={int(change.opened)}i,alert_id={change.alert_id}i"
    if change.opened and change.since is not None:
        fields += f",since_ms={_ms(change.since)}i"
    return f"alert,{tag_text} {fields} {_ms(change.at)}"


def alert_lines(changes: Iterable[StatusChange]) -> list[str]:
    return [alert_line(c) for c in changes]


def forecast_lines(counts: Mapping[str, Mapping[str, Sequence[int]]], at: datetime) -> list[str]:
    """One point per school and term: devices predicted to cross 80 % / 60 % in it."""
    ms = _ms(at)
    return [
        f"forecast,school={_tag(school)},term={_tag(term)} "
        f"devices_below_80={n80}i,devices_below_60={n60}i {ms}"
        for school in sorted(counts)
        for term, (n80, n60) in counts[school].items()
    ]
