"""`lordi bench ingest --json`: the real collector through the real broker into the
real store, beside the raw limits of the broker and the store measured in the same
run on the same machine.

- pipeline: a publisher process sends N messages of K samples at QoS 1 (every
  PUBACK awaited; `lordi.bench.mqttpub`, packets built before the clock starts);
  C collector processes (`lordi-collector run`, one shared subscription, each its
  own client id; with `--alerts postgresql` and C > 1, C partitions, each with its
  own schools' plain subscriptions) validate, write to VictoriaMetrics and
  acknowledge. Time from the first publish to the last sample counted back in the
  store; lost = sent - stored; duplicated = samples the collectors wrote more than
  once (their own counters, read from their final stats lines). Every process's
  CPU per stored sample, and each collector's per thread (its /metrics, read before
  and after the timed part: which of its loops is the bottleneck).
- broker limit: the same messages to a subscriber that only counts them.
- store limit: the collector's own line protocol for the same samples, posted in
  5,000-sample requests (the collector's batch) over as many connections as the
  collectors use in all, to VictoriaMetrics' /api/v2/write; once before each
  pipeline round (`--rounds`, 2 by default: the same messages again, later samples,
  through the same collectors) and once after the last. Each round is compared with
  the mean of the writes just before and after it, and the ratio is the rounds'
  median: the machine's speed drifts over tens of seconds, so a limit measured a
  minute later describes another machine.

Message shape: with `devices` D > 0 the messages come from a fleet of D devices
(message m from device m % D), whose series the store already knows: every device
sends one message before the timed part (a fleet that reports every few minutes
creates its series once). With D = 0 every message comes from a new device, so
each message also creates ~30 new series in the store: measured, that costs
VictoriaMetrics 35-50 µs per sample instead of ~20 and makes the store the limit.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
from prometheus_client.parser import text_string_to_metric_families

from collector.config import IngestSettings, RateLimitSettings
from collector.contract import Sample
from collector.lineproto import to_lines
from lordi import vm
from lordi.bench.alerting import AlertsKind, BenchConfig, bench_config
from lordi.collectorproc import CollectorProcess
from lordi.stack import LocalStack, free_port

SCHOOL = "0349999Z"
# Partitioned collectors (`--alerts postgresql --collectors N`): the devices spread
# over 2 N schools, each placed in a partition by the registry (lordi/bench/alerting.py).
SCHOOLS_PER_COLLECTOR = 2
# The pipeline runs this many rounds, the store's own write before each and after the
# last (3 writes, as the median of three writes after the pipeline was before): the
# machine's speed drifts over tens of seconds (one write of 200,000 samples ranged
# 53-113k samples/s in one session, VictoriaMetrics using under half of the two cores
# in the slow writes: BENCHMARKS.md), so each round is compared with the writes next
# to it.
ROUNDS = 2


def school_of(index: int, schools: int = 1) -> str:
    """The bench device's school: SCHOOL alone, or one of `schools` (0349900Z, ...)."""
    return SCHOOL if schools <= 1 else f"0{349900 + index % schools}Z"


def bench_schools(schools: int) -> list[str]:
    return [school_of(i, schools) for i in range(max(schools, 1))]


