"""A school week as it happened: laptops, what is physically wrong with them, and
every report their agents took — with the ground truth labelled by cause.

The laptops are `lordi.sim` hardware (charge, wear, cycles, Wi-Fi per access point,
noise) read by the real agent code (`agent.runtime.Agent`: privacy filter, Wi-Fi
watch, wire samples). The causes are physical, not the rules' thresholds:

expected to alert
- worn_pack       the pack holds less than 60 % of its design capacity -> battery_replace
- aging_pack      it holds 60-80 % (or passed its rated 1000 cycles)   -> battery_watch
- dead_charger    the charger delivers nothing: plugged, the pack drains -> charging_fault
- failed_ap       an access point fails for three hours on Tuesday      -> ONE wifi_ap_fault,
                  and no Wi-Fi alert for the laptops under it
- bad_wifi_card   one laptop's card/antenna reads ~-82 dBm where its classmates
                  read ~-60                                             -> wifi_weak
- left_at_home    a laptop stays at home from Monday noon               -> device_silent
- school_dark     a whole school sends nothing on Wednesday (its network and its
                  laptops' access to the server down all day)           -> ONE school_silent,
                  no device_silent for its laptops
noise and borderline cases, expected NOT to alert
- borderline packs just on the good side of a threshold (61.5-62 % is a watch, not a
  replacement; 81.5-82 % is fine), others just on the bad side (58-58.5 % must be
  replaced, 78-78.5 % watched); the gauge reads ±0.5 % around the truth
- lying_gauge     the gauge reports a full charge of 130 % of design, every time
- gauge_glitch    one absurd reading (30 %) on Wednesday, then the truth again
- weak_spot       twenty minutes in a corner with -80 dBm
- absent_day      a student away for one day (not three)
- Wi-Fi noise everywhere (±3 dB, short drops), evening reports from home networks

and, through each laptop's MQTT link (lordi.evaluation.reach), school networks with
good radio that keep laptops from the broker: a school's DNS outage (-> ONE
school_unreachable), a captive portal on one access point (-> ONE ap_unreachable);
noise: a saturated uplink at 8:00, a 5-minute DNS failure, one laptop cut off alone.

`World.reports` holds every sample in sample-time order with whether the laptop
could reach the server when it took it (`online`: not while its school network or
its access point keeps it from the broker, nor while its Wi-Fi is down): the late
schedule uses it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from agent.model import Reading, WifiReading
from agent.privacy import PrivacyPolicy
from agent.runtime import Agent, OfflineLink
from collector.rules.base import ap_key, battery_key, device_key, school_key
from lordi.evaluation import reach
from lordi.evaluation.truth import PARIS, Cause, at
from lordi.sim.calendar import sim_days
from lordi.sim.hardware import AccessPoint, SimLaptop
from lordi.sim.reach import SimLink
from lordi.sim.spool import MemorySpool

__all__ = ["PARIS", "SCHOOLS", "Cause", "Report", "World", "at", "build", "school_week"]
# Schools of the sample registry (provisioning/schools.toml): the alerts are routed
# to their contacts.
SCHOOLS = ("0340001A", "0340002B", "0310003C", "0300004D")
SCHOOL_SSID = "LORDI-EDU"
POLICY = PrivacyPolicy(frozenset({SCHOOL_SSID}), b"eval-bssid-key")
REPORT_EVERY = timedelta(minutes=10)
FAILED_AP_SCHOOL, DARK_SCHOOL, CARD_SCHOOL = "0340002B", "0300004D", "0310003C"


@dataclass(frozen=True)
class Report:
    ts: datetime
    school: str
    device: str
    sample: dict[str, Any]  # the wire sample the agent built
    online: bool  # could the laptop reach the server then (late schedule)


@dataclass
class World:
    week: list[date]  # Monday to Friday
    causes: list[Cause]
    reports: list[Report]
    aps: dict[str, list[str]] = field(default_factory=dict)  # school -> bssid hashes

    def expected(self) -> set[tuple[str, str]]:
        return {pair for cause in self.causes for pair in cause.expect}


def school_week(now: datetime) -> list[date]:
    """The latest Monday-to-Friday week before `now` whose five days are school days."""
    monday = (now - timedelta(days=7)).astimezone(PARIS).date()
    monday -= timedelta(days=monday.weekday())
    days = sim_days()
    while not all(days.is_school_day(monday + timedelta(days=i)) for i in range(5)):
        monday -= timedelta(days=7)
    return [monday + timedelta(days=i) for i in range(5)]


class EvalLaptop(SimLaptop):
    """A sim laptop with this week's physical faults and whereabouts."""

    def __init__(self, world: Timeline, **kw: Any) -> None:
        super().__init__(**kw)
        self.world = world
        self.card_loss_db = 0.0
        self.weak_spot: tuple[datetime, datetime] | None = None
        self.gauge_rng = random.Random(self.rng.random())

    def read(self) -> Reading:
        reading = super().read()
        for battery in reading.batteries:  # the gauge's own error, ±0.5 % of design
            if battery.full_capacity_mwh and self.lie is None:
                noisy = battery.full_capacity_mwh * (1 + self.gauge_rng.uniform(-0.005, 0.005))
                battery.full_capacity_mwh = round(noisy, 0)
                battery.health_pct = round(100 * noisy / self.design_mwh, 1)
        return reading

    def _wifi(self) -> WifiReading:
        now = self.clock()
        if not self.world.at_school(now):
            return WifiReading(
                interface="Wi-Fi", connected=True, ssid="Livebox-4F2A", bssid="a4:3e:51:00:00:01",
                rssi_dbm=-55.0, channel=6, band_ghz=2.4,
            )  # fmt: skip
        base, drop = self.ap.base_rssi_dbm, self.ap.drop_prob
        if self.world.ap_failing(self.ap.bssid, now):
            base, drop = -86.0, 0.3
        if self.weak_spot is not None and self.weak_spot[0] <= now < self.weak_spot[1]:
            base = -80.0
        if self.rng.random() < drop:
            return WifiReading(interface="Wi-Fi", connected=False)
        rssi = round(min(-30.0, base - self.card_loss_db + self.rng.gauss(0, 3)), 0)
        return WifiReading(
            interface="Wi-Fi", connected=True, ssid=self.ap.ssid, bssid=self.ap.bssid,
            rssi_dbm=rssi, signal_pct=float(max(0, min(100, 2 * (rssi + 100)))), channel=36,
            band_ghz=5.0, rx_rate_mbps=433.3, tx_rate_mbps=433.3, radio="802.11ac",
        )  # fmt: skip


