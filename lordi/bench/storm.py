"""`lordi bench storm --json`: Monday morning. Thousands of laptops reach the school
network at once, each with a backlog spooled over the weekend, and drain it through
a real private Mosquitto into the real collector and VictoriaMetrics.

What is real: the broker, the collector process (`lordi-collector run`, manual
acknowledgement after the store confirmed), the store; one MQTT v5 connection per
virtual device, with the agent's client id, persistent session (clean start off,
session expiry), Last Will, retained "online" status, and its drain: batches of at
most 200 samples / 128 KB, at most 4 messages awaiting PUBACK, QoS 1, an optional
random wait before draining (the agent's `drain_spread_s`, 60 s by default; 0
here unless given: the worst case). Samples are built by the real agent code on
simulated laptops (`lordi.sim`), re-stamped over the weekend for each device.

What is simulated: every device lives in this one process (paho clients without
their threads, driven by one selector loop: `lordi.sim.swarm`), so the storm's
client side shares the cores with the broker, the collector and the store; its CPU
is reported. `--tls`: every device connects over TLS to the broker's TLS listener
(a full handshake each; the handshake rate itself: `lordi bench connections`);
`--alerts sqlite|postgresql`: the collector runs its rules, alert store and
notifications (lordi/bench/alerting.py); `--alerts postgresql --collectors N`: N
collectors each own a partition of the schools (the devices spread over 2 N
schools, placed by the bench's registry) and share the PostgreSQL alert store.
One open file per device: the open-file limit per process (20,000 on the
development machine) caps a run near 19,500 devices.

Figures: time from the first connection to the last sample counted in the store,
peak of Mosquitto's `$SYS/broker/store/messages/count` (messages held: queued for
the collector, in flight, and the retained statuses, one per device; sampled every
second: `sys_interval 1` on the bench's own stack, 10 s on another) and of its
resident memory, samples sent (PUBACKed) /
stored (counted back by PromQL) / lost / duplicated (written more than once by
the collector, from its final stats line).
"""

from __future__ import annotations

import json
import os
import resource
import ssl
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from lordi import vm
from lordi.bench.alerting import AlertsKind, BenchConfig, bench_config
from lordi.bench.procstat import read
from lordi.bench.state import sample_pool
from lordi.collectorproc import CollectorProcess
from lordi.sim.swarm import BATCH_SAMPLES, SCHOOL, Swarm
from lordi.stack import LocalStack

CONNECTS_PER_TURN = 200  # new connections opened between two turns of the loop


class StormStack(LocalStack):
    """The local stack with Mosquitto publishing its $SYS figures every second."""

    def mosquitto_conf(self) -> Path:
        conf = super().mosquitto_conf()
        with conf.open("a", encoding="utf-8") as out:
            out.write("sys_interval 1\n")
        return conf


class BrokerWatch:
    """$SYS figures and Mosquitto's resident memory, sampled while the storm runs."""

    def __init__(self, port: int, broker_pid: int | None) -> None:
        self.peak_stored = 0
        self.peak_clients = 0
        self.peak_rss_mb = 0.0
        self.samples = 0
        self.pid = broker_pid
        self._stop = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(
            [("$SYS/broker/store/messages/count", 0), ("$SYS/broker/clients/connected", 0)]
        )
        self.client.loop_start()
        self._thread = threading.Thread(target=self._rss, daemon=True)
        self._thread.start()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        value = int(msg.payload or b"0")
        if msg.topic.endswith("count"):
            self.samples += 1
            self.peak_stored = max(self.peak_stored, value)
        else:
            self.peak_clients = max(self.peak_clients, value)

    def _rss(self) -> None:
        while self.pid and not self._stop.wait(0.5):
            try:
                self.peak_rss_mb = max(self.peak_rss_mb, read(self.pid).rss_kb / 1024)
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self.client.disconnect()
        self.client.loop_stop()


def start_collector(
    stack: LocalStack, run_id: str, env: dict[str, str] | None = None, index: int = 0
) -> CollectorProcess:
    """`lordi-collector run` with its own share group: a stack shared with other runs
    may hold sessions of stopped collectors, which Mosquitto keeps in a group's
    round-robin (docs/server-stack.md). `env`: TLS, alerts (lordi/bench/alerting.py),
    partition."""
    return CollectorProcess.start(
        stack,
        f"storm-collector-{run_id}" + (f"-{index}" if index else ""),
        env={"LORDI_COLLECTOR_MQTT__SHARE_GROUP": f"storm{run_id}", **(env or {})},
        stats_interval_s=600,
    )


