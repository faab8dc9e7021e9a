"""`lordi bench enrol --json`: a morning of self-enrolment at region scale, and what
the broker pays per identity.

What is real: Mosquitto 2.0 with the committed `provisioning/mosquitto/mosquitto.conf`
as `lordi server init` writes it (`serverfiles.mosquitto_conf`: only paths and port
changed, listener on loopback), the committed ACL, TLS with a CA and server
certificate made by `lordi.pki` (EC P-256, as in production); the enrolment service
is `lordi enrol serve` in its own process (unchanged code; its methods are wrapped
with timers, see below); school secrets and school configurations are made with
`lordi enrol secret create` and `lordi enrol school-config`; each laptop runs the
agent's own first-start path, `agent.enrol.ensure_identity` (-> `request_once`: one
TLS connection as the school's enrolment account, its own password made and hashed
on the laptop, the answer saved to its identity file, retries with the agent's
backoff), `--in-flight` of them at a time in threads of this process, the rest
waiting for their turn (all arrive at once). Above ~300 in flight the bench's own
paho clients (hundreds of threads in one process) fail their TLS connections (the
broker logs "Protocol error"; as many `mosquitto_sub` processes connect fine): a
limit of this driver, not of the broker or the service.

What is generated: the `--existing` identities already in the broker's password file
(and in the enrolment store, as a service that enrolled them would have them) share
ONE `$7$` hash made by `agent.enrol.mosquitto_hash`, under different user names
(`<UAI>/d-<12 digits>`): the broker parses and keeps every line, so memory and
reload cost are those of distinct hashes; only the PBKDF2 work saved is not.

Figures:
- `broker`: Mosquitto's resident memory with only the service accounts and with
  `--existing` identities (difference per identity), its start time (process start
  to a first accepted log-in) and its SIGHUP reload time (signal to a probe account
  accepted with the password changed in the same write, polled every 20 ms), with
  the broker's CPU per reload;
- `enrolment`: wall time from the first laptop starting to the last one holding its
  identity, enrolments/s, latency per laptop (its own exchange, from its start, not
  from the queue), the service's batches (count, size) and, per batch, where the
  service's time went: `_judge` (store look-ups), the store's insert, the password
  file's rewrite (probe line removed) and append, SIGHUP to probe accepted (the
  service's own `broker_accepts`, which polls every 0.1 s): timers wrapped around
  those functions in the service process, the code itself unchanged; CPU seconds
  of the broker, the service and the laptops (this process) from /proc;
- `morning_32000`: 32,000 laptops extrapolated two ways: at the measured rate, and
  as batches of the measured mean size times the measured mean batch cost (and the
  reload's share of it). A real morning spreads arrivals: smaller batches, the same
  cost per batch, so the batch figure is the one to scale with.
- `dynsec` (`--dynsec`): the alternative that was measured and rejected
  (lordi/enrol/passwd.py): Mosquitto's dynamic-security plugin holding `--existing`
  clients, each with its own role (2 ACLs); start time, memory, and the time of one
  `createRole` + `createClient` message through `$CONTROL/dynamic-security/v1`, with
  the time a laptop's log-in waits meanwhile.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import getpass
import io
import itertools
import json
import logging
import math
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

from agent.enrol import mosquitto_hash
from lordi.bench.procstat import TICKS_PER_S, read
from lordi.enrol import passwd
from lordi.enrol.service import PROBE_USER, mqtt_client
from lordi.enrol.settings import MqttSettings
from lordi.pki import make_ca, make_server
from lordi.provision import PASSWD_FILE, locked
from lordi.serverfiles import Layout, Settings, mosquitto_conf
from lordi.stack import _binary, free_port

REPO = Path(__file__).resolve().parents[2]
PROVISIONING = REPO / "provisioning"
MORNING = 32_000
ADMIN, ENROL = "lordi-admin", "lordi-enrol"
DYNSEC_PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
DYNSEC_TOPIC = "$CONTROL/dynamic-security/v1"


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def schools() -> list[str]:
    """The UAI codes of the committed sample registry (5 schools)."""
    data = tomllib.loads((PROVISIONING / "schools.toml").read_text(encoding="utf-8"))
    return sorted(data["schools"])


def existing_users(count: int, uais: list[str]) -> list[str]:
    return [f"{uais[i % len(uais)]}/d-{i:012d}" for i in range(count)]


class Broker:
    """A private Mosquitto running the production configuration on a loopback port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.layout = Layout(root=root)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.passwords = {ADMIN: secrets.token_urlsafe(24), ENROL: secrets.token_urlsafe(24)}
        for folder in ("/etc/mosquitto/lordi", "/etc/mosquitto/certs", "/var/lib/mosquitto",
                       "/var/log/mosquitto", "/run/mosquitto"):
            self.layout.at(folder).mkdir(parents=True, exist_ok=True)
        certs = self.layout.at("/etc/mosquitto/certs")
        make_ca(certs / "ca.key", certs / "ca.crt")
        make_server(certs / "ca.key", certs / "ca.crt", certs / "server.key",
                    certs / "server.crt", ["localhost", "127.0.0.1"])
        shutil.copy(PROVISIONING / "mosquitto" / "acl", self.broker_dir / "acl")
        sample = (PROVISIONING / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
        conf = mosquitto_conf(
            sample, Settings(["localhost"], "bench@localhost", "bench@localhost", self.port),
            self.layout,
        )
        # Loopback only; started as root, Mosquitto would switch to the `mosquitto`
        # user, which cannot read this private folder.
        conf = conf.replace(f"\nlistener {self.port}\n", f"\nlistener {self.port} 127.0.0.1\n")
        conf += f"user {getpass.getuser()}\n"
        self.conf = root / "mosquitto.conf"
        self.conf.write_text(conf, encoding="utf-8")

    @property
    def broker_dir(self) -> Path:
        return self.layout.at("/etc/mosquitto/lordi")

    @property
    def passwd_file(self) -> Path:
        return self.broker_dir / PASSWD_FILE

    @property
    def ca_file(self) -> Path:
        return self.layout.at("/etc/mosquitto/certs/ca.crt")

    @property
    def pid_file(self) -> Path:
        return self.layout.at("/run/mosquitto/mosquitto.pid")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def mqtt(self, user: str = ADMIN, password: str | None = None) -> MqttSettings:
        return MqttSettings(
            host="127.0.0.1", port=self.port, tls=True, ca_file=str(self.ca_file),
            username=user, password=self.passwords[user] if password is None else password,
        )

    def write_passwd(self, users: list[str], hashed: str) -> None:
        """The service accounts, then `users` sharing the one hash `hashed`."""
        lines = [passwd.hash_line(u, pw) for u, pw in self.passwords.items()]
        lines += [f"{u}:{hashed}" for u in users]
        self.passwd_file.write_text("".join(f"{ln}\n" for ln in lines), encoding="utf-8")
        self.passwd_file.chmod(0o640)

    def start(self, conf: Path | None = None, user: str = ADMIN,
              password: str | None = None) -> float:
        """Seconds from the process's start to a first accepted log-in."""
        shutil.rmtree(self.layout.at("/var/lib/mosquitto"), ignore_errors=True)
        self.layout.at("/var/lib/mosquitto").mkdir()
        started = time.perf_counter()
        with (self.root / "stdout.log").open("ab") as out:
            self.proc = subprocess.Popen(
                [_binary("mosquitto"), "-c", str(conf or self.conf)], stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.pid_file.write_text(f"{self.proc.pid}\n")
        settings = self.mqtt(user, password)
        deadline = started + 120
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with code {self.proc.returncode}: "
                                   f"see {self.root}")
            if login(settings, 2.0):
                return time.perf_counter() - started
            time.sleep(0.02)
        raise RuntimeError("mosquitto did not accept a log-in within 120 s")

    def reload(self) -> tuple[float, float]:
        """(seconds from SIGHUP to the probe's new password accepted, broker CPU s)."""
        probe = secrets.token_urlsafe(24)
        with locked(self.broker_dir):
            passwd.remove(self.passwd_file, {PROBE_USER})
            passwd.append(self.passwd_file, [passwd.hash_line(PROBE_USER, probe)])
        cpu = read(self.pid).cpu_s
        started = time.perf_counter()
        os.kill(self.pid, signal.SIGHUP)
        settings = self.mqtt(ADMIN).model_copy(update={"username": PROBE_USER,
                                                       "password": probe})
        while not login(settings, 30.0):
            if time.perf_counter() - started > 60:
                raise RuntimeError("the broker did not take the probe within 60 s of SIGHUP")
            time.sleep(0.02)
        return time.perf_counter() - started, read(self.pid).cpu_s - cpu

    def rss_mb(self) -> tuple[float, float]:
        """(resident, peak resident) in MB."""
        sample = read(self.pid)
        return round(sample.rss_kb / 1024, 1), round(sample.hwm_kb / 1024, 1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


def process_cpu_s(pid: int) -> float:
    """User + system CPU of the whole process, threads that ended included (/proc
    stat, 10 ms ticks): the laptops' and the probes' threads come and go."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def login(settings: MqttSettings, timeout_s: float) -> bool:
    """Whether the broker answers a CONNECT as `settings.username` with success."""
    box: dict[str, bool] = {}

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        box["ok"] = not reason.is_failure

    client = mqtt_client(settings, "")
    client.disable_logger()  # a refused log-in is an answer here, not an error
    client.connect_timeout = timeout_s  # TCP and TLS handshake (paho's default: 5 s)
    client.on_connect = on_connect
    try:
        client.connect(settings.host, settings.port, keepalive=10)
    except OSError:
        return False
    deadline = time.monotonic() + timeout_s
    try:
        while "ok" not in box and time.monotonic() < deadline:
            if client.loop(timeout=0.02) != 0 and "ok" not in box:
                return False  # closed without a CONNACK
    finally:
        client.disconnect()
        with contextlib.suppress(OSError):
            client.loop(timeout=0.01)
    return box.get("ok", False)


def broker_figures(broker: Broker, existing: list[str], hashed: str,
                   reloads: int = 3) -> dict[str, Any]:
    """Start time, memory and reload time with no identity, then with `existing`
    (the broker is left running with them)."""
    out: dict[str, Any] = {}
    for label, users in (("empty", []), ("existing", existing)):
        broker.write_passwd(users, hashed)
        if label == "existing":
            broker.stop()
        start_s = broker.start()
        rss, _ = broker.rss_mb()
        timings = [broker.reload() for _ in range(reloads)]
        rss_after, hwm = broker.rss_mb()
        out[label] = {
            "identities": len(users),
            "password_file_mb": round(broker.passwd_file.stat().st_size / 2**20, 1),
            "start_s": round(start_s, 3),
            "rss_mb": rss,
            "rss_mb_after_reloads": rss_after,
            "peak_rss_mb": hwm,
            "reload_s": [round(s, 3) for s, _ in timings],
            "reload_cpu_s": [round(c, 3) for _, c in timings],
        }
    empty, full = out["empty"], out["existing"]
    if existing:
        out["rss_bytes_per_identity"] = round(
            (full["rss_mb"] - empty["rss_mb"]) * 2**20 / len(existing)
        )
    out["reload_s_median"] = round(statistics.median(full["reload_s"]), 3)
    return out


# -- the enrolment service in its own process, timed ------------------------------------

SERVE_FLAG = "--timed-serve"


def serve_timed(config: Path, out: Path) -> int:
    """`lordi enrol serve --config CONFIG` with timers around the service's steps;
    each batch's figures are written to `out` (JSON) when it stops (SIGTERM)."""
    from lordi import cli  # noqa: PLC0415
    from lordi.enrol import service  # noqa: PLC0415
    from lordi.enrol.store import EnrolStore  # noqa: PLC0415

    batches: list[dict[str, Any]] = []
    current: dict[str, float] = {}

    def timed(owner: Any, name: str, key: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = original(*args, **kwargs)
            finally:
                current[key] = current.get(key, 0.0) + time.perf_counter() - started
            if key == "probe_s" and not result:
                current["probe_failed"] = current.get("probe_failed", 0.0) + 1
            return result

        setattr(owner, name, wrapper)

    handle = service.EnrolService.handle

    def timed_handle(self: service.EnrolService, batch: list[tuple[str, bytes]]) -> None:
        current.clear()
        before = self.enrolled
        at, started = time.time(), time.perf_counter()
        try:
            handle(self, batch)
        finally:
            batches.append({"at": at, "requests": len(batch), "enrolled": self.enrolled - before,
                            "handle_s": time.perf_counter() - started, **current})

    service.EnrolService.handle = timed_handle  # type: ignore[method-assign]
    timed(service.EnrolService, "_judge", "judge_s")
    timed(service.EnrolService, "_commit", "commit_s")
    timed(EnrolStore, "add_enrolments", "store_s")
    timed(passwd, "remove", "passwd_remove_s")
    timed(passwd, "append", "passwd_append_s")
    timed(service.EnrolService, "_reload", "sighup_s")
    timed(service, "broker_accepts", "probe_s")
    try:
        return cli.main(["enrol", "serve", "--config", str(config)])
    finally:
        out.write_text(json.dumps(batches), encoding="utf-8")


def _write_enrol_toml(broker: Broker, root: Path, burst: int) -> Path:
    config = root / "enrol.toml"
    shutil.copy(PROVISIONING / "schools.toml", root / "schools.toml")
    # Production defaults (batch_window_s, batch_max, per_minute) except the burst,
    # raised when one school gets more laptops than the default burst of 2,000.
    config.write_text(
        f'store_url = "sqlite:///{root / "enrol.sqlite3"}"\n'
        f'registry = "{root / "schools.toml"}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\ntls = true\n'
        f'ca_file = "{broker.ca_file}"\nusername = "{ENROL}"\n'
        f'password = "{broker.passwords[ENROL]}"\n'
        f'[broker]\ndir = "{broker.broker_dir}"\npid_file = "{broker.pid_file}"\n'
        f"[limits]\nburst = {burst}\n",
        encoding="utf-8",
    )
    config.chmod(0o600)
    return config


def _lordi(*argv: str) -> str:
    from lordi.cli import main  # noqa: PLC0415

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    if code != 0:
        raise RuntimeError(f"lordi {' '.join(argv[:3])} failed ({code}): {out.getvalue()}")
    return out.getvalue()


def _prefill_store(url: str, users: list[str], hashed: str) -> None:
    """The enrolment store as it would be after enrolling `users` (one insert)."""
    from lordi.enrol.store import EnrolStore, enrolments, now  # noqa: PLC0415

    store = EnrolStore(url)
    store.create_tables()
    stamp = now()
    rows = [{"device": u.split("/")[1], "school": u.split("/")[0], "secret_id": "existing",
             "request_id": f"existing-{i:016d}", "enrolled_at": stamp,
             "passwd_line": f"{u}:{hashed}"} for i, u in enumerate(users)]
    with store.engine.begin() as conn:
        for i in range(0, len(rows), 50_000):
            conn.execute(enrolments.insert(), rows[i:i + 50_000])
    store.engine.dispose()


class _Retries(logging.Handler):
    """Counts the agent's "retrying" warnings (a refused or unanswered request)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.reasons: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        reason = record.getMessage().split(";")[0][:80]
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


def _laptops(root: Path, school_files: dict[str, Path], count: int, in_flight: int,
             timeout_s: float) -> dict[str, Any]:
    from agent.config import load_config  # noqa: PLC0415
    from agent.enrol import ensure_identity  # noqa: PLC0415

    uais = sorted(school_files)
    configs = []
    for i in range(count):
        cfg = load_config(school_files[uais[i % len(uais)]], env={})
        cfg.enrol.identity_file = str(root / "laptops" / f"{i:06d}" / "lordi-identity.toml")
        configs.append(cfg)
    retries = _Retries()
    agent_log = logging.getLogger("agent.enrol")
    agent_log.addHandler(retries)
    stop = threading.Event()
    timer = threading.Timer(timeout_s, stop.set)
    timer.start()

    def one(cfg: Any) -> tuple[float, float, str]:
        started = time.perf_counter()
        done = ensure_identity(cfg, stop)
        return started, time.perf_counter(), f"{done.school}/{done.device}"

    start = time.perf_counter()
    results: list[tuple[float, float, str]] = []
    errors: list[str] = []
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=in_flight) as pool:
            for future in concurrent.futures.as_completed([pool.submit(one, c) for c in configs]):
                try:
                    results.append(future.result())
                except Exception as exc:  # reported and counted
                    errors.append(str(exc)[:200])
    finally:
        timer.cancel()
        agent_log.removeHandler(retries)
    latencies = [end - begin for begin, end, _ in results]
    return {
        "wall_s": max((end for _, end, _ in results), default=start) - start,
        "latencies": latencies,
        "users": [user for _, _, user in results],
        "errors": errors,
        "retries": retries.count,
        "retry_reasons": retries.reasons,
    }


def _schools(broker: Broker, config: Path, root: Path) -> dict[str, Path]:
    """A secret and a school configuration per registry school, made by the
    operator's commands; returns UAI -> the school's agent.toml."""
    school_files: dict[str, Path] = {}
    for uai in schools():
        secret = _lordi("enrol", "secret", "create", "--config", str(config),
                        "--school", uai).splitlines()[1]
        school_files[uai] = root / f"school-{uai}.toml"
        _lordi("enrol", "school-config", "--config", str(config), "--school", uai,
               "--secret", secret, "--host", "127.0.0.1", "--port", str(broker.port),
               "--ca-file", str(broker.ca_file), "--out", str(school_files[uai]))
        # `secret create` reloaded the broker: wait until it knows the account.
        account = broker.mqtt(ADMIN).model_copy(
            update={"username": f"enrol/{uai}/{secret.split('.')[0]}", "password": secret})
        deadline = time.monotonic() + 60
        while not login(account, 30.0):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the broker did not take {uai}'s enrolment account")
            time.sleep(0.05)
    return school_files


def _with_service(broker: Broker, config: Path, root: Path, school_files: dict[str, Path],
                  *, laptops: int, in_flight: int) -> dict[str, Any]:
    """The laptops' run against the timed service process; its batches and CPU."""
    timings = root / "batches.json"
    service_log = root / "enrol-service.log"
    with service_log.open("ab") as log_out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lordi.bench.enrol", SERVE_FLAG, str(config), str(timings)],
            stdout=log_out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO,
        )
    try:
        t = time.perf_counter()
        while "enrolment service listening" not in service_log.read_text(errors="replace"):
            if proc.poll() is not None or time.perf_counter() - t > 120:
                raise RuntimeError(f"the enrolment service did not start: {service_log}")
            time.sleep(0.05)
        service_start_s = time.perf_counter() - t
        pids = {"broker": broker.pid, "service": proc.pid, "laptops": os.getpid()}
        before = {name: process_cpu_s(pid) for name, pid in pids.items()}
        fleet = _laptops(root, school_files, laptops, in_flight, timeout_s=600)
        fleet["cpu_s"] = {name: round(process_cpu_s(pid) - before[name], 2)
                          for name, pid in pids.items()}
        fleet["service_rss_mb"] = round(read(proc.pid).rss_kb / 1024, 1)
        fleet["service_start_s"] = round(service_start_s, 2)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    batches = json.loads(timings.read_text(encoding="utf-8")) if timings.exists() else []
    fleet["batches"] = [b for b in batches if b["enrolled"]]
    return fleet


def enrolment(broker: Broker, root: Path, *, laptops: int, in_flight: int,
              existing: list[str], hashed: str) -> dict[str, Any]:
    """`laptops` laptops enrolling at once through the running `broker`."""
    uais = schools()
    burst = max(2000, math.ceil(laptops / len(uais)))
    config = _write_enrol_toml(broker, root, burst)
    t = time.perf_counter()
    _prefill_store(f"sqlite:///{root / 'enrol.sqlite3'}", existing, hashed)
    prefill_s = time.perf_counter() - t
    school_files = _schools(broker, config, root)
    fleet = _with_service(broker, config, root, school_files, laptops=laptops,
                          in_flight=in_flight)
    summary = _summary(broker, fleet)
    return {
        "laptops": laptops,
        "in_flight": in_flight,
        "schools": len(uais),
        "existing_identities": len(existing),
        "store_prefill_s": round(prefill_s, 1),
        "service": "`lordi enrol serve` in its own process (timers wrapped around its steps)",
        "service_start_s": fleet["service_start_s"],
        "limits_burst_per_school": burst,
        **summary,
    }


def _summary(broker: Broker, fleet: dict[str, Any]) -> dict[str, Any]:
    batches: list[dict[str, Any]] = fleet["batches"]
    broker_rss, broker_hwm = broker.rss_mb()
    lines = broker.passwd_file.read_text(encoding="utf-8").splitlines()
    enrolled_users = set(fleet["users"])
    present = {ln.split(":", 1)[0] for ln in lines}
    wall = fleet["wall_s"]
    latencies: list[float] = fleet["latencies"]
    sizes = [b["enrolled"] for b in batches]

    def mean(key: str) -> float:
        return statistics.fmean(b.get(key, 0.0) for b in batches) if batches else 0.0

    reload_per_batch = mean("sighup_s") + mean("probe_s")
    mean_size = statistics.fmean(sizes) if sizes else 0.0
    gaps = [later["at"] - earlier["at"] for earlier, later in itertools.pairwise(batches)]
    cycle = statistics.fmean(gaps) if gaps else mean("handle_s")
    batches_32k = math.ceil(MORNING / mean_size) if mean_size else 0
    rate = len(enrolled_users) / wall if wall else 0.0
    per_batch = {key: round(mean(key), 3) for key in (
        "handle_s", "judge_s", "commit_s", "store_s", "passwd_remove_s", "passwd_append_s",
        "sighup_s", "probe_s")}
    per_batch["answers_s"] = round(mean("handle_s") - mean("judge_s") - mean("commit_s"), 3)
    # Between two batches: the collection window (batch_window_s from the first request).
    per_batch["collect_s"] = round(cycle - mean("handle_s"), 3) if gaps else 0.0
    return {
        "enrolled": len(enrolled_users),
        "in_password_file": len(enrolled_users & present),
        "errors": len(fleet["errors"]),
        "error_samples": fleet["errors"][:3],
        "agent_retries": fleet["retries"],
        "agent_retry_reasons": fleet["retry_reasons"],
        "wall_s": round(wall, 2),
        "enrolments_per_s": round(rate, 1),
        "latency_ms": {
            "p50": _ms(_pct(latencies, 0.5)) if latencies else None,
            "p95": _ms(_pct(latencies, 0.95)) if latencies else None,
            "max": _ms(max(latencies)) if latencies else None,
        },
        "batches": len(batches),
        "batch_sizes": {"mean": round(mean_size, 1), "min": min(sizes, default=0),
                        "max": max(sizes, default=0), "sum": sum(sizes)},
        "batch_mean_s": per_batch,
        "batch_cycle_s": round(cycle, 3),
        "reload_s_per_batch": {
            "mean": round(reload_per_batch, 3),
            "p50": round(_pct([b["sighup_s"] + b["probe_s"] for b in batches], 0.5), 3)
            if batches else None,
            "max": round(max((b["sighup_s"] + b["probe_s"] for b in batches), default=0.0), 3),
        },
        "probe_failures": int(sum(b.get("probe_failed", 0) for b in batches)),
        "cpu_s": fleet["cpu_s"],
        "rss_mb": {"broker_after": broker_rss, "broker_peak": broker_hwm,
                   "service": fleet["service_rss_mb"]},
        "password_file_lines": len(lines),
        "morning_32000": {
            "at_measured_rate_s": round(MORNING / rate) if rate else None,
            "batches_of_mean_size": batches_32k,
            "batches_times_cycle_s": round(batches_32k * cycle),
            "of_which_reload_s": round(batches_32k * reload_per_batch),
            "how": "32,000 / enrolments_per_s; and ceil(32,000 / mean batch size) x the mean "
                   "time between batch starts (batch_cycle_s), with SIGHUP-to-probe x batches "
                   "as the reload's share",
        },
    }


# -- the rejected alternative: Mosquitto's dynamic-security plugin ------------------------

def _dynsec_json(path: Path, users: list[str], hashed: str, admin_password: str) -> None:
    """The plugin's file: an admin client, then one client and one role (2 ACLs) per user."""
    _, _, iterations, salt, digest = hashed.split("$")
    admin_hash = mosquitto_hash(admin_password).split("$")

    def client(user: str, role: str, h: list[str]) -> str:
        return json.dumps({"username": user, "password": h[4], "salt": h[3],
                           "iterations": int(h[2]), "roles": [{"rolename": role}]})

    def acl(kind: str, topic: str) -> dict[str, Any]:
        return {"acltype": kind, "topic": topic, "allow": True}

    control = "$CONTROL/dynamic-security/#"
    admin_role = json.dumps({"rolename": "admin", "acls": [
        acl("publishClientSend", control), acl("publishClientReceive", control),
        acl("subscribePattern", control)]})
    shared = ["", "", iterations, salt, digest]
    with path.open("w", encoding="utf-8") as out:
        out.write('{"clients":[' + client(ADMIN, "admin", admin_hash))
        for i, user in enumerate(users):
            out.write("," + client(user, f"d{i}", shared))
        out.write('],"roles":[' + admin_role)
        for i, user in enumerate(users):
            out.write("," + json.dumps({"rolename": f"d{i}", "acls": [
                acl("publishClientSend", f"lordi/v1/{user}/telemetry"),
                acl("publishClientSend", f"lordi/v1/{user}/status")]}))
        out.write('],"groups":[],"defaultACLAccess":{"publishClientSend":false,'
                  '"publishClientReceive":true,"subscribe":false,"unsubscribe":true}}')


def dynsec(broker: Broker, users: list[str], hashed: str, password: str,
           commands: int = 3) -> dict[str, Any]:
    """Start Mosquitto with the plugin holding `users`; time `commands` changes.
    `password` is the one behind `hashed` (a laptop's log-in is timed meanwhile)."""
    folder = broker.root / "dynsec"
    folder.mkdir(exist_ok=True)
    data = folder / "dynamic-security.json"
    _dynsec_json(data, users, hashed, broker.passwords[ADMIN])
    written_mb = round(data.stat().st_size / 2**20, 1)
    conf = folder / "mosquitto.conf"
    kept = [ln for ln in broker.conf.read_text(encoding="utf-8").splitlines()
            if ln.partition(" ")[0] not in ("password_file", "acl_file")]
    conf.write_text("\n".join([*kept, f"plugin {DYNSEC_PLUGIN}",
                               f"plugin_opt_config_file {data}", ""]), encoding="utf-8")
    broker.stop()
    start_s = broker.start(conf)
    rss, _ = broker.rss_mb()
    answers: list[bytes] = []
    answered = threading.Event()
    admin = mqtt_client(broker.mqtt(ADMIN), "bench-dynsec-admin")

    def on_message(_c: Any, _u: Any, message: Any) -> None:
        answers.append(bytes(message.payload))
        answered.set()

    admin.on_message = on_message
    admin.connect("127.0.0.1", broker.port)
    admin.loop_start()
    timings: list[dict[str, Any]] = []
    try:
        subscribed = threading.Event()
        admin.on_subscribe = lambda *_: subscribed.set()
        admin.subscribe(f"{DYNSEC_TOPIC}/response", qos=1)
        if not subscribed.wait(30):
            raise RuntimeError("dynsec: no SUBACK for the response topic")
        laptop = broker.mqtt(ADMIN).model_copy(update={"username": users[0], "password": password})
        for n in range(commands):
            user, new_password = f"0340001A/d-new{n:09d}", secrets.token_urlsafe(24)
            body = {"commands": [
                {"command": "createRole", "rolename": f"new{n}", "acls": [
                    {"acltype": "publishClientSend", "topic": f"lordi/v1/{user}/telemetry",
                     "allow": True},
                    {"acltype": "publishClientSend", "topic": f"lordi/v1/{user}/status",
                     "allow": True}]},
                {"command": "createClient", "username": user,
                 "password": new_password, "roles": [{"rolename": f"new{n}"}]},
            ]}
            answered.clear()
            cpu = read(broker.pid).cpu_s
            started = time.perf_counter()
            admin.publish(DYNSEC_TOPIC, json.dumps(body), qos=1)
            login_started = time.perf_counter()
            logged_in = login(laptop, 120.0)  # a laptop's log-in meanwhile
            login_s = time.perf_counter() - login_started
            if not answered.wait(300):
                raise RuntimeError("dynsec: no answer within 300 s")
            took = time.perf_counter() - started
            reply = json.loads(answers[-1])
            new = laptop.model_copy(update={"username": user, "password": new_password})
            timings.append({
                "s": round(took, 2), "broker_cpu_s": round(read(broker.pid).cpu_s - cpu, 2),
                "laptop_login_s": round(login_s, 2), "laptop_logged_in": logged_in,
                "errors": [r["error"] for r in reply.get("responses", []) if "error" in r],
                "new_client_logs_in": login(new, 60.0),
            })
    finally:
        admin.disconnect()
        admin.loop_stop()
    rss_after, hwm = broker.rss_mb()
    broker.stop()
    return {
        "clients": len(users),
        "roles": len(users),
        "file_mb_written": written_mb,
        "file_mb_after_commands": round(data.stat().st_size / 2**20, 1),
        "start_s": round(start_s, 2),
        "rss_mb": rss,
        "rss_mb_after": rss_after,
        "peak_rss_mb": hwm,
        "create_role_and_client": timings,
    }


def run(laptops: int = 2000, in_flight: int = 200, existing: int = 250_000,
        with_dynsec: bool = False) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="lordi-bench-enrol-"))
    broker: Broker | None = None
    started = time.perf_counter()
    try:
        password = secrets.token_urlsafe(24)
        hashed = mosquitto_hash(password)  # ONE hash, shared by every existing identity
        users = existing_users(existing, schools())
        broker = Broker(root)
        result: dict[str, Any] = {
            "mosquitto": _version(),
            "broker": broker_figures(broker, users, hashed),
        }
        result["enrolment"] = enrolment(broker, root, laptops=laptops,
                                        in_flight=max(1, in_flight), existing=users,
                                        hashed=hashed)
        if with_dynsec and users:
            result["dynsec"] = dynsec(broker, users, hashed, password)
        en = result["enrolment"]
        result["meets_targets"] = {
            "every_laptop_enrolled": en["enrolled"] == laptops == en["in_password_file"]
            and en["errors"] == 0,
            "every_reload_confirmed": en["probe_failures"] == 0,
        }
        result["bench_s"] = round(time.perf_counter() - started, 1)
        return result
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(root, ignore_errors=True)


def _version() -> str:
    done = subprocess.run([_binary("mosquitto"), "-h"], capture_output=True, text=True,
                          check=False)
    first = (done.stdout or done.stderr).splitlines()
    return first[0].strip() if first else "unknown"


def from_args(args: Any) -> dict[str, Any]:
    """`lordi bench enrol`: --devices (2,000 laptops), --in-flight (200), --existing
    (250,000), --dynsec."""
    return run(args.devices or 2000, args.in_flight, args.existing, args.dynsec)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the bench's timed enrolment service")
    parser.add_argument(SERVE_FLAG, nargs=2, metavar=("CONFIG", "TIMINGS"), required=True)
    config_path, timings_path = parser.parse_args().timed_serve
    sys.exit(serve_timed(Path(config_path), Path(timings_path)))
