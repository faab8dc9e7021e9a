"""Thousands of MQTT clients in one process: virtual laptops that connect like the
agent and drain a spooled backlog like the agent, for `lordi bench storm`.

Each device is a paho client (the agent's MQTT library) with its own TCP connection,
client id `agent-<device>`, persistent session (clean start off, session expiry),
Last Will and retained "online" status; without paho's thread: one selector loop
drives every socket through paho's external-loop hooks. The drain follows
`agent.runtime.Agent`: batches of at most 200 samples / 128 KB, at most 4 messages
awaiting PUBACK, QoS 1, an optional random wait before draining
(`cadence.drain_spread_s`), reconnection with exponential backoff and jitter.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import selectors
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.runtime import MAX_IN_FLIGHT

BATCH_SAMPLES = 200  # agent spool.batch_max_samples default
BATCH_BYTES = 128 * 1024  # agent spool.batch_max_bytes default
SESSION_EXPIRY_S = 86_400  # agent.mqtt.SESSION_EXPIRY_S
SCHOOL = "0990001S"


class Backlog:
    """The weekend's samples of one device, as JSON strings, made on demand."""

    def __init__(self, pool: list[str], start: datetime, count: int) -> None:
        self.pool, self.start, self.count = pool, start, count

    def body(self, first: int, index: int) -> str:
        stamp = (self.start + timedelta(minutes=5 * index)).strftime("%Y-%m-%dT%H:%M:%SZ")
        tpl = self.pool[(first + index) % len(self.pool)]
        return '{"ts":"' + stamp + tpl[tpl.index('",') :]  # the pool's "ts" comes first


