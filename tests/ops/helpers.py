"""Real servers for the pipeline-alert tests: vmalert (Debian's /usr/bin/vmalert)
on a test copy of provisioning/vmalert/pipeline-rules.yml, an Alertmanager-compatible
receiver recording what vmalert sends, and idle MQTT clients standing for laptops."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from lordi.stack import free_port
from tests.metrics.helpers import eventually, get

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "provisioning" / "vmalert" / "pipeline-rules.yml"
VMALERT = "/usr/bin/vmalert"
# The line that starts LordiSchoolSilent's school-hours clause (it runs to the end
# of the expression): the test copy drops it, tests check it on its own.
SCHOOL_HOURS_MARK = "# school hours, Europe/Paris"


def load_rules(path: Path = RULES) -> dict[str, dict[str, Any]]:
    """The rules of the file's one group, by alert name."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    [group] = doc["groups"]
    return {rule["alert"]: rule for rule in group["rules"]}


def split_school_hours(expr: str) -> tuple[str, str]:
    """(the expression without its school-hours clause, the clause as a query of its
    own: the parenthesised part after `and on()`)."""
    assert expr.count(SCHOOL_HOURS_MARK) == 1, "LordiSchoolSilent lost its school-hours mark"
    head, tail = expr.split(SCHOOL_HOURS_MARK)
    clause = tail.split("\n", 1)[1].strip()
    assert clause.startswith("and on() ("), clause[:40]
    return head.rstrip(), clause.removeprefix("and on()").strip()


def rules_for_test(dest: Path, for_: str = "0s", interval: str = "1s") -> Path:
    """provisioning/vmalert/pipeline-rules.yml with every `for` set to `for_`, the
    group evaluated every `interval`, and LordiSchoolSilent's school-hours clause
    removed (the test may run at any hour). Nothing else changes: the expressions
    are the shipped file's, character for character."""
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    [group] = doc["groups"]
    group["interval"] = interval
    for rule in group["rules"]:
        rule["for"] = for_
        if rule["alert"] == "LordiSchoolSilent":
            rule["expr"] = split_school_hours(rule["expr"])[0] + "\n"
    dest.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return dest


# --- the receiver (Alertmanager API v2: POST /api/v2/alerts) ------------------------


@dataclass
class Received:
    at: float  # time.monotonic() when it arrived
    wall: float  # time.time() then
    alert: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.alert["labels"]["alertname"])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.alert["labels"])

    @property
    def firing(self) -> bool:
        """vmalert sends a firing alert with `endsAt` ahead of now, a resolved one
        with `endsAt` at its resolution."""
        ends = self.alert.get("endsAt")
        return not ends or datetime.fromisoformat(ends).timestamp() > self.wall


@dataclass
class Receiver:
    port: int
    received: list[Received] = field(default_factory=list)
    posts: list[str] = field(default_factory=list)  # request paths, for the record
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alerts(
        self, name: str, since: float = 0.0, firing: bool | None = True, **labels: str
    ) -> list[Received]:
        """The alerts `name` (with `labels`) received since `since` (monotonic),
        firing (True), resolved (False) or both (None)."""
        with self.lock:
            got = [r for r in self.received if r.name == name and r.at >= since]
        return [
            r for r in got
            if (firing is None or r.firing == firing)
            and all(r.labels.get(k) == v for k, v in labels.items())
        ]  # fmt: skip

    def wait(
        self, name: str, since: float = 0.0, firing: bool = True, timeout_s: float = 20,
        **labels: str,
    ) -> list[Received]:  # fmt: skip
        """`alerts(...)`, waiting up to `timeout_s` for one."""
        found: list[Received] = eventually(
            lambda: self.alerts(name, since, firing, **labels), timeout_s, 0.1
        )
        return found

    def names(self, since: float = 0.0) -> set[str]:
        """The alerts received firing since `since`."""
        with self.lock:
            return {r.name for r in self.received if r.at >= since and r.firing}


def _handler(state: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"[]")
            now, wall = time.monotonic(), time.time()
            with state.lock:
                state.posts.append(self.path)
                if self.path == "/api/v2/alerts":
                    state.received.extend(Received(now, wall, alert) for alert in body)
            self.send_response(200 if self.path == "/api/v2/alerts" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver(port=free_port())
    httpd = ThreadingHTTPServer(("127.0.0.1", state.port), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


# --- vmalert ------------------------------------------------------------------------


@contextmanager
def running_vmalert(
    root: Path, rules: Path, datasource: str, notifier: str, *extra: str
) -> Iterator[subprocess.Popen[bytes]]:
    """/usr/bin/vmalert on `rules`, querying `datasource`, notifying `notifier`,
    evaluating every second; stopped (by its PID) on exit."""
    port = free_port()
    log_path = root / "vmalert.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [VMALERT, f"-rule={rules}", f"-datasource.url={datasource}",
             f"-notifier.url={notifier}", "-evaluationInterval=1s",
             f"-httpListenAddr=127.0.0.1:{port}", "-loggerLevel=WARN", *extra],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        up = eventually(
            lambda: proc.poll() is not None or get(f"http://127.0.0.1:{port}/health", 1)[0] == 200,
            30,
        )
        assert up and proc.poll() is None, log_path.read_text()[-2000:]
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


# --- laptops: idle MQTT clients -------------------------------------------------------


@contextmanager
def idle_clients(mqtt_port: int, count: int) -> Iterator[list[mqtt.Client]]:
    """`count` MQTT clients connected to the broker and sending nothing (laptops
    between two reports); disconnected on exit."""
    clients = []
    try:
        for i in range(count):
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=f"idle-laptop-{i}", protocol=mqtt.MQTTv5
            )
            client.connect("127.0.0.1", mqtt_port, keepalive=120)
            client.loop_start()
            clients.append(client)
        assert eventually(lambda: all(c.is_connected() for c in clients), 10)
        yield clients
    finally:
        for client in clients:
            client.disconnect()
            client.loop_stop()
