"""`lordi bench ingest --json`: the real collector through the real broker into the
real store, beside the raw limits of the broker and the store measured in the same
run on the same machine.

- pipeline: a publisher process sends N messages of K samples at QoS 1 (every
  PUBACK awaited); a collector process (`lordi-collector run`) validates, writes to
  VictoriaMetrics and acknowledges. Time from the first publish to the last sample
  counted back in the store; lost = sent - stored; duplicated = samples the
  collector wrote more than once (its own counter, read from its final stats line).
- broker limit: the same messages to a subscriber that only counts them.
- store limit: the collector's own line protocol for the same samples, posted in
  bulk (5,000 lines a request) to VictoriaMetrics' /api/v2/write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

from collector.contract import Sample
from collector.lineproto import to_lines
from lordi import vm
from lordi.stack import LocalStack

SCHOOL = "0349999Z"

PUBLISHER = textwrap.dedent('''
    import json, sys, time
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from lordi.bench.ingest import payloads
    port, messages, per_message, offset = (int(a) for a in sys.argv[1:5])
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    data = list(payloads(messages, per_message, offset))
    t0 = time.monotonic()
    infos = [client.publish(topic, body, qos=1) for topic, body in data]
    for info in infos:
        info.wait_for_publish(120)
    print(json.dumps({"t0": t0, "seconds": time.monotonic() - t0,
                      "acked": sum(i.is_published() for i in infos)}), flush=True)
    client.disconnect(); client.loop_stop()
''')

COUNTER = textwrap.dedent('''
    import json, sys, threading, time
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    port, expected = int(sys.argv[1]), int(sys.argv[2])
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
    c.connect("127.0.0.1", port)
    c.subscribe("$share/null/lordi/v1/+/+/telemetry", qos=1)
    c.loop_start()
    print("ready", flush=True)
    done.wait(300)
    print(json.dumps({"received": got[0], "seconds": time.monotonic() - got[1]}), flush=True)
''')


def _sample(device_index: int, n: int) -> dict[str, Any]:
    ts = time.gmtime(time.time() - 86_400 * 3 + n * 60 + device_index % 60)
    return {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", ts),
        "os": {"platform": "windows", "release": "10.0.22631"},
        "batteries": [{"name": "BAT0", "present": True, "status": "discharging",
                       "percent": 71.5, "plugged": False, "design_capacity_mwh": 57020.0,
                       "full_capacity_mwh": 42490.0, "health_pct": 74.52, "cycle_count": 73,
                       "voltage_mv": 11800.0, "temperature_c": 31.4, "model": "01AV430"}],
        "wifi": {"interface": "Wi-Fi", "connected": True, "ssid": "LORDI-EDU",
                 "ssid_state": "school", "on_school_network": True,
                 "bssid_hash": "0123456789abcdef", "rssi_dbm": -61.0, "signal_pct": 78.0,
                 "channel": 36, "band_ghz": 5.0, "rx_rate_mbps": 702.0, "tx_rate_mbps": 866.7,
                 "radio": "802.11ac", "rssi_min_dbm": -70.0, "disconnects": 0,
                 "connected_s": 300.0},
    }


def payloads(messages: int, per_message: int, offset: int = 0) -> Any:
    """(topic, body) per message; device i's samples are a minute apart (unique points)."""
    for m in range(messages):
        device = f"bench-{offset + m:06d}"
        samples = [_sample(offset + m, n) for n in range(per_message)]
        body = {"schema": 1, "device": device, "school": SCHOOL, "agent_version": "bench",
                "samples": samples}
        yield f"lordi/v1/{SCHOOL}/{device}/telemetry", json.dumps(body).encode()


def _run_json(argv: list[str], env: dict[str, str], timeout_s: float = 300) -> dict[str, Any]:
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout_s,
                         check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def store_limit(stack: LocalStack, messages: int, per_message: int) -> dict[str, Any]:
    lines = []
    for _, body in payloads(messages, per_message, offset=10**5):
        doc = json.loads(body)
        for s in doc["samples"]:
            lines += to_lines(SCHOOL, doc["device"], "bench", Sample.model_validate(
                {**s, "ts": s["ts"]}, strict=False))
    chunks = ["\n".join(lines[i:i + 5000]).encode() for i in range(0, len(lines), 5000)]
    t0 = time.monotonic()
    for chunk in chunks:
        req = urllib.request.Request(  # noqa: S310 - the local stack's http URL
            f"{stack.vm_url}/api/v2/write?precision=ms", data=chunk, method="POST")
        with urllib.request.urlopen(req, timeout=60):  # noqa: S310
            pass
    seconds = time.monotonic() - t0
    samples = messages * per_message
    return {"samples_per_s": round(samples / seconds), "lines_per_sample":
            round(len(lines) / samples, 2), "seconds": round(seconds, 2)}