class _Client(mqtt.Client):
    """paho's client with a non-blocking TCP connect: paho's own `connect()` blocks
    until the broker's kernel accepts, so a full accept queue (what a storm makes)
    would stall every device behind one. paho queues CONNECT until the socket is
    writable. (Overrides a private method: paho is pinned below 3.)"""

    def _create_socket_connection(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        err = sock.connect_ex((self._host, self._port))
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            raise OSError(err, os.strerror(err))
        return sock


@dataclass
class Device:
    index: int
    name: str
    client: mqtt.Client
    backlog: int  # samples still to send
    hold_until: float = 0.0
    sent_upto: int = 0  # samples handed to paho
    acked: int = 0
    in_flight: dict[int, int] = field(default_factory=dict)  # mid -> samples
    connected: bool = False
    retry_at: float = 0.0  # a lost connection: when to try again
    failures: int = 0
    school: str = SCHOOL


class Swarm:
    def __init__(
        self,
        host: str,
        port: int,
        devices: int,
        backlog: int,
        *,
        pool: list[dict[str, Any]],
        start: datetime,
        spread_s: float,
        run_id: str,
        seed: int = 7,
        tls: ssl.SSLContext | None = None,
        schools: Sequence[str] = (SCHOOL,),
    ) -> None:
        """`devices` devices named `storm<run_id>-<n>`, each with `backlog` samples
        from `pool` (wire samples, "ts" first) re-stamped 5 minutes apart from `start`.
        `tls`: every device connects with TLS (a full handshake each, in the loop's
        thread: paho does it blocking once the TCP connection is up). `schools`: device
        n is in schools[n % len(schools)]."""
        self.host, self.port = host, port
        self.schools = list(schools)
        self.tls = tls
        self.sel = selectors.DefaultSelector()
        self.rng = random.Random(seed)
        self.spread_s = spread_s
        self.run_id = run_id
        self.backlog = Backlog([json.dumps(s, separators=(",", ":")) for s in pool], start, backlog)
        self.devices = [self._device(i, backlog) for i in range(devices)]
        self.connected_at: float | None = None
        self.all_acked_at: float | None = None
        self.connect_errors = 0
        self.disconnects = 0
        self.closing = False
        self.connacks = 0
        self.t0 = time.monotonic()

    def _device(self, i: int, backlog: int) -> Device:
        name = f"storm{self.run_id}-{i:06d}"
        client = _Client(
            CallbackAPIVersion.VERSION2, client_id=f"agent-{name}", protocol=mqtt.MQTTv5
        )
        dev = Device(i, name, client, backlog, school=self.schools[i % len(self.schools)])
        if self.tls is not None:
            client.tls_set_context(self.tls)
        client.user_data_set(dev)
        client.will_set(self._topic(dev, "status"), b"offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        client.on_disconnect = self._on_disconnect
        client.on_socket_open = self._socket_open
        client.on_socket_close = self._socket_close
        client.on_socket_register_write = self._want_write
        client.on_socket_unregister_write = self._no_write
        return dev

    # paho's hooks for an external event loop: the selector follows each socket.
    def _socket_open(self, client: mqtt.Client, dev: Device, sock: Any) -> None:
        self.sel.register(sock, selectors.EVENT_READ, dev)

    def _socket_close(self, client: mqtt.Client, dev: Device, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(sock)

    def _want_write(self, client: mqtt.Client, dev: Device, sock: Any) -> None:
        self.sel.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, dev)

    def _no_write(self, client: mqtt.Client, dev: Device, sock: Any) -> None:
        self.sel.modify(sock, selectors.EVENT_READ, dev)

    @staticmethod
    def _topic(dev: Device, kind: str) -> str:
        return f"lordi/v1/{dev.school}/{dev.name}/{kind}"

    def _on_connect(
        self, client: mqtt.Client, dev: Device, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            self.connect_errors += 1
            return
        dev.connected = True
        self.connacks += 1
        if self.connacks == len(self.devices):
            self.connected_at = time.monotonic() - self.t0
        client.publish(self._topic(dev, "status"), b"online", qos=1, retain=True)
        dev.hold_until = time.monotonic() + self.rng.uniform(0, self.spread_s)
        if not self.spread_s:
            self._pump(dev)

    def _on_publish(
        self, client: mqtt.Client, dev: Device, mid: int, reason: Any, props: Any
    ) -> None:
        n = dev.in_flight.pop(mid, 0)
        dev.acked += n
        if n:
            self._pump(dev)

    def _pump(self, dev: Device) -> None:
        """The agent's drain: keep up to 4 batches awaiting PUBACK."""
        while len(dev.in_flight) < MAX_IN_FLIGHT and dev.sent_upto < dev.backlog:
            bodies: list[str] = []
            size = 0
            while dev.sent_upto + len(bodies) < dev.backlog and len(bodies) < BATCH_SAMPLES:
                body = self.backlog.body(dev.index, dev.sent_upto + len(bodies))
                if bodies and size + len(body) + 1 > BATCH_BYTES:
                    break
                bodies.append(body)
                size += len(body) + 1
            head = (
                f'{{"schema":1,"device":"{dev.name}","school":"{dev.school}",'
                f'"agent_version":"storm","samples":['
            )
            payload = (head + ",".join(bodies) + "]}").encode()
            info = dev.client.publish(self._topic(dev, "telemetry"), payload, qos=1)
            dev.in_flight[info.mid] = len(bodies)
            dev.sent_upto += len(bodies)

    def _on_disconnect(
        self, client: mqtt.Client, dev: Device, flags: Any, reason: Any, props: Any
    ) -> None:
        """As the agent: try again after an exponential backoff with full jitter."""
        dev.connected = False
        if self.closing:
            return
        dev.failures += 1
        self.disconnects += 1
        ceiling = min(300.0, 2.0 * 2 ** min(dev.failures, 8))
        dev.retry_at = time.monotonic() + self.rng.uniform(1.0, ceiling)

    def retry(self, now: float) -> None:
        for dev in self.devices:
            if dev.retry_at and now >= dev.retry_at:
                dev.retry_at = 0.0
                self.connect(dev)

    def connect(self, dev: Device) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        try:
            dev.client.connect(
                self.host, self.port, keepalive=300, clean_start=False, properties=props
            )
        except OSError:
            self.connect_errors += 1
            self._on_disconnect(dev.client, dev, None, None, None)

    def turn(self, timeout_s: float) -> None:
        for key, events in self.sel.select(timeout_s):
            client = key.data.client
            if events & selectors.EVENT_READ:
                client.loop_read(max_packets=100)
            if events & selectors.EVENT_WRITE:
                client.loop_write()
        if self.tls is not None:  # records already decrypted wait in the TLS buffer,
            for dev in self.devices:  # where select() does not see them
                sock = dev.client.socket()
                if dev.connected and isinstance(sock, ssl.SSLSocket) and sock.pending():
                    dev.client.loop_read(max_packets=100)

    def pending_holds(self, now: float) -> None:
        for dev in self.devices:
            if dev.connected and dev.hold_until and now >= dev.hold_until:
                dev.hold_until = 0.0
                self._pump(dev)

    @property
    def sent(self) -> int:
        return sum(d.acked for d in self.devices)

    def done(self) -> bool:
        return all(d.acked >= d.backlog for d in self.devices)

    def close(self) -> None:
        self.closing = True
        for dev in self.devices:
            if dev.client.socket() is not None:
                dev.client.disconnect()
                dev.client.loop_write()
        self.sel.close()
