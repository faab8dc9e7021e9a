"""Per-school alerting state in the alert store, written and read in bulk.

The collector keeps each school's telemetry windows and days that are not complete
yet, its completed days and its access-point verdicts in memory
(collector.alerting.school) and saves them with the device state; the document's
format is collector.alerting.persistence's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from collector.alerts.schema import school_state


class SchoolStates:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name

    def put_many(self, rows: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """(school, document) pairs, inserted or replaced in one transaction."""
        if not rows:
            return
        insert = (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(
            school_state
        )
        statement = insert.on_conflict_do_update(
            index_elements=["school"], set_={"derived": insert.excluded.derived}
        )
        with self._engine.begin() as conn:
            conn.execute(statement, [{"school": s, "derived": d} for s, d in rows])

    def all(self) -> dict[str, dict[str, Any]]:
        query = school_state.select().order_by(school_state.c.school)
        with self._engine.connect() as conn:
            return {row.school: row.derived for row in conn.execute(query)}
