"""Status changes of alerts, in the order they were stored, for the time series.

A cursor over `transitions.id`: `after(last_id)` returns the open/resolve changes
recorded since, with the alert's tags; `save_cursor` records how far they were
written (only ever forward), `saved_cursor` reads it back after a restart. Every
change counts, whoever made it (the engine, a technician resolving from the
worklist, another collector): writing the same point twice is harmless (same
series, same timestamp).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from collector.alerts.schema import alerts, feed_marks, transitions

TIME_SERIES = "time_series"  # the one consumer today: the collector's `alert` points


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
    key: str  # the alert's identity (`Finding.key`): one unresolved alert per key
    since: datetime | None = None  # the alert's condition start (open points only)


class TransitionFeed:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def last_id(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(transitions.c.id))).scalar() or 0)

    def saved_cursor(self, name: str = TIME_SERIES) -> int | None:
        with self._engine.connect() as conn:
            value = conn.execute(
                sa.select(feed_marks.c.last_id).where(feed_marks.c.name == name)
            ).scalar()
        return None if value is None else int(value)

    def save_cursor(self, last_id: int, name: str = TIME_SERIES) -> None:
        """Record that changes up to `last_id` were written; never moves back (several
        collectors may save: a change written twice is the same point)."""
        if self.saved_cursor(name) is None:
            try:
                with self._engine.begin() as conn:
                    conn.execute(sa.insert(feed_marks).values(name=name, last_id=last_id))
                return
            except sa.exc.IntegrityError:
                pass  # another collector created it first: move it forward below
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(feed_marks)
                .where(feed_marks.c.name == name, feed_marks.c.last_id < last_id)
                .values(last_id=last_id)
            )

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
                a.c.key,
                a.c.since,
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
                r.key,
                r.since if r.to_status == "open" else None,
            )
            for r in rows
            if r.to_status in ("open", "resolved") and r.from_status != r.to_status
        ]
        return changes, (rows[-1].id if rows else last_id)
