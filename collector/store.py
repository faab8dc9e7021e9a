"""Write line protocol to an `/api/v2/write` endpoint with influxdb-client.

Works with InfluxDB 2.x/3.x and VictoriaMetrics. A write returns only once the
store has confirmed it (HTTP 204), which is when the collector may acknowledge the
MQTT messages. Failures are classified as Telegraf's InfluxDB output does:
- `StoreUnavailable` (connection refused, timeout, 5xx, 429): retry later, keep
  everything, acknowledge nothing;
- `StoreRejected` (other 4xx): the data itself is refused; retrying cannot help,
  the caller isolates the offending message and dead-letters it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException
from influxdb_client.service.ping_service import PingService

log = logging.getLogger(__name__)


class StoreError(Exception):
    """Base of the store's errors."""


class StoreUnavailable(StoreError):
    """The store could not be reached or was overloaded: retry later."""


class StoreRejected(StoreError):
    """The store refused the data (4xx other than 429)."""


class StoreWriter(Protocol):
    """What the collector needs of a store (LineWriter; fakes in unit tests)."""

    def write(self, lines: Sequence[str]) -> None: ...

    def close(self) -> None: ...


class LineWriter:
    def __init__(
        self, url: str, token: str, org: str, bucket: str, timeout_ms: int = 10_000
    ) -> None:
        # retries=False: retrying is the caller's job, with its own backoff, so a
        # store outage never blocks inside urllib3 with messages unacknowledged.
        self._client = InfluxDBClient(
            url=url, token=token or "unused", org=org, timeout=timeout_ms, retries=False
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)
        self._bucket = bucket
        self._org = org

    def write(self, lines: Sequence[str]) -> None:
        """Return once the store confirmed; safe to call from several threads (the
        client's connection pool gives each concurrent request its own connection)."""
        if not lines:
            return
        try:
            self._api.write(
                bucket=self._bucket,
                org=self._org,
                record="\n".join(lines),
                write_precision=WritePrecision.MS,  # type: ignore[arg-type]
            )
        except ApiException as exc:
            status = exc.status or 0
            if status == 429 or status >= 500:
                raise StoreUnavailable(f"store answered HTTP {status}") from None
            body = (exc.body or "")[:300] if isinstance(exc.body, str) else ""
            raise StoreRejected(f"store refused the write: HTTP {status} {body}".strip()) from None
        except Exception as exc:  # urllib3 / socket errors: the store is not there
            raise StoreUnavailable(f"store unreachable: {type(exc).__name__}: {exc}") from None

    def ping(self) -> None:
        """Return if the store answers its `/ping` (InfluxDB 1.x/2.x, VictoriaMetrics);
        `StoreUnavailable` otherwise. The collector's readiness check uses it when no
        write has happened lately (collector/metrics.py)."""
        try:
            PingService(self._client.api_client).get_ping()
        except ApiException as exc:
            raise StoreUnavailable(f"store answered HTTP {exc.status or 0} to /ping") from None
        except Exception as exc:
            raise StoreUnavailable(f"store unreachable: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        self._api.close()
        self._client.close()
