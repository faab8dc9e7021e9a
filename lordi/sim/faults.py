"""Faults injected into a simulated fleet, with the ground truth a correct rule set
must find (and what it must not flag).

One fault per laptop at most, drawn from a seeded RNG: worn batteries come from
the fleet builder; here chargers break, laptops fall silent, packs lie about their
capacity, and one access point in one school fails for every laptop under it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from lordi.sim.fleet import Fleet, VirtualLaptop

REPLACE_BELOW = 60.0
WATCH_BELOW = 80.0


@dataclass
class GroundTruth:
    device_alerts: set[tuple[str, str]] = field(default_factory=set)  # (device, rule)
    access_points: set[tuple[str, str]] = field(default_factory=set)  # (school, bssid)
    untrusted: set[str] = field(default_factory=set)  # every reading lies (full > design)
    collapse: set[str] = field(default_factory=set)  # one absurd reading, else truthful
    silent: set[str] = field(default_factory=set)


@dataclass
class Faults:
    charger_share: float = 0.03
    silent_share: float = 0.02
    lie_share: float = 0.04
    failing_ap_school_index: int = 1  # which school loses an access point (the first)
    failing_aps: int = 1  # access points that fail, one per school from that index


def inject(fleet: Fleet, start: datetime, faults: Faults, seed: int = 11) -> None:
    """Mark laptops (never a worn one: one fault per laptop) and break one access point."""
    rng = random.Random(seed)
    for v in fleet.laptops:
        hw = v.hardware
        if hw.health_pct < REPLACE_BELOW:
            continue
        draw = rng.random()
        if draw < faults.charger_share:
            hw.charger_broken = True
        elif draw < faults.charger_share + faults.silent_share:
            v.silent_from = start + timedelta(hours=12)  # reports Monday morning only
        elif draw < faults.charger_share + faults.silent_share + faults.lie_share:
            hw.lie = rng.choice(["full_gt_design", "collapse"])
            hw.lie_at = start + timedelta(days=2, hours=10)
    schools = sorted({v.school for v in fleet.laptops})
    for k in range(min(faults.failing_aps, len(schools))):
        target = schools[(faults.failing_ap_school_index + k) % len(schools)]
        ap = next(v.hardware.ap for v in fleet.laptops if v.school == target)
        ap.base_rssi_dbm, ap.drop_prob = -84.0, 0.35


def ground_truth(
    fleet: Fleet, failing: set[tuple[str, str]] | None = None, watch_cycles: float | None = None
) -> GroundTruth:
    """What a correct rule set flags at the end of the run (call it after the run:
    battery health fades a little during the week). `watch_cycles`: also "watch" a
    healthy pack past that cycle count (the rule's default rating is 1000)."""
    truth = GroundTruth()
    for v in fleet.laptops:
        hw = v.hardware
        if hw.ap.drop_prob >= 0.3:
            truth.access_points.add((v.school, hw.ap.bssid))
        if v.silent_from is not None:
            truth.silent.add(hw.device)
            truth.device_alerts.add((hw.device, "device_silent"))
        if hw.lie == "full_gt_design":
            truth.untrusted.add(hw.device)
            continue  # nothing it says about its battery can be believed
        if hw.lie == "collapse":
            truth.collapse.add(hw.device)  # judged on its truthful readings
        if hw.charger_broken:
            truth.device_alerts.add((hw.device, "charging_fault"))
        if hw.health_pct < REPLACE_BELOW:
            truth.device_alerts.add((hw.device, "battery_replace"))
        elif hw.health_pct < WATCH_BELOW or (watch_cycles and hw.cycles >= watch_cycles):
            truth.device_alerts.add((hw.device, "battery_watch"))
    return truth


def reporting(v: VirtualLaptop, t: datetime) -> bool:
    return v.silent_from is None or t < v.silent_from
