"""Real servers for the metrics tests: private VictoriaMetrics instances (a store to
stop and start again, or a scraper reading provisioning/metrics/scrape.yml), and
plain HTTP to the endpoints."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from lordi import vm
from lordi.stack import LocalStack, free_port

ROOT = Path(__file__).resolve().parents[2]
SCRAPE_CONFIG = ROOT / "provisioning" / "metrics" / "scrape.yml"


def get(url: str, timeout_s: float = 5) -> tuple[int, str]:
    """(status, body) of a GET; (0, reason) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - loopback
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def eventually(check: Callable[[], Any], timeout_s: float = 30, every_s: float = 0.2) -> Any:
    """The first truthy value of `check()`, or the last value after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every_s)


class PrivateVM:
    """A VictoriaMetrics of the test's own (folder, free port), to stop and restart."""

    def __init__(self, root: Path, *extra: str) -> None:
        self.root = root
        self.port = free_port()
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.root / "victoria-metrics.log").open("ab")
        with log:
            self.proc = subprocess.Popen(
                ["/usr/bin/victoria-metrics", f"-storageDataPath={self.root / 'data'}",
                 f"-httpListenAddr=127.0.0.1:{self.port}", "-search.latencyOffset=0s",
                 "-retentionPeriod=100y", "-loggerLevel=WARN", *self.extra],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        ok = eventually(lambda: get(f"{self.url}/health", 1)[0] == 200, 30)
        assert ok, (self.root / "victoria-metrics.log").read_text()[-2000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def query(self, promql: str) -> list[dict[str, Any]]:
        vm.force_flush(self.url)
        return vm.query(self.url, promql)

    def value(self, promql: str) -> float | None:
        """The single value of an instant query (None: no series)."""
        rows = self.query(promql)
        assert len(rows) <= 1, rows
        return rows[0]["value"] if rows else None


@contextmanager
def private_vm(root: Path, *extra: str) -> Iterator[PrivateVM]:
    root.mkdir(parents=True, exist_ok=True)
    server = PrivateVM(root, *extra)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def scrape_config(path: Path, job: str, target: str, interval: str = "1s") -> Path:
    """provisioning/metrics/scrape.yml with only `job`, scraping `target` every
    `interval` (the shipped file's own job and settings otherwise)."""
    doc = yaml.safe_load(SCRAPE_CONFIG.read_text(encoding="utf-8"))
    doc["global"]["scrape_interval"] = interval
    doc["global"]["scrape_timeout"] = interval
    jobs = [j for j in doc["scrape_configs"] if j["job_name"] == job]
    assert len(jobs) == 1, f"{SCRAPE_CONFIG.name} has no job {job}"
    jobs[0]["static_configs"] = [{"targets": [target]}]
    doc["scrape_configs"] = jobs
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def forget_session(stack: LocalStack, client_id: str) -> None:
    """End a collector's persistent session (and its subscription) on the broker, so
    that it queues nothing for the rest of the test session."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    client.connect("127.0.0.1", stack.mqtt_port, clean_start=True, properties=props)
    client.loop_start()
    time.sleep(0.3)
    client.disconnect()
    client.loop_stop()
