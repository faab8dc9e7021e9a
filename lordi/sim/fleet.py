"""A simulated fleet: schools, laptops with their faults, and one real `Agent` per laptop.

Everything is drawn from a seeded RNG, so a scenario and its ground truth are
reproducible. The simulation clock is shared: the driver moves it, each agent reads
it, each laptop's hardware advances to it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agent.config import MqttConfig
from agent.mqtt import Publisher
from agent.privacy import PrivacyPolicy
from agent.runtime import Agent, OfflineLink
from agent.spool import Spool
from lordi.sim.hardware import AccessPoint, SimLaptop
from lordi.sim.reach import SimLink

SCHOOL_SSID = "LORDI-EDU"
# Fictitious schools with well-formed UAI codes (7 digits + letter).
SCHOOLS = [
    ("0340001A", "Lycée Jean Moulin"),
    ("0340002B", "Lycée Marie Curie"),
    ("0310003C", "Lycée Pierre de Fermat"),
    ("0300004D", "Lycée Alphonse Daudet"),
    ("0660005E", "Lycée François Arago"),
]
MODELS = [  # (manufacturer, battery model, design mWh)
    ("LGC", "L19L3PD1", 45_000.0),
    ("SMP", "01AV431", 57_020.0),
    ("SANYO", "00HW022", 23_510.0),
]
DEMO_POLICY = PrivacyPolicy(frozenset({SCHOOL_SSID}), b"demo-bssid-key")
WORN_SHARE = 0.08  # packs already below 60 % health at the start


class SimClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@dataclass
class VirtualLaptop:
    school: str
    hardware: SimLaptop
    agent: Agent
    link: Publisher | None = None
    silent_from: datetime | None = None  # injected fault: no report from then on
    net: SimLink | None = None  # the link under the school network's cuts (reach faults)


@dataclass
class Fleet:
    clock: SimClock
    laptops: list[VirtualLaptop] = field(default_factory=list)
    policy: PrivacyPolicy = field(default_factory=lambda: DEMO_POLICY)

    def ground_truth_worn(self, threshold_pct: float = 60.0) -> set[str]:
        return {v.hardware.device for v in self.laptops if v.hardware.health_pct < threshold_pct}


def _laptop(
    school: str, index: int, ap: AccessPoint, clock: SimClock, rng: random.Random
) -> SimLaptop:
    maker, model, design = MODELS[rng.randrange(len(MODELS))]
    worn = rng.random() < WORN_SHARE
    health = rng.uniform(40, 58) if worn else rng.uniform(62, 101)
    while 78.5 <= health <= 81.5:  # keep clear of the watch threshold: ground truth
        health = rng.uniform(62, 101)  # must not depend on a week of fade
    return SimLaptop(
        device=f"{school.lower()}-{index:04d}",
        model=model,
        manufacturer=maker,
        design_mwh=design,
        health_pct=health,
        ap=ap,
        clock=clock,
        rng=random.Random(rng.random()),
        cycles=rng.uniform(20, 600),
        percent=rng.uniform(40, 100),
        charges_at_home=rng.random() < 0.8,
    )


def build_fleet(
    per_school: int, start: datetime, seed: int = 7, schools: list[tuple[str, str]] = SCHOOLS
) -> Fleet:
    rng = random.Random(seed)
    fleet = Fleet(SimClock(start))
    for school, _name in schools:
        aps = [
            AccessPoint(
                f"02:00:{int(school[:7]) % 256:02x}:00:00:{i:02x}",
                SCHOOL_SSID,
                rng.uniform(-68, -50),
            )
            for i in range(4)
        ]
        for i in range(per_school):
            hw = _laptop(school, i, aps[i % len(aps)], fleet.clock, rng)
            agent = Agent(
                school,
                hw.device,
                provider=hw,
                link=OfflineLink(),
                spool=Spool(None),
                policy=fleet.policy,
                clock=fleet.clock,
            )
            fleet.laptops.append(VirtualLaptop(school, hw, agent))
    return fleet


def connect_fleet(fleet: Fleet, host: str, port: int) -> None:
    for v in fleet.laptops:
        v.link = Publisher(MqttConfig(host=host, port=port), v.school, v.hardware.device)
        v.agent.link = v.link
        v.link.start()


def disconnect_fleet(fleet: Fleet) -> None:
    for v in fleet.laptops:
        if v.link is not None:
            v.link.stop()


def last_school_week(now: datetime) -> datetime:
    """Monday 00:00 UTC of the last full week before `now`."""
    monday = (now - timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    return monday - timedelta(days=monday.weekday())


def school_days(
    start: datetime,
    days: int,
    first_h: int = 8,
    last_h: int = 17,
    step: timedelta = timedelta(minutes=5),
) -> Iterator[datetime]:
    """Report times in school hours, Monday to Friday, from `start`'s date."""
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    for _ in range(days):
        if day.weekday() < 5:
            t = day + timedelta(hours=first_h)
            while t < day + timedelta(hours=last_h):
                yield t
                t += step
        day += timedelta(days=1)
