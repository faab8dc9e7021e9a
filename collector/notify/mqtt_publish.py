"""One retained QoS 1 publish to the alert-topic broker, with paho-mqtt.

apprise's `mqtt://` plugin takes no CA file (it looks for the system's trust store
only), so against a private CA it failed with "MQTT SSL Certificate Error". This
connects with the alert topic's settings (in the collector, those of `[mqtt]` unless
its own section says otherwise: collector/config.py), publishes, waits for the
broker's PUBACK, and keeps the connection for the next publish (closed after 30 s
unused). The CONNACK and the PUBACK must arrive within
`timeout_s` of the start; the TCP connection and the TLS handshake are each bounded
by `timeout_s` too (paho's connect_timeout). A failure is one line naming the
broker, the user and what to do (collector/brokerfail.py); a secret never appears
in it.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from collector.brokerfail import Endpoint, refused, unreachable
from collector.notify.settings import AlertTopicSettings

SECTION = "[alerts.notify.alert_topic] (else [mqtt])"


def endpoint(broker: AlertTopicSettings) -> Endpoint:
    return Endpoint(broker.host, broker.port, broker.username, broker.tls, broker.ca_file, SECTION)


class _Publish:
    """One connection: CONNECT, then PUBLISH, each answer awaited until `deadline`;
    paho's callbacks record the answers."""

    def __init__(self, broker: AlertTopicSettings, deadline: float) -> None:
        self.ep = endpoint(broker)
        self.deadline = deadline
        self.timeout = f"within {broker.timeout_s:g} s (timeout_s)"
        self.connack: ReasonCode | None = None
        self.puback: ReasonCode | None = None
        self.lost = False
        # Its own client id: the collector's persistent session keeps [mqtt] client_id.
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"lordi-alerts-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv5,
        )
        if broker.username:
            password = broker.password.get_secret_value() if broker.password else None
            client.username_pw_set(broker.username, password)
        if broker.tls:  # loads the CA file now: OSError (ssl.SSLError is one)
            client.tls_set(ca_certs=str(broker.ca_file) if broker.ca_file else None)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        client.on_disconnect = self._on_disconnect
        client.connect_timeout = broker.timeout_s
        self.client = client

    def reset(self, deadline: float) -> None:
        """Ready for another publish on the same connection."""
        self.deadline, self.puback = deadline, None

    def _on_connect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        self.connack = rc

    def _on_publish(self, _c: object, _u: object, _mid: int, rc: ReasonCode, _p: object) -> None:
        self.puback = rc

    def _on_disconnect(self, *_: object) -> None:
        self.lost = True

    def _serve_until(self, done: Callable[[], bool]) -> bool:
        """Run paho's network loop until `done()` or the connection ends (True), or
        the deadline passes (False)."""
        while not done():
            left = self.deadline - time.monotonic()
            if left <= 0:
                return False
            if self.client.loop(timeout=min(left, 0.5)) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return True
        return True

    def connect(self, keepalive_s: int) -> str | None:
        """None once the broker accepted the connection, else why not."""
        where = self.ep.where
        try:
            self.client.connect(self.ep.host, self.ep.port, keepalive=keepalive_s)
        except OSError as exc:  # refused, unreachable, TLS handshake or verification
            return unreachable(self.ep, exc)
        if not self._serve_until(lambda: self.connack is not None or self.lost):
            return f"MQTT broker {where}: no CONNACK {self.timeout}"
        if self.connack is None:
            return f"MQTT broker {where} closed the connection before its CONNACK"
        return refused(self.ep, self.connack) if self.connack.is_failure else None

    def publish(self, topic: str, payload: bytes) -> str | None:
        """None once the broker acknowledged the retained message, else why not."""
        where = self.ep.where
        info = self.client.publish(topic, payload, qos=1, retain=True)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return f"MQTT broker {where}: {topic} not sent ({mqtt.error_string(info.rc)})"
        if not self._serve_until(lambda: self.puback is not None or self.lost):
            return f"MQTT broker {where}: no PUBACK for {topic} {self.timeout}"
        if self.puback is None:
            return f"MQTT broker {where} closed the connection before the PUBACK for {topic}"
        if self.puback.is_failure:
            who = f"user {self.ep.user!r}" if self.ep.user else "a client without a user name"
            return (
                f"MQTT broker {where} refused {who} publishing to {topic}: {self.puback}: "
                "the broker's ACL must grant that user `topic write lordi/v1/+/alerts` "
                "(provisioning/mosquitto/acl, role collector)"
            )
        return None


# A connection unused this long is closed before the next publish (the broker would
# drop it after 1.5 x its keepalive: nothing runs paho's loop between publishes).
IDLE_S = 30.0
KEEPALIVE_S = 60
_lock = threading.Lock()
_held: dict[tuple[object, ...], tuple[_Publish, float]] = {}


def _key(broker: AlertTopicSettings) -> tuple[object, ...]:
    password = broker.password.get_secret_value() if broker.password else None
    return (broker.host, broker.port, broker.tls, broker.ca_file, broker.username, password)


def publish_retained(broker: AlertTopicSettings, topic: str, payload: bytes) -> str | None:
    """Publish `payload` retained at QoS 1; None once the broker acknowledged it,
    else the reason, one line. The connection (and its TLS session) is kept for the
    next publish: an alert burst made one connection and one TLS handshake per
    publish, 55 ms each. A kept connection that fails is dropped and the publish
    tried once more on a new one."""
    key = _key(broker)
    with _lock:
        held = _held.pop(key, None)
        if held is not None:
            attempt, used = held
            if time.monotonic() - used <= IDLE_S and not attempt.lost:
                attempt.reset(time.monotonic() + broker.timeout_s)
                if attempt.publish(topic, payload) is None:
                    _held[key] = (attempt, time.monotonic())
                    return None
            attempt.client.disconnect()
        try:
            attempt = _Publish(broker, time.monotonic() + broker.timeout_s)
        except OSError as exc:  # the CA file
            return (
                f"CA file {broker.ca_file} (ca_file in {SECTION}): cannot load it as uid "
                f"{os.geteuid()} ({exc.strerror or exc})"
            )
        error = attempt.connect(max(KEEPALIVE_S, int(broker.timeout_s) * 2)) or attempt.publish(
            topic, payload
        )
        if error is None:
            _held[key] = (attempt, time.monotonic())
        else:
            attempt.client.disconnect()
        return error


def close() -> None:
    """Disconnect the kept connections (the collector's stop)."""
    with _lock:
        for attempt, _ in _held.values():
            attempt.client.disconnect()
        _held.clear()
