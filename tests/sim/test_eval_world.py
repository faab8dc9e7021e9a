"""The rules evaluation's week (lordi.evaluation.world): its reachability causes are
in what the real agent code reported. Every laptop's link follows the world's cuts
(lordi.sim.reach.SimLink), so the samples' `connectivity` blocks, and when each
sample could leave the laptop (`Report.online`), must tell each cause as the
collector's network rules read it: per 15-minute window and access point, how many
laptops were cut off (collector.rules.tally.Tally.cut_off)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from collector.rules.base import ap_key, school_key
from collector.rules.config import RulesConfig
from lordi.evaluation import reach, schedules, world

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)  # a fixed week: the same world every run
NET = RulesConfig().network
Window = tuple[str, str, int]  # school, access point (hash), start (epoch s)


@pytest.fixture(scope="module")
def week() -> world.World:
    return world.build(NOW, per_school=12, seed=13)


def local(ts: datetime) -> datetime:
    return ts.astimezone(world.PARIS)


def block(r: world.Report) -> dict[str, Any]:
    out = r.sample.get("connectivity")
    assert isinstance(out, dict), r
    return out


def reports(w: world.World, school: str, day: date, hour: float) -> list[world.Report]:
    ts = world.at(day, hour)
    return [r for r in w.reports if r.school == school and r.ts == ts]


def cut_off(w: world.World) -> dict[Window, tuple[int, int]]:
    """Per window and access point: laptops cut off there, laptops with a block."""
    laptops: dict[Window, dict[str, list[float]]] = defaultdict(dict)
    for r in w.reports:
        wifi, conn = r.sample.get("wifi") or {}, r.sample.get("connectivity")
        if not (wifi.get("connected") and wifi.get("on_school_network") and conn):
            continue
        start = int(r.ts.timestamp()) // NET.window_s * NET.window_s
        times = laptops[r.school, wifi["bssid_hash"], start].setdefault(r.device, [0.0, 0.0])
        times[0] += conn["school_unreachable_s"] or 0.0
        times[1] += conn["school_online_s"] or 0.0
    return {
        where: (sum(1 for c, o in d.values() if c >= NET.unreachable_min_s and c > o), len(d))
        for where, d in laptops.items()
    }


def windows(w: world.World, school: str, day: date, bssid: str) -> dict[float, tuple[int, int]]:
    """Local hour of each window of that day on that access point -> (cut off, seen)."""
    out = {}
    for (s, b, start), counts in cut_off(w).items():
        ts = local(datetime.fromtimestamp(start, UTC))
        if s == school and b == bssid and ts.date() == day:
            out[ts.hour + ts.minute / 60] = counts
    return out


def cause(w: world.World, name: str) -> world.Cause:
    return next(c for c in w.causes if c.name == name)


def test_dns_outage_school_resolves_nothing_on_thursday_morning(week: world.World) -> None:
    thursday = week.week[3]
    lone = cause(week, "lone_cut_off").device
    at_nine = [r for r in reports(week, reach.DNS_SCHOOL, thursday, 9) if r.device != lone]
    assert len(at_nine) >= 9
    for r in at_nine:
        conn = block(r)
        assert conn["school_unreachable_s"] > 0 and conn["school_online_s"] == 0
        assert (conn["failure"], conn["dns_ok"], conn["gateway_ok"]) == ("dns", False, True)
        assert conn["broker_ok"] is False and conn["failed_attempts"] >= 1
        assert r.sample["wifi"]["connected"] and r.sample["wifi"]["rssi_dbm"] > -70
        assert not r.online  # spooled until the repair
    # Repaired at 11:00: every laptop's morning leaves with its 11:00 report.
    for r in reports(week, reach.DNS_SCHOOL, thursday, 11):
        assert r.online == (r.device != lone)
    # Every access point (three at least: the school rule counts them) has most of
    # its laptops cut off in every window of the morning, none after 11:15.
    hashes = week.aps[reach.DNS_SCHOOL]
    assert len(hashes) >= reach.SCHOOL_MIN_APS
    for bssid in hashes:
        counts = windows(week, reach.DNS_SCHOOL, thursday, bssid)
        for hour in [8 + q / 4 for q in range(12)]:
            cut, seen = counts[hour]
            assert cut >= NET.ap_clear_devices and cut / seen >= NET.ap_min_fraction, hour
        assert all(cut <= 1 for hour, (cut, _) in counts.items() if hour >= 11.25)
    assert cause(week, "dns_outage").expect == (
        (school_key(reach.DNS_SCHOOL, "school_unreachable"), "school_unreachable"),
    )


def test_captive_portal_cuts_off_one_access_point_whose_laptops_send_that_evening(
    week: world.World,
) -> None:
    tuesday = week.week[1]
    (key, rule), = cause(week, "captive_portal").expect  # fmt: skip
    portal = key.split("/")[2]
    assert rule == "ap_unreachable" and key == ap_key(reach.PORTAL_SCHOOL, portal, rule)
    at_two = reports(week, reach.PORTAL_SCHOOL, tuesday, 14)
    under = [r for r in at_two if r.sample["wifi"].get("bssid_hash") == portal]
    others = [r for r in at_two if r.sample["wifi"].get("bssid_hash") not in (None, portal)]
    assert len(under) >= NET.ap_min_devices and others
    for r in under:
        conn = block(r)
        assert conn["school_unreachable_s"] == 600 and conn["failure"] == "tls"
        assert (conn["dns_ok"], conn["gateway_ok"], r.online) == (True, True, False)
    for r in others:
        assert block(r)["school_unreachable_s"] == 0 and r.online
    for bssid in week.aps[reach.PORTAL_SCHOOL]:
        counts = windows(week, reach.PORTAL_SCHOOL, tuesday, bssid)
        if bssid != portal:
            assert not any(cut for cut, _ in counts.values())
            continue
        for hour in [13.25 + q / 4 for q in range(15)]:  # 13:15-16:45
            cut, seen = counts[hour]
            assert cut >= NET.ap_min_devices and cut / seen >= NET.ap_min_fraction, hour
    # Their afternoon leaves from home that evening: within the collector's 12 h
    # lateness in the late schedule (the next morning would be 15-19 h late).
    devices = {r.device for r in under}
    plan = schedules.late(week, speed=86_400.0)  # one collector second per sample day
    clock = schedules.Clock(week, 86_400.0)
    for message in plan.messages:
        device = message.topic.split("/")[3]
        if device in devices:
            for sample in _samples(message):
                ts = datetime.fromisoformat(sample["ts"].replace("Z", "+00:00"))
                if local(ts).date() == tuesday and 13 <= local(ts).hour < 17:
                    late_h = (message.at_s - clock(ts)) * 24
                    assert 0 < late_h <= 12, (device, ts)


def _samples(message: schedules.Message) -> list[dict[str, Any]]:
    import json  # noqa: PLC0415

    samples: list[dict[str, Any]] = json.loads(message.payload)["samples"]
    return samples


def test_slow_morning_connects_in_two_to_twelve_minutes_once(week: world.World) -> None:
    monday, tuesday = week.week[:2]
    delays: dict[str, list[float]] = defaultdict(list)
    later: list[float] = []
    for r in week.reports:
        delay = (r.sample.get("connectivity") or {}).get("connect_delay_s")
        if r.school != reach.SLOW_SCHOOL or delay is None:
            continue
        if local(r.ts).date() == monday and local(r.ts).hour == 8:
            delays[r.device].append(delay)
        elif local(r.ts).date() == tuesday:
            later.append(delay)
    assert len(delays) >= 10
    assert all(len(d) == 1 and d[0] <= 720 for d in delays.values()), delays
    # A Wi-Fi drop while waiting is a new association: the agent's clock restarts
    # there (agent.reach), so a few laptops report less than the morning's wait.
    waited = [d[0] for d in delays.values() if d[0] >= 120]
    assert len(waited) >= 0.8 * len(delays), delays
    assert later and max(later) < 10  # a normal morning: seconds
    # Cut off in the first window at most, never two windows running.
    for bssid in week.aps[reach.SLOW_SCHOOL]:
        counts = windows(week, reach.SLOW_SCHOOL, monday, bssid)
        assert [h for h, (cut, _) in counts.items() if cut] in ([], [8.0])


def test_dns_blip_is_minutes_long(week: world.World) -> None:
    wednesday = week.week[2]
    hit = [r for r in reports(week, reach.BLIP_SCHOOL, wednesday, 10 + 10 / 60)]
    assert hit and all(block(r)["failure"] == "dns" for r in hit if r.sample["wifi"]["connected"])
    assert all(0 < block(r)["school_unreachable_s"] < 600 for r in hit)
    for bssid in week.aps[reach.BLIP_SCHOOL]:
        counts = windows(week, reach.BLIP_SCHOOL, wednesday, bssid)
        assert all(cut < NET.ap_clear_devices for cut, _ in counts.values())


def test_a_laptop_cut_off_alone_sends_from_home_every_evening(week: world.World) -> None:
    lone = cause(week, "lone_cut_off")
    mine = [r for r in week.reports if r.device == lone.device]
    at_school = [r for r in mine if 8 <= local(r.ts).hour < 17]
    evening = [r for r in mine if local(r.ts).hour >= 18]
    assert len(at_school) > 200 and len(evening) == 15  # 3 evenings x 5 days
    assert not any(r.online for r in at_school) and all(r.online for r in evening)
    failures = {
        block(r)["failure"] for r in at_school if local(r.ts).minute or local(r.ts).hour > 8
    }
    assert failures == {"connect"}
    # Alone on its access point: no other laptop there is cut off on a normal day.
    bssid = at_school[-1].sample["wifi"]["bssid_hash"]
    counts = windows(week, lone.school, week.week[0], bssid)
    assert all(cut <= 1 for cut, _ in counts.values())
    assert sum(cut for cut, _ in counts.values()) >= 0.9 * len(counts)  # not when off the Wi-Fi
    assert lone.expect == ()


def test_failing_access_point_keeps_its_laptops_from_the_broker(week: world.World) -> None:
    tuesday = week.week[1]
    (key, _), = cause(week, "failed_ap").expect  # fmt: skip
    bssid = key.split("/")[2]
    under = [
        r for r in reports(week, world.FAILED_AP_SCHOOL, tuesday, 10.5)
        if (r.sample.get("wifi") or {}).get("bssid_hash") == bssid
    ]  # fmt: skip
    assert under
    for r in under:
        conn = block(r)
        assert conn["school_unreachable_s"] > 0 and conn["failure"] == "timeout"
        # Checked at a report on the school network (not just after a drop).
        assert conn["gateway_ok"] in (False, None) and not r.online
    assert any(block(r)["gateway_ok"] is False for r in under)


def test_reachability_expectations_and_noise(week: world.World) -> None:
    expected = {rule for _, rule in week.expected()}
    assert {"ap_unreachable", "school_unreachable"} <= expected
    reach_pairs = [p for p in week.expected() if p[1] in ("ap_unreachable", "school_unreachable")]
    assert len(reach_pairs) == 2
    for name in ("slow_morning", "dns_blip", "lone_cut_off"):
        assert cause(week, name).expect == ()
    since = cause(week, "captive_portal").since
    assert since == (world.at(week.week[1], 13), world.at(week.week[1], 13.5))
    # Samples in sample-time order, and a week's samples with a block at school.
    assert [r.ts for r in week.reports] == sorted(r.ts for r in week.reports)
    school_time = [r for r in week.reports if 8 <= local(r.ts).hour < 17]
    with_block = [r for r in school_time if r.sample.get("connectivity")]
    assert len(with_block) >= 0.99 * len(school_time)  # not a first look off the Wi-Fi
    assert timedelta(minutes=2) == reach.LOOK_EVERY
