"""Arrival schedules for one set of telemetry, and a runner that feeds a schedule to
the real `Alerting` (rules, engine, SQLite or PostgreSQL store) on the collector's
clock the schedule gives.

A schedule only moves samples in the collector's time: each device's samples keep
their order (as agents send them), any interleaving across devices is allowed,
batches have any size. Kinds:

- live: each sample a little after it was taken;
- spooled: some laptops hold stretches of their samples (offline, a failing access
  point) and send them later in one go;
- outage: the collector (restarted) or the broker (the collector disconnected) is
  down for a while: what was sent meanwhile arrives at once when it is back;
- bulk: everything at one instant (a replay), devices interleaved at random.

Spools stay within the bounded lateness: a laptop is never quiet for
`lateness_s` of connected time while it still holds samples it will send.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from collector.alerting import Alerting
from collector.alerts.store import AlertStore
from collector.rules import RulesConfig
from collector.samples import Sample
from tests.calendars import ZONE_C_SCHOOLS

Item = tuple[str, str, Sample]
TICK = timedelta(minutes=5)


@dataclass(frozen=True)
class Delivery:
    at: datetime  # the collector's clock
    order: int  # ties: the order things arrive in
    item: Item


@dataclass
class Schedule:
    name: str
    deliveries: list[Delivery]
    downtimes: list[tuple[datetime, datetime]] = field(default_factory=list)  # collector down
    outages: list[tuple[datetime, datetime]] = field(default_factory=list)  # broker down
    batch_sizes: Sequence[int] = (10_000,)  # cycled: how many samples per batch

    def ordered(self) -> list[Delivery]:
        return sorted(self.deliveries, key=lambda d: (d.at, d.order))


def _per_device(items: Sequence[Item]) -> dict[tuple[str, str], list[Item]]:
    out: dict[tuple[str, str], list[Item]] = {}
    for item in items:
        out.setdefault((item[0], item[1]), []).append(item)
    return out


def live(items: Sequence[Item], seed: int = 0, max_delay_s: float = 90) -> Schedule:
    rng = random.Random(seed)
    lag = {key: rng.uniform(1, max_delay_s) for key in _per_device(items)}
    deliveries = [
        Delivery(i[2].ts + timedelta(seconds=lag[(i[0], i[1])]), n, i) for n, i in enumerate(items)
    ]
    return Schedule("live", deliveries, batch_sizes=(1_000,))


def spooled(
    items: Sequence[Item],
    holds: dict[tuple[str, str], list[tuple[int, int, float]]],
    seed: int = 0,
) -> Schedule:
    """`holds`: per device, (first, end, delay_s): its samples first..end-1 (indices
    in its own list) are sent together `delay_s` after the last of them was taken."""
    base = {id(d.item): d for d in live(items, seed).deliveries}
    deliveries = list(base.values())
    for key, device_items in _per_device(items).items():
        for first, end, delay_s in holds.get(key, []):
            held = device_items[first:end]
            if not held:
                continue
            at = held[-1][2].ts + timedelta(seconds=delay_s)
            for item in held:
                old = base[id(item)]
                deliveries[deliveries.index(old)] = Delivery(at, old.order, item)
    # A device's later live samples must not overtake what it still holds.
    return Schedule("spooled", _keep_device_order(deliveries), batch_sizes=(1_000,))


def _keep_device_order(deliveries: list[Delivery]) -> list[Delivery]:
    out: list[Delivery] = []
    latest: dict[tuple[str, str], datetime] = {}
    for d in sorted(deliveries, key=lambda d: d.item[2].ts):
        key = (d.item[0], d.item[1])
        at = max(d.at, latest.get(key, d.at))
        latest[key] = at
        out.append(Delivery(at, d.order, d.item))
    return out


def outage(base: Schedule, start: datetime, end: datetime, *, broker: bool) -> Schedule:
    """What arrives between `start` and `end` arrives at `end`, in the same order."""
    moved = [Delivery(end, d.order, d.item) if start <= d.at < end else d for d in base.deliveries]
    name = f"{base.name}+{'broker' if broker else 'collector'}-outage"
    downtimes = list(base.downtimes) + ([] if broker else [(start, end)])
    outages = list(base.outages) + ([(start, end)] if broker else [])
    return Schedule(name, moved, downtimes, outages, base.batch_sizes)


def bulk(items: Sequence[Item], at: datetime, seed: int, batch_sizes: Sequence[int]) -> Schedule:
    """Everything at `at`: each device's samples in order, devices interleaved at random
    in chunks of random length."""
    rng = random.Random(seed)
    queues = {k: list(v) for k, v in _per_device(items).items()}
    order: list[Item] = []
    while queues:
        key = rng.choice(sorted(queues))
        take = rng.randint(1, 200)
        order += queues[key][:take]
        queues[key] = queues[key][take:]
        if not queues[key]:
            del queues[key]
    deliveries = [Delivery(at, n, item) for n, item in enumerate(order)]
    return Schedule("bulk", deliveries, batch_sizes=batch_sizes)


@dataclass
class Outcome:
    alerts: list[tuple[Any, ...]]
    transitions: list[tuple[Any, ...]]
    late: int
    sent: list[tuple[str, str]]  # (kind, key) of each notification


def _merged(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def run(
    schedule: Schedule, store: AlertStore, config: RulesConfig, save_every: timedelta | None = None
) -> Outcome:
    """Feed the schedule to a collector's alerting, then let the collector's clock run
    until everything is complete; what the store holds then. `save_every`: how often
    the alerting's sweeps save its state (default: at every sweep, as the collector
    does); a stop saves it in any case."""
    save_s = None if save_every is None else save_every.total_seconds()

    def new_alerting() -> Alerting:
        return Alerting(
            config,
            store,
            sweep_interval_s=TICK.total_seconds(),
            save_interval_s=save_s,
            calendar=ZONE_C_SCHOOLS,
        )

    alerting = new_alerting()
    sent: list[tuple[str, str]] = []
    deliveries = schedule.ordered()
    downtimes = _merged(schedule.downtimes)
    outages = _merged(schedule.outages)
    sizes = list(schedule.batch_sizes)
    now = deliveries[0].at
    batch: list[Item] = []

    def broker_down(at: datetime) -> bool:
        return any(start <= at < end for start, end in outages)

    def flush() -> None:
        if batch:
            alerting.on_samples(list(batch), now)
            batch.clear()

    for n, delivery in enumerate(deliveries):
        while delivery.at > now:  # the collector's clock moves: idle ticks
            flush()
            step = min(now + TICK, delivery.at)
            for start, end in outages:
                if now < start <= step:
                    alerting.pause(start)
                if now < end <= step:
                    alerting.resume(end)
            if downtimes and now < downtimes[0][0] <= step:  # the collector stops
                down, up = downtimes.pop(0)
                alerting.tick(down)
                alerting.stop()
                sent += [(s.kind, s.alert.key) for s in alerting.sent]
                alerting = new_alerting()
                alerting.restore()  # a new process, started when the collector is back
                step = up
                if broker_down(up):  # it cannot subscribe yet
                    alerting.pause(up)
            now = step
            alerting.tick(now)
        batch.append(delivery.item)
        if len(batch) >= sizes[n % len(sizes)]:
            flush()
    flush()
    for k in range(1, 9):  # the collector's clock runs on: everything completes
        alerting.sweep(now + timedelta(hours=6 * k))
    late = sum(s.late for s in alerting.schools.values())
    sent += [(s.kind, s.alert.key) for s in alerting.sent]
    return Outcome(*_contents(store), late, sent)


def _contents(store: AlertStore) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    alerts = sorted(
        (a.key, a.rule, a.subject, a.status, a.severity, a.opened_at, a.since, str(a.resolved_at),
         a.summary, repr(sorted(a.evidence.items())))
        for a in store.list_alerts()
    )  # fmt: skip
    transitions = sorted(
        (a.key, t.at, str(t.from_status), t.to_status, t.by, repr(sorted(t.evidence.items())))
        for a in store.list_alerts()
        for t in store.transitions_of(a.id)
    )
    return alerts, transitions