@dataclass
class Timeline:
    week: list[date]
    failed_ap: str = ""  # bssid failing Tuesday 9:00-12:00

    def at_school(self, ts: datetime) -> bool:
        local = ts.astimezone(PARIS)
        return 8 <= local.hour < 17

    def ap_failing(self, bssid: str, ts: datetime) -> bool:
        return bssid == self.failed_ap and at(self.week[1], 9) <= ts < at(self.week[1], 12)


def build(now: datetime, per_school: int = 30, seed: int = 13) -> World:
    """The week's fleet, its causes and every report (same seed, same world)."""
    rng = random.Random(seed)
    week = school_week(now)
    timeline = Timeline(week)
    causes: list[Cause] = []
    laptops: list[tuple[str, EvalLaptop, Agent]] = []
    aps: dict[str, list[AccessPoint]] = {}
    clock = _Clock(at(week[0], 0))
    for s, school in enumerate(SCHOOLS):
        count = max(2, math.ceil(per_school / 10))
        if school == reach.DNS_SCHOOL:  # its alert is the school's: enough access points
            count = max(reach.SCHOOL_MIN_APS, count)
        aps[school] = [
            AccessPoint(f"02:00:5e:{s:02x}:00:{i:02x}", SCHOOL_SSID, rng.uniform(-64, -52), 0.01)
            for i in range(count)
        ]
        for n in range(per_school):
            device = f"{school.lower()}-{n:03d}"
            hw = EvalLaptop(
                timeline, device=device, model="01AV431", manufacturer="SMP",
                design_mwh=57_020.0, health_pct=rng.uniform(85, 100),
                ap=aps[school][n % len(aps[school])], clock=clock,
                rng=random.Random(rng.random()), cycles=rng.uniform(100, 700),
                percent=rng.uniform(50, 100), charges_at_home=rng.random() < 0.8,
            )  # fmt: skip
            agent = Agent(
                school, device, provider=hw, link=OfflineLink(), spool=MemorySpool(),
                policy=POLICY, clock=clock, max_look_gap_s=reach.MAX_LOOK_GAP_S,
            )  # fmt: skip
            laptops.append((school, hw, agent))
    timeline.failed_ap = aps[FAILED_AP_SCHOOL][0].bssid
    causes += _assign_packs(laptops, rng)
    whereabouts = _assign_people(laptops, week, rng, causes)
    causes.append(
        Cause("failed_ap", FAILED_AP_SCHOOL, None, (
            (ap_key(FAILED_AP_SCHOOL, _hash(timeline.failed_ap), "wifi_ap_fault"), "wifi_ap_fault"),
        ))
    )  # fmt: skip
    dark = school_key(DARK_SCHOOL, "school_silent")
    causes.append(Cause("school_dark", DARK_SCHOOL, None, ((dark, "school_silent"),)))
    links = _reach(laptops, week, whereabouts, timeline, causes, rng)
    reports = _run_week(laptops, links, week, whereabouts, timeline, clock)
    hashes = {school: [_hash(ap.bssid) for ap in ap_list] for school, ap_list in aps.items()}
    return World(week, [_with_since(c, week, reports) for c in causes], reports, hashes)


