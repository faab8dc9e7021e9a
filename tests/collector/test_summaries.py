"""Per-school summaries (collector.summaries): counts, bands, percentiles, late data."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from collector.contract import Sample
from collector.lineproto import epoch_ms
from collector.summaries import SchoolSummaries, percentile, summary_lines
from tests.dashboards import scenario

S1, S2 = "0000001A", "0000002B"


def fields(line: str) -> dict[str, str]:
    _series, body, _ts = line.split(" ")
    return dict(kv.split("=", 1) for kv in body.split(","))


def test_percentile_nearest_rank() -> None:
    assert percentile([50.0], 50) == 50.0
    assert percentile([85.0, 50.0], 50) == 50.0
    assert percentile([55.0, 70.0, 90.0], 10) == 55.0
    assert percentile([55.0, 70.0, 90.0], 50) == 70.0
    assert percentile([float(i) for i in range(1, 101)], 90) == 90.0


def test_summary_lines_for_known_scenario() -> None:
    items = scenario.samples(scenario.laptops(S1, S2), scenario.days())
    lines = summary_lines(items)
    schools = [line for line in lines if line.startswith("school_summary,")]
    models = [line for line in lines if line.startswith("school_model_summary,")]
    # 3 days x 3 reporting hours (07:00 and 07:45 share an hour) x 2 schools
    assert len(schools) == 18
    assert len(models) == 18 + 9  # s1 has two models, s2 one
    first = fields(next(line for line in schools if f"school={S1} " in line))
    assert first == {
        "devices_reporting": "3i",
        "devices_known": "3i",
        "health_lt60": "1i",
        "health_60_80": "1i",
        "health_ge80": "1i",
        "health_p10": "55.0",
        "health_p50": "70.0",
        "rssi_school_mean_dbm": "-65.0",
        "rssi_school_reports": "6i",
        "disconnects": "2i",
    }
    model_b = next(line for line in models if f"school={S2},model=M-B " in line)
    assert fields(model_b)["health_lt60"] == "1i"
    assert fields(model_b)["health_ge80"] == "1i"


def test_timestamps_are_interval_starts_in_ms() -> None:
    items = scenario.samples(scenario.laptops(S1, S2), scenario.days())
    for line in summary_lines(items):
        assert int(line.rsplit(" ", 1)[1]) % 3_600_000 == 0


def test_flush_waits_for_grace_and_late_samples_are_counted() -> None:
    lap = scenario.laptops(S1, S2)[0]
    t0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    summaries = SchoolSummaries(interval=timedelta(hours=1), grace=timedelta(minutes=10))
    summaries.add(S1, "d1", scenario.sample(lap, t0 + timedelta(minutes=5), 50.0, False, True))
    assert summaries.flush(t0 + timedelta(minutes=65)) == []  # inside the grace period
    line, model_line = summaries.flush(t0 + timedelta(minutes=71))
    assert model_line.startswith(f"school_model_summary,school={S1},model=M-A ")
    assert line.startswith(f"school_summary,school={S1} devices_reporting=1i,")
    assert line.endswith(f" {int(t0.timestamp() * 1000)}")
    late = scenario.sample(replace(lap, health=40.0), t0, 50.0, False, True)
    summaries.add(S1, "d1", late)
    assert summaries.late_samples == 1
    assert summaries.flush() == []
    # the late sample is older than the known health: state keeps the newer one
    assert summaries.devices[S1]["d1"].health == 55.0


def test_off_network_and_missing_health() -> None:
    lap = scenario.laptops(S1, S2)[0]
    t0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    off = scenario.sample(lap, t0, 50.0, False, on_school=False)
    (line,) = [x for x in summary_lines([(S1, "d1", off)]) if x.startswith("school_summary")]
    got = fields(line)
    assert "rssi_school_mean_dbm" not in got  # off the school network: not averaged
    assert got["devices_reporting"] == "1i"


def test_escapes_tags() -> None:
    lap = scenario.laptops(S1, S2)[0]
    lap = replace(lap, model="L19 L3,PD1")
    t0 = datetime.now(UTC) - timedelta(days=1)
    lines = summary_lines([(S1, "d1", scenario.sample(lap, t0, 50.0, False, True))])
    assert any(r"model=L19\ L3\,PD1 " in line for line in lines)


def test_remembered_devices_count_in_bands() -> None:
    lap = scenario.laptops(S1, S2)[0]
    t0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    summaries = SchoolSummaries()
    summaries.remember(S1, "old", t0 - timedelta(days=3), 45.0, "M-A")
    summaries.remember(S1, "gone", t0 - timedelta(days=60), 45.0, "M-A")  # beyond 30 days
    summaries.add(S1, "d1", scenario.sample(lap, t0, 50.0, False, True))
    got = fields(summaries.flush()[0])
    assert got["devices_reporting"] == "1i"
    assert got["devices_known"] == "2i"
    assert got["health_lt60"] == "2i"


def test_a_message_at_a_time_gives_the_same_summaries_as_a_sample_at_a_time() -> None:
    """The collector feeds whole messages (`add_message`), spanning intervals, with
    late samples among them: the lines are those of feeding sample by sample."""
    items = scenario.samples(scenario.laptops(S1, S2), scenario.days())
    by_device: dict[tuple[str, str], list[Sample]] = {}
    for school, device, sample in items:
        by_device.setdefault((school, device), []).append(sample)
    one, many = SchoolSummaries(), SchoolSummaries()
    first_day_end = min(s.ts for _, _, s in items) + timedelta(hours=12)
    for summaries in (one, many):  # the first day written: its samples come late again
        for school, device, sample in items:
            if sample.ts < first_day_end:
                summaries.add(school, device, sample)
        assert summaries.flush(first_day_end)
    for (school, device), samples in by_device.items():
        for sample in samples:
            one.add(school, device, sample)
        many.add_message(school, device, samples, [epoch_ms(s.ts) for s in samples])
    assert one.late_samples == many.late_samples > 0
    lines = many.flush()
    assert lines == one.flush()
    assert len(lines) > 3
