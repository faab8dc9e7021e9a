"""`python -m lordi.bench.rules`: the rules' CPU per sample, through the production
call (`Alerting.on_samples`, as the collector's commit calls it), on the ingest
bench's messages (lordi/bench/ingest.py: 200 laptops, batteries between 60 and
100 % health, Wi-Fi readings that move) read as the collector reads them, with a
SQLite alert store, or the real PostgreSQL (`--store postgresql`: a fresh schema;
`--partition` as a partitioned collector's, which owns the bench's schools and so
caches their alert keys). `--profile` adds where the time goes: each listed
function's share of the profiled time (cumulative, cProfile).

`--first-day N` measures an alert burst instead, through the same call: the state
bench's simulated fleet (lordi/bench/state.py: worn packs, faults, 220 schools) of N
laptops met for the first time, one sample each in batches of 1,000, so an alert
opens for every pack already worn, as on a school's first day. No notifier: the
outbox rows the collector would add in the same transactions are not written.

Prints JSON.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.alerting import Alerting
from collector.alerts.store import AlertStore
from collector.rules import RulesConfig
from collector.samples import Sample
from collector.validate import check_message
from lordi.bench.alerting import POSTGRES_URL
from lordi.bench.ingest import payloads
from lordi.bench.state import BATCH, START, Feed, sample_pool
from lordi.pgschema import fresh_store_url

Accepted = list[tuple[str, str, Sample]]


def batches(devices: int, per_message: int, messages: int, per_batch: int = 20) -> list[Accepted]:
    """The collector's committed batches (`per_batch` messages each) of the ingest
    bench's messages, read as the collector reads them (`check_message`: msgspec's
    fast path for a well-formed message), so the rules get the very objects the
    collector gives them."""
    out: list[Accepted] = []
    batch: Accepted = []
    for index, (topic, body) in enumerate(payloads(messages, per_message, devices=devices), 1):
        checked = check_message(topic, body)
        batch += [(checked.school, checked.device, sample) for sample in checked.samples]
        if index % per_batch == 0:
            out.append(batch)
            batch = []
    if batch:
        out.append(batch)
    return out


def _alerting(url: str, partition: bool) -> Alerting:
    store = AlertStore(url)
    store.create_tables()
    return Alerting(RulesConfig(), store, owns=(lambda _school: True) if partition else None)


def _store_url(store: str, sqlite_file: Path) -> AbstractContextManager[str]:
    return fresh_store_url(store, sqlite_file, POSTGRES_URL, "lordi_bench_rules_")


def run(devices: int = 200, per_message: int = 50, messages: int = 4000,
        profile: bool = False, *, store: str = "sqlite",
        partition: bool = False) -> dict[str, Any]:  # fmt: skip
    work = batches(devices, per_message, messages)
    samples = sum(len(b) for b in work)
    result: dict[str, Any] = {"samples": samples, "devices": devices, "store": store,
                              "partition": partition}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="lordi-bench-rules-") as tmp:
        with _store_url(store, Path(tmp) / "a.sqlite3") as url:
            alerting = _alerting(url, partition)
            cpu = time.process_time()
            for batch in work:
                alerting.on_samples(batch, datetime.now(UTC))
            result["rules_us_per_sample"] = round((time.process_time() - cpu) * 1e6 / samples, 1)
            result["alerts_opened"] = len(alerting.store.list_alerts())
            alerting.store.close()
        if profile:
            with _store_url(store, Path(tmp) / "b.sqlite3") as url:
                profiled = _alerting(url, partition)
                prof = cProfile.Profile()
                prof.enable()
                for batch in work:
                    profiled.on_samples(batch, datetime.now(UTC))
                prof.disable()
                profiled.store.close()
            result["profile_share"] = _shares(prof)
    return result


def first_day(laptops: int = 2000, *, store: str = "sqlite",
              partition: bool = False) -> dict[str, Any]:  # fmt: skip
    feed = Feed(laptops, sample_pool(500, looks=4))
    work = [feed.batch(first, BATCH, START) for first in range(0, laptops, BATCH)]
    result: dict[str, Any] = {"laptops": laptops, "store": store, "partition": partition}
    with (
        tempfile.TemporaryDirectory(prefix="lordi-bench-rules-") as tmp,
        _store_url(store, Path(tmp) / "a.sqlite3") as url,
    ):
        alerting = _alerting(url, partition)
        cpu, wall = time.process_time(), time.monotonic()
        for batch in work:
            alerting.on_samples(batch, START)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        opened = len(alerting.store.list_alerts())
        alerting.store.close()
    result["alerts_opened"] = opened
    result["cpu_us_per_sample"] = round(cpu * 1e6 / laptops, 1)
    result["wall_us_per_sample"] = round(wall * 1e6 / laptops, 1)
    result["cpu_ms_per_alert_opened"] = round(cpu * 1e3 / max(1, opened), 3)
    return result


def _shares(prof: cProfile.Profile, top: int = 25) -> dict[str, float]:
    stats: Any = pstats.Stats(prof).stats  # type: ignore[attr-defined]  # (file, line, name) -> (cc, nc, tt, ct, callers)
    total = max(ct for (_, _, name), (_, _, _, ct, _) in stats.items() if name == "on_samples")
    rows = sorted(((ct, f"{Path(f).name}:{line}({name})") for (f, line, name), (_, _, _, ct, _)
                   in stats.items() if "/collector/" in f), reverse=True)  # fmt: skip
    return {where: round(ct / total, 3) for ct, where in rows[:top]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lordi.bench.rules", description=__doc__)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--per-message", type=int, default=50)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--profile", action="store_true", help="add where the time goes")
    parser.add_argument(
        "--store",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help=f"the alert store (postgresql: a fresh schema on {POSTGRES_URL})",
    )
    parser.add_argument(
        "--partition",
        action="store_true",
        help="as a partitioned collector (owns every school: engine cache)",
    )
    parser.add_argument(
        "--first-day",
        type=int,
        metavar="LAPTOPS",
        help="an alert burst instead: this many laptops of a worn fleet met at once",
    )
    args = parser.parse_args(argv)
    if args.first_day:
        burst = first_day(args.first_day, store=args.store, partition=args.partition)
        print(json.dumps(burst, indent=2))
        return 0
    result = run(args.devices, args.per_message, args.messages, args.profile,
                 store=args.store, partition=args.partition)  # fmt: skip
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
