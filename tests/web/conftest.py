"""Fixtures: the web worklist over a seeded store on SQLite and on the real
PostgreSQL server, with the real SMTP server of tests/notify."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lordi.smtp import SmtpServer
from tests.alerts.helpers import BACKENDS, database
from tests.notify.conftest import smtp_server  # noqa: F401 - the session SMTP server
from tests.web.site import Site, site


@pytest.fixture(params=BACKENDS)
def web(
    request: pytest.FixtureRequest, tmp_path: Path, smtp_server: SmtpServer  # noqa: F811
) -> Iterator[Site]:
    smtp_server.clear()
    with database(request.param, str(tmp_path / "alerts.sqlite3")) as db, site(
        db(), smtp_server, tmp_path
    ) as opened:
        yield opened