def _with_since(cause: Cause, week: list[date], reports: list[Report]) -> Cause:
    """When each expected condition started, from the causes and what was reported."""
    monday, tuesday = at(week[0], 8), week[1]
    if cause.name in (
        "worn_pack", "aging_pack", "borderline_worn", "borderline_watch",
        "borderline_watch_low", "rated_cycles",
    ):  # fmt: skip
        first = min(r.ts for r in reports if r.device == cause.device)
        return replace(cause, since=(first, first))  # worn from the first reading on
    if cause.name == "left_at_home":
        last = max(r.ts for r in reports if r.device == cause.device)
        return replace(cause, since=(last, last))  # its last report
    if cause.name == "bad_wifi_card":  # the first windows where most readings are weak
        return replace(cause, since=(monday, monday + timedelta(hours=1)))
    if cause.name == "failed_ap":  # the failure starts at 9:00 on Tuesday
        return replace(cause, since=(at(tuesday, 9), at(tuesday, 9.5)))
    if cause.name == "school_dark":  # the school's last report before the dark day
        last = max(r.ts for r in reports if r.school == cause.school and r.ts < at(week[2], 0))
        return replace(cause, since=(last, last))
    return cause


@dataclass
class _Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def _hash(bssid: str) -> str:
    hashed = POLICY.bssid_hash(bssid)
    assert hashed is not None
    return hashed