def broker_limit(stack: LocalStack, env: dict[str, str], messages: int,
                 per_message: int) -> dict[str, Any]:
    counter = subprocess.Popen([sys.executable, "-c", COUNTER, str(stack.mqtt_port),
                                str(messages)], env=env, stdout=subprocess.PIPE, text=True)
    assert counter.stdout is not None
    counter.stdout.readline()  # ready
    time.sleep(0.3)
    _run_json([sys.executable, "-c", PUBLISHER, str(stack.mqtt_port), str(messages),
               str(per_message), str(2 * 10**5)], env)
    result = json.loads(counter.communicate(timeout=300)[0].strip().splitlines()[-1])
    return {"messages_per_s": round(result["received"] / result["seconds"]),
            "samples_per_s": round(result["received"] * per_message / result["seconds"]),
            "received": result["received"]}


def pipeline(stack: LocalStack, env: dict[str, str], work: Path, messages: int,
             per_message: int) -> dict[str, Any]:
    log = work / "collector.log"
    cenv = {**stack.env(), "LORDI_COLLECTOR_MQTT__CLIENT_ID": "bench-collector",
            "LORDI_COLLECTOR_MQTT__SHARE_GROUP": "bench"}
    with log.open("wb") as out:
        collector = subprocess.Popen([sys.executable, "-m", "collector.cli", "run",
                                      "--stats-interval", "600"], env=cenv, stdout=out,
                                     stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while b"subscribed to" not in log.read_bytes():
            if time.monotonic() > deadline:
                raise RuntimeError(log.read_text()[-2000:])
            time.sleep(0.1)
        expected = messages * per_message
        t0 = time.monotonic()
        published = _run_json([sys.executable, "-c", PUBLISHER, str(stack.mqtt_port),
                               str(messages), str(per_message), "0"], env)
        stored = 0
        while time.monotonic() - t0 < 300:
            vm.force_flush(stack.vm_url)
            rows = vm.query(stack.vm_url,
                            f'sum(count_over_time(device_report{{school="{SCHOOL}"}}[10d]))')
            stored = int(rows[0]["value"]) if rows else 0
            if stored >= expected:
                break
            time.sleep(0.2)
        # From the publisher's first publish (CLOCK_MONOTONIC is shared by processes
        # on Linux): its start-up and payload building are not the collector's time.
        seconds = time.monotonic() - published["t0"]
    finally:
        collector.terminate()
        collector.wait(30)
    stats = json.loads(log.read_text().rsplit("stopped; stats ", 1)[1].splitlines()[0])
    return {"samples_per_s": round(stored / seconds), "messages_per_s":
            round(messages * stored / expected / seconds), "seconds": round(seconds, 2),
            "sent": expected, "acked_by_broker": published["acked"] * per_message,
            "stored": stored, "lost": expected - stored,
            "duplicated": max(0, stats["samples_written"] - expected),
            "collector_stats": stats}


def run(messages: int = 4000, per_message: int = 50) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    with tempfile.TemporaryDirectory(prefix="lordi-bench-") as tmp, LocalStack() as stack:
        result = pipeline(stack, env, Path(tmp), messages, per_message)
        broker = broker_limit(stack, env, messages, per_message)
        store = store_limit(stack, messages, per_message)
    limit = min(broker["samples_per_s"], store["samples_per_s"])
    return {"pipeline": result, "broker_limit": broker, "store_limit": store,
            "samples_per_s": result["samples_per_s"], "messages_per_s": result["messages_per_s"],
            "lost": result["lost"], "duplicated": result["duplicated"],
            "ratio_to_limit": round(result["samples_per_s"] / limit, 3),
            "samples_per_message": per_message, "cores": os.cpu_count(),
            "meets_targets": {"samples_per_s": result["samples_per_s"] >= 50_000,
                              "ratio_to_limit": result["samples_per_s"] / limit >= 0.5,
                              "lost": result["lost"] == 0}}
