"""`lordi bench peer --json`: what a user would pick instead of our collector, on the
same workload in the same run, with the ratio.

Peer: Node-RED (the low-code route many IT teams already run) with the MQTT-in node
and node-red-contrib-influxdb's "influxdb batch" node writing to VictoriaMetrics'
InfluxDB 1.x `/write` endpoint; a function node turns each message's samples into
the same three series our collector writes (`device`, `battery`, `wifi`, with the
same tags). It does no schema validation, no dead-letter and acknowledges QoS 1 on
receipt (MQTT.js's default): less work than our collector, and no end-to-end
guarantee. Installed by npm into a cache folder outside the repository
(`$XDG_CACHE_HOME/lordi-bench/node-red`) on first use: never needed by the tests.

Workload: `lordi.bench.ingest`'s messages (N messages of K samples, QoS 1, every
PUBACK awaited, published by the same publisher script); our side is
`lordi.bench.ingest.run` on the same sizes. Each pipeline gets its own private
stack of the same configuration. Stored = samples counted back in
VictoriaMetrics (`device_report` points); lost = sent - stored once nothing
has arrived for `settle_s`.

Crash test, both pipelines, same messages: once 30 % of the samples are stored,
the pipeline is killed with SIGKILL and started again with the same MQTT client id
(persistent session: the broker redelivers what was not acknowledged); lost =
what never reached the store.

Other candidates, not measured here: Telegraf (no Debian 12 package; its MQTT
consumer and InfluxDB output are the closest design to ours), mqtt2influxdb (maps
one message to one point: it cannot expand a batch of samples without code).
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lordi import vm
from lordi.bench import ingest
from lordi.bench.procstat import read
from lordi.bench.storm import start_collector
from lordi.stack import LocalStack, free_port

# The same messages as `lordi bench ingest` (its `payloads`), published the same way:
# QoS 1 with `lordi.bench.mqttpub`, every PUBACK awaited.
PUBLISHER = """
import json, sys
from lordi.bench.ingest import payloads
from lordi.bench.mqttpub import publish_all
port, messages, per_message = (int(a) for a in sys.argv[1:4])
kwargs = json.loads(sys.argv[4])
data = list(payloads(messages, per_message, **kwargs))
print(json.dumps(publish_all(port, data)), flush=True)
"""
DEVICES = 200  # devices sharing the messages, as `lordi bench ingest` does by default

NODE_RED = "4.1.15"
INFLUXDB_NODE = "0.7.0"

# msg.payload is the parsed envelope; the output is one array of points per message.
TO_POINTS = """
const env = msg.payload;
const out = [];
const num = (o, keys, f) => {
  for (const k of keys) if (o[k] !== null && o[k] !== undefined) f[k] = o[k];
};
for (const s of env.samples || []) {
  const ts = new Date(s.ts);
  const tags = {school: env.school, device: env.device};
  out.push({measurement: "device", tags, timestamp: ts,
            fields: {report: 1, batteries: (s.batteries || []).length, platform: s.os.platform}});
  for (const b of s.batteries || []) {
    const f = {present: b.present ? 1 : 0, plugged: b.plugged ? 1 : 0, status: b.status};
    num(b, ["percent", "design_capacity_mwh", "full_capacity_mwh", "health_pct",
            "voltage_mv", "temperature_c", "cycle_count"], f);
    const t = Object.assign({battery: b.name}, tags);
    if (b.model) t.model = b.model;
    out.push({measurement: "battery", tags: t, fields: f, timestamp: ts});
  }
  if (s.wifi) {
    const w = s.wifi;
    const f = {connected: w.connected ? 1 : 0};
    num(w, ["rssi_dbm", "signal_pct", "noise_dbm", "band_ghz", "rx_rate_mbps",
            "tx_rate_mbps", "rssi_min_dbm", "connected_s", "channel", "disconnects"], f);
    const t = Object.assign({}, tags);
    if (w.bssid_hash) t.bssid_hash = w.bssid_hash;
    out.push({measurement: "wifi", tags: t, fields: f, timestamp: ts});
  }
}
msg.payload = out;
return msg;
"""


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "lordi-bench" / "node-red"


def install_node_red(folder: Path) -> Path:
    """Node-RED and the InfluxDB nodes, pinned, installed once into `folder`."""
    red = folder / "node_modules" / "node-red" / "red.js"
    influx = folder / "node_modules" / "node-red-contrib-influxdb" / "package.json"
    if red.exists() and influx.exists():
        return red
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found: install Node.js (Debian: nodejs npm) to run this peer")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--omit=dev",
            "--prefix",
            str(folder),
            f"node-red@{NODE_RED}",
            f"node-red-contrib-influxdb@{INFLUXDB_NODE}",
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    return red


def flows(mqtt_port: int, vm_port: int) -> list[dict[str, Any]]:
    return [
        {"id": "tab", "type": "tab", "label": "lordi"},
        {
            "id": "broker",
            "type": "mqtt-broker",
            "broker": "127.0.0.1",
            "port": str(mqtt_port),
            "clientid": "peer-node-red",
            "autoConnect": True,
            "usetls": False,
            "protocolVersion": "5",
            "keepalive": "60",
            "cleansession": False,
            "sessionExpiry": "3600",
        },
        {
            "id": "in",
            "type": "mqtt in",
            "z": "tab",
            "topic": "lordi/v1/+/+/telemetry",
            "qos": "1",
            "datatype": "json",
            "broker": "broker",
            "nl": False,
            "rap": True,
            "rh": 0,
            "inputs": 0,
            "wires": [["fn"]],
        },
        {
            "id": "fn",
            "type": "function",
            "z": "tab",
            "func": TO_POINTS,
            "outputs": 1,
            "wires": [["out"]],
        },
        {
            "id": "influx",
            "type": "influxdb",
            "hostname": "127.0.0.1",
            "port": str(vm_port),
            "protocol": "http",
            "database": "lordi",
            "influxdbVersion": "1.x",
            "usetls": False,
        },
        {
            "id": "out",
            "type": "influxdb batch",
            "z": "tab",
            "influxdb": "influx",
            "precision": "ms",
            "retentionPolicy": "",
            "wires": [],
        },
    ]


def _settings(userdir: Path, port: int) -> Path:
    settings = userdir / "settings.js"
    settings.write_text(
        "module.exports = {\n"
        f"  uiPort: {port}, uiHost: '127.0.0.1', httpAdminRoot: false, httpNodeRoot: false,\n"
        f"  flowFile: {json.dumps(str(userdir / 'flows.json'))}, credentialSecret: false,\n"
        "  logging: { console: { level: 'info', metrics: false, audit: false } },\n"
        "};\n",
        encoding="utf-8",
    )
    return settings


def _count(stack: LocalStack) -> int:
    vm.force_flush(stack.vm_url)
    rows = vm.query(stack.vm_url, "sum(count_over_time(device_report[400d]))")
    return int(rows[0]["value"]) if rows else 0


def _start_node_red(
    red: Path, stack: LocalStack, work: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    userdir = work / "node-red"
    if not userdir.exists():  # a restart (crash test) keeps the same folder
        userdir.mkdir()
        (userdir / "node_modules").symlink_to(red.parents[1])  # the InfluxDB nodes
    (userdir / "flows.json").write_text(json.dumps(flows(stack.mqtt_port, stack.vm_port)))
    settings = _settings(userdir, free_port())
    log = work / "node-red.log"
    node = shutil.which("node") or "node"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [node, str(red), "--userDir", str(userdir), "--settings", str(settings)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + 60
    while b"Connected to broker" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"Node-RED did not connect:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)
    time.sleep(1.0)  # it subscribes after connecting; nothing says when that is done
    return proc, log


def _workload() -> dict[str, Any]:
    """`ingest.payloads`' keyword for the device count, when it has one."""
    params = inspect.signature(ingest.payloads).parameters
    return {"devices": DEVICES} if "devices" in params else {}