def _assign_packs(laptops: list[tuple[str, EvalLaptop, Agent]], rng: random.Random) -> list[Cause]:
    """Pack health, cycles, chargers, gauges: each laptop gets at most one such cause."""
    kinds = (
        ["worn"] * 3 + ["aging"] * 6 + ["border_replace", "border_watch", "border_watch_low",
         "border_ok", "cycles", "charger", "lying", "glitch"]
    )  # fmt: skip
    causes: list[Cause] = []
    order = list(range(len(laptops)))
    rng.shuffle(order)
    for slot, index in enumerate(order):
        school, hw, _agent = laptops[index]
        kind = kinds[slot % (len(kinds) * 2)] if slot % (len(kinds) * 2) < len(kinds) else "ok"
        bat = battery_key(school, hw.device, "BAT0", "battery_replace")
        watch = battery_key(school, hw.device, "BAT0", "battery_watch")
        if kind == "worn":
            hw.health_pct = rng.uniform(40, 56)
            causes.append(Cause("worn_pack", school, hw.device, ((bat, "battery_replace"),)))
        elif kind in ("aging", "border_watch", "border_watch_low"):
            hw.health_pct = {"aging": rng.uniform(64, 76), "border_watch": rng.uniform(61.5, 62),
                             "border_watch_low": rng.uniform(78, 78.5)}[kind]  # fmt: skip
            name = {"aging": "aging_pack", "border_watch": "borderline_watch",
                    "border_watch_low": "borderline_watch_low"}[kind]  # fmt: skip
            causes.append(Cause(name, school, hw.device, ((watch, "battery_watch"),)))
        elif kind == "border_replace":
            hw.health_pct = rng.uniform(58, 58.5)
            causes.append(Cause("borderline_worn", school, hw.device, ((bat, "battery_replace"),)))
        elif kind == "border_ok":
            hw.health_pct = rng.uniform(81.5, 82)
            causes.append(Cause("borderline_ok", school, hw.device))
        elif kind == "cycles":
            hw.cycles = rng.uniform(1050, 1200)
            causes.append(Cause("rated_cycles", school, hw.device, ((watch, "battery_watch"),)))
        elif kind == "charger":
            hw.charger_broken, hw.plug_below_pct, hw.plug_prob = True, 60.0, 0.9
            hw.percent = 70.0
            key = battery_key(school, hw.device, "BAT0", "charging_fault")
            causes.append(Cause("dead_charger", school, hw.device, ((key, "charging_fault"),)))
        elif kind == "lying":
            hw.lie = "full_gt_design"
            causes.append(Cause("lying_gauge", school, hw.device))
        elif kind == "glitch":
            hw.lie = "collapse"
            causes.append(Cause("gauge_glitch", school, hw.device))
        else:
            continue
    return causes


@dataclass
class _Whereabouts:
    home_from: dict[str, datetime] = field(default_factory=dict)  # left at home
    absent: dict[str, date] = field(default_factory=dict)  # away one day
    evening: set[str] = field(default_factory=set)  # reports from home in the evening
    evening_on: set[tuple[str, date]] = field(default_factory=set)  # ...on that day only


def _assign_people(
    laptops: list[tuple[str, EvalLaptop, Agent]],
    week: list[date],
    rng: random.Random,
    causes: list[Cause],
) -> _Whereabouts:
    where = _Whereabouts()
    candidates = [hw for school, hw, _ in laptops if school not in (DARK_SCHOOL,)]
    rng.shuffle(candidates)
    for hw in candidates[:2]:
        school = hw.device[:8].upper()
        where.home_from[hw.device] = at(week[0], 12)
        silent = device_key(school, hw.device, "device_silent")
        causes.append(Cause("left_at_home", school, hw.device, ((silent, "device_silent"),)))
    card = next(
        hw
        for school, hw, _ in laptops
        if school == CARD_SCHOOL and hw.device not in where.home_from
    )
    # A damaged antenna: its readings about -82 dBm where its classmates read -60.
    card.card_loss_db = card.ap.base_rssi_dbm + 82.0
    weak = device_key(CARD_SCHOOL, card.device, "wifi_weak")
    causes.append(Cause("bad_wifi_card", CARD_SCHOOL, card.device, ((weak, "wifi_weak"),)))
    for school, hw, _ in laptops:
        if hw.device in where.home_from or hw is card:
            continue
        draw = rng.random()
        if draw < 0.05:
            where.absent[hw.device] = week[rng.randrange(5)]
            causes.append(Cause("absent_day", school, hw.device))
        elif draw < 0.08:
            start = at(week[rng.randrange(5)], rng.choice([9, 10.5, 14]))
            hw.weak_spot = (start, start + timedelta(minutes=20))
            causes.append(Cause("weak_spot", school, hw.device))
        if rng.random() < 0.5:
            where.evening.add(hw.device)
    return where


