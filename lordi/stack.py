"""A private local stack: Mosquitto, VictoriaMetrics and InfluxDB 1.x.

Each server runs as a child process with its own config and data in a temporary
folder, on free loopback ports, so tests and the demo never touch the machine's
shared services. `LocalStack` is a context manager; `stop()` terminates what it
started (and only that) and removes the folder unless asked to keep it.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

START_TIMEOUT_S = 30.0


class StackError(RuntimeError):
    """A server of the local stack is missing or did not start."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if not found:
        raise StackError(f"{name} not found: run `make bootstrap` (installs the Debian packages)")
    return found


def _wait(check: object, what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise StackError(f"{what} exited with code {proc.returncode}:\n{tail}")
        if callable(check) and check():
            return
        time.sleep(0.1)
    raise StackError(f"{what} did not become ready within {START_TIMEOUT_S:.0f} s (log: {log})")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback URL we built
            return bool(200 <= resp.status < 300)
    except OSError:
        return False


@dataclass
class LocalStack:
    """Start with `with LocalStack() as stack:` or `stack.start()` / `stack.stop()`."""

    keep_files: bool = False
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lordi-stack-")))
    mqtt_port: int = field(default_factory=free_port)
    vm_port: int = field(default_factory=free_port)
    influx_port: int = field(default_factory=free_port)
    influx_rpc_port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # `enable_tls()`: Mosquitto also listens with TLS here (a private CA's certificate).
    tls_port: int | None = None

    @property
    def vm_url(self) -> str:
        return f"http://127.0.0.1:{self.vm_port}"

    @property
    def influx_url(self) -> str:
        return f"http://127.0.0.1:{self.influx_port}"

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        try:
            self.start_mosquitto()
            self.start_victoriametrics()
            self.start_influxdb()
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, argv: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.root / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc, log

    @property
    def ca_file(self) -> Path:
        return self.root / "tls" / "ca.crt"

    def enable_tls(self) -> Path:
        """Before `start_mosquitto`: a second listener with TLS (a private CA and a
        server certificate for 127.0.0.1, as `lordi provision` makes them); returns
        the CA file clients check the broker against."""
        from lordi.pki import make_ca, make_server  # noqa: PLC0415 - openssl only here

        folder = self.root / "tls"
        folder.mkdir(exist_ok=True)
        make_ca(folder / "ca.key", self.ca_file, "Lordi stack CA")
        make_server(folder / "ca.key", self.ca_file, folder / "server.key",
                    folder / "server.crt", ["127.0.0.1", "localhost"])  # fmt: skip
        self.tls_port = free_port()
        return self.ca_file

    def mosquitto_conf(self) -> Path:
        data = self.root / "mosquitto"
        data.mkdir(exist_ok=True)
        conf = self.root / "mosquitto.conf"
        # `user`: mosquitto started as root otherwise switches to the `mosquitto`
        # user, which cannot write our private data folder.
        conf.write_text(
            f"listener {self.mqtt_port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"user {getpass.getuser()}\n"
            "persistence true\n"
            f"persistence_location {data}/\n"
            "autosave_interval 5\n"
            # QoS 1 telemetry: queue generously for a slow or restarting collector
            # instead of dropping (design.md: drops beyond max_queued_messages).
            "max_queued_messages 1000000\n"
            "max_inflight_messages 0\n"
            # $SYS figures every second (default 10 s): the collector's broker gauges
            # ([metrics] broker_sys) move within a test's patience.
            "sys_interval 1\n"
            f"log_dest file {self.root / 'mosquitto.log'}\n"
            "log_type error\nlog_type warning\n" + self._tls_listener(),
            encoding="utf-8",
        )
        return conf

    def _tls_listener(self) -> str:
        if self.tls_port is None:
            return ""
        tls = self.root / "tls"
        return (
            f"listener {self.tls_port} 127.0.0.1\n"
            f"cafile {self.ca_file}\ncertfile {tls / 'server.crt'}\nkeyfile {tls / 'server.key'}\n"
        )

    def start_mosquitto(self) -> None:
        proc, log = self._spawn(
            "mosquitto", [_binary("mosquitto"), "-c", str(self.mosquitto_conf())]
        )
        _wait(lambda: _port_open(self.mqtt_port), "mosquitto", proc, self.root / "mosquitto.log")
        del log

    def start_victoriametrics(self) -> None:
        proc, log = self._spawn(
            "victoria-metrics",
            [
                _binary("victoria-metrics"),
                f"-storageDataPath={self.root / 'vm'}",
                f"-httpListenAddr=127.0.0.1:{self.vm_port}",
                "-retentionPeriod=100y",
                "-search.latencyOffset=0s",
            # A resent message writes the same points again: keep one per timestamp
            # (InfluxDB does this by itself; VictoriaMetrics needs to be told).
            "-dedup.minScrapeInterval=1ms",
                "-loggerLevel=WARN",
            ],
        )
        _wait(lambda: _http_ok(f"{self.vm_url}/health"), "victoria-metrics", proc, log)

    def start_influxdb(self) -> None:
        conf = self.root / "influxdb.conf"
        base = self.root / "influxdb"
        conf.write_text(
            "reporting-disabled = true\n"
            f'bind-address = "127.0.0.1:{self.influx_rpc_port}"\n'
            f'[meta]\n  dir = "{base}/meta"\n'
            f'[data]\n  dir = "{base}/data"\n  wal-dir = "{base}/wal"\n'
            "  query-log-enabled = false\n"
            f'[http]\n  bind-address = "127.0.0.1:{self.influx_port}"\n'
            "  log-enabled = false\n"
            "[monitor]\n  store-enabled = false\n",
            encoding="utf-8",
        )
        proc, log = self._spawn("influxdb", [_binary("influxd"), "-config", str(conf)])
        _wait(lambda: _http_ok(f"{self.influx_url}/ping"), "influxdb", proc, log)

    def stop_process(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def stop(self) -> None:
        for name in list(self.procs):
            self.stop_process(name)
        if not self.keep_files:
            shutil.rmtree(self.root, ignore_errors=True)

    def env(self) -> dict[str, str]:
        """Environment a collector needs to use this stack."""
        return {
            **os.environ,
            "LORDI_COLLECTOR_MQTT__PORT": str(self.mqtt_port),
            "LORDI_COLLECTOR_MQTT__HOST": "127.0.0.1",
            "LORDI_COLLECTOR_STORE__URL": self.vm_url,
            # VictoriaMetrics 1.79 keeps string fields as series of zeros (lineproto.py)
            "LORDI_COLLECTOR_STORE__STRING_FIELDS": "false",
        }
