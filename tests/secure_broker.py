"""A real Mosquitto running the committed production config, for the security tests.

`provisioning/mosquitto/mosquitto.conf` is copied with only its paths and ports
rewritten (same conventions as `lordi.stack`: a temporary folder, free loopback
ports, a child process in its own session). A throwaway CA and server
certificate are made with the `openssl` command line tool.
"""

from __future__ import annotations

import argparse
import getpass
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import load_config
from lordi import provision
from lordi.stack import START_TIMEOUT_S, _binary, _port_open, _wait, free_port

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "provisioning" / "mosquitto" / "mosquitto.conf"
ACL_TEMPLATE = REPO / "provisioning" / "mosquitto" / "acl"


def make_certs(folder: Path) -> None:
    """ca.crt/ca.key and server.crt/server.key valid for 127.0.0.1 and localhost."""
    openssl = _binary("openssl")

    def run(*argv: str) -> None:
        subprocess.run([openssl, *argv], check=True, capture_output=True, cwd=folder)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=Lordi test CA", "-keyout", "ca.key", "-out", "ca.crt")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt")


def localize(conf: str, root: Path, tls_port: int) -> str:
    """The production config with this run's paths and port; everything else kept."""
    paths = {
        "cafile": root / "certs" / "ca.crt",
        "certfile": root / "certs" / "server.crt",
        "keyfile": root / "certs" / "server.key",
        "password_file": root / "broker" / "passwd",
        "acl_file": root / "broker" / "acl",
        "pid_file": root / "mosquitto.pid",
        "persistence_location": f"{root / 'data'}/",
    }
    out = []
    for original in conf.splitlines():
        key, _, value = original.partition(" ")
        line = original
        if key in paths:
            line = f"{key} {paths[key]}"
        elif key == "listener" and value.strip() == "8883":
            line = f"listener {tls_port} 127.0.0.1"
        elif key == "log_dest":
            line = f"log_dest file {root / 'mosquitto.log'}"
        out.append(line)
    # Started as root, mosquitto would switch to the `mosquitto` user, which cannot
    # read this private folder.
    out.append(f"user {getpass.getuser()}")
    return "\n".join(out) + "\n"


@dataclass
class SecureBroker:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lordi-secure-")))
    tls_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def broker_dir(self) -> Path:
        return self.root / "broker"

    @property
    def ca_file(self) -> Path:
        return self.root / "certs" / "ca.crt"

    def start(self) -> None:
        for sub in ("certs", "broker", "data"):
            (self.root / sub).mkdir(exist_ok=True)
        make_certs(self.root / "certs")
        shutil.copy(ACL_TEMPLATE, self.broker_dir / "acl")
        (self.broker_dir / "passwd").touch(mode=0o640)
        conf = self.root / "mosquitto.conf"
        conf.write_text(localize(CONF.read_text(encoding="utf-8"), self.root, self.tls_port))
        with (self.root / "stdout.log").open("ab") as out:
            self.proc = subprocess.Popen(
                [_binary("mosquitto"), "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        _wait(lambda: _port_open(self.tls_port), "mosquitto", self.proc, self.root / "mosquitto.log")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        shutil.rmtree(self.root, ignore_errors=True)


class Client:
    """A paho MQTT v5 client recording CONNACK, PUBACK and SUBACK reason codes."""

    def __init__(self, broker: SecureBroker, user: str | None, password: str | None = None,
                 *, tls: bool = True, client_id: str = "") -> None:
        self.connack: ReasonCode | None = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.pubacks: dict[int, ReasonCode] = {}
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.messages: list[tuple[str, bytes]] = []
        self._acked = threading.Condition()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if user is not None:
            c.username_pw_set(user, password)
        if tls:
            c.tls_set(ca_certs=str(broker.ca_file))
        c.on_connect = self._on_connect
        c.on_disconnect = lambda *_: self.disconnected.set()
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe
        c.on_message = lambda _c, _u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.client = c
        self.error: Exception | None = None
        try:
            c.connect("127.0.0.1", broker.tls_port, keepalive=30)
        except Exception as exc:  # e.g. TLS handshake refused
            self.error = exc
            self.disconnected.set()
            return
        c.loop_start()

    def _on_connect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        self.connack = rc
        if not rc.is_failure:
            self.connected.set()
        else:
            self.disconnected.set()

    def _on_publish(self, _c: object, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
        with self._acked:
            self.pubacks[mid] = rc
            self._acked.notify_all()

    def _on_subscribe(self, _c: object, _u: object, mid: int, rcs: list[ReasonCode],
                      _p: object) -> None:
        with self._acked:
            self.subacks[mid] = rcs
            self._acked.notify_all()

    def wait_connack(self, timeout_s: float = START_TIMEOUT_S / 3) -> ReasonCode | None:
        """The CONNACK's reason code, or None when the broker closed without one (or
        said nothing for `timeout_s`). Returns as soon as the connection is accepted
        or ended: a refused CONNACK (`_on_connect` sets `disconnected`) or a broker
        that drops the connection does not wait for `connected` to time out."""
        deadline = time.monotonic() + timeout_s
        while not (self.connected.is_set() or self.disconnected.is_set()):
            if time.monotonic() >= deadline:
                break
            time.sleep(0.01)
        return self.connack

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> ReasonCode:
        """QoS 1 publish; the PUBACK's reason code (0x87 when the ACL refuses)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self._acked:
            assert self._acked.wait_for(lambda: info.mid in self.pubacks, 10), "no PUBACK"
            return self.pubacks[info.mid]

    def subscribe(self, topic: str) -> list[ReasonCode]:
        _, mid = self.client.subscribe(topic, qos=1)
        assert mid is not None
        with self._acked:
            assert self._acked.wait_for(lambda: mid in self.subacks, 10), "no SUBACK"
            return self.subacks[mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def lordi_provision(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="lordi")
    provision.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["provision", *argv])
    return int(args.func(args))


def eventually(check: Callable[[], bool], timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


class Fleet:
    def __init__(self, broker: SecureBroker, root: Path) -> None:
        self.broker, self.root = broker, root
        self.clients: list[Client] = []
        self.registry = root / "schools.toml"
        shutil.copy(REPO / "provisioning" / "schools.toml", self.registry)

    def enrol(self, school: str) -> tuple[str, str, Path]:
        """(device, password, agent.toml) through the CLI, broker reloaded by PID."""
        out = self.root / f"agent-{uuid.uuid4().hex}.toml"
        assert lordi_provision(
            "device", "--school", school, "--registry", str(self.registry), "--out", str(out),
            "--host", "127.0.0.1", "--port", str(self.broker.tls_port),
            "--ca-file", str(self.broker.ca_file), "--broker-dir", str(self.broker.broker_dir),
            "--broker-pid", str(self.broker.pid),
        ) == 0
        cfg = load_config(out, env={})
        return cfg.device, cfg.mqtt.password, out

    def connect(self, user: str | None, password: str | None = None, *, tls: bool = True,
                client_id: str = "") -> Client:
        client = Client(self.broker, user, password, tls=tls, client_id=client_id)
        self.clients.append(client)
        return client

    def connected(self, user: str, password: str, client_id: str = "") -> Client:
        """Connect, retrying while a SIGHUP reload may still be in progress."""
        rc = None
        for _ in range(50):
            client = self.connect(user, password, client_id=client_id)
            rc = client.wait_connack()
            if rc is not None and not rc.is_failure:
                return client
            client.close()
            time.sleep(0.1)
        raise AssertionError(f"{user} could not connect: {rc}")
