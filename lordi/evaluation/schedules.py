"""Three ways the same week of telemetry reaches the collector, as MQTT messages on
the collector's clock (seconds after the replay starts).

Time is compressed `speed` times: a simulated day lasts 86,400 / speed seconds of
the collector's clock, and the collector's lateness is scaled the same way (the
runner sets `lateness_s`). Each device's messages keep its own order, as agents send
them; a spool drains in messages of at most `AGENT_BATCH` samples (the agent's
`batch_max_samples`).

- live: every report in its own message, as it is taken;
- late: what happens to agents in real schools. Laptops under the failing access
  point cannot reach the server while it fails (and when their link drops), nor
  laptops whose school network keeps them from the broker (a DNS outage, a captive
  portal: `Report.online`): they spool and send their backlog at their next report
  that gets through (after the repair, or from home in the evening); the broker is
  down Thursday 9:00-15:00 (every agent spools, then drains); the collector is down
  from Wednesday 13:00 to Thursday 8:30 (the broker queues for it; it restarts);
- bulk: the whole week after the fact, each laptop's spool drained at once, laptops
  interleaved at random (a replay, or a collector back after a week).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agent.sample import build_envelope, encode
from lordi.evaluation.world import Report, World, at

AGENT_BATCH = 200  # agent.runtime.Agent(batch_max_samples=200)


@dataclass(frozen=True)
class Message:
    at_s: float  # the collector's clock, seconds after the replay starts
    topic: str
    payload: bytes
    samples: int


@dataclass
class Plan:
    name: str
    messages: list[Message]
    collector_down: list[tuple[float, float]] = field(default_factory=list)
    broker_down: list[tuple[float, float]] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return sum(m.samples for m in self.messages)


def _topic(report: Report) -> str:
    return f"lordi/v1/{report.school}/{report.device}/telemetry"


def _messages(reports: list[Report], at_s: float) -> list[Message]:
    """One laptop's backlog as the agent sends it: oldest first, in batches."""
    out = []
    for start in range(0, len(reports), AGENT_BATCH):
        chunk = reports[start : start + AGENT_BATCH]
        payload = encode(
            build_envelope(chunk[0].school, chunk[0].device, [r.sample for r in chunk])
        )
        out.append(Message(at_s, _topic(chunk[0]), payload, len(chunk)))
    return out


class Clock:
    """Sample time -> the collector's clock in the replay."""

    def __init__(self, world: World, speed: float) -> None:
        self.origin = at(world.week[0], 0)
        self.speed = speed

    def __call__(self, ts: datetime) -> float:
        return (ts - self.origin).total_seconds() / self.speed


def live(world: World, speed: float) -> Plan:
    clock = Clock(world, speed)
    messages = [m for r in world.reports for m in _messages([r], clock(r.ts))]
    return Plan("live", messages)


def late(world: World, speed: float) -> Plan:
    clock = Clock(world, speed)
    thursday = world.week[3]
    broker = (at(thursday, 9), at(thursday, 15))
    collector = (clock(at(world.week[2], 13)), clock(at(thursday, 8.5)))
    held: dict[str, list[Report]] = {}
    messages: list[Message] = []
    for r in world.reports:
        backlog = held.setdefault(r.device, [])
        backlog.append(r)
        if not r.online or broker[0] <= r.ts < broker[1]:
            continue  # the agent keeps it in its spool
        messages += _messages(backlog, clock(r.ts))
        held[r.device] = []
    for backlog in held.values():  # what was still spooled at the end of the week
        if backlog:
            messages += _messages(backlog, clock(backlog[-1].ts))
    return Plan(
        "late",
        sorted(messages, key=lambda m: m.at_s),  # stable: each laptop keeps its order
        collector_down=[collector],
        broker_down=[(clock(broker[0]), clock(broker[1]))],
    )


def bulk(world: World, seed: int) -> Plan:
    rng = random.Random(seed)
    queues: dict[str, list[Message]] = {}
    per_device: dict[str, list[Report]] = {}
    for r in world.reports:
        per_device.setdefault(r.device, []).append(r)
    for device, reports in per_device.items():
        queues[device] = _messages(reports, 0.0)
    order: list[Message] = []
    while queues:
        device = rng.choice(sorted(queues))
        order.append(queues[device].pop(0))
        if not queues[device]:
            del queues[device]
    return Plan("bulk", order)


def plans(world: World, speed: float, seed: int, names: Iterable[str]) -> list[Plan]:
    build = {"live": lambda: live(world, speed), "late": lambda: late(world, speed),
             "bulk": lambda: bulk(world, seed)}  # fmt: skip
    unknown = sorted(set(names) - set(build))
    if unknown:
        raise ValueError(f"schedules: unknown {', '.join(unknown)}; known: live, late, bulk")
    return [build[name]() for name in names]


def lateness_in_replay(hours: float, speed: float) -> float:
    """The collector's `lateness_s` for `hours` of sample time."""
    return timedelta(hours=hours).total_seconds() / speed
