"""Fixtures of the fault tests: a private Mosquitto and VictoriaMetrics per test (so a
test may stop, pause or restart them without disturbing the session's stack), and
a private PostgreSQL cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lordi.stack import LocalStack
from tests.reliability.servers import PostgresCluster


@pytest.fixture
def private_stack() -> Iterator[LocalStack]:
    """Mosquitto (persistence on, in its own temporary folder) and VictoriaMetrics
    (deduplicating, as in production); no InfluxDB."""
    stack = LocalStack()
    try:
        stack.start_mosquitto()
        stack.start_victoriametrics()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def postgres_cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
