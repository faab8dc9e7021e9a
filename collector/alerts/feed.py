"""Status changes of alerts, in the order they were stored, for the time series.

A cursor over `transitions.id`: `after(last_id)` returns the open/resolve changes
recorded since, with the alert's tags. Every change counts, whoever made it (the
engine, a technician resolving from the worklist, another collector): writing the
same point twice is harmless (same series, same timestamp).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from collector.alerts.schema import alerts, transitions


@dataclass(frozen=True, slots=True)
class StatusChange:
    transition_id: int
    alert_id: int
    at: datetime
    opened: bool  # True: (re-)opened; False: resolved
    school: str
    device: str | None
    rule: str
    category: str
    severity: str


class TransitionFeed:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def last_id(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(transitions.c.id))).scalar() or 0)

    def after(self, last_id: int, limit: int = 10_000) -> tuple[list[StatusChange], int]:
        """Open/resolve changes with an id above `last_id`, and the new cursor (the
        last id looked at, comments and acknowledgements included)."""
        t, a = transitions, alerts
        query = (
            sa.select(
                t.c.id,
                t.c.alert_id,
                t.c.at,
                t.c.from_status,
                t.c.to_status,
                a.c.school,
                a.c.device,
                a.c.rule,
                a.c.category,
                a.c.severity,
            )
            .join(a, a.c.id == t.c.alert_id)
            .where(t.c.id > last_id)
            .order_by(t.c.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        changes = [
            StatusChange(
                r.id,
                r.alert_id,
                r.at,
                r.to_status == "open",
                r.school,
                r.device,
                r.rule,
                r.category,
                r.severity,
            )
            for r in rows
            if r.to_status in ("open", "resolved") and r.from_status != r.to_status
        ]
        return changes, (rows[-1].id if rows else last_id)
