"""A region's worth of simulated laptops: many schools, several laptop generations,
packs that wore by age and by use, students who charge (or not), Wi-Fi that differs
per school and per access point.

Wear before the simulation starts is drawn per laptop from its age and its habits:

    health = 100 + new_pack_bonus
             - calendar_fade_pct_per_year x age_years x batch x pack
             - 20 x cycles / rated_cycles x batch x pack

`batch` is shared by the packs of one manufacturing lot of one model (log-normal,
and one lot per run is a bad one that wears twice as fast), `pack` is per pack. The
same rates go on during the simulation (`SimLaptop.calendar_fade_pct_per_day`,
`cycle_fade_pct`). The figures are plausible orders of magnitude (≈20 % lost at the
rated cycle count, 2-4 % a year by age alone), not measurements of this fleet.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime

from agent.runtime import Agent, OfflineLink
from lordi.sim.fleet import SCHOOL_SSID, SCHOOLS, Fleet, SimClock, VirtualLaptop
from lordi.sim.hardware import AccessPoint, SimLaptop
from lordi.sim.spool import MemorySpool

SCHOOL_DAYS_PER_YEAR = 175
BAD_BATCH_FACTOR = 2.0


@dataclass(frozen=True)
class BatteryModel:
    manufacturer: str
    model: str
    design_mwh: float
    rated_cycles: int
    calendar_fade_pct_per_year: float
    first_year: int  # the laptop generation that shipped it


CATALOG = (  # oldest generation first: early packs held ~3 h, current ones 10-12 h
    BatteryModel("SANYO", "00HW022", 23_510.0, 500, 3.0, 2019),
    BatteryModel("LGC", "L19L3PD1", 45_000.0, 800, 3.0, 2021),
    BatteryModel("SMP", "01AV431", 57_020.0, 1000, 2.5, 2023),
    BatteryModel("SMP", "5B10W51867", 62_000.0, 1000, 2.0, 2025),
)


@dataclass(frozen=True)
class Habit:
    name: str
    share: float
    home_charge_prob: float  # chance to charge at home on a given night
    plug_below_pct: float  # in class, plugs in below this charge
    plug_prob: float
    cycles_per_school_day: float


HABITS = (
    Habit("overnight", 0.6, 0.95, 20.0, 0.3, 0.6),
    Habit("sometimes", 0.3, 0.5, 25.0, 0.4, 0.7),
    Habit("tethered", 0.1, 0.1, 60.0, 0.8, 0.9),  # lives on the classroom socket
)


def school_list(count: int, rng: random.Random) -> list[tuple[str, str]]:
    """The demo's five schools, then fictitious ones with well-formed UAI codes."""
    out = list(SCHOOLS[:count])
    departments = ["009", "011", "012", "030", "031", "032", "034", "046", "048", "065", "066"]
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    i = len(out)
    while len(out) < count:
        uai = f"{departments[i % len(departments)]}{1000 + i:04d}{letters[i % len(letters)]}"
        out.append((uai, f"Lycée simulé {i + 1}"))
        i += 1
    return out


def _access_points(school: str, per_school: int, rng: random.Random) -> list[AccessPoint]:
    # About one access point per classroom of 25-30 students; some schools have a
    # worse network than others, and access points differ within a school.
    count = max(1, math.ceil(per_school / 28))
    base = rng.uniform(-67, -52)
    drop = rng.uniform(0.003, 0.03)
    code = int(school[:7]) % 65_536
    return [
        AccessPoint(
            f"02:00:{code >> 8:02x}:{code & 255:02x}:{i >> 8:02x}:{i & 255:02x}",
            SCHOOL_SSID,
            min(-45.0, base + rng.gauss(0, 4)),
            drop,
        )
        for i in range(count)
    ]


def _batches(rng: random.Random, per_model: int = 6) -> dict[tuple[str, int], float]:
    factors = {(m.model, b): rng.lognormvariate(0, 0.2) for m in CATALOG for b in range(per_model)}
    bad = rng.choice(sorted(factors))
    factors[bad] *= BAD_BATCH_FACTOR
    return factors


def _pick(rng: random.Random, habits: tuple[Habit, ...] = HABITS) -> Habit:
    draw, acc = rng.random(), 0.0
    for habit in habits:
        acc += habit.share
        if draw < acc:
            return habit
    return habits[-1]


def _laptop(  # noqa: PLR0917 - private helper of build_region
    device: str,
    ap: AccessPoint,
    clock: SimClock,
    rng: random.Random,
    today: date,
    batches: dict[tuple[str, int], float],
) -> tuple[SimLaptop, dict[str, object]]:
    model = rng.choice(CATALOG)
    age_years = max(0.05, min(today.year - model.first_year + rng.random(), 5.0))
    batch = rng.randrange(6)
    wear = batches[(model.model, batch)] * max(0.5, rng.gauss(1.0, 0.12))
    habit = _pick(rng)
    cycles = age_years * SCHOOL_DAYS_PER_YEAR * habit.cycles_per_school_day * rng.uniform(0.7, 1.3)
    cycle_fade = 20.0 / model.rated_cycles
    health = (
        100
        + rng.uniform(0, 3)
        - wear * (model.calendar_fade_pct_per_year * age_years + cycle_fade * cycles)
    )
    hw = SimLaptop(
        device=device,
        model=model.model,
        manufacturer=model.manufacturer,
        design_mwh=model.design_mwh,
        health_pct=max(20.0, health),
        ap=ap,
        clock=clock,
        rng=random.Random(rng.random()),
        cycles=cycles,
        percent=rng.uniform(40, 100),
        charges_at_home=habit.home_charge_prob >= 0.5,
        cycle_fade_pct=cycle_fade * wear,
        calendar_fade_pct_per_day=model.calendar_fade_pct_per_year * wear / 365,
        home_charge_prob=habit.home_charge_prob,
        plug_below_pct=habit.plug_below_pct,
        plug_prob=habit.plug_prob,
    )
    facts = {
        "batch": f"{model.model}-{batch}",
        "wear_factor": round(wear, 3),
        "habit": habit.name,
        "age_years": round(age_years, 2),
    }
    return hw, facts


@dataclass
class Region:
    fleet: Fleet
    schools: list[tuple[str, str]]
    facts: dict[str, dict[str, object]]  # device -> how it was drawn (batch, habit, age)


def build_region(schools: int, per_school: int, start: datetime, seed: int = 7) -> Region:
    """`schools` x `per_school` laptops, each running the real agent code on an
    offline link and a memory spool (the simulator connects the links)."""
    rng = random.Random(seed)
    fleet = Fleet(SimClock(start))
    batches = _batches(rng)
    chosen = school_list(schools, rng)
    facts: dict[str, dict[str, object]] = {}
    for school, _name in chosen:
        aps = _access_points(school, per_school, rng)
        for i in range(per_school):
            device = f"{school.lower()}-{i:05d}"
            hw, facts[device] = _laptop(
                device, aps[i % len(aps)], fleet.clock, rng, start.date(), batches
            )
            agent = Agent(
                school,
                device,
                provider=hw,
                link=OfflineLink(),
                spool=MemorySpool(),
                policy=fleet.policy,
                clock=fleet.clock,
            )
            fleet.laptops.append(VirtualLaptop(school, hw, agent))
    return Region(fleet, chosen, facts)
