"""The collector's MQTT side: one paho client, its persistent session and what it
subscribes to (a `$share` or plain subscription, or one plain subscription per school
of its partition), the broker's $SYS figures, manual PUBACKs and dead-letter
publishes. Messages go to `on_message` from paho's network thread; the ordered-commit
pipeline (collector/pipeline.py) does the rest.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from collector.brokerfail import Endpoint, Repeats, refused, unreachable
from collector.config import CollectorSettings
from collector.metrics import SYS_TOPICS, CollectorMetrics
from collector.partition import Partition
from collector.pipeline import Incoming

log = logging.getLogger("collector.service")


class MqttLink:
    def __init__(
        self,
        settings: CollectorSettings,
        on_message: Callable[[Incoming], None],
        *,
        on_up: Callable[[], None],
        on_down: Callable[[], None],
        stopping: threading.Event,
        client: mqtt.Client | None = None,
        partition: Partition | None = None,
        metrics: CollectorMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.partition = partition
        self.metrics = metrics
        self._deliver, self._on_up, self._on_down = on_message, on_up, on_down
        self._stopping = stopping
        self.connected = threading.Event()  # connected and subscribed
        # A refused or failed connection is logged as one line naming the broker, the
        # user and the fix: at once, then every 5 min while it lasts (paho retries
        # every few seconds, silently).
        self._failures = Repeats()
        self._up = False  # the broker accepted the latest CONNECT
        self._subscribe_mid: int | None = None  # the telemetry SUBSCRIBE's packet id
        self._filters: set[str] = set()  # the school filters subscribed (partition)
        self._filters_lock = threading.Lock()
        self.client = client or self._make_client()  # a test may bring a fake

    # -- identity and subscription ------------------------------------------------------
    @property
    def topic_filter(self) -> str:
        m = self.settings.mqtt
        if self.partition is not None:
            return f"{m.topic} for the schools of {self.partition.name}"
        return f"$share/{m.share_group}/{m.topic}" if m.share_group else m.topic

    @property
    def client_id(self) -> str:
        base = self.settings.mqtt.client_id
        return base if self.partition is None else self.partition.client_id(base)

    @property
    def endpoint(self) -> Endpoint:
        m = self.settings.mqtt
        return Endpoint(m.host, m.port, m.username, m.tls, m.ca_file, "[mqtt]")

    def _make_client(self) -> mqtt.Client:
        m = self.settings.mqtt
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if m.username:
            client.username_pw_set(
                m.username, m.password.get_secret_value() if m.password else None
            )
        if m.tls:
            client.tls_set(ca_certs=str(m.ca_file) if m.ca_file else None)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        # The broker's $SYS figures ([metrics] broker_sys) never reach the telemetry
        # queue, even from a session that subscribed to them earlier.
        client.message_callback_add("$SYS/#", self._on_sys)
        # Come back fast after a broker restart: until the collector resubscribes, the
        # broker has nowhere to queue telemetry (see _on_connect).
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        return client

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.mqtt.session_expiry_s
        props.ReceiveMaximum = self.settings.mqtt.receive_maximum
        return props

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        m = self.settings.mqtt
        self.client.connect_async(
            m.host,
            m.port,
            keepalive=m.keepalive_s,
            clean_start=False,
            properties=self._connect_properties(),
        )
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def network_stalled(self) -> bool:
        network = getattr(self.client, "_thread", None)  # paho's loop_start thread
        return isinstance(network, threading.Thread) and not network.is_alive()

    # -- what the pipeline sends back -----------------------------------------------------
    def ack(self, mid: int, qos: int) -> None:
        self.client.ack(mid, qos)

    def publish(self, topic: str, payload: bytes) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=1)

    # -- paho callbacks (its network thread) --------------------------------------------
    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._connection_failed(refused(self.endpoint, reason))
            return
        m = self.settings.mqtt
        self._up = True
        failed = self._failures.clear()
        if failed:
            log.info("connected after %d failed attempt(s)", failed)
        # Subscribe on every connect: Mosquitto 2.0 does not restore a shared
        # subscription from its persistence file after a restart (measured, see
        # docs/server-stack.md), so the session alone is not enough.
        if self.partition is None:
            self._subscribe_mid = client.subscribe(self.topic_filter, qos=1)[1]
        else:
            self._subscribe_partition(client)
        if self.metrics is not None and self.settings.metrics.broker_sys:
            client.subscribe([(topic, SubscribeOptions(qos=0)) for topic in SYS_TOPICS])
        log.info(
            "connected to %s:%s as %s (session present: %s)",
            m.host,
            m.port,
            self.client_id,
            flags.session_present,
        )

    def _subscribe_partition(self, client: mqtt.Client) -> None:
        """This partition's schools, one plain subscription each; and none of the
        others' (the session may hold them from an earlier registry or configuration)."""
        assert self.partition is not None
        filters = self.partition.filters()
        for misplaced in self.partition.misplaced():
            log.error("registry: school %s is not a partition of %d: placed by hash",
                      misplaced, self.partition.count)  # fmt: skip
        with self._filters_lock:
            self._filters = set(filters)
        client.unsubscribe(self.partition.foreign_filters())
        if not filters:  # SUBSCRIBE needs one filter at least
            log.warning("%s owns no school of the registry: nothing to subscribe to",
                        self.partition.name)  # fmt: skip
            self._subscribe_mid = None
            self._subscribed(0)
            return
        options = SubscribeOptions(qos=1)
        self._subscribe_mid = client.subscribe([(f, options) for f in filters])[1]

    def refresh_subscriptions(self) -> int:
        """Follow the registry in force: subscribe to the schools this partition gained
        (a school added or moved to it), unsubscribe those it lost. Returns how many
        filters changed; the main loop calls it every few seconds."""
        if self.partition is None or not self._up:
            return 0
        wanted = set(self.partition.filters())
        with self._filters_lock:
            gained, lost = sorted(wanted - self._filters), sorted(self._filters - wanted)
            self._filters = wanted
        if gained:
            self.client.subscribe([(f, SubscribeOptions(qos=1)) for f in gained])
            log.info("%s: subscribed to %d more school(s): %s", self.partition.name,
                     len(gained), ", ".join(f.split("/")[2] for f in gained))  # fmt: skip
        if lost:
            self.client.unsubscribe(lost)
            log.info("%s: left %d school(s): %s", self.partition.name, len(lost),
                     ", ".join(f.split("/")[2] for f in lost))  # fmt: skip
        return len(gained) + len(lost)

    @property
    def schools_subscribed(self) -> int:
        with self._filters_lock:
            return len(self._filters)

    def _on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        # paho calls this from its `except OSError:` around connect: the exception
        # being handled is the reason (refused, unreachable, TLS verification).
        self._connection_failed(unreachable(self.endpoint, sys.exc_info()[1]))

    def _connection_failed(self, line: str) -> None:
        if self._failures.worth_logging(line):
            log.error("%s (attempt %d; retrying)", line, self._failures.count)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        props: Properties | None,
    ) -> None:
        if mid != self._subscribe_mid and self._subscribe_mid is not None:
            if any(r.is_failure for r in reasons):  # $SYS, or a school the partition gained
                log.warning("broker refused a subscription ($SYS or a school): %s", reasons)
            return
        if any(r.is_failure for r in reasons):
            log.error("broker refused the subscription: %s", reasons)
            return
        self._subscribed(len(reasons))

    def _subscribed(self, filters: int) -> None:
        if self.partition is None:
            log.info("subscribed to %s", self.topic_filter)
        else:
            log.info("subscribed to %d school topic(s) of %s", filters, self.partition.name)
        self._on_up()  # telemetry can arrive
        self.connected.set()  # ready: connected and subscribed

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        self.connected.clear()
        self._on_down()  # nothing can arrive
        was_up, self._up = self._up, False
        if was_up and not self._stopping.is_set():  # a refused CONNECT was logged already
            log.warning("disconnected from broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self._deliver(Incoming(msg.topic, bytes(msg.payload), msg.mid, msg.qos))

    def _on_sys(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if self.metrics is not None and self.settings.metrics.broker_sys:
            self.metrics.on_sys(msg.topic, bytes(msg.payload))
