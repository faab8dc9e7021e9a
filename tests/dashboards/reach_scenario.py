"""Known mornings on the school network, for the Wi-Fi access panels (dashboards/reach.py).

Each laptop's time on the network is a list of `Visit`s: it joins the school Wi-Fi at
`joined` (Paris time) on one access point, reaches the broker `wait_s` later (None:
never that day) and leaves at `left`. Its agent reports every 5 minutes from `joined`
and at the moment it reaches the broker (that report carries `connect_delay_s`, as
the agent takes it at the first acknowledgement): a report's `school_unreachable_s`
is the time since the previous report before the connection, `school_online_s` the
time after, so over a visit unreachable = wait and online = left - joined - wait.
Reports taken while cut off carry `broker_ok` false and the visit's failure cause;
they are the spooled ones, which reach the collector late (`late=True`).

School 1, day 0 (the brief's Monday): ten laptops join 07:55-08:10; eight reach the
broker within 5 minutes (r08 exactly 300 s), r09 in 10 minutes, r10 never; r01 also
joins again at 10:00 on another access point and waits 15 minutes (not its first
connection of the day). School 1, day 1: the resolver fails; r01-r04 wait 30 s, r05
10 min, r06-r08 40 min, r09 never; r10 stays home; r11 is a boarder's laptop,
connected when the day begins at 07:30 (no wait). School 2, day 0: q1 waits 1 min, q2 never.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from collector.contract import Sample
from collector.lineproto import to_lines
from tests.dashboards.scenario import AP_A, AP_B, AP_C, at

REPORT_S = 300
NOON = time(12, 0)


@dataclass(frozen=True)
class Visit:
    device: str
    day: int  # index in the scenario's days
    joined: time
    wait_s: float | None  # None: never reached the broker that day
    ap: str
    cause: str | None = None  # the failure of the reports taken while cut off
    left: time = NOON
    connected_already: bool = False  # on the network and connected before 07:30


def visits() -> dict[int, list[Visit]]:
    """{school number: visits}."""
    s1 = [
        Visit("r01", 0, time(7, 55), 10, AP_A, left=time(9, 55)),
        Visit("r01", 0, time(10, 0), 900, AP_B, "timeout"),
        Visit("r02", 0, time(7, 55), 20, AP_A),
        Visit("r03", 0, time(8, 0), 30, AP_A),
        Visit("r04", 0, time(8, 0), 45, AP_A),
        Visit("r05", 0, time(8, 5), 60, AP_A),
        Visit("r06", 0, time(8, 5), 90, AP_B),
        Visit("r07", 0, time(8, 10), 120, AP_B),
        Visit("r08", 0, time(8, 10), 300, AP_B),
        Visit("r09", 0, time(8, 0), 600, AP_B, "connect"),
        Visit("r10", 0, time(7, 55), None, AP_B, "tls"),
        *(Visit(f"r0{i}", 1, time(7, 55) if i < 3 else time(8, 0), 30, AP_A) for i in range(1, 5)),
        Visit("r05", 1, time(8, 0), 600, AP_A, "dns"),
        *(Visit(f"r0{i}", 1, time(8, 0), 2400, AP_B, "dns") for i in range(6, 9)),
        Visit("r09", 1, time(8, 0), None, AP_B, "dns"),
        Visit("r11", 1, time(7, 30), 0, AP_A, connected_already=True),
    ]
    s2 = [
        Visit("q1", 0, time(8, 0), 60, AP_C),
        Visit("q2", 0, time(8, 0), None, AP_C, "refused"),
    ]
    return {1: s1, 2: s2}


def _sample(
    visit: Visit, ts: datetime, spans: tuple[float, float], connected: bool, delay: float | None
) -> Sample:
    """A report at `ts`; `spans`: its (school_online_s, school_unreachable_s)."""
    online_s, unreachable_s = spans
    connectivity: dict[str, object] = {
        "broker_ok": connected,
        "school_online_s": online_s,
        "school_unreachable_s": unreachable_s,
        "connect_delay_s": delay,
        "failure": None if connected else visit.cause,
        "failed_attempts": 0 if connected else 2,
    }
    wifi = {
        "connected": True,
        "rssi_dbm": -60.0,
        "on_school_network": True,
        "ssid_state": "school",
        "ssid": "LORDI-EDU",
        "bssid_hash": visit.ap,
    }
    doc = {
        "ts": ts,
        "os": {"platform": "windows", "release": "10.0.22631"},
        "wifi": wifi,
        "connectivity": connectivity,
    }
    return Sample.model_validate(doc)


def reports(visit: Visit, day: date) -> list[tuple[Sample, bool]]:
    """(sample, late) of one visit, in time order."""
    joined, left = at(day, visit.joined), at(day, visit.left)
    reached = None if visit.wait_s is None else joined + timedelta(seconds=visit.wait_s)
    times = {joined + timedelta(seconds=REPORT_S * k) for k in range(1, 10_000)}
    times = {t for t in times if t <= left} | ({reached} if reached and reached <= left else set())
    if visit.connected_already:
        times.discard(joined)  # no connection to report: it was there at 07:30
    out, previous = [], joined
    for ts in sorted(times):
        span = (ts - previous).total_seconds()
        connected = reached is not None and ts >= reached
        online = span if reached is not None and previous >= reached else 0.0
        delay = visit.wait_s if ts == reached and not visit.connected_already else None
        sample = _sample(visit, ts, (online, span - online), connected, delay)
        out.append((sample, not connected))
        previous = ts
    return out


def items(
    s1: str, s2: str, days: list[date]
) -> tuple[list[tuple[str, str, Sample]], list[tuple[str, str, Sample]]]:
    """(school, device, sample) taken on time, and those spooled while cut off."""
    schools = {1: s1, 2: s2}
    on_time: list[tuple[str, str, Sample]] = []
    late: list[tuple[str, str, Sample]] = []
    for which, school_visits in visits().items():
        for v in school_visits:
            for sample, spooled in reports(v, days[v.day]):
                (late if spooled else on_time).append((schools[which], v.device, sample))
    return on_time, late


def connectivity_lines(items: list[tuple[str, str, Sample]], strings: bool = True) -> list[str]:
    """The collector's lines for these samples, only the `connectivity` ones: the
    other panels' figures (laptops, access points' signal, summaries) stay those of
    scenario.py."""
    return [
        line
        for school, device, sample in items
        for line in to_lines(school, device, "1.0.0", sample, strings=strings)
        if line.startswith("connectivity,")
    ]