# Every bench school's series (SCHOOL and the partitioned runs' 03499xxZ).
_SCHOOL_MATCH = 'school=~"03499.*"'
# Sample times: a minute apart from here, so 50,000 samples per device stay in the past.
# (Whole days: the publisher processes import this module at other times.)
START_S = (int(time.time()) // 86_400 - 40) * 86_400

PUBLISHER = textwrap.dedent("""
    import json, sys
    from lordi.bench.ingest import payloads
    from lordi.bench.mqttpub import publish_all
    port, messages, per_message, offset, devices, first = (int(a) for a in sys.argv[1:7])
    data = list(payloads(messages, per_message, offset, devices, first, int(sys.argv[8])))
    print(json.dumps(publish_all(port, data, tls_ca=sys.argv[7])), flush=True)
""")

COUNTER = textwrap.dedent("""
    import json, sys, threading, time
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    port, expected, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    got = [0, None]
    done = threading.Event()
    def on_message(c, u, m):
        if got[1] is None:
            got[1] = time.monotonic()
        got[0] += 1
        if got[0] >= expected:
            done.set()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.on_message = on_message
    if ca:
        c.tls_set(ca_certs=ca)
    c.connect("127.0.0.1", port)
    c.subscribe("$share/null/lordi/v1/+/+/telemetry", qos=1)
    c.loop_start()
    print("ready", flush=True)
    done.wait(300)
    print(json.dumps({"received": got[0], "seconds": time.monotonic() - got[1]}), flush=True)
""")


# Link rates an 802.11n/ac/ax adapter reports (Mb/s).
_RATES = (72.2, 144.4, 300.0, 433.3, 585.0, 702.0, 866.7, 1201.0)


def _sample(device_index: int, n: int) -> dict[str, Any]:
    """Sample n of a bench device, with the variety of a real fleet: per-device pack
    (design capacity, wear, model) and a minute-by-minute charge, voltage,
    temperature and Wi-Fi link that move (values a laptop reports: percent and
    temperature to 0.1, voltage in mV, RSSI and signal in whole units). Seeded by
    (device, n): the same sample every time. Constant values would flatter the
    store's compression and any cache of formatted numbers."""
    rnd = random.Random(device_index * 1_000_003 + n)
    ts = time.gmtime(START_S + n * 60 + device_index % 60)
    design = (42_000.0, 50_040.0, 57_020.0, 80_400.0)[device_index % 4]
    health = round(60 + (device_index * 7919 % 400) / 10, 2)
    percent = round((100 - n % 240 * 0.45 + rnd.uniform(-0.2, 0.2)) % 100.05, 1)
    plugged = n % 240 >= 180
    rssi = float(rnd.randint(-82, -45))
    return {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", ts),
        "os": {"platform": "windows", "release": "10.0.22631"},
        "batteries": [
            {
                "name": "BAT0",
                "present": True,
                "status": "charging" if plugged else "discharging",
                "percent": percent,
                "plugged": plugged,
                "design_capacity_mwh": design,
                "full_capacity_mwh": float(round(design * health / 100)),
                "health_pct": health,
                "cycle_count": 40 + device_index % 300 + n // 300,
                "voltage_mv": float(10_800 + round(percent * 16) + rnd.randint(-20, 20)),
                "temperature_c": round(rnd.uniform(26.0, 41.0), 1),
                "model": ("01AV430", "L19L3PD1", "5B10W13930", "SB10K97621")[device_index % 4],
            }
        ],
        "wifi": {
            "interface": "Wi-Fi",
            "connected": True,
            "ssid": "LORDI-EDU",
            "ssid_state": "school",
            "on_school_network": True,
            "bssid_hash": f"{device_index % 40:016x}",
            "rssi_dbm": rssi,
            "signal_pct": float(min(100, max(0, 2 * (int(rssi) + 100)))),
            "channel": (1, 6, 11, 36, 44, 100)[device_index % 6],
            "band_ghz": 2.4 if device_index % 6 < 3 else 5.0,
            "rx_rate_mbps": rnd.choice(_RATES),
            "tx_rate_mbps": rnd.choice(_RATES),
            "radio": "802.11ac",
            "rssi_min_dbm": rssi - rnd.randint(0, 9),
            "disconnects": rnd.choice((0, 0, 0, 0, 0, 0, 1, 2)),
            "connected_s": 300.0 if rnd.random() < 0.9 else float(rnd.randint(30, 299)),
        },
    }


def payloads(  # noqa: PLR0917 - the shape of the run
    messages: int,
    per_message: int,
    offset: int = 0,
    devices: int = 0,
    first: int = 0,
    schools: int = 1,
) -> Any:
    """(topic, body) per message; a device's samples are a minute apart (unique points),
    numbered from `first`. devices=0: one device per message. `schools`: how many
    schools the devices are spread over (`school_of`)."""
    for m in range(messages):
        index = offset + (m % devices if devices else m)
        device = f"bench-{index:06d}"
        school = school_of(index, schools)
        n0 = first + (m // devices) * per_message if devices else first
        samples = [_sample(index, n0 + n) for n in range(per_message)]
        body = {
            "schema": 1,
            "device": device,
            "school": school,
            "agent_version": "bench",
            "samples": samples,
        }
        yield f"lordi/v1/{school}/{device}/telemetry", json.dumps(body).encode()


def _run_json(argv: list[str], env: dict[str, str], timeout_s: float = 300) -> dict[str, Any]:
    out = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout_s, check=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def _publish(
    cfg: BenchConfig,
    env: dict[str, str],
    messages: int,
    per_message: int,
    offset: int,
    *,
    devices: int,
    first: int = 0,
) -> dict[str, Any]:
    argv = [str(a) for a in (cfg.broker_port, messages, per_message, offset, devices, first)]
    schools = str(cfg.schools)
    return _run_json([sys.executable, "-c", PUBLISHER, *argv, cfg.ca_file, schools], env)


def _stored(stack: LocalStack) -> int:
    vm.force_flush(stack.vm_url)
    rows = vm.query(stack.vm_url, f"sum(count_over_time(device_report{{{_SCHOOL_MATCH}}}[60d]))")
    return int(rows[0]["value"]) if rows else 0


def _wait_stored(stack: LocalStack, expected: int, timeout_s: float = 300) -> int:
    deadline = time.monotonic() + timeout_s
    stored = _stored(stack)
    while stored < expected and time.monotonic() < deadline:
        time.sleep(0.05)  # the run's end is known to within this
        stored = _stored(stack)
    return stored


def _lines(  # noqa: PLR0917 - the shape of the run
    messages: int, per_message: int, offset: int, devices: int, first: int, schools: int
) -> list[str]:
    lines: list[str] = []
    for _, body in payloads(messages, per_message, offset, devices, first, schools):
        doc = json.loads(body)
        for s in doc["samples"]:
            # As the collectors write it to VictoriaMetrics (the stack's
            # `[store] string_fields = false`).
            lines += to_lines(
                doc["school"],
                doc["device"],
                "bench",
                Sample.model_validate(s, strict=False),
                strings=False,
            )
    return lines


def _post_all(url: str, lines: list[str], connections: int) -> None:
    step = 5000 * 3  # 5,000 samples of 3 lines: the collector's batch
    chunks = ["\n".join(lines[i : i + step]).encode() for i in range(0, len(lines), step)]

    def post(chunk: bytes) -> None:
        req = urllib.request.Request(  # noqa: S310 - the local stack's http URL
            f"{url}/api/v2/write?precision=ms", data=chunk, method="POST"
        )
        with urllib.request.urlopen(req, timeout=60):  # noqa: S310
            pass

    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(post, chunks))


def store_limit(writes: list[dict[str, Any]], rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The store's limit beside each pipeline round: the mean of the writes just
    before and just after it; the figure is the median write (as before), and each
    round's ratio is to its own neighbours."""
    median = sorted(writes, key=lambda m: m["samples_per_s"])[len(writes) // 2]
    beside = [(a["samples_per_s"] + b["samples_per_s"]) / 2 for a, b in itertools.pairwise(writes)]
    ratios = [r["samples_per_s"] / limit for r, limit in zip(rounds, beside, strict=True)]
    return {
        **median,
        "runs_samples_per_s": [m["samples_per_s"] for m in writes],
        "beside_rounds_samples_per_s": [round(b) for b in beside],
        "rounds_ratio": [round(r, 3) for r in ratios],
        "ratio": round(statistics.median(ratios), 3),
    }


def _store_write(  # noqa: PLR0917 - the shape of the run
    stack: LocalStack,
    messages: int,
    per_message: int,
    devices: int,
    connections: int,
    schools: int,
    offset: int,
) -> dict[str, Any]:
    if devices:  # the same shape as the pipeline: series known before the timed part
        _post_all(stack.vm_url, _lines(devices, 1, offset, devices, -1, schools), connections)
    lines = _lines(messages, per_message, offset, devices, 0, schools)
    vm_pid = stack.procs["victoria-metrics"].pid
    t0, cpu0 = time.monotonic(), _cpu_s(vm_pid)
    _post_all(stack.vm_url, lines, connections)
    seconds = time.monotonic() - t0
    samples = messages * per_message
    return {
        "store_cpu_us_per_sample": round((_cpu_s(vm_pid) - cpu0) * 1e6 / samples, 1),
        "samples_per_s": round(samples / seconds),
        "lines_per_sample": round(len(lines) / samples, 2),
        "connections": connections,
        "seconds": round(seconds, 2),
    }


def broker_limit(
    cfg: BenchConfig, env: dict[str, str], messages: int, per_message: int, devices: int
) -> dict[str, Any]:
    counter = subprocess.Popen(
        [sys.executable, "-c", COUNTER, str(cfg.broker_port), str(messages), cfg.ca_file],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert counter.stdout is not None
    counter.stdout.readline()  # ready
    time.sleep(0.3)
    _publish(cfg, env, messages, per_message, 2 * 10**5, devices=devices)
    result = json.loads(counter.communicate(timeout=300)[0].strip().splitlines()[-1])
    return {
        "messages_per_s": round(result["received"] / result["seconds"]),
        "samples_per_s": round(result["received"] * per_message / result["seconds"]),
        "received": result["received"],
    }


def _start_collectors(
    stack: LocalStack, cfg: BenchConfig, work: Path, count: int, *, per_device: int,
    metrics_ports: list[int],
) -> list[tuple[Any, Path]]:  # fmt: skip
    # The rate limit stays on (its cost is part of the figure), with a burst that
    # lets every bench device send all its messages at once.
    burst = max(RateLimitSettings().device_burst_messages, per_device + 1)
    started = []
    for i in range(count):
        env = {
            # Alerts on: plain subscriptions (docs/alerts.md): one collector, or one
            # per partition, each subscribed to its own schools.
            "LORDI_COLLECTOR_MQTT__SHARE_GROUP": "" if cfg.alerts != "off" else "bench",
            "LORDI_COLLECTOR_INGEST__RATE_LIMIT__DEVICE_BURST_MESSAGES": str(burst),
            **cfg.env,
        }
        if cfg.partitions > 1:
            env["LORDI_COLLECTOR_PARTITION__COUNT"] = str(cfg.partitions)
            env["LORDI_COLLECTOR_PARTITION__INDEX"] = str(i)
        # Metrics on, as the region runs them (docs/operations.md), each its own port:
        # the bench reads its threads' CPU there; --metrics scrapes every second too.
        env["LORDI_COLLECTOR_METRICS__ENABLED"] = "true"
        env["LORDI_COLLECTOR_METRICS__PORT"] = str(metrics_ports[i])
        collector = CollectorProcess.start(
            stack,
            f"bench-collector-{i}",
            env=env,
            stats_interval_s=600,
            log=work / f"collector-{i}.log",
        )
        started.append((collector.proc, collector.log))
    return started


class _Scraper:
    """--metrics: every collector's /metrics read once a second (Prometheus' default
    is 60 s; a busy one scrapes every 15 s), and the last reading's accepted samples."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.seconds: list[float] = []
        self.accepted: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for port in self.ports:
                started = time.perf_counter()
                _get_metrics(port)
                self.seconds.append(time.perf_counter() - started)

    def __enter__(self) -> _Scraper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        for port in self.ports:
            self.accepted.append(_counter(port, "lordi_collector_samples_accepted"))

    def figures(self) -> dict[str, Any]:
        return {
            "scrapes": len(self.seconds),
            "scrape_ms_mean": round(1000 * sum(self.seconds) / max(len(self.seconds), 1), 2),
            "samples_accepted": self.accepted,
        }


def _get_metrics(port: int) -> str:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


def _counter(port: int, family: str) -> float:
    """An unlabelled counter's value in a collector's /metrics."""
    return next(
        sample.value
        for metrics in text_string_to_metric_families(_get_metrics(port))
        if metrics.name == family  # the parser drops _total from the family's name
        for sample in metrics.samples
        if sample.name == f"{family}_total"
    )


def _wait_metrics(port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            _get_metrics(port)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _thread_cpu(port: int) -> dict[str, float]:
    """A collector's CPU seconds so far, per thread (collector/threadcpu.py), and
    `rules` the seconds spent in its alerting (lordi_collector_rules_seconds' sum:
    time in the commit, CPU and waits, not CPU of a thread of its own)."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(_get_metrics(port)):
        if family.name == "lordi_collector_thread_cpu_seconds":  # the parser drops _total
            for sample in family.samples:
                out[sample.labels["thread"]] = sample.value
        elif family.name == "lordi_collector_rules_seconds":
            for sample in family.samples:
                if sample.name.endswith("_sum"):
                    out["(rules, in the commit)"] = sample.value
    return out


def _thread_figures(rounds: list[dict[str, Any]], stored: int) -> dict[str, dict[str, float]]:
    """Per collector, its threads' CPU µs per stored sample over the timed rounds,
    busiest first (threads under 0.05 µs left out: idle)."""
    out = {}
    for i in range(len(rounds[0]["threads_s"])):
        used: Counter[str] = Counter()
        for r in rounds:
            used.update(r["threads_s"][i])  # seconds in that round, by thread
        per_sample = {name: s * 1e6 / max(stored, 1) for name, s in used.most_common()}
        out[f"collector-{i}"] = {n: round(us, 2) for n, us in per_sample.items() if us >= 0.05}
    return out


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, threads included) used so far by a process."""
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(t.user + t.system)


def pipeline(
    stack: LocalStack,
    cfg: BenchConfig,
    env: dict[str, str],
    work: Path,
    messages: int,
    *,
    per_message: int,
    collectors: int = 1,
    devices: int = 0,
    metrics: bool = False,
    rounds: int = 1,
    between: Callable[[int], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`rounds` times the same messages (each round's samples later than the
    previous round's) through the same collectors; `between(k)` runs before round k
    and once after the last (the store's limit, measured next to each round)."""
    per_device = -(-messages // devices) if devices else 1
    ports = [free_port() for _ in range(collectors)]
    started = _start_collectors(
        stack, cfg, work, collectors, per_device=per_device * rounds, metrics_ports=ports
    )
    scraper = _Scraper(ports)
    for port in ports:  # serving: the collectors have started their threads
        _wait_metrics(port)
    expected = messages * per_message
    done: list[dict[str, Any]] = []
    beside: list[dict[str, Any]] = []
    try:
        # The store's first write before the warm-up: the alerts its samples open are
        # mailed while the first round runs, as on a school's first morning.
        if between is not None:
            beside.append(between(0))
        warm = 0
        if devices:  # one untimed message per device: the store creates its series
            base = _stored(stack)
            _publish(cfg, env, devices, 1, 0, devices=devices, first=-1)
            warm = _wait_stored(stack, base + devices) - base
        watched = {
            "victoria-metrics": stack.procs["victoria-metrics"].pid,
            "mosquitto": stack.procs["mosquitto"].pid,
        }
        watched |= {f"collector-{i}": proc.pid for i, (proc, _) in enumerate(started)}
        with scraper if metrics else contextlib.nullcontext():
            for k in range(rounds):
                if k and between is not None:
                    beside.append(between(k))
                first = k * per_device * per_message if devices else k * per_message
                done.append(_round(stack, cfg, env, watched, ports, messages, per_message,
                                   devices, first))  # fmt: skip
            if between is not None:
                beside.append(between(rounds))
    finally:
        for proc, _ in started:
            proc.terminate()
        for proc, _ in started:
            proc.wait(30)
    stats = [
        json.loads(log.read_text().rsplit("stopped; stats ", 1)[1].splitlines()[0])
        for _, log in started
    ]
    written = sum(s["samples_written"] for s in stats) - warm
    stored = sum(r["stored"] for r in done)
    seconds = sum(r["seconds"] for r in done)
    cpu = {name: sum(r["cpu_s"][name] for r in done) for name in done[0]["cpu_s"]}
    threads = _thread_figures(done, stored)
    extra = {"metrics": scraper.figures()} if metrics else {}
    return extra | {
        "rounds": [
            {"samples_per_s": round(r["stored"] / r["seconds"]), "seconds": round(r["seconds"], 2)}
            for r in done
        ],
        "samples_per_s": round(stored / seconds),
        "messages_per_s": round(messages * stored / expected / seconds),
        "seconds": round(seconds, 2),
        "sent": expected * rounds,
        "acked_by_broker": sum(r["acked"] for r in done) * per_message,
        "stored": stored,
        "lost": expected * rounds - stored,
        "duplicated": max(0, written - expected * rounds),
        "collectors": collectors,
        "written_by_collector": [s["samples_written"] for s in stats],
        "collector_stats": stats,
        # Where the two cores went during the timed part (the store's query for the
        # count is in victoria-metrics' figure): CPU microseconds per stored sample.
        "cpu_us_per_sample": {k: round(v * 1e6 / max(stored, 1), 1) for k, v in cpu.items()},
        # The collectors' CPU above, per thread (mqtt-network: paho's reading, TLS and
        # acknowledgements; ingest: decoding, validation; writer-N: HTTP to the store;
        # the commit and its rules run in the writer that completes a batch's order).
        "collector_threads_cpu_us_per_sample": threads,
        "cpu_busy_share": round(sum(cpu.values()) / seconds / (os.cpu_count() or 1), 2),
        "beside": beside,
    }


def _round(  # noqa: PLR0917 - the shape of the run
    stack: LocalStack,
    cfg: BenchConfig,
    env: dict[str, str],
    watched: dict[str, int],
    ports: list[int],
    messages: int,
    per_message: int,
    devices: int,
    first: int,
) -> dict[str, Any]:
    """One timed publication through the running collectors: its samples counted
    back in the store (over what it held before: earlier rounds, the store's writes)."""
    base = _stored(stack)
    cpu0 = {name: _cpu_s(pid) for name, pid in watched.items()}
    threads0 = [_thread_cpu(port) for port in ports]
    published = _publish(cfg, env, messages, per_message, 0, devices=devices, first=first)
    stored = _wait_stored(stack, base + messages * per_message) - base
    # From the publisher's first publish (CLOCK_MONOTONIC is shared by processes
    # on Linux): its start-up and payload building are not the collector's time.
    seconds = time.monotonic() - published["t0"]
    cpu = {name: _cpu_s(pid) - cpu0[name] for name, pid in watched.items()}
    cpu["publisher"] = published["cpu_s"]
    threads = [
        {name: value - before.get(name, 0.0) for name, value in _thread_cpu(port).items()}
        for port, before in zip(ports, threads0, strict=True)
    ]
    return {"stored": stored, "seconds": seconds, "cpu_s": cpu, "threads_s": threads,
            "acked": published["acked"]}  # fmt: skip


def run(
    messages: int = 4000,
    per_message: int = 50,
    collectors: int = 1,
    devices: int = 200,
    metrics: bool = False,
    *,
    tls: bool = False,
    alerts: AlertsKind = "off",
    rounds: int = ROUNDS,
) -> dict[str, Any]:
    """The pipeline in `rounds` rounds with the store's own write before each and
    after the last, then the broker's limit, on one private stack.
    `lordi bench ingest` runs one collector per core (the deployment of
    docs/scaling.md) with alerts off; with `alerts` sqlite one collector (a plain
    subscription: the rules need a school's telemetry in one process); with `alerts`
    postgresql and several collectors, each owns a partition of the schools (the
    devices spread over `SCHOOLS_PER_COLLECTOR` schools per collector, placed by the
    registry) and they share the PostgreSQL alert store. `tls`: every MQTT
    connection (publishers, counting subscriber, collectors) over TLS."""
    if alerts == "sqlite" and collectors != 1:
        raise ValueError(
            f"--alerts sqlite needs --collectors 1 (got {collectors}): SQLite is one "
            "collector's alert store; several collectors share --alerts postgresql"
        )
    partitions = collectors if alerts == "postgresql" and collectors > 1 else 1
    schools = SCHOOLS_PER_COLLECTOR * partitions if partitions > 1 else 1
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    connections = collectors * IngestSettings().store_connections
    with tempfile.TemporaryDirectory(prefix="lordi-bench-") as tmp:
        stack = LocalStack()
        try:
            with bench_config(
                stack, Path(tmp), tls=tls, alerts=alerts, schools=bench_schools(schools),
                partitions=partitions,
            ) as cfg:  # fmt: skip
                stack.start()

                def write(k: int) -> dict[str, Any]:  # each for devices of its own
                    return _store_write(stack, messages, per_message, devices, connections,
                                        schools, 10**5 * (k + 1))  # fmt: skip

                result = pipeline(
                    stack, cfg, env, Path(tmp), messages=messages, per_message=per_message,
                    collectors=collectors, devices=devices, metrics=metrics, rounds=rounds,
                    between=write,
                )  # fmt: skip
                configuration = cfg.figures()
                broker = broker_limit(cfg, env, messages, per_message, devices)
        finally:
            stack.stop()
    store = store_limit(result.pop("beside"), result["rounds"])
    limit = min(broker["samples_per_s"], store["samples_per_s"])
    return {
        "configuration": configuration,
        "pipeline": result,
        "broker_limit": broker,
        "store_limit": store,
        "samples_per_s": result["samples_per_s"],
        "messages_per_s": result["messages_per_s"],
        "lost": result["lost"],
        "duplicated": result["duplicated"],
        "ratio_to_limit": round(result["samples_per_s"] / limit, 3),
        # Each round against the store's writes next to it, the median of rounds.
        "ratio_to_store_limit": store["ratio"],
        "samples_per_message": per_message,
        "devices": devices or "one per message",
        "collectors": collectors,
        "partitions": partitions,
        "schools": schools,
        "cores": os.cpu_count(),
        "meets_targets": {
            # Alerts off: the ingest path's own target. With TLS and alerts (issue 19):
            # at least 0.45 of the store's own limit measured in the same run.
            "samples_per_s": alerts != "off" or result["samples_per_s"] >= 50_000,
            "ratio_to_limit": result["samples_per_s"] / limit >= 0.5
            if alerts == "off"
            else store["ratio"] >= 0.45,
            "lost": result["lost"] == 0,
            "duplicated": result["duplicated"] == 0,
        },
    }
