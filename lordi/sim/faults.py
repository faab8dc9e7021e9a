"""Faults injected into a simulated fleet, with the ground truth a correct rule set
must find (and what it must not flag).

One fault per laptop at most, drawn from a seeded RNG: worn batteries come from
the fleet builder; here chargers break, laptops fall silent, packs lie about their
capacity, and one access point in one school fails for every laptop under it.
Reachability faults (`ReachFaults`, none by default) cut schools or one access point
off the broker while their Wi-Fi stays good (lordi.sim.reach).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from lordi.sim.calendar import PARIS, WEDNESDAY
from lordi.sim.fleet import Fleet, VirtualLaptop
from lordi.sim.reach import Cut, Network

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


@dataclass
class ReachFaults:
    """Schools whose Wi-Fi is fine but whose network keeps laptops from the broker
    (lordi.sim.reach), counted in schools, each school given at most one:
    - dns: the resolver fails 8:00-11:00 on the second school day of the run (the
      first if there is one) -> school_unreachable;
    - portal: the school's first access point is put behind a captive portal from
      13:00 to 17:00 on the first school day but a Wednesday -> ap_unreachable;
    - slow: the uplink is saturated at 8:00 every school day: each laptop takes 2-12
      minutes to connect (noise: no alert)."""

    dns_schools: int = 0
    portal_schools: int = 0
    slow_schools: int = 0

    def __bool__(self) -> bool:
        return bool(self.dns_schools or self.portal_schools or self.slow_schools)


def inject_reach(
    fleet: Fleet, days: list[list[datetime]], faults: ReachFaults, seed: int = 17
) -> tuple[Network, list[dict[str, object]]]:
    """The cuts of `faults` on the run's school days (each day's report times, UTC),
    and their ground truth (one label per school or access point)."""
    rng = random.Random(seed)
    network, truth = Network(), list[dict[str, object]]()
    schools = iter(sorted({v.school for v in fleet.laptops}))
    firsts = [ts[0] for ts in days if ts]
    if not firsts:
        return network, truth
    dns_day = firsts[min(1, len(firsts) - 1)]
    portal_day = next((f for f in firsts if f.astimezone(PARIS).weekday() != WEDNESDAY), None)
    for school in itertools.islice(schools, faults.dns_schools):
        start, end = dns_day, dns_day + timedelta(hours=3)
        network.add(Cut(school, start, end, "dns", dns_ok=False, cause="dns_outage"))
        truth.append(_span(school, "school_unreachable", "dns", start, end))
    for school in itertools.islice(schools, faults.portal_schools):
        if portal_day is None:
            break
        ap = next(v.hardware.ap for v in fleet.laptops if v.school == school)
        start = portal_day + timedelta(hours=5)  # 13:00 when the day starts at 8:00
        end = start + timedelta(hours=4)
        network.add(Cut(school, start, end, "tls", drops=True, bssid=ap.bssid,
                        cause="captive_portal"))  # fmt: skip
        devices = sorted(v.hardware.device for v in fleet.laptops if v.hardware.ap is ap)
        truth.append(_span(school, "ap_unreachable", "tls", start, end) | {
            "bssid": ap.bssid, "bssid_hash": fleet.policy.bssid_hash(ap.bssid), "devices": devices,
        })  # fmt: skip
    for school in itertools.islice(schools, faults.slow_schools):
        for first in firsts:
            for v in fleet.laptops:
                if v.school == school:
                    end = first + timedelta(minutes=rng.uniform(2, 12))
                    network.add(Cut(school, first, end, "timeout", slow=True,
                                    device=v.hardware.device, cause="slow_morning"))  # fmt: skip
        truth.append({"school": school, "label": "slow_morning", "days": len(firsts)})
    return network, truth


def _span(
    school: str, label: str, failure: str, start: datetime, end: datetime
) -> dict[str, object]:
    return {"school": school, "label": label, "failure": failure,
            "start": start.isoformat(), "end": end.isoformat()}  # fmt: skip
