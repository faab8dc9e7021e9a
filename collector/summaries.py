"""Per-school summaries, so the Fleet dashboard's cost does not grow with the fleet.

The Fleet dashboard never reads a device's series: it reads one `school_summary`
point per school and interval (and one `school_model_summary` point per school,
battery model and interval). Its query time depends on schools times intervals, not
on the number of laptops.

Pure code: no I/O. The collector feeds every validated sample to
`SchoolSummaries.add` and, on a timer, writes the lines `SchoolSummaries.flush`
returns (same line-protocol conventions as `collector.lineproto`: integers with
`i`, millisecond timestamps, nulls omitted).

`school_summary` (tag school), timestamp = interval start:
- `devices_reporting`  devices with at least one sample in the interval;
- `devices_known`      devices of the school seen within `known_for` (default 30 days)
                       before the interval's end, with a battery health;
- `health_lt60`, `health_60_80`, `health_ge80`  those devices by their last
                       known health (worst battery), bands as in design.md;
- `health_p10`, `health_p50`  nearest-rank percentiles of that health;
- `rssi_school_mean_dbm`, `rssi_school_reports`  mean RSSI of the interval's
                       reports on the school network, and how many there were;
- `disconnects`        sum of the interval's reported Wi-Fi disconnects.
`school_model_summary` (tags school, model): `devices_known`, the three bands
and `health_p50`, for the devices whose worst battery reports that model.

An interval is emitted once, `grace` after its end (late samples of a spool
drain arriving before then are counted). Samples for an interval already emitted
update device state but not that interval (counted in `late_samples`): writing it
again would overwrite the summary with a partial one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from collector.lineproto import epoch_ms
from collector.samples import Sample

SUMMARY = "school_summary"
MODEL_SUMMARY = "school_model_summary"
_MS = timedelta(milliseconds=1)
_TAG_ESCAPE = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\\": "/"})


def _tag(value: str) -> str:
    return value.translate(_TAG_ESCAPE)


@dataclass
class _Device:
    seen_ms: int
    health: float | None = None
    health_ms: int = -1
    model: str | None = None


@dataclass
class _Bucket:
    devices: set[str] = field(default_factory=set)
    rssi_sum: float = 0.0
    rssi_n: int = 0
    disconnects: int = 0


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of a non-empty list (p in 0..100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least 1
    return ordered[int(rank) - 1]


def _bands(healths: list[float]) -> str:
    lt60 = sum(1 for h in healths if h < 60)
    ge80 = sum(1 for h in healths if h >= 80)
    return (
        f"devices_known={len(healths)}i,health_lt60={lt60}i,"
        f"health_60_80={len(healths) - lt60 - ge80}i,health_ge80={ge80}i"
    )


def _worst_battery(sample: Sample) -> tuple[float | None, str | None]:
    batteries = sample.batteries
    if len(batteries) == 1:  # most laptops: no list to build
        only = batteries[0]
        return (None, None) if only.health_pct is None else (only.health_pct, only.model)
    known = [b for b in sample.batteries if b.health_pct is not None]
    if not known:
        return None, None
    worst = min(known, key=lambda b: b.health_pct or 0.0)
    return worst.health_pct, worst.model


class SchoolSummaries:
    """Device state (O(1) per device) and open interval buckets per school."""

    def __init__(
        self,
        interval: timedelta = timedelta(hours=1),
        grace: timedelta = timedelta(minutes=10),
        known_for: timedelta = timedelta(days=30),
    ) -> None:
        self.interval_ms = interval // _MS
        self.grace_ms = grace // _MS
        self.known_for_ms = known_for // _MS
        self.devices: dict[str, dict[str, _Device]] = {}
        self.buckets: dict[tuple[str, int], _Bucket] = {}
        self.emitted_until_ms = -1  # intervals starting before this are written
        self.late_samples = 0

    def add(self, school: str, device: str, sample: Sample) -> None:
        self.add_message(school, device, [sample], [epoch_ms(sample.ts)])

    def add_message(
        self, school: str, device: str, samples: Sequence[Sample], ts_ms: Sequence[int]
    ) -> None:
        """The samples of one message (one device), with their times in epoch ms."""
        devices = self.devices.setdefault(school, {})
        state = devices.get(device)
        bucket, bucket_start = None, -1
        for sample, ts in zip(samples, ts_ms, strict=True):
            health, model = _worst_battery(sample)
            if state is None:
                state = devices[device] = _Device(seen_ms=ts)
            elif ts > state.seen_ms:
                state.seen_ms = ts
            if health is not None and ts >= state.health_ms:
                state.health, state.health_ms, state.model = health, ts, model
            start = ts - ts % self.interval_ms
            if start < self.emitted_until_ms:
                self.late_samples += 1
                continue
            if bucket is None or start != bucket_start:  # a message spans few intervals
                bucket, bucket_start = self.buckets.setdefault((school, start), _Bucket()), start
                bucket.devices.add(device)
            wifi = sample.wifi
            if wifi is not None:
                if wifi.on_school_network and wifi.rssi_dbm is not None:
                    bucket.rssi_sum += wifi.rssi_dbm
                    bucket.rssi_n += 1
                bucket.disconnects += wifi.disconnects or 0

    def remember(
        self, school: str, device: str, seen: datetime, health: float | None, model: str | None
    ) -> None:
        """Seed a device's state (e.g. from the collector's device-state store at start),
        so the bands count the whole school before every laptop has reported again."""
        ts = epoch_ms(seen)
        state = self.devices.setdefault(school, {}).setdefault(device, _Device(seen_ms=ts))
        state.seen_ms = max(state.seen_ms, ts)
        if health is not None and ts >= state.health_ms:
            state.health, state.health_ms, state.model = health, ts, model

    def flush(self, now: datetime | None = None) -> list[str]:
        """Lines for every open interval that ended `grace` before `now` (all if None)."""
        limit = None if now is None else epoch_ms(now) - self.grace_ms - self.interval_ms
        ready = sorted(k for k in self.buckets if limit is None or k[1] <= limit)
        lines: list[str] = []
        for school, start in ready:
            lines += self._lines(school, start, self.buckets.pop((school, start)))
            self.emitted_until_ms = max(self.emitted_until_ms, start + self.interval_ms)
        return lines

    def _lines(self, school: str, start: int, bucket: _Bucket) -> list[str]:
        end = start + self.interval_ms
        known = [
            d
            for d in self.devices.get(school, {}).values()
            if d.health is not None and end - self.known_for_ms <= d.seen_ms
        ]
        healths = [d.health for d in known if d.health is not None]
        fields = [f"devices_reporting={len(bucket.devices)}i", _bands(healths)]
        if healths:
            fields.append(
                f"health_p10={float(percentile(healths, 10))!r},"
                f"health_p50={float(percentile(healths, 50))!r}"
            )
        if bucket.rssi_n:
            fields.append(
                f"rssi_school_mean_dbm={bucket.rssi_sum / bucket.rssi_n!r},"
                f"rssi_school_reports={bucket.rssi_n}i"
            )
        fields.append(f"disconnects={bucket.disconnects}i")
        tag = _tag(school)
        lines = [f"{SUMMARY},school={tag} {','.join(fields)} {start}"]
        by_model: dict[str, list[float]] = {}
        for d in known:
            if d.model and d.health is not None:
                by_model.setdefault(d.model, []).append(d.health)
        for model in sorted(by_model):
            hs = by_model[model]
            lines.append(
                f"{MODEL_SUMMARY},school={tag},model={_tag(model)} "
                f"{_bands(hs)},health_p50={float(percentile(hs, 50))!r} {start}"
            )
        return lines


def summary_lines(
    items: Iterable[tuple[str, str, Sample]], interval: timedelta = timedelta(hours=1)
) -> list[str]:
    """All summaries of a finished batch of (school, device, sample): for backfills,
    tests and benchmarks."""
    summaries = SchoolSummaries(interval=interval)
    lines: list[str] = []
    for school, device, sample in sorted(items, key=lambda item: item[2].ts):
        lines += summaries.flush(sample.ts)  # as the service would on its timer
        summaries.add(school, device, sample)
    return lines + summaries.flush()
