"""Hand-built findings, engine calls and database handles shared by the alert tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from collector.alerts.engine import AlertEngine, Notification
from collector.alerts.model import Finding
from collector.alerts.store import AlertStore
from collector.rules import scope_of
from collector.rules.config import RuleTiming

# The PostgreSQL server of this machine and of CI (trust authentication).
POSTGRES_URL = os.environ.get(
    "LORDI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday morning, school time
KEY = "0310001A/PC-0042/BAT0/battery_replace"
SCOPE = "d:0310001A/PC-0042"  # KEY's clock: the device's latest sample
# The tests' timing: open after 60 s, resolve after 120 s clear, repeat 1 h.
TIMING = RuleTiming(min_duration_s=60, clear_duration_s=120, repeat_interval_s=3600)


def timing(_rule: str) -> RuleTiming:
    return TIMING


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def finding(active: bool, at_s: float, key: str = KEY, **fields: Any) -> Finding:
    """A battery_replace finding as a rule would produce it, health in the evidence."""
    school, device = key.split("/")[:2]
    values: dict[str, Any] = {
        "rule": "battery_replace",
        "subject": "battery",
        "school": school,
        "device": device,
        "category": "hardware",
        "severity": "critical",
        "summary": "santé batterie 52 % (< 60 %)",
        "action": "Remplacer la batterie",
        "evidence": {"health_pct": 52.0 if active else 64.0, "sample_at": at(at_s).isoformat()},
    }
    values.update(fields)
    return Finding(key=key, active=active, at=at(at_s), **values)


def clocks_of(
    findings: list[Finding], more: Mapping[str, float] | None = None
) -> dict[str, datetime]:
    """Each finding's scope at its latest sample time, as a collector gives them;
    `more` (scope -> seconds) advances other clocks, or the same ones further."""
    clocks: dict[str, datetime] = {}
    for f in findings:
        scope = scope_of(f)
        clocks[scope] = max(clocks.get(scope, f.at), f.at)
    for scope, seconds in (more or {}).items():
        clocks[scope] = max(clocks.get(scope, at(seconds)), at(seconds))
    return clocks


def run(
    engine: AlertEngine,
    now_s: float,
    *findings: Finding,
    clocks: Mapping[str, float] | None = None,
) -> list[tuple[str, int]]:
    """Process the findings at `now_s` on the collector's clock, the findings' scopes
    advanced to their latest finding (and `clocks` further); (kind, alert id) sent."""
    found = list(findings)
    return summary(engine.process(found, clocks_of(found, clocks), at(now_s)))


def tick(engine: AlertEngine, clock_s: float, now_s: float | None = None) -> list[tuple[str, int]]:
    """A sample of KEY's device without any finding: only its clock moves (to
    `clock_s`; the collector's clock `now_s` defaults to the same instant)."""
    return run(engine, clock_s if now_s is None else now_s, clocks={SCOPE: clock_s})


def sweep(engine: AlertEngine, now_s: float) -> list[tuple[str, int]]:
    return summary(engine.sweep(at(now_s)))


def summary(notifications: list[Notification]) -> list[tuple[str, int]]:
    return [(n.kind, n.alert.id) for n in notifications]


@dataclass
class Database:
    """One database; every call opens another store on it (another collector)."""

    url: str
    connect_args: dict[str, Any] = field(default_factory=dict)
    stores: list[AlertStore] = field(default_factory=list)

    def __call__(self) -> AlertStore:
        store = AlertStore(self.url, connect_args=self.connect_args)
        store.create_tables()
        self.stores.append(store)
        return store

    def engine(self) -> sa.engine.Engine:
        """A plain SQLAlchemy engine on the same database (and schema); dispose it."""
        return sa.create_engine(self.url, connect_args=self.connect_args)

    def close(self) -> None:
        for store in self.stores:
            store.close()


@contextmanager
def database(backend: str, sqlite_file: str) -> Iterator[Database]:
    """A fresh SQLite file, or a fresh schema (dropped afterwards) on the PostgreSQL server."""
    if backend == "sqlite":
        db = Database(f"sqlite:///{sqlite_file}")
        try:
            yield db
        finally:
            db.close()
        return
    schema = f"lordi_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    db = Database(POSTGRES_URL, {"options": f"-csearch_path={schema}"})
    try:
        yield db
    finally:
        db.close()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
