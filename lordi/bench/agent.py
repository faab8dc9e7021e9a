"""`lordi bench agent --json`: the real agent's footprint, beside Glances, in one run.

Both run as separate processes against the same private Mosquitto and are measured
the same way from /proc: resident memory, CPU, and voluntary context switches (a
sleeping process that wakes up, works and sleeps again makes one).

The agent runs `lordi-agent run --replay` on a laptop capture (a ThinkPad battery
and an Intel Wi-Fi link from tests/replay), so it parses real inputs; reports are
every 30 s (the shortest allowed) to get several in the window, looks every 30 s as
by default. Glances runs with its default plugins and `--export mqtt`, refreshed
every 30 s, i.e. the same cadence.

`cut_off=True` measures the other daily case: the capture's network is a school
network but the broker's port is closed, so the agent spools, retries with its
backoff and, at each report, checks the default gateway (`agent/gateway.py`: a
`ping` process when the system has one).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from lordi.bench.procstat import WakeCounter, read
from lordi.stack import LocalStack, free_port

TARGETS = {
    "rss_mb": 30.0,
    "cpu_ms_per_report": 30.0,
    "wakeups_per_min": 2.0,
    "bytes_per_report": 2048.0,
}
REPLAY = Path(__file__).resolve().parents[2] / "tests" / "replay" / "linux"
CAPTURE_PARTS = [  # (case, file) combined into one laptop
    ("thinkpad_42T4977_energy_cycle0_degraded", "sys/class/power_supply/BAT0/uevent"),
    ("proc_wlp2s0_intel7265", "proc/net/wireless"),
    ("iw_intel_wlp0s20f3_5GHz_VHT80", "commands/iw-dev-link.txt"),
]
MQTT_OVERHEAD = 10  # fixed header, topic length, packet id, properties length


class Counter:
    """Counts messages and payload bytes arriving on a topic filter."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages = 0
        self.bytes = 0
        self.wire_bytes = 0
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages += 1
            self.bytes += len(msg.payload)
            self.wire_bytes += len(msg.payload) + len(msg.topic) + MQTT_OVERHEAD

    def snapshot(self) -> tuple[int, int, int]:
        with self._lock:
            return self.messages, self.bytes, self.wire_bytes

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def build_capture(folder: Path) -> Path:
    (folder / "platform").parent.mkdir(parents=True, exist_ok=True)
    (folder / "platform").write_text("linux\n")
    for case, rel in CAPTURE_PARTS:
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPLAY / case / rel, target)
    return folder


def measure(
    proc: subprocess.Popen[bytes], counter: Counter, warmup_s: float, seconds: float, cycle_s: float
) -> dict[str, Any]:
    time.sleep(warmup_s)
    if proc.poll() is not None:
        raise RuntimeError(f"process exited early with code {proc.returncode}")
    s0, c0 = read(proc.pid), counter.snapshot()
    with WakeCounter(proc.pid) as wakes:
        time.sleep(seconds)
    s1, c1 = read(proc.pid), counter.snapshot()
    # The agent's reports are its messages; Glances' are its refresh cycles.
    reports = seconds / cycle_s if cycle_s else max(1, c1[0] - c0[0])
    minutes = seconds / 60
    return {
        "rss_mb": round(s1.rss_kb / 1024, 1),
        "peak_rss_mb": round(s1.hwm_kb / 1024, 1),
        "cpu_ms_per_report": round((s1.cpu_s - s0.cpu_s) * 1000 / reports, 2),
        "cpu_s_per_min": round((s1.cpu_s - s0.cpu_s) / minutes, 3),
        "wakeups_per_min": round(wakes.wakeups / minutes, 1),
        "context_switches_per_min": round((s1.switches - s0.switches) / minutes, 1),
        "messages_per_report": round((c1[0] - c0[0]) / reports, 1),
        "bytes_per_report": round((c1[1] - c0[1]) / reports, 0),
        "wire_bytes_per_report": round((c1[2] - c0[2]) / reports, 0),
        "reports_in_window": round(reports, 1),
    }


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def bench_agent(
    stack: LocalStack, work: Path, seconds: float, warmup_s: float, cut_off: bool = False
) -> dict[str, Any]:
    capture = build_capture(work / "capture")
    env = {
        **os.environ,
        "LORDI_AGENT_SCHOOL": "0341234A",
        "LORDI_AGENT_DEVICE": "bench",
        "LORDI_AGENT_MQTT__PORT": str(free_port() if cut_off else stack.mqtt_port),
        "LORDI_AGENT_SPOOL__PATH": str(work / "spool.sqlite3"),
        "LORDI_AGENT_CADENCE__REPORT_INTERVAL_S": "30",
        "LORDI_AGENT_CADENCE__WIFI_INTERVAL_S": "30",
        "LORDI_AGENT_PRIVACY__SCHOOL_SSIDS": "HOME5",
    }
    counter = Counter(stack.mqtt_port, "lordi/v1/+/+/telemetry")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "run", "--replay", str(capture)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Cut off, nothing arrives: count the reports by the clock (30 s apart).
        return measure(proc, counter, warmup_s, seconds, cycle_s=30 if cut_off else 0)
    finally:
        _stop(proc)
        counter.close()


def bench_glances(stack: LocalStack, work: Path, seconds: float, warmup_s: float) -> dict[str, Any]:
    conf = work / "glances.conf"
    conf.write_text(
        f"[mqtt]\nhost=127.0.0.1\nport={stack.mqtt_port}\ntls=false\n"
        "user=bench\npassword=bench\ntopic=glances\ntopic_structure=per-plugin\n"
    )
    counter = Counter(stack.mqtt_port, "glances/#")
    glances = [
        sys.executable,
        "-m",
        "glances",
        "-C",
        str(conf),
        "--export",
        "mqtt",
        "--quiet",
        "-t",
        "30",
    ]
    proc = subprocess.Popen(
        glances,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HOME": str(work)},
    )
    try:
        result = measure(proc, counter, warmup_s, seconds, cycle_s=30)
        result["version"] = _glances_version()
        return result
    finally:
        _stop(proc)
        counter.close()


def _glances_version() -> str:
    try:
        from importlib.metadata import version  # noqa: PLC0415

        return version("glances")
    except Exception:
        return "unknown"


def run(
    seconds: float = 120, warmup_s: float = 15, with_glances: bool = True, cut_off: bool = False
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="lordi-bench-"))
    try:
        with LocalStack() as stack:
            agent = bench_agent(stack, work, seconds, warmup_s, cut_off)
            glances = bench_glances(stack, work, seconds, warmup_s) if with_glances else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    verdict = {k: agent[k] <= limit for k, limit in TARGETS.items()}
    if cut_off:
        verdict["bytes_per_report"] = True  # nothing is sent: the spool keeps it
    return {
        "agent": agent,
        "glances": glances,
        "targets": TARGETS,
        "meets_targets": verdict,
        "window_s": seconds,
        "cut_off": cut_off,
        "cores": os.cpu_count(),
    }
