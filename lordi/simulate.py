"""`lordi simulate`: thousands of virtual laptops in one process, over school days.

Every laptop runs the real agent code (`agent.runtime.Agent`: samples, spool,
batching, envelopes) on simulated hardware (`lordi.sim`): packs that wear by age and
by cycles, per model and per manufacturing lot; students' charging habits; Wi-Fi per
school and access point; the school calendar (weekends, holidays, Wednesday
afternoons). Faults are injected with a ground truth. Output goes to an MQTT broker,
or to a folder:

    messages.jsonl   one MQTT message a line: {"topic": ..., "payload": {...}}
    labels.jsonl     the ground truth at the end of the run, one label a line: worn
                     packs (health < 60 %: replace; < 80 % or >= 1000 cycles: watch),
                     broken chargers, silent laptops (with `since`), packs that lie
                     (always, or once), failing access points (with their laptops),
                     and with --reach: schools cut off by their DNS, access points
                     behind a captive portal (start, end, failure), slow mornings
    devices.jsonl    how each laptop was drawn (school, model, lot, habit, health)
    run.json         the options and the counts

With `--reach` (none by default), schools have good radio and poor reachability
(lordi.sim.faults.ReachFaults): each laptop's link follows its school network's cuts
(lordi.sim.reach.SimLink: failed attempts, resolutions, PUBACKs, as the real link
reports them to the agent), samples wait in the spool while it cannot reach the
broker, and every report is also a look at the link for the agent's `connectivity`
block (the agent's "slept" gap is four report intervals).

Same seed, same options: the same messages, byte for byte.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any, TextIO

from lordi.sim.calendar import SchoolCalendar
from lordi.sim.faults import Faults, ReachFaults, ground_truth, inject, inject_reach, reporting
from lordi.sim.fleet import Fleet, VirtualLaptop
from lordi.sim.output import DirSink, MqttSink, write_jsonl
from lordi.sim.population import Region, build_region
from lordi.sim.reach import Network, SimLink

WATCH_CYCLES = 1000  # the battery_watch rule's default cycle rating
ABSENT_PROB = 0.03  # a student away for a day (never two days running: not "silent")


@dataclass
class Options:
    schools: int = 5
    per_school: int = 200
    start: date = field(default_factory=lambda: date.today() - timedelta(days=7))
    days: int = 7
    seed: int = 7
    faults: Faults = field(default_factory=Faults)
    interval_min: float = 5.0
    reach: ReachFaults = field(default_factory=ReachFaults)


def parse_faults(text: str) -> Faults:
    """`none`, or `charger=0.03,silent=0.02,lie=0.04,aps=1` (any subset)."""
    if text.strip() == "none":
        return Faults(charger_share=0, silent_share=0, lie_share=0, failing_aps=0)
    names = {
        "charger": "charger_share",
        "silent": "silent_share",
        "lie": "lie_share",
        "aps": "failing_aps",
    }
    values: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        if key not in names or not value:
            raise ValueError(f"--faults: {part!r}: expected one of {sorted(names)} as name=value")
        values[names[key]] = int(value) if key == "aps" else float(value)
    return Faults(**values)


def parse_reach(text: str) -> ReachFaults:
    """`none`, or `dns=1,portal=1,slow=1` (schools of each kind, any subset)."""
    if text.strip() == "none":
        return ReachFaults()
    names = {"dns": "dns_schools", "portal": "portal_schools", "slow": "slow_schools"}
    values: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        if key not in names or not value.isdigit():
            raise ValueError(f"--reach: {part!r}: expected one of {sorted(names)} as name=count")
        values[names[key]] = int(value)
    return ReachFaults(**values)


class Progress:
    """One stderr line, rewritten in place on a terminal (every 10 s otherwise)."""

    def __init__(self, total: int, out: TextIO = sys.stderr, quiet: bool = False) -> None:
        self.total, self.out, self.quiet = total, out, quiet
        self.t0 = self._last = time.monotonic()
        self.tty = out.isatty()

    def update(self, done: int, label: str, samples: int) -> None:
        now = time.monotonic()
        if self.quiet or now - self._last < (0.5 if self.tty else 10.0):
            return
        self._last = now
        rate = done / max(now - self.t0, 1e-9)
        eta = (self.total - done) / rate if rate else 0.0
        line = (
            f"{label}  {done}/{self.total} steps  {samples:,} samples  "
            f"{samples / (now - self.t0):,.0f} samples/s  ETA {eta:,.0f} s"
        )
        self.out.write(("\r" + line) if self.tty else line + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.tty and not self.quiet:
            self.out.write("\n")


def _retime(fleet: Fleet, days: list[tuple[date, list[datetime]]]) -> None:
    """Put the injected faults' moments on report times of this calendar (inject()
    counts from a Monday's midnight, which may be a holiday here)."""
    times = [t for _, ts in days for t in ts]
    if not times:
        return
    first = days[0][1]
    silent_at = first[len(first) // 2]  # silent from the middle of the first school day
    lie_at = times[len(times) // 3]
    for v in fleet.laptops:
        if v.silent_from is not None:
            v.silent_from = silent_at
        if v.hardware.lie is not None:
            v.hardware.lie_at = lie_at


def _present(v: VirtualLaptop, day_index: int, absent: dict[str, int]) -> bool:
    """Students are away now and then, never two school days running."""
    device = v.hardware.device
    if absent.get(device) == day_index - 1:
        return True
    if v.hardware.rng.random() < ABSENT_PROB:
        absent[device] = day_index
        return False
    return True


def simulate(
    region: Region, opts: Options, calendar: SchoolCalendar, progress: Progress | None = None
) -> dict[str, int]:
    """Drive every agent through the period; every sample leaves through its link."""
    fleet = region.fleet
    days = list(calendar.iter_days(opts.start, opts.days))
    steps = sum(len(t) for _, t in days)
    _retime(fleet, days)
    samples = 0
    done = 0
    absent: dict[str, int] = {}
    for index, (day, times) in enumerate(days):
        present = [v for v in fleet.laptops if _present(v, index, absent)]
        for t in times:
            fleet.clock.now = t
            for v in present:
                if reporting(v, t):
                    _report(v, t)
                    samples += 1
            done += 1
            if progress:
                progress.update(done, f"{day:%a %d %b %Y} {t:%H:%M}Z", samples)
    if days:  # the day is over: every laptop reaches the broker from home
        for v in fleet.laptops:
            if v.net is not None:
                v.net.connect_from(None, days[-1][1][-1] + timedelta(hours=2), v.agent.reach)
    # Until every spool is empty: a laptop may hold several batches (4 in flight at most).
    undrained = sum(1 for v in fleet.laptops if not v.agent.drain(timeout_s=60))
    return {
        "school_days": len(days),
        "steps": steps,
        "samples": samples,
        "laptops_not_drained": undrained,
    }


def _report(v: VirtualLaptop, t: datetime) -> None:
    """One report: the link's news since the previous one (reach faults), the sample,
    then the spool's drain."""
    agent, net = v.agent, v.net
    if net is not None:
        bssid = v.hardware.ap.bssid  # simulated laptops report from school only
        net.advance(t, bssid, agent.reach)
        if agent.reach.on_school and net.failing():  # as agent.service does
            agent.reach.gateway(net.gateway_ok(bssid, t))
    agent.take_sample()
    agent.pump()
    if net is not None:
        net.delivered(t, agent.reach)


def attach_reach(fleet: Fleet, network: Network, interval: timedelta, seed: int) -> None:
    """Put every laptop's link under the network's cuts; each report is a look."""
    rng = random.Random(seed)
    gap_s = 4 * interval.total_seconds()  # four looks, as agent.service.max_look_gap_s
    for v in fleet.laptops:
        v.agent.reach.max_gap_s = gap_s
        v.net = SimLink(network, v.school, v.hardware.device, random.Random(rng.random()),
                        max_gap_s=gap_s, inner=v.agent.link)  # fmt: skip
        v.agent.link = v.net


def labels(region: Region, reach_truth: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The ground truth at the end of the run, one row per (subject, label)."""
    fleet = region.fleet
    truth = ground_truth(fleet, watch_cycles=WATCH_CYCLES)
    school_of = {v.hardware.device: v.school for v in fleet.laptops}
    since = {v.hardware.device: v.silent_from for v in fleet.laptops if v.silent_from}
    rows: list[dict[str, Any]] = [
        {"school": school_of[d], "device": d, "label": rule}
        | ({"since": since[d].isoformat()} if rule == "device_silent" else {})
        for d, rule in sorted(truth.device_alerts)
    ]
    rows += [
        {"school": school_of[d], "device": d, "label": "untrusted_full_gt_design"}
        for d in sorted(truth.untrusted)
    ]
    rows += [
        {"school": school_of[d], "device": d, "label": "one_off_collapse"}
        for d in sorted(truth.collapse)
    ]
    for school, bssid in sorted(truth.access_points):
        devices = sorted(v.hardware.device for v in fleet.laptops if v.hardware.ap.bssid == bssid)
        rows.append(
            {
                "school": school,
                "label": "access_point_fault",
                "bssid": bssid,
                "bssid_hash": fleet.policy.bssid_hash(bssid),
                "devices": devices,
            }
        )
    return rows + list(reach_truth or [])


def devices(region: Region) -> list[dict[str, Any]]:
    return [
        {
            "school": v.school,
            "device": v.hardware.device,
            "model": v.hardware.model,
            "health_pct": round(v.hardware.health_pct, 2),
            "cycles": round(v.hardware.cycles, 1),
            **region.facts[v.hardware.device],
        }
        for v in region.fleet.laptops
    ]


def run(
    opts: Options,
    out_dir: Path | None = None,
    mqtt: tuple[str, int] | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    if (out_dir is None) == (mqtt is None):
        raise ValueError("give exactly one output: a folder or an MQTT broker")
    t0 = time.monotonic()
    start = datetime.combine(opts.start, dtime(), UTC)
    region = build_region(opts.schools, opts.per_school, start, opts.seed)
    inject(region.fleet, start, opts.faults, seed=opts.seed + 4)
    calendar = SchoolCalendar(interval=timedelta(minutes=opts.interval_min))
    steps = sum(len(t) for _, t in calendar.iter_days(opts.start, opts.days))
    progress = Progress(steps, quiet=quiet)
    sink: DirSink | MqttSink
    if out_dir is not None:
        sink = DirSink(out_dir)
    else:
        assert mqtt is not None
        sink = MqttSink(*mqtt)
    reach_truth: list[dict[str, Any]] = []
    try:
        sink.attach(region.fleet)
        if opts.reach:
            days = [ts for _, ts in calendar.iter_days(opts.start, opts.days)]
            network, reach_truth = inject_reach(region.fleet, days, opts.reach, opts.seed + 6)
            attach_reach(region.fleet, network, calendar.interval, opts.seed + 8)
        counts = simulate(region, opts, calendar, progress)
    finally:
        sink.close()
        progress.close()
    rows = labels(region, reach_truth)
    summary: dict[str, Any] = {
        **counts,
        "laptops": len(region.fleet.laptops),
        "messages": sink.messages,
        "labels": len(rows),
        "seconds": round(time.monotonic() - t0, 1),
        "options": {**asdict(opts), "start": opts.start.isoformat()},
    }
    if out_dir is not None:
        write_jsonl(out_dir / "labels.jsonl", rows)
        write_jsonl(out_dir / "devices.jsonl", devices(region))
        (out_dir / "run.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def cmd_simulate(args: argparse.Namespace) -> int:
    try:
        opts = Options(
            schools=args.schools,
            per_school=args.per_school,
            start=date.fromisoformat(args.start) if args.start else Options().start,
            days=args.days,
            seed=args.seed,
            faults=parse_faults(args.faults),
            interval_min=args.interval_min,
            reach=parse_reach(args.reach),
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    mqtt = (args.host, args.port) if args.port else None
    out = Path(args.out) if args.out else None
    if (out is None) == (mqtt is None):
        print("error: give --out DIR or --port (and --host) of an MQTT broker", file=sys.stderr)
        return 2
    summary = run(opts, out, mqtt, quiet=args.quiet)
    print(json.dumps(summary, default=str))
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("simulate", help="thousands of virtual laptops over school days")
    p.add_argument("--schools", type=int, default=5)
    p.add_argument("--per-school", type=int, default=200, help="laptops per school")
    p.add_argument("--start", help="first day, YYYY-MM-DD (default: a week ago)")
    p.add_argument("--days", type=int, default=7, help="calendar days from --start")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--faults",
        default="charger=0.03,silent=0.02,lie=0.04,aps=1",
        help="shares of laptops per fault and failing access points, or 'none'",
    )
    p.add_argument(
        "--reach",
        default="none",
        help="schools with good radio but poor reachability: 'dns=1,portal=1,slow=1' "
        "(a DNS outage one morning, a captive portal on one access point one afternoon, "
        "slow connections every morning), or 'none'",
    )
    p.add_argument("--interval-min", type=float, default=5.0, help="minutes between reports")
    p.add_argument("--out", metavar="DIR", help="write messages and labels as JSON lines")
    p.add_argument("--host", default="127.0.0.1", help="MQTT broker host (with --port)")
    p.add_argument("--port", type=int, help="publish to the MQTT broker on this port")
    p.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    p.set_defaults(func=cmd_simulate)