def _publisher(stack: LocalStack, messages: int, per_message: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    argv = [str(stack.mqtt_port), str(messages), str(per_message), json.dumps(_workload())]
    return subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, *argv], env=env, stdout=subprocess.PIPE, text=True
    )


def _settle(stack: LocalStack, expected: int, settle_s: float, deadline: float) -> int:
    """The store's count once it reached `expected` or stopped moving for `settle_s`."""
    stored, last, last_change = 0, -1, time.monotonic()
    while time.monotonic() - last_change < settle_s and time.monotonic() < deadline:
        time.sleep(0.5)
        stored = _count(stack)
        if stored != last:
            last, last_change = stored, time.monotonic()
        if stored >= expected:
            break
    return stored


def crash(
    start: Callable[[LocalStack, Path], Callable[[], None]],
    messages: int,
    per_message: int,
    kill_at: float = 0.3,
    timeout_s: float = 600.0,
) -> dict[str, Any]:
    """A pipeline killed with SIGKILL once `kill_at` of the samples are stored, then
    started again (same MQTT client id: the broker resumes its session). Lost =
    what never reached the store. `start` returns a function that kills."""
    expected = messages * per_message
    with tempfile.TemporaryDirectory(prefix="lordi-crash-") as tmp, LocalStack() as stack:
        kill = start(stack, Path(tmp))
        pub = _publisher(stack, messages, per_message)
        deadline = time.monotonic() + timeout_s
        at_kill = _count(stack)
        while at_kill < kill_at * expected and time.monotonic() < deadline:
            time.sleep(0.05)
            at_kill = _count(stack)
        kill()
        pub.communicate(timeout=timeout_s)
        stop = start(stack, Path(tmp))
        try:
            stored = _settle(stack, expected, 15.0, deadline)
        finally:
            stop()
    return {"killed_with_stored": at_kill, "stored": stored, "lost": expected - stored}


