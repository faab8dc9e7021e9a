"""The agent's MQTT v5 link: telemetry at QoS 1, a retained status with a Last Will.

"Published" means acknowledged by the broker (PUBACK), as in aiomqtt: the spool
forgets a sample only then. paho's own thread reconnects with backoff (1 s doubling
to `max_delay_s`); each laptop adds its own random jitter so that a region waking
up at 8:00 does not reconnect in lockstep.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import MqttConfig

log = logging.getLogger(__name__)

ONLINE = b"online"
OFFLINE = b"offline"


class Publisher:
    def __init__(self, cfg: MqttConfig, school: str, device: str, max_delay_s: int = 300) -> None:
        self.cfg = cfg
        self.telemetry_topic = f"lordi/v1/{school}/{device}/telemetry"
        self.status_topic = f"lordi/v1/{school}/{device}/status"
        self.connected = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"agent-{device}", protocol=mqtt.MQTTv5
        )
        if cfg.username:
            client.username_pw_set(cfg.username, cfg.password or None)
        if cfg.tls:
            client.tls_set(ca_certs=cfg.ca_file or None)
        client.will_set(self.status_topic, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1 + random.randint(0, 4), max_delay=max_delay_s)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._client = client

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            return
        client.publish(self.status_topic, ONLINE, qos=1, retain=True)
        self.connected.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        self.connected.clear()

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        # Keep the session a day: QoS 1 messages in flight survive a short drop.
        props.SessionExpiryInterval = 86_400
        self._client.connect_async(
            self.cfg.host,
            self.cfg.port,
            keepalive=self.cfg.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self._client.loop_start()

    def publish(self, payload: bytes) -> mqtt.MQTTMessageInfo | None:
        """Queue a telemetry message; None when not connected (the spool keeps it)."""
        if not self.connected.is_set():
            return None
        info = self._client.publish(self.telemetry_topic, payload, qos=1)
        return info if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS else None

    def stop(self, timeout_s: float = 5.0) -> None:
        """Say "offline" (retained) and disconnect cleanly: the Last Will is for crashes."""
        if self.connected.is_set():
            info = self._client.publish(self.status_topic, OFFLINE, qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):  # best effort: the Will covers it
                info.wait_for_publish(timeout_s)
        self._client.disconnect()
        self._client.loop_stop()
