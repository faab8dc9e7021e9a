"""`lordi bench connections --json`: what the broker pays per connected laptop, over TLS.

What is real: Mosquitto 2.0 with the production configuration, ACL, password file and
TLS (EC P-256 CA and server certificate), as `lordi bench enrol` runs it
(`lordi.bench.enrol.Broker`); every laptop is its own password-file identity
(`<UAI>/d-<12 digits>`, all sharing one `$7$` hash, so the broker does one PBKDF2 check
per log-in as in production) and its own TLS connection: a full handshake (no session
resumption: the agent keeps none), then an MQTT v5 CONNECT with user name and password,
then a PINGREQ every `keepalive_s` (the agent's default, 120 s) — what an idle agent
costs between reports.

The laptops are `asyncio` clients in `--client-procs` processes of this machine (a
minimal MQTT v5 client of ~40 lines below: CONNECT/CONNACK, PINGREQ/PINGRESP; paho's
thread per client does not scale to thousands in one process, see bench/enrol.py).
Their CPU is reported, not counted as the broker's.

Phases and figures:
- `handshake`: all laptops connect at once, `--in-flight` handshakes at a time per
  client process; wall time, connections/s, latency per connection (TCP + TLS +
  CONNECT to CONNACK), and the broker's CPU per connection, which bounds the rate one
  Mosquitto (a single thread) can accept: `broker_bound_per_s`;
- `hold`: connected and idle for `--hold-s` seconds; the broker's CPU (keepalive
  pings, timers) per connection per second;
- `memory`: the broker's resident memory before, connected, and after every laptop
  disconnected; kB per connection;
- `extrapolated`: those per-connection costs times `--region` laptops (250,000).

The machine's limit: one process may hold at most `RLIMIT_NOFILE` (hard) open files,
which this machine does not let even root raise (20,000 here): one broker process holds
at most that many connections minus its own files, so `--laptops` above it are refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import multiprocessing.connection
import resource
import secrets
import ssl
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.enrol import mosquitto_hash
from lordi.bench.enrol import Broker, existing_users, schools
from lordi.bench.procstat import read

KEEPALIVE_S = 120  # agent/config.py MqttConfig.keepalive_s
BROKER_OWN_FILES = 64  # listener sockets, log, persistence, password and ACL files


# --- a minimal MQTT v5 client ---------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _text(value: str) -> bytes:
    raw = value.encode()
    return len(raw).to_bytes(2, "big") + raw


def connect_packet(client_id: str, user: str, password: str, keepalive_s: int) -> bytes:
    """MQTT v5 CONNECT: clean start, user name and password, no properties."""
    flags = 0x80 | 0x40 | 0x02
    header = _text("MQTT") + bytes([5, flags]) + keepalive_s.to_bytes(2, "big") + b"\x00"
    body = header + _text(client_id) + _text(user) + _text(password)
    return b"\x10" + _varint(len(body)) + body


async def _read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    kind = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return kind, await reader.readexactly(length)


PINGREQ = b"\xc0\x00"


@dataclass
class Laptop:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


async def _connect(
    port: int, ctx: ssl.SSLContext, user: str, password: str, keepalive_s: int
) -> tuple[Laptop, float]:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname="localhost"
    )
    writer.write(connect_packet(f"agent-{user.replace('/', '-')}", user, password, keepalive_s))
    await writer.drain()
    kind, body = await asyncio.wait_for(_read_packet(reader), 30)
    if kind >> 4 != 2 or len(body) < 2 or body[1] != 0:
        writer.close()
        raise ConnectionError(f"CONNACK reason {body[1] if len(body) > 1 else '?'}")
    return Laptop(reader, writer), time.perf_counter() - started


async def _keep_alive(laptop: Laptop, keepalive_s: int, stop: asyncio.Event) -> int:
    """PINGREQ every `keepalive_s` (first one at a random point of the period)."""
    pings = 0
    delay = secrets.randbelow(keepalive_s * 1000) / 1000
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), delay)
            break
        except TimeoutError:
            pass
        laptop.writer.write(PINGREQ)
        await laptop.writer.drain()
        kind, _ = await asyncio.wait_for(_read_packet(laptop.reader), 30)
        if kind >> 4 == 13:
            pings += 1
        delay = keepalive_s
    return pings


@dataclass(frozen=True)
class Clients:
    """What one client process connects: its laptops and how."""

    users: list[str]
    password: str
    port: int
    ca_file: str
    in_flight: int
    keepalive_s: int


async def _laptops(spec: Clients, control: multiprocessing.connection.Connection) -> None:
    ctx = ssl.create_default_context(cafile=spec.ca_file)
    gate = asyncio.Semaphore(spec.in_flight)
    keepalive_s = spec.keepalive_s

    async def one(user: str) -> tuple[Laptop, float]:
        async with gate:
            return await _connect(spec.port, ctx, user, spec.password, keepalive_s)

    first = time.time()
    outcomes = await asyncio.gather(*(one(u) for u in spec.users), return_exceptions=True)
    last = time.time()
    up = [o for o in outcomes if isinstance(o, tuple)]
    tls = up[0][0].writer.get_extra_info("ssl_object") if up else None
    errors: dict[str, int] = {}
    for o in outcomes:
        if isinstance(o, BaseException):
            name = f"{type(o).__name__}: {o}"[:120]
            errors[name] = errors.get(name, 0) + 1
    control.send({"up": len(up), "errors": errors, "latency_s": [t for _, t in up],
                  "first": first, "last": last,
                  "tls": f"{tls.version()} {tls.cipher()[0]}" if tls else None})  # fmt: skip
    stop = asyncio.Event()
    pingers = [asyncio.create_task(_keep_alive(lap, keepalive_s, stop)) for lap, _ in up]
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, control.recv)  # "stop"
    stop.set()
    pings = await asyncio.gather(*pingers, return_exceptions=True)
    for lap, _ in up:
        lap.writer.close()
    await asyncio.gather(*(lap.writer.wait_closed() for lap, _ in up), return_exceptions=True)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    control.send({"pings": sum(p for p in pings if isinstance(p, int)),
                  "cpu_s": cpu.ru_utime + cpu.ru_stime})  # fmt: skip


def _client_main(spec: Clients, control: multiprocessing.connection.Connection) -> None:
    asyncio.run(_laptops(spec, control))


# --- the run --------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _broker_cpu(broker: Broker) -> float:
    return read(broker.pid).cpu_s


def _mosquitto_version() -> str:
    out = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0].strip()


def run(*, laptops: int = 19_000, client_procs: int = 4, in_flight: int = 100,
        hold_s: float = 60.0, keepalive_s: int = KEEPALIVE_S, region: int = 250_000,
        ) -> dict[str, Any]:  # fmt: skip
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    most = hard - BROKER_OWN_FILES
    if laptops > most:
        raise ValueError(
            f"--laptops {laptops}: one broker process may hold at most about {most} "
            f"connections here (RLIMIT_NOFILE hard limit {hard}, which cannot be raised)"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the broker inherits it
    per_proc = math.ceil(laptops / client_procs)
    if per_proc > hard - 64:
        raise ValueError(f"--client-procs {client_procs}: {per_proc} connections per client "
                         f"process exceed its {hard} open files")  # fmt: skip
    users = existing_users(laptops, schools())
    password = secrets.token_urlsafe(18)
    with tempfile.TemporaryDirectory(prefix="lordi-bench-connections-") as tmp:
        broker = Broker(Path(tmp))
        broker.write_passwd(users, mosquitto_hash(password))
        try:
            broker.start()
            time.sleep(1.0)
            rss_idle = broker.rss_mb()[0]
            spawn = multiprocessing.get_context("spawn")
            pipes, procs = [], []
            for i in range(client_procs):
                mine, theirs = spawn.Pipe()
                chunk = users[i * per_proc:(i + 1) * per_proc]
                spec = Clients(chunk, password, broker.port, str(broker.ca_file), in_flight,
                               keepalive_s)  # fmt: skip
                proc = spawn.Process(target=_client_main, args=(spec, theirs), daemon=True)
                pipes.append(mine)
                procs.append(proc)
            cpu0 = _broker_cpu(broker)
            for proc in procs:
                proc.start()
            ramps = [pipe.recv() for pipe in pipes]
            # From the first client's first attempt to the last one's last answer.
            ramp_s = max(r["last"] for r in ramps) - min(r["first"] for r in ramps)
            cpu1 = _broker_cpu(broker)
            up = sum(r["up"] for r in ramps)
            time.sleep(hold_s)
            cpu2 = _broker_cpu(broker)
            rss_up, rss_peak = broker.rss_mb()
            for pipe in pipes:
                pipe.send("stop")
            ends = [pipe.recv() for pipe in pipes]
            for proc in procs:
                proc.join(30)
            time.sleep(2.0)
            rss_after = broker.rss_mb()[0]
        finally:
            broker.stop()
    latencies = [t for r in ramps for t in r["latency_s"]]
    errors: dict[str, int] = {}
    for r in ramps:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    handshake_cpu_s = (cpu1 - cpu0) / max(up, 1)
    hold_cpu_s = cpu2 - cpu1
    kb_per = (rss_up - rss_idle) * 1024 / max(up, 1)
    per_conn_s = hold_cpu_s / max(up, 1) / hold_s
    return {
        "bench": "connections",
        "mosquitto": _mosquitto_version(),
        "config": {"laptops": laptops, "client_procs": client_procs, "in_flight": in_flight,
                   "hold_s": hold_s, "keepalive_s": keepalive_s,
                   "tls": next((r["tls"] for r in ramps if r["tls"]), None),
                   "nofile_limit": [soft, hard]},
        "connections": {"up": up, "failed": laptops - up, "errors": errors},
        "handshake": {
            "wall_s": round(ramp_s, 2),
            "per_s": round(up / ramp_s, 1),
            "latency_ms": {"p50": round(statistics.median(latencies) * 1000, 1),
                           "p99": round(_pct(latencies, 0.99) * 1000, 1)} if latencies else None,
            "broker_cpu_ms_per_connection": round(handshake_cpu_s * 1000, 3),
            "broker_bound_per_s": round(1 / handshake_cpu_s, 0) if handshake_cpu_s else None,
            "clients_cpu_s": round(sum(e["cpu_s"] for e in ends), 1),
        },
        "hold": {
            "seconds": hold_s,
            "pings": sum(e["pings"] for e in ends),
            "broker_cpu_pct": round(100 * hold_cpu_s / hold_s, 2),
            "broker_cpu_us_per_connection_per_s": round(per_conn_s * 1e6, 3),
        },
        "memory": {
            "broker_rss_mb_idle": rss_idle,
            "broker_rss_mb_connected": rss_up,
            "broker_rss_mb_peak": rss_peak,
            "broker_rss_mb_after_disconnect": rss_after,
            "kb_per_connection": round(kb_per, 1),
        },
        "extrapolated": {
            "laptops": region,
            "broker_rss_mb": round(rss_idle + kb_per * region / 1024, 0),
            # One Mosquitto is one thread: the least time for all of them to (re)connect.
            "all_connect_broker_cpu_s": round(handshake_cpu_s * region, 0),
            "idle_broker_cpu_pct": round(100 * per_conn_s * region, 1),
            "open_files_needed": region + BROKER_OWN_FILES,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lordi bench connections")
    add_arguments(parser)
    args = parser.parse_args(argv)
    print(json.dumps(from_args(args)))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--laptops", type=int, default=19_000, help="TLS connections to hold")
    parser.add_argument("--client-procs", type=int, default=4, help="client processes")
    parser.add_argument("--in-flight", type=int, default=100,
                        help="handshakes at a time per client process")  # fmt: skip
    parser.add_argument("--hold-s", type=float, default=60.0, help="seconds held idle")
    parser.add_argument("--keepalive-s", type=int, default=KEEPALIVE_S)
    parser.add_argument("--region", type=int, default=250_000, help="laptops to extrapolate to")


def from_args(args: argparse.Namespace) -> dict[str, Any]:
    return run(laptops=args.laptops, client_procs=args.client_procs, in_flight=args.in_flight,
               hold_s=args.hold_s, keepalive_s=args.keepalive_s, region=args.region)  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