def stored_count(vm_url: str, run_id: str) -> int:
    vm.force_flush(vm_url)
    rows = vm.query(
        vm_url, f'sum(count_over_time(device_report{{device=~"storm{run_id}-.*"}}[10d]))'
    )
    return int(rows[0]["value"]) if rows else 0


def raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if needed > hard:
        raise ValueError(f"{needed} devices need {needed} sockets; this process may open {hard}")
    return hard


def drive(storm: Swarm, stack: LocalStack, timeout_s: float) -> dict[str, Any]:
    expected = sum(d.backlog for d in storm.devices)
    t0 = storm.t0 = time.monotonic()
    me0 = read(os.getpid()).cpu_s
    waiting = list(storm.devices)
    stored, last_poll, drained_at, last_misc = 0, 0.0, None, t0
    while time.monotonic() - t0 < timeout_s:
        for dev in waiting[:CONNECTS_PER_TURN]:
            storm.connect(dev)
        waiting = waiting[CONNECTS_PER_TURN:]
        storm.turn(0.01 if waiting else 0.1)
        now = time.monotonic()
        if storm.spread_s:
            storm.pending_holds(now)
        if storm.disconnects:
            storm.retry(now)
        if now - last_misc > 5:
            for dev in storm.devices:
                dev.client.loop_misc()
            last_misc = now
        if storm.all_acked_at is None and storm.done():
            storm.all_acked_at = now - t0
        if now - last_poll > 1.0:
            last_poll = now
            stored = stored_count(stack.vm_url, storm.run_id)
            if stored >= expected:
                drained_at = time.monotonic() - t0
                break
    cpu_s = read(os.getpid()).cpu_s - me0
    return {
        "expected": expected,
        "stored": stored,
        "drain_s": drained_at,
        "storm_process_cpu_s": round(cpu_s, 1),
        "storm_process_rss_mb": round(read(os.getpid()).rss_kb / 1024, 1),
    }


def run(
    devices: int = 5000,
    backlog: int = 96,
    spread_s: float = 0.0,
    timeout_s: float = 900.0,
    stack: LocalStack | None = None,
    *,
    tls: bool = False,
    alerts: AlertsKind = "off",
    collectors: int = 1,
) -> dict[str, Any]:
    """`tls`, `alerts` (lordi/bench/alerting.py) need the bench's own stack.
    `collectors` > 1: with alerts off, one shared subscription; with `alerts`
    postgresql, one partition of the schools each."""
    raise_fd_limit(devices + 200)
    own = stack is None
    if not own and (tls or alerts != "off"):
        raise ValueError("--tls and --alerts need the storm's own stack")
    if alerts == "sqlite" and collectors != 1:
        raise ValueError(
            f"--alerts sqlite needs --collectors 1 (got {collectors}): SQLite is one "
            "collector's alert store; several collectors share --alerts postgresql"
        )
    partitions = collectors if alerts == "postgresql" and collectors > 1 else 1
    schools = [SCHOOL] if partitions == 1 else [f"0{990000 + i}S" for i in range(2 * partitions)]
    stack = stack or StormStack()
    with tempfile.TemporaryDirectory(prefix="lordi-storm-") as tmp, bench_config(
        stack, Path(tmp), tls=tls, alerts=alerts, schools=schools, partitions=partitions
    ) as cfg:
        try:
            if own:
                stack.start()
            result = _run(stack, cfg, devices, backlog, spread_s, timeout_s,
                          collectors=collectors, schools=schools)  # fmt: skip
            result["configuration"] = cfg.figures()
        finally:
            if own:
                stack.stop()
    return result


