"""The benchmarks' load generator: a minimal MQTT v5 client that publishes prepared
messages at QoS 1 and counts the broker's PUBACKs.

The laptops of a region publish from their own CPUs; on the bench machine the
publisher shares the two cores with the broker, the collectors and the store. paho
spends ~100 µs of Python per message (measured: ~2 µs per sample of the ingest
bench, as much as Mosquitto and a fifth of a collector), so the load generator
built its packets before the clock starts and only writes bytes and reads PUBACKs
while it runs. It honours the broker's Receive Maximum (at most that many messages
unacknowledged). Not a general client: TLS with a CA file only, no authentication,
no reconnection; a refused CONNECT or a lost connection raises.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections.abc import Sequence
from typing import Any

_CONNACK, _PUBACK, _DISCONNECT = 0x20, 0x40, 0xE0
# MQTT v5 property identifiers and the size of their values (-1: a 2-byte length
# and that many bytes; -2: two such strings; -3: a variable byte integer).
_PROPERTY_SIZES = {
    0x01: 1, 0x02: 4, 0x03: -1, 0x08: -1, 0x09: -1, 0x0B: -3, 0x11: 4, 0x12: -1,
    0x13: 2, 0x15: -1, 0x16: -1, 0x17: 1, 0x18: 4, 0x19: 1, 0x1A: -1, 0x1C: -1,
    0x1F: -1, 0x21: 2, 0x22: 2, 0x23: 2, 0x24: 1, 0x25: 1, 0x26: -2, 0x27: 4,
    0x28: 1, 0x29: 1, 0x2A: 1,
}
_RECEIVE_MAXIMUM = 0x21


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str) -> bytes:
    # protocol name, level 5, flags: clean start; keepalive 60 s; no properties
    body = _string("MQTT") + bytes([5, 0x02]) + struct.pack("!H", 60) + b"\x00"
    body += _string(client_id)
    return bytes([0x10]) + _varint(len(body)) + body


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    body = _string(topic) + struct.pack("!H", packet_id) + b"\x00" + payload
    return bytes([0x32]) + _varint(len(body)) + body  # PUBLISH, QoS 1


def receive_maximum(connack_body: bytes) -> int:
    """The broker's Receive Maximum from a CONNACK's body (65,535 when absent)."""
    if connack_body[1] != 0:
        raise ConnectionError(f"broker refused the connection: reason {connack_body[1]}")
    end, at = _read_varint(connack_body, 2)
    end += at
    while at < end:
        prop = connack_body[at]
        at += 1
        size = _PROPERTY_SIZES[prop]
        if prop == _RECEIVE_MAXIMUM:
            return int(struct.unpack_from("!H", connack_body, at)[0])
        if size == -3:
            _, at = _read_varint(connack_body, at)
        elif size == -1:
            at += 2 + struct.unpack_from("!H", connack_body, at)[0]
        elif size == -2:
            for _ in range(2):
                at += 2 + struct.unpack_from("!H", connack_body, at)[0]
        else:
            at += size
    return 65_535


class _Reader:
    """Whole MQTT packets from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, b""

    def packet(self) -> tuple[int, bytes]:
        while True:
            if len(self.buf) >= 2:
                try:
                    length, start = _read_varint(self.buf, 1)
                except IndexError:  # the length itself is incomplete
                    length, start = -1, 0
                if length >= 0 and len(self.buf) >= start + length:
                    kind, body = self.buf[0] & 0xF0, self.buf[start : start + length]
                    self.buf = self.buf[start + length :]
                    return kind, body
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            self.buf += chunk


def publish_all(
    port: int, messages: Sequence[tuple[str, bytes]], client_id: str = "", tls_ca: str = ""
) -> dict[str, Any]:
    """Publish every (topic, payload) at QoS 1 and wait for every PUBACK. Returns the
    monotonic start, the seconds and the CPU seconds of the timed part, and the
    number acknowledged. Packets are built before the clock starts. An empty
    `client_id` lets the broker assign one (MQTT v5, clean start). `tls_ca`: connect
    with TLS, the broker's certificate checked against that CA file."""
    packets = [publish_packet(t, p, i % 65_535 + 1) for i, (t, p) in enumerate(messages)]
    raw = socket.create_connection(("127.0.0.1", port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls_ca:
        context = ssl.create_default_context(cafile=tls_ca)
        raw = context.wrap_socket(raw, server_hostname="127.0.0.1")
    with raw as sock:
        sock.sendall(connect_packet(client_id))
        reader = _Reader(sock)
        kind, body = reader.packet()
        if kind != _CONNACK:
            raise ConnectionError(f"expected CONNACK, got packet type {kind >> 4}")
        window = min(receive_maximum(body), 65_535)
        t0, cpu0 = time.monotonic(), time.process_time()
        sent = acked = refused = 0
        while acked + refused < len(packets):
            done = acked + refused
            if sent < len(packets) and sent - done < window:
                end = min(len(packets), done + window, sent + 256)
                sock.sendall(b"".join(packets[sent:end]))
                sent = end
                continue
            kind, body = reader.packet()
            if kind == _PUBACK:
                # reason code after the packet id; absent means success
                if len(body) > 2 and body[2] >= 0x80:
                    refused += 1
                else:
                    acked += 1
        seconds = time.monotonic() - t0
        cpu_s = time.process_time() - cpu0
        sock.sendall(bytes([_DISCONNECT, 0]))
    return {"t0": t0, "seconds": seconds, "cpu_s": cpu_s, "acked": acked}
