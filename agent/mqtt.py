"""The agent's MQTT v5 link: telemetry at QoS 1, a retained status with a Last Will.

"Published" means acknowledged by the broker (PUBACK), as in aiomqtt: the spool
forgets a sample only then.

Two ways to run the network:
- `threaded=False` (the real agent): no background thread. The agent's own loop
  calls `service(timeout)`, which blocks in `select()` until the broker answers or
  the agent's next task is due, so an idle laptop wakes only for its own looks
  (paho's `loop_start()` thread would wake every second). Reconnection uses
  exponential backoff with full jitter, so a whole region that loses its broker
  does not come back in lockstep.
- `threaded=True` (hundreds of simulated laptops in one process): paho's thread.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import MqttConfig
from agent.refusal import refused, unreachable

log = logging.getLogger(__name__)

ONLINE = b"online"
OFFLINE = b"offline"
SESSION_EXPIRY_S = 86_400  # QoS 1 messages in flight survive a short drop
CONNACK_TIMEOUT_S = 30.0


class Backoff:
    """Exponential backoff with full jitter: uniform(0, min(cap, base x 2^n))."""

    def __init__(self, base_s: float, cap_s: float, rng: random.Random) -> None:
        self.base_s, self.cap_s, self.rng = base_s, cap_s, rng
        self.failures = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap_s, self.base_s * 2**self.failures)
        self.failures = min(self.failures + 1, 30)
        return self.rng.uniform(self.base_s / 2, max(self.base_s / 2, ceiling))

    def reset(self) -> None:
        self.failures = 0


class Publisher:
    def __init__(
        self,
        cfg: MqttConfig,
        school: str,
        device: str,
        *,
        threaded: bool = True,
        max_delay_s: float = 300.0,
        rng: random.Random | None = None,
    ) -> None:
        self.cfg = cfg
        self.threaded = threaded
        self.telemetry_topic = f"lordi/v1/{school}/{device}/telemetry"
        self.status_topic = f"lordi/v1/{school}/{device}/status"
        self.connected = threading.Event()
        self.connects = 0  # successful connections so far
        self.connected_at = 0.0  # monotonic time of the last one
        self.backoff = Backoff(2.0, max_delay_s, rng or random.Random())
        self._next_attempt = 0.0
        self._started = False
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"agent-{device}", protocol=mqtt.MQTTv5
        )
        if cfg.username:
            client.username_pw_set(cfg.username, cfg.password or None)
        if cfg.tls:
            client.tls_set(ca_certs=cfg.ca_file or None)
        client.will_set(self.status_topic, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1 + random.randint(0, 4), max_delay=int(max_delay_s))
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail  # threaded mode's connects
        client.on_disconnect = self._on_disconnect
        self._client = client

    def _props(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        return props

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        if reason.is_failure:
            # One line naming the broker, the user and the fix; the next attempt
            # follows the backoff (on_disconnect), up to max_delay_s apart.
            log.warning("%s", refused(self.cfg, reason))
            return
        client.publish(self.status_topic, ONLINE, qos=1, retain=True)
        self.connects += 1
        self.connected_at = time.monotonic()
        self.backoff.reset()
        self.connected.set()
        log.info("connected to %s:%s", self.cfg.host, self.cfg.port)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        if self.connected.is_set():  # not after a refused CONNECT (logged already)
            log.info("disconnected from broker: %s", reason)
        self.connected.clear()
        self._next_attempt = time.monotonic() + self.backoff.next_delay()

    def start(self) -> None:
        self._started = True
        if self.threaded:
            self._client.connect_async(
                self.cfg.host,
                self.cfg.port,
                keepalive=self.cfg.keepalive_s,
                clean_start=False,
                properties=self._props(),
            )
            self._client.loop_start()

    # -- single-threaded mode ---------------------------------------------------
    def next_deadline(self) -> float:
        """Monotonic time by which `service` must run again (reconnect or keepalive)."""
        if self.connected.is_set():
            return time.monotonic() + self.cfg.keepalive_s * 0.75
        return self._next_attempt

    def service(self, timeout_s: float) -> None:
        """Do the network's work for at most `timeout_s` seconds (never busy-waits)."""
        now = time.monotonic()
        if self._client.socket() is None and now >= self._next_attempt:
            self._try_connect()
        elif (
            self._client.socket() is not None
            and not self.connected.is_set()
            and now >= self._next_attempt
        ):
            self._client.disconnect()  # no CONNACK in time: drop it and back off
            self._next_attempt = now + self.backoff.next_delay()
        if self._client.socket() is not None:
            # paho handles CONNACK, PUBACK and keepalive here, and reports a lost
            # connection through on_disconnect (which schedules the next attempt).
            self._client.loop(timeout=max(0.0, timeout_s))
        else:
            time.sleep(max(0.0, min(timeout_s, self._next_attempt - now)))

    def _try_connect(self) -> None:
        try:
            self._client.connect(
                self.cfg.host,
                self.cfg.port,
                keepalive=self.cfg.keepalive_s,
                clean_start=False,
                properties=self._props(),
            )
            self._next_attempt = time.monotonic() + CONNACK_TIMEOUT_S
        except OSError as exc:
            delay = self.backoff.next_delay()
            self._next_attempt = time.monotonic() + delay
            self._log_failure(exc, f"; next try in {delay:.0f} s")

    def _on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        # paho calls this from its `except OSError:` around connect. Threaded mode
        # simulates hundreds of laptops: only a configuration fault is worth a line.
        self._log_failure(sys.exc_info()[1], "; retrying", quiet_when_down=True)

    def _log_failure(
        self, exc: BaseException | None, then: str, quiet_when_down: bool = False
    ) -> None:
        """A certificate that does not verify is a configuration problem (WARNING);
        a network that is down is a laptop's daily life (INFO)."""
        config_fault, line = unreachable(self.cfg, exc)
        if config_fault:
            log.warning("%s%s", line, then)
        elif not quiet_when_down:
            log.info("%s%s", line, then)

    # -- both modes ---------------------------------------------------------------
    def up(self) -> bool:
        """Connected to the broker (CONNACK received, not lost since)."""
        return self.connected.is_set()

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
            deadline = time.monotonic() + timeout_s
            while not self.threaded and not info.is_published() and time.monotonic() < deadline:
                self._client.loop(timeout=0.1)
            with contextlib.suppress(RuntimeError, ValueError):  # best effort: the Will covers it
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        self._client.disconnect()
        if self.threaded:
            self._client.loop_stop()
