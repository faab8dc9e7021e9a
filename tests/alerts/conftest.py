"""Fixtures: alert stores on a fresh SQLite file and on the real PostgreSQL server.

Every PostgreSQL test gets its own schema (dropped afterwards), selected through the
connection's search_path, so tests never see each other's alerts and ids start at 1
on both backends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.alerts.store import AlertStore
from tests.alerts.helpers import BACKENDS, Database, database


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with database(request.param, str(tmp_path / "state.sqlite3")) as opened:
        yield opened


@pytest.fixture
def store(db: Database) -> AlertStore:
    return db()


@pytest.fixture
def postgres() -> Iterator[Database]:
    with database("postgresql", "") as opened:
        yield opened
