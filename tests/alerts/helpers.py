"""Hand-built findings and database handles shared by the alert tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from collector.alerts.model import Finding
from collector.alerts.store import AlertStore

# The PostgreSQL server of this machine and of CI (trust authentication).
POSTGRES_URL = os.environ.get(
    "LORDI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday morning, school time
KEY = "0310001A/PC-0042/BAT0/battery_replace"


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
