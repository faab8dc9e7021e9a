"""Processes the fault tests start, kill and restart: the collector as its own
process, a private PostgreSQL cluster, and a publisher that keeps sending telemetry
through broker restarts. Each one is stopped by the test that started it (by PID)."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from lordi import vm
from lordi.stack import free_port
from tests.helpers import envelope, minimal_sample

REPO = Path(__file__).resolve().parents[2]


# -- what the store holds ---------------------------------------------------------------


def stored_timestamps(vm_url: str, school: str) -> dict[str, list[int]]:
    """device -> timestamps (ms) of its `device_report` points, as VictoriaMetrics exports them."""
    vm.force_flush(vm_url)
    out: dict[str, list[int]] = {}
    for row in vm.export(vm_url, f'device_report{{school="{school}"}}'):
        out.setdefault(row["metric"]["device"], []).extend(row["timestamps"])
    return out


def stored_total(vm_url: str, school: str) -> int:
    return sum(len(t) for t in stored_timestamps(vm_url, school).values())


def wait_until(pred: Callable[[], bool], timeout_s: float, step_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step_s)
    return pred()


def wait_stored_total(vm_url: str, school: str, expected: int, timeout_s: float) -> int:
    n = [0]

    def enough() -> bool:
        n[0] = stored_total(vm_url, school)
        return n[0] >= expected

    wait_until(enough, timeout_s, 0.5)
    return n[0]


def duplicates(stamps: dict[str, list[int]]) -> int:
    return sum(len(t) - len(set(t)) for t in stamps.values())


# -- a publisher that outlives broker restarts ------------------------------------------------


# The suite's own sample and envelope builders, under the names these tests use.
sample_at = minimal_sample


class SteadyPublisher:
    """Publishes QoS 1 telemetry at a steady pace from a thread, like a fleet would:
    `devices` devices, `per_message` samples per message, every sample a distinct
    timestamp. A message counts as sent only once the broker acknowledged it; one that
    was not (broker down, connection lost) is sent again, as an agent's spool does."""

    def __init__(
        self,
        port: int,
        school: str,
        *,
        devices: int = 5,
        per_message: int = 5,
        interval_s: float = 0.02,
        start: datetime | None = None,
        health: Callable[[int], float] | None = None,
    ) -> None:
        self.school, self.devices, self.per_message = school, devices, per_message
        self.health = health or (lambda _device: 80.0)  # device number -> battery health %
        self.interval_s = interval_s
        self.start_ts = start or (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
        self.sent_samples = 0
        self.sent_messages = 0
        self.resent = 0
        self._stop = threading.Event()
        self._connected = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"steady-{school}", protocol=mqtt.MQTTv5
        )
        client.on_connect = lambda c, u, f, r, p: self._connected.set()
        client.on_disconnect = lambda c, u, f, r, p: self._connected.clear()
        client.reconnect_delay_set(min_delay=1, max_delay=2)
        self._client = client
        self._port = port
        self._thread = threading.Thread(target=self._run, name="steady-publisher", daemon=True)

    def begin(self) -> None:
        self._client.connect_async("127.0.0.1", self._port)
        self._client.loop_start()
        self._thread.start()

    def _message(self, n: int) -> bytes:
        device = f"dev-{n % self.devices}"
        first = (n // self.devices) * self.per_message
        health = self.health(n % self.devices)
        samples = [
            sample_at(self.start_ts + timedelta(seconds=first + k), health)
            for k in range(self.per_message)
        ]
        return envelope(self.school, device, samples)

    def _send(self, payload: bytes) -> bool:
        """True once the broker acknowledged the message; False if stopped before."""
        topic_device = json.loads(payload)["device"]
        topic = f"lordi/v1/{self.school}/{topic_device}/telemetry"
        while not self._stop.is_set():
            if not self._connected.wait(0.5):
                continue
            info = self._client.publish(topic, payload, qos=1)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(10)
                if info.is_published():
                    return True
            self.resent += 1
            time.sleep(0.2)
        return False

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            # Counted once acknowledged, even if `finish` was called meanwhile: the
            # broker has it, so the collector stores it (it used to be left out of
            # `sent_samples`, and a test found one message more stored than sent).
            if self._send(self._message(n)):
                n += 1
                self.sent_messages = n
                self.sent_samples = n * self.per_message
            if self._stop.is_set():
                break
            time.sleep(self.interval_s)

    def finish(self, timeout_s: float = 30) -> None:
        """Stop after the message in hand was acknowledged (or the time ran out)."""
        self._stop.set()
        if self._thread.is_alive():  # not begun: nothing to wait for
            self._thread.join(timeout_s)
        self._client.disconnect()
        self._client.loop_stop()


# -- a private PostgreSQL cluster -------------------------------------------------------------


def postgres_bin() -> Path:
    """The newest installed PostgreSQL server's bin folder (Debian layout)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        which = shutil.which("initdb")
        if which is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found")
        return Path(which).parent
    return found[-1].parent


class PostgresCluster:
    """initdb + pg_ctl in a temporary folder, on a free loopback port, trust auth.
    As root, the server runs as the `postgres` account (initdb refuses root)."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.root = Path(tempfile.mkdtemp(prefix="lordi-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.log = self.root / "postgres.log"
        self._user = None
        if os.geteuid() == 0:
            name = "postgres" if _user_exists("postgres") else "nobody"
            self._user = name
            entry = pwd.getpwnam(name)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o755)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout_s: float = 120) -> None:
        cmd = [str(self.bin / argv[0]), *argv[1:]]
        if self._user is not None:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
            cwd=self.root,
        )
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{argv[0]} failed: {done.stdout}{done.stderr}\n{tail}")

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def start(self) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
