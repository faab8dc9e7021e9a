"""A battery condition that keeps holding is reported when it starts, on every sample
while the engine may still be waiting for its minimum duration, then once per
`STILL_HOLDS_EVERY_S` of the device's sample time; its end is always reported
(collector.rules.battery.BatteryRule.still_reported). The alerts are those of a
finding on every sample, and the findings do not depend on how the samples are
batched."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.alerting import Alerting
from collector.alerts.model import Alert, Finding
from collector.alerts.store import AlertStore
from collector.contract import Sample
from collector.rules import RulesConfig
from collector.rules import battery as battery_rules
from tests.rules.factory import DEVICE, SCHOOL, T0, battery, sample, state, step

MINUTE = timedelta(minutes=1)


def minutes(findings: list[Finding]) -> list[int]:
    return [int((f.at - T0).total_seconds() // 60) for f in findings]


def test_a_held_condition_is_reported_when_it_starts_then_hourly() -> None:
    st = state()
    found: list[Finding] = []
    for m in range(181):  # a worn pack reporting every minute for three hours
        found += step(st, sample(T0 + m * MINUTE, [battery(55.0)]), only="battery_replace")
    assert minutes(found) == [0, 60, 120, 180]
    assert all(f.active for f in found)
    assert [f.evidence["since"] for f in found] == [T0.isoformat()] * 4


def test_every_sample_counts_until_the_minimum_duration() -> None:
    st = state()
    unplugged_fault = battery(90.0, plugged=True, status="not_charging", percent=50.0)
    found: list[Finding] = []
    for m in range(121):  # charging_fault waits 30 min before its alert opens
        found += step(st, sample(T0 + m * MINUTE, [unplugged_fault]), only="charging_fault")
    assert minutes(found) == [*range(31), 60, 120]


def test_the_end_of_a_condition_is_always_reported() -> None:
    st = state()
    found: list[Finding] = []
    for m in range(90):
        found += step(st, sample(T0 + m * MINUTE, [battery(55.0)]), only="battery_replace")
    end = step(st, sample(T0 + 90 * MINUTE, [battery(63.0)]), only="battery_replace")
    assert minutes(found) == [0, 60]
    assert [(f.active, f.summary) for f in end] == [
        (False, "Batterie de nouveau correcte : santé 63 %")
    ]
    again = step(st, sample(T0 + 91 * MINUTE, [battery(59.0)]), only="battery_replace")
    assert [(f.active, f.evidence["since"]) for f in again] == [
        (True, (T0 + 91 * MINUTE).isoformat())  # a new episode, reported at its start
    ]


def _fleet() -> list[tuple[str, str, Sample]]:
    """Two laptops over four hours, a sample a minute: one pack worn from the start,
    one charger failing for 50 minutes then repaired, one pack overheating twice."""
    out: list[tuple[str, str, Sample]] = []
    for m in range(240):
        ts = T0 + m * MINUTE
        worn = battery(55.0, temperature_c=60.0 if 30 <= m < 45 or 100 <= m < 200 else 35.0)
        charger = battery(
            92.0,
            plugged=True,
            status="not_charging" if 20 <= m < 70 else "charging",
            percent=60.0,
        )
        out.append((SCHOOL, DEVICE, sample(ts, [worn])))
        out.append((SCHOOL, "dev-2", sample(ts, [charger])))
    return out


def _alerts(tmp: Path, name: str, batches: list[list[tuple[str, str, Sample]]]) -> list[Any]:
    store = AlertStore(f"sqlite:///{tmp / name}")
    store.create_tables()
    alerting = Alerting(RulesConfig(), store)
    for batch in batches:
        alerting.on_samples(batch, batch[-1][2].ts + timedelta(seconds=5))
    alerting.stop()

    def row(a: Alert) -> tuple[Any, ...]:
        return (a.key, a.status, a.since, a.opened_at, a.resolved_at, a.summary, a.evidence)

    rows = sorted(row(a) for a in store.list_alerts())
    store.close()
    return rows


def test_the_alerts_are_those_of_a_finding_on_every_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = _fleet()
    hourly = _alerts(tmp_path, "hourly.sqlite3", [fleet[i : i + 40] for i in range(0, 480, 40)])
    monkeypatch.setattr(battery_rules, "STILL_HOLDS_EVERY_S", 1)  # every sample reported
    every = _alerts(tmp_path, "every.sqlite3", [fleet[i : i + 40] for i in range(0, 480, 40)])
    assert {row[0].rsplit("/", 1)[1] for row in every} == {
        "battery_replace",
        "battery_hot",
        "charging_fault",
    }
    assert hourly == every


def test_the_findings_do_not_depend_on_batching(tmp_path: Path) -> None:
    fleet = _fleet()

    def findings(batches: list[list[tuple[str, str, Sample]]], name: str) -> list[Any]:
        store = AlertStore(f"sqlite:///{tmp_path / name}")
        store.create_tables()
        alerting = Alerting(RulesConfig(), store)
        out = []
        for batch in batches:
            for f in alerting.evaluate(batch, batch[-1][2].ts):
                out.append((f.key, f.active, f.at, f.summary, f.evidence))
        store.close()
        return out

    one_by_one = findings([[x] for x in fleet], "a.sqlite3")
    in_one_batch = findings([fleet], "b.sqlite3")
    by_device = findings([[x for x in fleet if x[1] == d] for d in (DEVICE, "dev-2")], "c.sqlite3")
    assert one_by_one == in_one_batch
    assert sorted(one_by_one, key=str) == sorted(by_device, key=str)
    assert len(one_by_one) < len(fleet) / 4  # most samples of a held condition make none