def _reach(  # noqa: PLR0917 - the fleet, the week, who is where, the causes
    laptops: list[tuple[str, EvalLaptop, Agent]],
    week: list[date],
    where: _Whereabouts,
    timeline: Timeline,
    causes: list[Cause],
    rng: random.Random,
) -> dict[str, SimLink]:
    """The reachability causes (lordi.evaluation.reach) and each laptop's link."""

    def present(device: str, day: date) -> bool:
        return _reporting(device[:8].upper(), device, at(day, 8), day, week, where, timeline)

    planned = reach.plan(
        week,
        [reach.Laptop(school, hw.device, hw.ap.bssid) for school, hw, _ in laptops],
        present=present,
        evening=where.evening,
        taken={c.device for c in causes if c.device},
        failed_ap=(FAILED_AP_SCHOOL, timeline.failed_ap),
        bssid_hash=_hash,
        rng=rng,
    )
    causes += planned.causes
    where.evening_on |= planned.evening
    links: dict[str, SimLink] = {}
    for school, hw, agent in laptops:
        link = SimLink(planned.network, school, hw.device, random.Random(rng.random()),
                       max_gap_s=reach.MAX_LOOK_GAP_S)  # fmt: skip
        agent.link = links[hw.device] = link
    return links


def _look_times(week: list[date]) -> list[tuple[datetime, bool]]:
    """(time, is it a report?): a look every LOOK_EVERY at school, a report every
    REPORT_EVERY; three reports in the evening, from home."""
    out: list[tuple[datetime, bool]] = []
    for day in week:
        start = t = at(day, 8)
        while t < at(day, 17):
            out.append((t, (t - start) % REPORT_EVERY == timedelta(0)))
            t += reach.LOOK_EVERY
        out += [(at(day, h), True) for h in (18.5, 19.5, 20.5)]
    return out


def _run_week(  # noqa: PLR0917 - the fleet and its world
    laptops: list[tuple[str, EvalLaptop, Agent]],
    links: dict[str, SimLink],
    week: list[date],
    where: _Whereabouts,
    timeline: Timeline,
    clock: _Clock,
) -> list[Report]:
    reports: list[Report] = []
    for t, report in _look_times(week):
        clock.now = t
        day = t.astimezone(PARIS).date()
        at_school = timeline.at_school(t)
        for school, hw, agent in laptops:
            if not _reporting(school, hw.device, t, day, week, where, timeline):
                continue
            link = links[hw.device]
            bssid = hw.ap.bssid if at_school else None
            link.advance(t, bssid, agent.reach)
            if not report:
                agent.observe_wifi()
                continue
            if hw.lie == "collapse":
                hw.lie_at = at(week[2], 10)
            if agent.reach.on_school and link.failing():  # as agent.service does
                agent.reach.gateway(link.gateway_ok(bssid, t))
            sample = agent.take_sample()
            agent.spool.ack([i for i, _ in agent.spool.batch(0, 500, 1 << 30)])
            wifi = sample.get("wifi") or {}
            online = bool(wifi.get("connected", False)) and link.reachable(bssid, t)
            link.delivered(t, agent.reach)
            reports.append(Report(t, school, hw.device, sample, online))
    return reports


def _reporting(  # noqa: PLR0917 - who reports at `t`
    school: str,
    device: str,
    t: datetime,
    day: date,
    week: list[date],
    where: _Whereabouts,
    timeline: Timeline,
) -> bool:
    if device in where.home_from and t >= where.home_from[device]:
        return False
    if where.absent.get(device) == day:
        return False
    if school == DARK_SCHOOL and day == week[2]:
        return False
    if not timeline.at_school(t):
        return device in where.evening or (device, day) in where.evening_on
    return True
