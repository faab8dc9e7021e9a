"""The alert engine's memory per key in the alert store, read and written in bulk.

`EngineState` is what `collector.alerts.engine.AlertEngine` keeps about one alert
key between batches and across restarts. Two kinds of time live here:

- sample time (the telemetry's `ts`): `pending_since`, `clear_since` and `due_at`
  (the clear timer, which expires when the key's `scope` clock reaches it);
- the collector's clock, for notifications only: `last_notified_at` and
  `remind_at` (when a sweep must look at the key: a late "opened" notification
  or a reminder).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from collector.alerts.schema import alerts, engine_state

_CHUNK = 500  # bounded IN lists


@dataclass(slots=True)
class EngineState:
    key: str
    rule: str
    scope: str = ""  # whose sample-time clock fires `due_at` (collector.rules.scope_of)
    pending_since: datetime | None = None  # condition active since, no alert open yet
    clear_since: datetime | None = None  # condition inactive since, alert still open
    last_notified_at: datetime | None = None  # the collector's clock
    last_notified_kind: str | None = None
    alert_id: int | None = None  # the key's current or most recent alert
    alert_open: bool = False
    due_at: datetime | None = None  # the clear timer, in the scope's sample time
    remind_at: datetime | None = None  # the collector's clock: notify or remind then
    notify_pending: bool = False  # opened late: "opened" not sent yet (engine docs)
    finding: dict[str, Any] = field(default_factory=dict)  # latest finding, serialised


ENGINE_FIELDS = tuple(f.name for f in fields(EngineState))


class EngineStates:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name

    def get_many(self, keys: Iterable[str]) -> dict[str, EngineState]:
        wanted = sorted(set(keys))
        states: dict[str, EngineState] = {}
        with self._engine.connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                query = engine_state.select().where(
                    engine_state.c.key.in_(wanted[start : start + _CHUNK])
                )
                states.update((r.key, EngineState(**r._mapping)) for r in conn.execute(query))
        return states

    def get(self, key: str) -> EngineState | None:
        return self.get_many([key]).get(key)

    def with_clear_timer(self, until: datetime | None = None) -> list[EngineState]:
        """States whose clear timer is set (expired by `until` when given), in
        (due, key) order: sorted here, not in SQL, so both backends agree."""
        query = engine_state.select().where(engine_state.c.due_at.is_not(None))
        if until is not None:
            query = query.where(engine_state.c.due_at <= until)
        with self._engine.connect() as conn:
            states = [EngineState(**r._mapping) for r in conn.execute(query)]
        return sorted(states, key=lambda s: (s.due_at, s.key))

    def to_remind(self, now: datetime) -> list[EngineState]:
        """States a sweep must look at by `now` (collector's clock), in key order."""
        query = engine_state.select().where(engine_state.c.remind_at <= now)
        with self._engine.connect() as conn:
            states = [EngineState(**r._mapping) for r in conn.execute(query)]
        return sorted(states, key=lambda s: s.key)

    def put_many(self, states: Sequence[EngineState]) -> None:
        """Insert or replace many states in one transaction."""
        if not states:
            return
        insert = (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(
            engine_state
        )
        replace = {c.name: insert.excluded[c.name] for c in engine_state.columns if c.name != "key"}
        statement = insert.on_conflict_do_update(index_elements=["key"], set_=replace)
        # Field by field, not `asdict`: that deep-copies every finding's evidence, which
        # cost more than the database itself.
        rows = [{name: getattr(state, name) for name in ENGINE_FIELDS} for state in states]
        with self._engine.begin() as conn:
            for start in range(0, len(rows), _CHUNK):
                conn.execute(statement, rows[start : start + _CHUNK])

    def put_findings(self, states: Sequence[EngineState]) -> None:
        """Store only the latest finding of existing states (the engine's flush of
        "still true" findings, whose timers are already stored)."""
        if not states:
            return
        statement = (
            engine_state.update()
            .where(engine_state.c.key == sa.bindparam("state_key"))
            .values(finding=sa.bindparam("state_finding"))
        )
        rows = [{"state_key": s.key, "state_finding": s.finding} for s in states]
        with self._engine.begin() as conn:
            conn.execute(statement, rows)

    def open_but_resolved(self) -> list[tuple[str, int]]:
        """(key, alert id) of keys the engine holds open whose alert a person resolved."""
        query = (
            sa.select(engine_state.c.key, alerts.c.id)
            .join(alerts, alerts.c.id == engine_state.c.alert_id)
            .where(engine_state.c.alert_open.is_(True), alerts.c.status == "resolved")
        )
        with self._engine.connect() as conn:
            return sorted((row.key, row.id) for row in conn.execute(query))
