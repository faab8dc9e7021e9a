"""`lordi bench state --json`: memory and CPU of the collector's device state for a
region-sized fleet (design.md: 250,000 devices' state in <= 1 GB).

The real objects: `collector.alerting.Alerting` (rules, `DeviceState` per device,
lifecycle engine, a SQLite alert store in a temporary folder). The samples are
realistic: built by the real agent code on simulated laptops (`lordi.sim`: worn
packs, charging habits, access points, faults), then validated by the collector's
`check_message` exactly as received; device i of the bench replays laptop
i mod pool's samples under its own school and id, 5 minutes apart per round.

Measured:
- memory: RSS of this process (from /proc) before the first sample and after the
  last round, and what tracemalloc sees retained after the first round (the
  states, the engine's bookkeeping, interned strings; samples are garbage by then);
- CPU per sample of the rules and the state (the per-sample loop of
  `Alerting.on_samples`, in batches of 1,000), rounds 2.. only (every device
  already known); validation is timed apart;
- the whole `Alerting.on_samples` (engine and alert store included) on 2,000
  devices: the first round opens an alert for every pack already worn, which is
  what a collector meeting a fleet for the first time does; rounds 3 to 5 give the
  steady state (`on_samples_us_per_sample`), then the engine's flush of the
  "still true" findings it kept in memory is timed apart;
- the completion a sweep runs (every school's windows and days judged: access
  points, laptops' Wi-Fi, silence) over all states, once everything is complete;
- `save_devices` (each changed device upserted into the alert store at every sweep)
  on a subset, extrapolated to all devices: an estimate, labelled as such; every
  save also stores each school's document, timed apart (`save_schools_s_each_save`);
- the capacity history (one point per week, 26 kept) grows the state for half a
  year: a probe of 2,000 devices fed weekly for 27 weeks gives the bytes per device
  when full, and the RSS with full histories is estimated from it; the same probe
  gives what a laptop back from a silence holds until its return day is judged
  (every laptop, on the first day after the holidays).
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.sample import build_envelope, encode
from collector.alerting import Alerting
from collector.alerting.school import gap_list
from collector.alerts.store import AlertStore
from collector.rules import RulesConfig
from collector.samples import Sample
from collector.validate import check_message
from lordi.bench.procstat import read
from lordi.sim.faults import Faults, inject
from lordi.sim.population import build_region, school_list

TARGET_RSS_MB = 1024.0
BATCH = 1000
START = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)  # a Monday, 8:00 in Paris


def sample_pool(laptops: int, looks: int, seed: int = 7) -> list[dict[str, Any]]:
    """`laptops` x `looks` wire samples from simulated laptops, 5 minutes apart."""
    region = build_region(5, max(1, laptops // 5), START, seed)
    inject(region.fleet, START, Faults(), seed=seed + 4)
    pool: list[dict[str, Any]] = []
    for k in range(looks):
        region.fleet.clock.now = START + timedelta(minutes=5 * k)
        pool.extend(v.agent.take_sample() for v in region.fleet.laptops)
    return pool


class Feed:
    """Validated samples for device i at round r, as the collector receives them."""

    def __init__(self, devices: int, pool: list[dict[str, Any]], schools: int = 220) -> None:
        import random  # noqa: PLC0415

        self.pool = pool
        self.schools = [uai for uai, _ in school_list(schools, random.Random(1))]
        self.devices = devices

    def ids(self, i: int) -> tuple[str, str]:
        school = self.schools[i % len(self.schools)]
        return school, f"{school.lower()}-{i // len(self.schools):05d}"

    def batch(self, first: int, count: int, ts: datetime) -> list[tuple[str, str, Sample]]:
        stamp = ts.strftime("%Y-%m-%dT%H:%M:%SZ")
        out: list[tuple[str, str, Sample]] = []
        for i in range(first, min(first + count, self.devices)):
            school, device = self.ids(i)
            sample = {**self.pool[i % len(self.pool)], "ts": stamp}
            payload = encode(build_envelope(school, device, [sample]))
            checked = check_message(f"lordi/v1/{school}/{device}/telemetry", payload)
            out.extend((school, device, s) for s in checked.samples)
        return out


def fold(alerting: Alerting, accepted: list[tuple[str, str, Sample]], now: datetime) -> int:
    """The per-sample part of `Alerting.on_samples` (`Alerting.evaluate`): trust, the
    rules against the device's state, the school's windows and days, the state folds
    the sample in. The engine's handling of the findings (alert store I/O) is measured
    apart (`engine_cost`)."""
    return len(alerting.evaluate(accepted, now))


def _round(alerting: Alerting, feed: Feed, ts: datetime) -> tuple[float, float, int, int]:
    """One sample per device; returns (validation s, rules+state s, samples, findings)."""
    validate_s = state_s = 0.0
    done = findings = 0
    for first in range(0, feed.devices, BATCH):
        t0 = time.process_time()
        accepted = feed.batch(first, BATCH, ts)
        t1 = time.process_time()
        findings += fold(alerting, accepted, ts)
        state_s += time.process_time() - t1
        validate_s += t1 - t0
        done += len(accepted)
    return validate_s, state_s, done, findings


def engine_cost(pool: list[dict[str, Any]], work: Path, devices: int = 2000) -> dict[str, Any]:
    """The whole `Alerting.on_samples` (rules, state, engine, SQLite alert store) for
    `devices` devices: a first round (alerts open for what is already wrong) and a
    second one (steady state)."""
    store = AlertStore(f"sqlite:///{work / 'engine.sqlite3'}")
    store.create_tables()
    alerting = Alerting(RulesConfig(), store, sweep_interval_s=1e12)
    feed = Feed(devices, pool)
    out: dict[str, Any] = {"engine_devices": devices}
    for r, name in enumerate(("first", "second")):
        ts = START + timedelta(minutes=5 * r)
        batches = [feed.batch(first, BATCH, ts) for first in range(0, devices, BATCH)]
        t = time.process_time()
        w = time.monotonic()
        for accepted in batches:
            alerting.on_samples(accepted, ts)
        out[f"on_samples_{name}_round_cpu_us_per_sample"] = round(
            (time.process_time() - t) * 1e6 / devices, 1
        )
        out[f"on_samples_{name}_round_wall_us_per_sample"] = round(
            (time.monotonic() - w) * 1e6 / devices, 1
        )
    opened = len(store.list_alerts())
    out["alerts_opened_first_round"] = opened
    out.update(_steady_state(alerting, feed, devices))
    return out


def _steady_state(alerting: Alerting, feed: Feed, devices: int, rounds: int = 3) -> dict[str, Any]:
    """Rounds 3.. of the whole `on_samples` on SQLite (most findings "still true" on
    open alerts, a few timers firing), then the engine's flush of the findings it kept
    in memory (done at each device-state save in the collector, timed apart)."""
    cpu_s = 0.0
    for r in range(2, 2 + rounds):
        ts = START + timedelta(minutes=5 * r)
        batches = [feed.batch(first, BATCH, ts) for first in range(0, devices, BATCH)]
        t = time.process_time()
        for accepted in batches:
            alerting.on_samples(accepted, ts)
        cpu_s += time.process_time() - t
    t = time.process_time()
    flushed = alerting.engine.flush()
    flush_s = time.process_time() - t
    return {
        "on_samples_us_per_sample": round(cpu_s * 1e6 / (devices * rounds), 1),
        "engine_flush_keys": flushed,
        "engine_flush_us_per_key": round(flush_s * 1e6 / max(1, flushed), 1),
    }


def history_probe(
    pool: list[dict[str, Any]], work: Path, devices: int = 2000, weeks: int = 27
) -> dict[str, Any]:
    """Bytes per device once the capacity history is full (one point per ISO week,
    26 weeks kept): `devices` devices fed one sample a week for `weeks` weeks, with
    tracemalloc on. The main run feeds minutes apart, so its history holds a week."""
    store = AlertStore(f"sqlite:///{work / 'history.sqlite3'}")
    store.create_tables()
    alerting = Alerting(RulesConfig(), store, sweep_interval_s=1e12)
    # As many laptops per school as in a region (250,000 in 220 schools): the
    # schools' own memory (their completed days) is shared by that many devices.
    feed = Feed(devices, pool, schools=max(1, devices * 220 // 250_000))
    # The school calendar loads the `holidays` package at the first day it is asked
    # (~11 MB, once per process, whatever the fleet): loaded before the count starts,
    # so that what is counted is the devices' and schools' memory.
    calendar = alerting.evaluation.calendar
    for week in range(weeks):
        day = (START - timedelta(days=7 * week)).date()
        for school in feed.schools:
            calendar.for_school(school).is_school_day(day)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    first = 0
    for week in range(weeks):
        ts = START - timedelta(days=7 * (weeks - 1 - week))  # the collector refuses the future
        for start in range(0, devices, BATCH):
            fold(alerting, feed.batch(start, BATCH, ts), ts)
        # The sweeps of the week (the collector's clock a day later): windows and days
        # complete, as they do in production, so they do not pile up.
        alerting.complete(ts + timedelta(days=1))
        if week == 0:
            gc.collect()
            first = tracemalloc.get_traced_memory()[0] - base
    # Every laptop is back after a week without reports (three school days or more):
    # each holds a gap (its last sample before, its return) until its return day is
    # judged, once a later day's reports are in: the first day after the holidays.
    gc.collect()
    back = tracemalloc.get_traced_memory()[0] - base
    gaps_back = _gaps(alerting)
    # The next day, every laptop reports again (same ISO week: the history's last
    # point is replaced); its return day is judged and its gap dropped: the state of
    # a fleet that reports every school day.
    after = ts + timedelta(days=1)
    for start in range(0, devices, BATCH):
        fold(alerting, feed.batch(start, BATCH, after), after)
    alerting.complete(after + timedelta(seconds=alerting.lateness_s + 3600))
    gc.collect()
    full = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return {
        "history_probe_gaps": [gaps_back, _gaps(alerting)],
        "history_probe_devices": devices,
        "history_probe_weeks": weeks,
        "bytes_per_device_first_week": round(first / devices),
        "bytes_per_device_full_history": round(full / devices),
        "bytes_per_device_back_from_silence": round((back - full) / devices),
    }


def _gaps(alerting: Alerting) -> int:
    return sum(
        len(gap_list(latest))
        for school in alerting.schools.values()
        for latest in school.gaps.values()
    )


def _rss_mb() -> float:
    gc.collect()
    return read(os.getpid()).rss_kb / 1024


def measure(devices: int, rounds: int, work: Path, pool_laptops: int = 500) -> dict[str, Any]:
    pool = sample_pool(pool_laptops, looks=4)
    feed = Feed(devices, pool)
    store = AlertStore(f"sqlite:///{work / 'alerts.sqlite3'}")
    store.create_tables()
    alerting = Alerting(RulesConfig(), store, sweep_interval_s=1e12)  # sweeps timed apart
    engine = engine_cost(pool, work, min(devices, 2000))
    history = history_probe(pool, work, min(devices, 2000))
    rss0 = _rss_mb()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.monotonic()
    _round(alerting, feed, START)  # creates every device's state
    first_round_s = time.monotonic() - t0
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    rss1 = _rss_mb()
    validate_s = state_s = 0.0
    timed = findings = 0
    for r in range(1, rounds):
        v, s, n, f = _round(alerting, feed, START + timedelta(minutes=5 * r))
        validate_s, state_s, timed, findings = validate_s + v, state_s + s, timed + n, findings + f
    rss2 = _rss_mb()
    # Everything complete (every device's last sample is in, the collector's clock past
    # the lateness): the windows and days of all schools judged, as a sweep does.
    now = START + timedelta(minutes=5 * rounds, seconds=alerting.lateness_s + 3600)
    t = time.process_time()
    swept = alerting.complete(now)
    sweep_s = time.process_time() - t
    rss3 = _rss_mb()
    save = _save_estimate(alerting, min(devices, 5000))
    return {
        "devices": alerting.device_count(),
        "rounds": rounds,
        "rss_mb_before": round(rss0, 1),
        "rss_mb_after_first_round": round(rss1, 1),
        "rss_mb_after_last_round": round(rss2, 1),
        "rss_mb_for_state": round(rss2 - rss0, 1),
        "rss_mb_after_windows_complete": round(rss3, 1),
        "traced_mb_retained_after_first_round": round(traced / 2**20, 1),
        "bytes_per_device_traced": round(traced / max(1, devices)),
        "first_round_s_with_tracemalloc": round(first_round_s, 1),
        "cpu_us_per_sample_rules_and_state": round(state_s * 1e6 / max(1, timed), 2),
        "cpu_us_per_sample_envelope_and_validation": round(validate_s * 1e6 / max(1, timed), 2),
        "samples_timed": timed,
        "findings_per_sample": round(findings / max(1, timed), 3),
        "sweep_rules_cpu_s_all_devices": round(sweep_s, 2),
        "sweep_findings": swept,
        **save,
        **engine,
        **history,
        **estimates(rss2, devices, history),
    }


def estimates(rss_mb: float, devices: int, history: dict[str, Any]) -> dict[str, float]:
    """The RSS once every history is full (the main run's histories hold a week),
    and on the first day after the holidays, when every laptop is back from a
    silence and holds a gap until its return day is judged."""
    grown = history["bytes_per_device_full_history"] - history["bytes_per_device_first_week"]
    full = rss_mb + devices * grown / 2**20
    back = full + devices * history["bytes_per_device_back_from_silence"] / 2**20
    return {
        "rss_mb_with_full_history_estimate": round(full, 1),
        "rss_mb_back_from_holidays_estimate": round(back, 1),
    }


def _save_estimate(alerting: Alerting, subset: int) -> dict[str, Any]:
    """`save_devices` on `subset` changed devices, extrapolated to every device. Each
    save also stores every school's document (and the engine's kept findings): timed
    first on its own (`limit=0`: no device), and taken off the devices' share."""
    t = time.monotonic()
    alerting.save_devices(limit=0)
    schools_s = time.monotonic() - t
    t = time.monotonic()
    saved = alerting.save_devices(limit=subset)
    per_device = max(0.0, time.monotonic() - t - schools_s) / max(1, saved)
    return {
        "save_schools_s_each_save": round(schools_s, 2),
        "save_devices_ms_per_device": round(per_device * 1000, 3),
        "save_devices_s_all_devices_estimate": round(per_device * alerting.device_count(), 1),
    }


def run(devices: int = 250_000, rounds: int = 3) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lordi-bench-state-") as tmp:
        result = measure(devices, max(2, rounds), Path(tmp))
    result["cores"] = os.cpu_count()
    result["target_rss_mb"] = TARGET_RSS_MB
    result["meets_targets"] = {
        "rss_mb_after_last_round": result["rss_mb_after_last_round"] <= TARGET_RSS_MB,
        "rss_mb_with_full_history_estimate": result["rss_mb_with_full_history_estimate"]
        <= TARGET_RSS_MB,
        "rss_mb_back_from_holidays_estimate": result["rss_mb_back_from_holidays_estimate"]
        <= TARGET_RSS_MB,
    }
    return result


def from_args(args: Any) -> dict[str, Any]:
    """`lordi bench state`: --devices (250,000), --rounds (3)."""
    return run(args.devices or 250_000, args.rounds)