def _ours(stack: LocalStack, work: Path) -> Callable[[], None]:
    collector = start_collector(stack, "crash")  # same client id at every start
    return lambda: _kill(collector.proc)


def _node_red_proc(stack: LocalStack, work: Path) -> Callable[[], None]:
    proc, _log = _start_node_red(install_node_red(cache_dir()), stack, work)
    return lambda: _kill(proc)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def node_red(
    messages: int, per_message: int, settle_s: float = 15.0, timeout_s: float = 900.0
) -> dict[str, Any]:
    red = install_node_red(cache_dir())
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    expected = messages * per_message
    with tempfile.TemporaryDirectory(prefix="lordi-peer-") as tmp, LocalStack() as stack:
        proc, log = _start_node_red(red, stack, Path(tmp))
        peak_rss = 0.0
        try:
            pub = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    PUBLISHER,
                    str(stack.mqtt_port),
                    str(messages),
                    str(per_message),
                    json.dumps(_workload()),
                ],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            stored, last, last_change = 0, -1, time.monotonic()
            t_last = None
            deadline = time.monotonic() + timeout_s
            while time.monotonic() - last_change < settle_s and time.monotonic() < deadline:
                time.sleep(0.5)
                peak_rss = max(peak_rss, read(proc.pid).rss_kb / 1024)
                stored = _count(stack)
                if stored != last:
                    last, last_change, t_last = stored, time.monotonic(), time.monotonic()
                if stored >= expected:
                    break
            out, _ = pub.communicate(timeout=timeout_s)
            published = json.loads(out.strip().splitlines()[-1])
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        errors = log.read_text(errors="replace").count("[error]")
    seconds = (t_last or time.monotonic()) - published["t0"]
    return {
        "name": f"Node-RED {NODE_RED} + node-red-contrib-influxdb {INFLUXDB_NODE}",
        "samples_per_s": round(stored / seconds) if seconds > 0 else None,
        "seconds": round(seconds, 2),
        "sent": expected,
        "acked_by_broker": published["acked"] * per_message,
        "stored": stored,
        "lost": expected - stored,
        "errors_logged": errors,
        "peak_rss_mb": round(peak_rss, 1),
    }


def run(messages: int = 4000, per_message: int = 50, peers: str = "node-red") -> dict[str, Any]:
    ours = ingest.run(messages, per_message)
    ours_sps = ours["samples_per_s"]
    ours_crash = crash(_ours, messages, per_message)
    results: dict[str, Any] = {}
    for name in filter(None, (p.strip() for p in peers.split(","))):
        if name != "node-red":
            raise ValueError(f"--peers: unknown peer {name!r} (known: node-red)")
        peer = node_red(messages, per_message)
        peer["crash"] = crash(_node_red_proc, messages, per_message)
        peer["ratio_ours_to_peer"] = (
            round(ours_sps / peer["samples_per_s"], 2) if peer["samples_per_s"] else None
        )
        results[name] = peer
    return {
        "workload": {
            "messages": messages,
            "samples_per_message": per_message,
            "samples": messages * per_message,
        },
        "ours": {
            "samples_per_s": ours_sps,
            "lost": ours["lost"],
            "duplicated": ours["duplicated"],
            "broker_limit": ours["broker_limit"],
            "store_limit": ours["store_limit"],
            "crash": ours_crash,
        },
        "peers": results,
        "cores": os.cpu_count(),
        "meets_targets": {
            f"faster_than_{n}": bool(p["samples_per_s"]) and ours_sps > p["samples_per_s"]
            for n, p in results.items()
        }
        | {"ours_lost_nothing": ours["lost"] == 0 and ours_crash["lost"] == 0},
    }


def from_args(args: Any) -> dict[str, Any]:
    """`lordi bench peer`: --messages, --per-message (as ingest), --peers (node-red)."""
    return run(args.messages, args.per_message, args.peers)
