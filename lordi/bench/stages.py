"""`python -m lordi.bench.stages`: where a collector's CPU goes, stage by stage, in
one process (no broker, no store): the ingest bench's messages (lordi/bench/ingest.py)
through the production calls in the collector's order, each stage timed on its own
with `time.process_time` (CPU of this process), after the collector's own garbage
collector tuning (`collector.service.tune_runtime`).

- `decode_and_check`: `check_message` (msgspec's fast path for a well-formed message);
- `line_protocol`: `append_message` on what it accepted;
- `batch_add`: the two together as the ingest thread runs them (`Batch.add`, batches
  of `--per-batch` messages);
- `join_encode`: a batch's lines into the request body (as the store writer does);
- `summaries`, `rules`: the commit's work (`SchoolSummaries.add_message`,
  `Alerting.on_samples` with a SQLite alert store);
- `free`: dropping the batches.

`build` says whether the hot modules run compiled (collector/compiled.py: `make
compile`, or LORDI_PURE_PYTHON=1 for their `.py`), and `compiled` lists the collector
modules loaded from an extension. Prints JSON, microseconds per sample.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from collector import BUILD
from collector.alerting import Alerting
from collector.alerts.store import AlertStore
from collector.compiled import loaded
from collector.ingest import Batch, each_sample
from collector.lineproto import append_message, epoch_ms, version_field
from collector.rules import RulesConfig
from collector.service import tune_runtime
from collector.summaries import SchoolSummaries
from collector.validate import Checked, check_message
from lordi.bench.ingest import payloads

T = TypeVar("T")


def run(
    messages: int = 2000, per_message: int = 50, devices: int = 200, per_batch: int = 40
) -> dict[str, Any]:
    bodies = list(payloads(messages, per_message, devices=devices))
    samples = messages * per_message
    tune_runtime()
    us: dict[str, float] = {}

    def timed(stage: str, work: Callable[[], T]) -> T:
        gc.collect()
        cpu = time.process_time()
        out = work()
        us[stage] = round((time.process_time() - cpu) * 1e6 / samples, 2)
        return out

    checked = timed("decode_and_check", lambda: [check_message(t, b) for t, b in bodies])

    def line_protocol(c: Checked) -> list[str]:
        version = version_field(c.agent_version)
        ts_ms = c.ts_ms or [epoch_ms(s.ts) for s in c.samples]  # as `Batch.add`
        return append_message([], c.school, c.device, version, c.samples,
                              ts_ms=ts_ms, strings=False)  # fmt: skip

    lines = timed("line_protocol", lambda: [line_protocol(c) for c in checked])

    def build() -> list[Batch]:
        out = []
        for start in range(0, len(bodies), per_batch):
            batch = Batch(string_fields=False)  # as for VictoriaMetrics
            for topic, body in bodies[start : start + per_batch]:
                batch.add(topic, body)
            out.append(batch)
        return out

    batches = timed("batch_add", build)
    timed("join_encode", lambda: ["\n".join(b.lines).encode() for b in batches])
    summaries = SchoolSummaries()

    def summarize() -> None:
        for group in (g for b in batches for g in b.groups):
            summaries.add_message(group.school, group.device, group.samples, group.ts_ms)

    timed("summaries", summarize)
    with tempfile.TemporaryDirectory(prefix="lordi-bench-stages-") as tmp:
        store = AlertStore(f"sqlite:///{Path(tmp) / 'alerts.sqlite3'}")
        store.create_tables()
        alerting = Alerting(RulesConfig(), store)
        accepted = [each_sample(b.groups) for b in batches]

        def judge() -> None:
            for batch in accepted:
                alerting.on_samples(batch, datetime.now(UTC))

        timed("rules", judge)
        alerts = len(store.list_alerts())
        store.close()
    stored = sum(b.sample_count for b in batches)
    line_count = sum(len(x) for x in lines)

    def free() -> None:
        for held in (batches, accepted, checked, lines):
            held.clear()

    timed("free", free)
    return {
        "samples": samples,
        "accepted": stored,
        "lines_per_sample": round(line_count / samples, 2),
        "alerts_opened": alerts,
        "us_per_sample": us,
        "build": BUILD.describe(),
        "compiled": loaded(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lordi.bench.stages", description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--per-message", type=int, default=50)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--per-batch", type=int, default=40, help="messages per batch")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.messages, args.per_message, args.devices, args.per_batch), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
