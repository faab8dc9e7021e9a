"""The telemetry behind the charts, read from the collector's time-series store.

Two dialects, both over plain HTTP: VictoriaMetrics' export API (series named
`<measurement>_<field>`, as the collector's line protocol becomes there) and
InfluxQL (`/query`, InfluxDB 1.x, or 2.x through a DBRP mapping). Hourly means
over the last `days`: at most a few hundred points per chart.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lordi.web.config import SeriesSettings

Points = list[tuple[datetime, float]]


class SeriesUnavailable(Exception):
    """The store did not answer; the message says why (no secret in it)."""


@dataclass(frozen=True, slots=True)
class Field:
    measurement: str  # battery, wifi
    name: str  # percent, rssi_dbm, health_pct...


CHARGE = Field("battery", "percent")
HEALTH = Field("battery", "health_pct")
RSSI = Field("wifi", "rssi_dbm")


class SeriesReader:
    def __init__(self, settings: SeriesSettings) -> None:
        self.settings = settings

    @property
    def enabled(self) -> bool:
        return self.settings.kind != "none"

    def history(
        self, field: Field, school: str, device: str, now: datetime | None = None
    ) -> Points:
        """Hourly means of one field of one laptop (all its batteries or radios
        averaged), oldest first."""
        end = now or datetime.now(UTC)
        start = end - timedelta(days=self.settings.days)
        if self.settings.kind == "victoriametrics":
            return self._vm(field, school, device, start, end)
        if self.settings.kind == "influxql":
            return self._influxql(field, school, device, start, end)
        return []

    def _get(self, url: str) -> bytes:
        request = urllib.request.Request(url)  # noqa: S310 - the operator's store URL
        token = self.settings.token.get_secret_value()
        if token:
            request.add_header("Authorization", f"Token {token}")
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout_s) as resp:  # noqa: S310
                return bytes(resp.read())
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SeriesUnavailable(f"{self.settings.url}: {reason}") from None

    def _vm(self, field: Field, school: str, device: str, start: datetime, end: datetime) -> Points:
        selector = (
            f'{field.measurement}_{field.name}{{school="{_label(school)}",device="{_label(device)}"}}'
        )
        params = urllib.parse.urlencode(
            {"match[]": selector, "start": int(start.timestamp()), "end": int(end.timestamp())}
        )
        body = self._get(f"{self.settings.url.rstrip('/')}/api/v1/export?{params}")
        hours: dict[int, list[float]] = defaultdict(list)
        for line in body.splitlines():
            if line.strip():
                doc = json.loads(line)
                for value, ms in zip(doc["values"], doc["timestamps"], strict=True):
                    if value is not None:
                        hours[ms // 3_600_000].append(float(value))
        return [
            (datetime.fromtimestamp(h * 3600, UTC), sum(v) / len(v))
            for h, v in sorted(hours.items())
        ]

    def _influxql(
        self, field: Field, school: str, device: str, start: datetime, end: datetime
    ) -> Points:
        # Tag values are quoted by _quote; the rest of the text is ours.
        query = (
            f'SELECT mean("{field.name}") FROM "{field.measurement}" '  # noqa: S608
            f"WHERE \"school\" = '{_quote(school)}' AND \"device\" = '{_quote(device)}' "
            f"AND time >= {int(start.timestamp())}s AND time <= {int(end.timestamp())}s "
            "GROUP BY time(1h) fill(none)"
        )
        params = urllib.parse.urlencode({"db": self.settings.database, "q": query, "epoch": "ms"})
        doc = json.loads(self._get(f"{self.settings.url.rstrip('/')}/query?{params}"))
        out: Points = []
        for result in doc.get("results", []):
            if "error" in result:
                raise SeriesUnavailable(f"InfluxQL: {result['error']}")
            for series in result.get("series", []):
                for ms, value in series["values"]:
                    if value is not None:
                        out.append((datetime.fromtimestamp(ms / 1000, UTC), float(value)))
        return sorted(out)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
