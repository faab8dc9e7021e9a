"""The week's reachability causes: good radio, no way to the broker.

Each laptop's MQTT link is a `lordi.sim.reach.SimLink` that follows these cuts and
tells the laptop's real agent (`agent.runtime.Agent`, its `ReachWatch`) what the
real link would: names resolved or not, failed attempts and their cause, PUBACKs.
The agent looks at its Wi-Fi every `LOOK_EVERY` between reports, as the service
does (every 30 s there; two minutes here keep the week quick to build), so its
`connectivity` block counts the time associated with and without the broker.

expected to alert
- dns_outage      the resolver of DNS_SCHOOL fails Thursday 8:00-11:00: every
                  laptop associated, names unresolved (failure dns, dns_ok false,
                  gateway_ok true); the morning arrives when it is repaired -> ONE
                  school_unreachable, no access-point alert
- captive_portal  one access point of PORTAL_SCHOOL is put on a guest VLAN behind a
                  captive portal Tuesday 13:00-17:00 (failure tls; its connections
                  drop at 13:00), the school's other access points fine; its laptops
                  send that afternoon from home in the evening -> ONE ap_unreachable
noise, expected NOT to alert
- slow_morning    SLOW_SCHOOL's uplink is saturated on Monday at 8:00: its laptops
                  take 2-12 minutes to connect (timeouts, then connected)
- dns_blip        BLIP_SCHOOL's router restarts Wednesday 10:07 (connections drop)
                  and its resolver answers again at 10:12
- lone_cut_off    one laptop of LONE_SCHOOL cannot reach the broker from any school
                  network all week (its own VPN/proxy settings: failure connect); it
                  sends from home every evening
and the failing access point (failed_ap) cuts its laptops off too while it fails
(timeouts, gateway silent): its Wi-Fi alert speaks for it, no ap_unreachable.

A captive-portal laptop that waited for the next morning to send its afternoon
would send it 15-19 h later, past the collector's 12 h lateness (counted late,
left out): here every laptop of that access point is used at home that evening.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from collector.rules.base import ap_key, school_key
from lordi.evaluation.truth import Cause, at
from lordi.sim.reach import Cut, Network

LOOK_EVERY = timedelta(minutes=2)
MAX_LOOK_GAP_S = 4 * LOOK_EVERY.total_seconds()  # agent.service.max_look_gap_s: four looks
DNS_SCHOOL, PORTAL_SCHOOL, SLOW_SCHOOL, BLIP_SCHOOL = "0340001A", "0310003C", "0300004D", "0340002B"
LONE_SCHOOL = "0340001A"
SCHOOL_MIN_APS = 3  # the school rule counts access points: at least three (rules.config)


@dataclass(frozen=True)
class Laptop:
    school: str
    device: str
    bssid: str


@dataclass
class ReachPlan:
    network: Network
    causes: list[Cause] = field(default_factory=list)
    evening: set[tuple[str, date]] = field(default_factory=set)  # (device, day) at home


def plan(
    week: list[date],
    laptops: Sequence[Laptop],
    *,
    present: Callable[[str, date], bool],
    evening: set[str],
    taken: set[str],
    failed_ap: tuple[str, str],
    bssid_hash: Callable[[str], str],
    rng: random.Random,
) -> ReachPlan:
    """The cuts and their causes. `present(device, day)`: at school that day;
    `evening`: laptops used at home every evening; `taken`: laptops with a cause of
    their own (not drawn for another); `failed_ap`: (school, bssid) failing Tuesday."""
    monday, tuesday, wednesday, thursday = week[:4]
    out = ReachPlan(Network())
    school, bssid = failed_ap
    out.network.add(Cut(school, at(tuesday, 9), at(tuesday, 12), "timeout", gateway_ok=False,
                        drops=True, bssid=bssid, cause="failed_ap"))  # fmt: skip
    out.network.add(Cut(DNS_SCHOOL, at(thursday, 8), at(thursday, 11), "dns", dns_ok=False,
                        cause="dns_outage"))  # fmt: skip
    key = school_key(DNS_SCHOOL, "school_unreachable")
    out.causes.append(Cause("dns_outage", DNS_SCHOOL, None, ((key, "school_unreachable"),),
                            (at(thursday, 8), at(thursday, 8.5))))  # fmt: skip
    portal = _portal_ap(laptops, present, tuesday)
    out.network.add(Cut(PORTAL_SCHOOL, at(tuesday, 13), at(tuesday, 17), "tls", drops=True,
                        bssid=portal, cause="captive_portal"))  # fmt: skip
    out.evening |= {(lt.device, tuesday) for lt in laptops if lt.bssid == portal}
    key = ap_key(PORTAL_SCHOOL, bssid_hash(portal), "ap_unreachable")
    out.causes.append(Cause("captive_portal", PORTAL_SCHOOL, None, ((key, "ap_unreachable"),),
                            (at(tuesday, 13), at(tuesday, 13.5))))  # fmt: skip
    for lt in laptops:
        if lt.school == SLOW_SCHOOL and present(lt.device, monday):
            delay = timedelta(minutes=rng.uniform(2, 12))
            out.network.add(Cut(SLOW_SCHOOL, at(monday, 8), at(monday, 8) + delay, "timeout",
                                slow=True, device=lt.device, cause="slow_morning"))  # fmt: skip
    out.causes.append(Cause("slow_morning", SLOW_SCHOOL))
    out.network.add(Cut(BLIP_SCHOOL, at(wednesday, 10 + 7 / 60), at(wednesday, 10 + 12 / 60),
                        "dns", dns_ok=False, drops=True, cause="dns_blip"))  # fmt: skip
    out.causes.append(Cause("dns_blip", BLIP_SCHOOL))
    lone = next(
        lt.device
        for lt in laptops
        if lt.school == LONE_SCHOOL and lt.device in evening and lt.device not in taken
        and all(present(lt.device, day) for day in week)
    )  # fmt: skip
    out.network.add(Cut(LONE_SCHOOL, at(monday, 0), at(week[-1], 24), "connect", device=lone,
                        cause="lone_cut_off"))  # fmt: skip
    out.causes.append(Cause("lone_cut_off", LONE_SCHOOL, lone))
    return out


def _portal_ap(laptops: Sequence[Laptop], present: Callable[[str, date], bool], day: date) -> str:
    """The access point of PORTAL_SCHOOL with the most laptops at school that day (an
    access point needs five cut off to tell: rules.config network.ap_min_devices)."""
    count: dict[str, int] = {}
    for lt in laptops:
        if lt.school == PORTAL_SCHOOL:
            count[lt.bssid] = count.get(lt.bssid, 0) + present(lt.device, day)
    return max(sorted(count), key=lambda b: count[b])
