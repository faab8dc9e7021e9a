"""`python -m tests.compiled.equivalence NOW`: one telemetry week through the collector's
production calls, printed as JSON, for tests/compiled/test_compiled.py to run once on the
compiled modules and once with LORDI_PURE_PYTHON=1 and compare.

- the wire messages of tests/alerting/scenario.py (hand-placed faults, gauge and radio
  noise), each laptop's reports in messages of 1 to 50 samples, plus messages with a
  field out of range, through `Batch.add` for InfluxDB (string fields) and for
  VictoriaMetrics: every line and dead letter;
- the same samples through the alerting (SQLite) on a spooled schedule with a
  collector outage and on a bulk replay in random batches: alerts, transitions,
  notifications.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from collector import BUILD
from collector.alerts.store import AlertStore
from collector.compiled import loaded
from collector.ingest import Batch
from tests.alerting import scenario
from tests.alerting import schedules as sched


def messages(reports: list[scenario.Report], seed: int = 7) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    by_device: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in reports:
        by_device.setdefault((r.school, r.device), []).append(r.sample)
    out: list[tuple[str, bytes]] = []
    for (school, device), device_samples in sorted(by_device.items()):
        topic = f"lordi/v1/{school}/{device}/telemetry"
        rest = device_samples
        while rest:
            size = rng.randint(1, 50)
            take, rest = rest[:size], rest[size:]
            body = {"schema": 1, "device": device, "school": school,
                    "agent_version": "1.0.0", "samples": take}  # fmt: skip
            out.append((topic, json.dumps(body).encode()))
    # Bad input: a sample out of range beside good ones, and a message refused whole.
    school, device = scenario.SCHOOLS[0], "a00"
    good = reports[0].sample
    bad = json.loads(json.dumps(good))
    bad["batteries"][0]["percent"] = 250.0
    body = {"schema": 1, "device": device, "school": school, "agent_version": "1.0.0",
            "samples": [good, bad, good]}  # fmt: skip
    out.append((f"lordi/v1/{school}/{device}/telemetry", json.dumps(body).encode()))
    out.append((f"lordi/v1/{school}/{device}/telemetry", b'{"schema": 1, "samples": [}'))
    rng.shuffle(out)
    return out


def lines(bodies: list[tuple[str, bytes]], string_fields: bool) -> dict[str, Any]:
    batch = Batch(string_fields=string_fields)
    for topic, body in bodies:
        batch.add(topic, body)
    return {
        "lines": batch.lines,
        "dead_letters": [(d.topic, d.reason, d.sample_index) for d in batch.dead_letters],
        "samples": batch.sample_count,
    }


def alerts(items: list[sched.Item], schedule: sched.Schedule) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lordi-equivalence-") as tmp:
        store = AlertStore(f"sqlite:///{Path(tmp) / 'alerts.sqlite3'}")
        store.create_tables()
        try:
            outcome = sched.run(schedule, store, scenario.config())
        finally:
            store.close()
    return {"alerts": outcome.alerts, "transitions": outcome.transitions,
            "sent": outcome.sent, "late": outcome.late}  # fmt: skip


def main(now: datetime) -> dict[str, Any]:
    reports = scenario.telemetry(now)
    bodies = messages(reports)
    items = scenario.to_samples(reports)
    monday = scenario.school_week(now)[0]
    spooled = sched.spooled(items, {("0340001A", "a02"): [(30, 45, 3 * 3600.0)],
                                    ("0340002B", "b05"): [(0, 20, 5 * 3600.0)]})  # fmt: skip
    spooled.batch_sizes = (7, 50, 1)
    down = sched.outage(spooled, scenario._at(monday, 10), scenario._at(monday, 15), broker=False)
    bulk = sched.bulk(items, items[-1][2].ts, seed=3, batch_sizes=(1, 13, 500))
    return {
        "build": BUILD.describe(),
        "loaded": loaded(),
        "influxdb": lines(bodies, string_fields=True),
        "victoriametrics": lines(bodies, string_fields=False),
        "spooled_with_outage": alerts(items, down),
        "bulk": alerts(items, bulk),
    }


if __name__ == "__main__":
    json.dump(main(datetime.fromisoformat(sys.argv[1])), sys.stdout, default=str)
