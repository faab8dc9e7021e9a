"""`lordi demo`: a simulated school week through the whole real pipeline.

Private Mosquitto + VictoriaMetrics + InfluxDB, a real collector process, 200
simulated laptops in 5 schools running the real agent code, then the list of
batteries to replace per school, read back from the time-series store.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lordi import vm
from lordi.sim.faults import reporting
from lordi.sim.fleet import (
    SCHOOLS,
    Fleet,
    build_fleet,
    connect_fleet,
    disconnect_fleet,
    last_school_week,
    school_days,
)
from lordi.stack import LocalStack

REPLACE_BELOW_PCT = 60.0


@dataclass
class CollectorProcess:
    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(
        cls,
        stack: LocalStack,
        client_id: str = "lordi-collector-1",
        *,
        env: dict[str, str] | None = None,
        stats_interval_s: int = 5,
        log: Path | None = None,
    ) -> CollectorProcess:
        """`lordi-collector run` against the stack, returned once it has subscribed.
        `env` adds `LORDI_COLLECTOR_*` settings (share group, rate limit...)."""
        log = log or stack.root / f"{client_id}.log"
        full_env = {**stack.env(), "LORDI_COLLECTOR_MQTT__CLIENT_ID": client_id, **(env or {})}
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "collector.cli",
                    "run",
                    "--stats-interval",
                    str(stats_interval_s),
                ],
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self = cls(proc, log)
        deadline = time.monotonic() + 30
        while b"subscribed to" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"collector did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def run_week(fleet: Fleet, start: datetime, say: object = print) -> int:
    """Drive every agent through the school week; returns the number of samples taken."""
    taken = 0
    day = None
    for t in school_days(start, days=7):
        fleet.clock.now = t
        if t.date() != day and callable(say):
            day = t.date()
            say(f"  simulating {t:%A %d %B}: {len(fleet.laptops)} laptops reporting every 5 min")
        for v in fleet.laptops:
            if not reporting(v, t):
                continue
            v.agent.take_sample()
            v.agent.pump()
            taken += 1
        for v in fleet.laptops:
            v.agent.pump()
    for v in fleet.laptops:
        if not v.agent.drain(timeout_s=30):
            raise RuntimeError(f"{v.hardware.device}: spool not drained")
    return taken


def wait_stored(stack: LocalStack, expected: int, timeout_s: float = 120) -> int:
    deadline = time.monotonic() + timeout_s
    stored = 0
    while time.monotonic() < deadline:
        vm.force_flush(stack.vm_url)
        rows = vm.query(stack.vm_url, "sum(count_over_time(device_report[14d]))")
        stored = int(rows[0]["value"]) if rows else 0
        if stored >= expected:
            return stored
        time.sleep(0.5)
    return stored


def flagged_by_school(stack: LocalStack) -> dict[str, list[tuple[str, str, float]]]:
    rows = vm.query(stack.vm_url, f"last_over_time(battery_health_pct[14d]) < {REPLACE_BELOW_PCT}")
    out: dict[str, list[tuple[str, str, float]]] = {}
    for r in rows:
        m = r["metric"]
        out.setdefault(m["school"], []).append((m["device"], m.get("model", "?"), r["value"]))
    return {k: sorted(v) for k, v in out.items()}


def report(fleet: Fleet, flagged: dict[str, list[tuple[str, str, float]]]) -> tuple[int, int]:
    truth = fleet.ground_truth_worn(REPLACE_BELOW_PCT)
    found = {d for rows in flagged.values() for d, _, _ in rows}
    print("\nBatteries to replace (health below 60 %), per school:")
    for uai, name in SCHOOLS:
        rows = flagged.get(uai, [])
        total = sum(1 for v in fleet.laptops if v.school == uai)
        print(f"\n  {uai}  {name}: {len(rows)} of {total} laptops")
        for device, model, health in rows:
            print(f"    {device:<16} battery {model:<10} health {health:5.1f} %")
    print(
        f"\n  flagged {len(found)}; ground truth {len(truth)}; "
        f"correct {len(found & truth)}, missed {len(truth - found)}, wrong {len(found - truth)}"
    )
    return len(found & truth), len(found ^ truth)


def main(keep: bool = False, per_school: int = 40) -> int:
    t0 = time.monotonic()
    stack = LocalStack(keep_files=keep)
    print(f"Starting private stack in {stack.root} ...")
    stack.start()
    collector = None
    fleet = None
    try:
        print(f"  mosquitto        mqtt://127.0.0.1:{stack.mqtt_port}")
        print(f"  victoria-metrics {stack.vm_url}")
        print(f"  influxdb 1.x     {stack.influx_url}")
        collector = CollectorProcess.start(stack)
        print(f"  collector        pid {collector.proc.pid}, log {collector.log}")
        start = last_school_week(datetime.now(UTC))
        fleet = build_fleet(per_school, start)
        connect_fleet(fleet, "127.0.0.1", stack.mqtt_port)
        deadline = time.monotonic() + 30
        while not all(v.link and v.link.connected.is_set() for v in fleet.laptops):
            if time.monotonic() > deadline:
                raise RuntimeError("simulated laptops could not connect to the broker")
            time.sleep(0.1)
        print(f"{len(fleet.laptops)} simulated laptops in {len(SCHOOLS)} schools connected.")
        taken = run_week(fleet, start)
        stored = wait_stored(stack, taken)
        print(f"Samples taken {taken}, stored {stored} ({time.monotonic() - t0:.0f} s so far).")
        _, errors = report(fleet, flagged_by_school(stack))
        ok = stored == taken and errors == 0
    finally:
        if fleet is not None:
            disconnect_fleet(fleet)
        if collector is not None:
            collector.stop()
        if keep:
            pids = " ".join(str(p.pid) for p in stack.procs.values())
            print(
                f"\nStack kept running (files in {stack.root}). Explore VictoriaMetrics at "
                f"{stack.vm_url}/vmui ; stop it with: kill {pids}"
            )
        else:
            stack.stop()
    print(f"\nDemo {'finished' if ok else 'FAILED'} in {time.monotonic() - t0:.0f} s.")
    return 0 if ok else 1
