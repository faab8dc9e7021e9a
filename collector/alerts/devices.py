"""Per-device rule state in the alert store, written and read in bulk.

The collector keeps each device's rule state in memory (collector.rules.state) and
saves the devices that changed on a cadence and at stop, many rows per
transaction; a collector loads them all at start, and, with several collectors on
one PostgreSQL database, loads a device it has not seen yet when its first sample
arrives (another collector may have saved it). The state itself is an opaque JSON
document here (collector.rules.persist owns its format); `asset_tag` is never
written here (enrolment owns it), and a NULL model or last sighting keeps the
stored one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from collector.alerts.schema import devices

_CHUNK = 500  # rows per statement: bounded IN lists and parameter sets


@dataclass(frozen=True, slots=True)
class SavedDevice:
    school: str
    device: str
    battery_model: str | None
    last_seen: datetime | None
    derived: dict[str, Any]


class DeviceStates:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name

    def put_many(self, rows: Sequence[SavedDevice]) -> None:
        """Insert or update the devices' state, `_CHUNK` rows per statement, all in
        one transaction."""
        if not rows:
            return
        insert = (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(devices)
        excluded = insert.excluded
        statement = insert.on_conflict_do_update(
            index_elements=["school", "device"],
            set_={
                "battery_model": sa.func.coalesce(excluded.battery_model, devices.c.battery_model),
                "last_seen": sa.func.coalesce(excluded.last_seen, devices.c.last_seen),
                "derived": excluded.derived,
            },
        )
        params = [
            {
                "school": r.school,
                "device": r.device,
                "asset_tag": None,
                "battery_model": r.battery_model,
                "last_seen": r.last_seen,
                "derived": r.derived,
            }
            for r in rows
        ]
        with self._engine.begin() as conn:
            for start in range(0, len(params), _CHUNK):
                conn.execute(statement, params[start : start + _CHUNK])

    def get_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], SavedDevice]:
        wanted = sorted(set(keys))
        found: dict[tuple[str, str], SavedDevice] = {}
        pair = sa.tuple_(devices.c.school, devices.c.device)
        with self._engine.connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                query = devices.select().where(pair.in_(wanted[start : start + _CHUNK]))
                for row in conn.execute(query):
                    found[(row.school, row.device)] = _saved(row)
        return found

    def asset_tags(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        """The enrolled asset tag of each (school, device) that has a row."""
        wanted = sorted(set(keys))
        found: dict[tuple[str, str], str | None] = {}
        pair = sa.tuple_(devices.c.school, devices.c.device)
        columns = sa.select(devices.c.school, devices.c.device, devices.c.asset_tag)
        with self._engine.connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                query = columns.where(pair.in_(wanted[start : start + _CHUNK]))
                for school, device, tag in conn.execute(query):
                    found[(school, device)] = tag
        return found

    def all(self) -> list[SavedDevice]:
        query = devices.select().order_by(devices.c.school, devices.c.device)
        with self._engine.connect() as conn:
            return [_saved(row) for row in conn.execute(query)]


def _saved(row: sa.Row[Any]) -> SavedDevice:
    return SavedDevice(row.school, row.device, row.battery_model, row.last_seen, row.derived)