def _run(  # noqa: PLR0917 - run()'s own arguments
    stack: LocalStack, cfg: BenchConfig, devices: int, backlog: int, spread_s: float,
    timeout_s: float, *, collectors: int = 1, schools: list[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    run_id = uuid.uuid4().hex[:6]
    procs = []
    for i in range(collectors):
        env = dict(cfg.env)
        if cfg.partitions > 1:
            env["LORDI_COLLECTOR_PARTITION__COUNT"] = str(cfg.partitions)
            env["LORDI_COLLECTOR_PARTITION__INDEX"] = str(i)
        procs.append(start_collector(stack, run_id, env, index=i))
    watch = BrokerWatch(
        stack.mqtt_port, stack.procs["mosquitto"].pid if "mosquitto" in stack.procs else None
    )
    storm: Swarm | None = None
    context = ssl.create_default_context(cafile=cfg.ca_file) if cfg.tls else None
    cpu0 = _process_cpu(stack, procs)
    try:
        weekend = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
        storm = Swarm(
            "127.0.0.1",
            cfg.broker_port,
            devices,
            backlog,
            pool=sample_pool(200, 4),
            start=weekend,
            spread_s=spread_s,
            run_id=run_id,
            tls=context,
            schools=schools or [SCHOOL],
        )
        result = drive(storm, stack, timeout_s)
        cpu = {k: v - cpu0[k] for k, v in _process_cpu(stack, procs).items()}
        sent = storm.sent
        storm.close()
    finally:
        watch.close()
        for proc in procs:
            proc.stop()
        each = [_final_stats(proc.log) for proc in procs]
    stats = each[0] if len(each) == 1 else {
        "samples_written": sum(s.get("samples_written", 0) for s in each)
    }  # fmt: skip
    expected, stored = result.pop("expected"), result.pop("stored")
    drain = result.pop("drain_s")
    return {
        "devices": devices,
        "backlog_samples_per_device": backlog,
        "spread_s": spread_s,
        "messages_per_device": -(-backlog // BATCH_SAMPLES),
        "samples_expected": expected,
        "samples_sent_acked": sent,
        "samples_stored": stored,
        "lost": sent - stored if drain is not None else expected - stored,
        "duplicated": max(0, stats.get("samples_written", stored) - expected),
        "collectors": collectors,
        "partitions": cfg.partitions,
        "schools": len(schools or [SCHOOL]),
        "time_to_drain_s": None if drain is None else round(drain, 1),
        "all_connected_s": None
        if storm is None or storm.connected_at is None
        else round(storm.connected_at, 1),
        "all_acked_by_broker_s": None
        if storm is None or storm.all_acked_at is None
        else round(storm.all_acked_at, 1),
        "samples_per_s": None if drain is None else round(stored / drain),
        "connect_errors": 0 if storm is None else storm.connect_errors,
        "disconnects": 0 if storm is None else storm.disconnects,
        "peak_broker_stored_messages": watch.peak_stored,
        "broker_sys_samples": watch.samples,
        "peak_clients_connected": watch.peak_clients,
        "peak_broker_rss_mb": round(watch.peak_rss_mb, 1),
        **result,
        "collector_stats": stats if len(each) == 1 else each,
        # Where the cores went, from the first connection to the last sample stored:
        # CPU microseconds per stored sample of each process ("storm": the laptops'
        # side, every simulated client in this one process).
        "cpu_us_per_sample": {k: round(v * 1e6 / max(stored, 1), 1) for k, v in cpu.items()},
        "cores": os.cpu_count(),
        "meets_targets": {
            "lost": drain is not None and sent == stored,
            "drained": drain is not None,
        },
    }


def _process_cpu(stack: LocalStack, collectors: list[CollectorProcess]) -> dict[str, float]:
    """CPU seconds so far of the broker, the store, the collectors ("collector", or
    "collector-<i>" when several) and this process."""
    pids = {name: proc.pid for name, proc in stack.procs.items()
            if name in ("mosquitto", "victoria-metrics")}  # fmt: skip
    if len(collectors) == 1:
        pids["collector"] = collectors[0].pid
    else:
        pids |= {f"collector-{i}": proc.pid for i, proc in enumerate(collectors)}
    pids["storm"] = os.getpid()
    out = {}
    for name, pid in pids.items():
        try:
            out[name] = read(pid).cpu_s
        except OSError:
            out[name] = 0.0
    return out


def _final_stats(log: Path) -> dict[str, Any]:
    text = log.read_text(errors="replace")
    if "stopped; stats " not in text:
        return {}
    return dict(json.loads(text.rsplit("stopped; stats ", 1)[1].splitlines()[0]))


def from_args(args: Any) -> dict[str, Any]:
    """`lordi bench storm`: --devices (5,000), --backlog (96), --spread-s (0), --tls,
    --alerts off|sqlite|postgresql, --collectors (1)."""
    return run(args.devices or 5000, args.backlog, args.spread_s, tls=args.tls,
               alerts=args.alerts, collectors=args.collectors)  # fmt: skip
