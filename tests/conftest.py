"""Shared fixtures: one private stack (Mosquitto, VictoriaMetrics, InfluxDB 1.x) per
test session, started from the Debian packages by `lordi.stack` on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lordi.stack import LocalStack


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as s:
        yield s
