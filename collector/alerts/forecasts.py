"""The latest replacement forecast per school and term, in the alert store.

The collector's forecast pass (collector.alerting.feed) writes the counts it also
sends to the time series; the worklist and the region overview read them here
without loading 250,000 devices' state. A school's rows are replaced as a whole.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from collector.alerts.schema import forecasts


@dataclass(frozen=True, slots=True)
class TermForecast:
    term: str  # the term's tag, e.g. "2026-27 T2"
    devices_below_80: int
    devices_below_60: int
    computed_at: datetime


class Forecasts:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def put(self, counts: Mapping[str, Mapping[str, Sequence[int]]], at: datetime) -> None:
        """Replace the forecast of each school in `counts` ({school: {term: [n80, n60]}})."""
        if not counts:
            return
        rows = [
            {
                "school": school,
                "term": term,
                "devices_below_80": int(n80),
                "devices_below_60": int(n60),
                "computed_at": at,
            }
            for school, per_term in counts.items()
            for term, (n80, n60) in per_term.items()
        ]
        with self._engine.begin() as conn:
            conn.execute(forecasts.delete().where(forecasts.c.school.in_(list(counts))))
            conn.execute(forecasts.insert(), rows)

    def of(self, schools: Collection[str] | None = None) -> dict[str, list[TermForecast]]:
        """{school: its terms in storage order}; every school when `schools` is None."""
        query = sa.select(forecasts).order_by(forecasts.c.school, forecasts.c.term)
        if schools is not None:
            query = query.where(forecasts.c.school.in_(list(schools)))
        out: dict[str, list[TermForecast]] = {}
        with self._engine.connect() as conn:
            for row in conn.execute(query):
                out.setdefault(row.school, []).append(
                    TermForecast(
                        row.term, row.devices_below_80, row.devices_below_60, row.computed_at
                    )
                )
        return out
