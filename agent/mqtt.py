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

With a `ReachWatch` (`reach`), the link reports what it sees of the network, at no
cost of its own: each resolution of the broker's name before a connection attempt,
each failed attempt with its cause (`agent.refusal.failure_kind`), a connection
lost, and each PUBACK with its round trip (telemetry and the retained "online"
status, whose PUBACK ends a morning's connection clock). In threaded mode these
calls come from paho's thread.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import random
import socket
import sys
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import MqttConfig
from agent.reach import FailureKind, ReachWatch
from agent.refusal import failure_kind, refused, unreachable

log = logging.getLogger(__name__)

ONLINE = b"online"
OFFLINE = b"offline"
SESSION_EXPIRY_S = 86_400  # QoS 1 messages in flight survive a short drop
CONNACK_TIMEOUT_S = 30.0
MAX_TIMED = 64  # publishes awaiting PUBACK whose send time is kept (the agent has <= 5)


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


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
        reach: ReachWatch | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.threaded = threaded
        # Fed with the link's events; the Agent's clock and `wall_clock` must agree
        # (the service's Agent uses datetime.now(UTC), i.e. time.time()).
        self.reach = reach
        self.wall_clock = wall_clock
        self.telemetry_topic = f"lordi/v1/{school}/{device}/telemetry"
        self.status_topic = f"lordi/v1/{school}/{device}/status"
        self.connected = threading.Event()
        self.connects = 0  # successful connections so far
        self.connected_at = 0.0  # monotonic time of the last one
        self.backoff = Backoff(2.0, max_delay_s, rng or random.Random())
        self._next_attempt = 0.0
        self._started = False
        self._stopping = False
        self._judged = False  # the current attempt's failure is already reported
        self._sent_at: dict[int, float] = {}  # mid -> monotonic send time (QoS 1)
        self._sent_lock = threading.Lock()
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
        client.on_publish = self._on_publish
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
        self._judged = False  # a CONNACK: this attempt is judged below, or succeeded
        if reason.is_failure:
            # One line naming the broker, the user and the fix; the next attempt
            # follows the backoff (on_disconnect), up to max_delay_s apart.
            log.warning("%s", refused(self.cfg, reason))
            self._failed("refused")
            return
        # Its PUBACK is the broker's first answer: the end of a morning's wait.
        self._timed(lambda: client.publish(self.status_topic, ONLINE, qos=1, retain=True))
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
            if not self._stopping:
                self._failed("closed")  # an established connection was lost
                if self.reach is not None:
                    self.reach.disconnected()
        elif not self._stopping:
            self._failed("closed")  # ended before any CONNACK (unless already judged)
        self.connected.clear()
        with self._sent_lock:
            # QoS 1 messages are resent on the next connection: their PUBACK would
            # time the outage, not the network.
            self._sent_at.clear()
        self._next_attempt = time.monotonic() + self.backoff.next_delay()

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        """A PUBACK (QoS 1): the broker answered; time the round trip."""
        with self._sent_lock:
            sent = self._sent_at.pop(mid, None)
        if sent is not None and self.reach is not None:
            self.reach.acked((time.monotonic() - sent) * 1000.0, self.wall_clock())

    def _timed(self, send: Callable[[], mqtt.MQTTMessageInfo]) -> mqtt.MQTTMessageInfo:
        """Publish through `send`, keeping its send time for the PUBACK (bounded)."""
        if self.reach is None:
            return send()
        t0 = time.monotonic()
        info = send()
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            with self._sent_lock:
                self._sent_at[info.mid] = t0
                while len(self._sent_at) > MAX_TIMED:
                    del self._sent_at[next(iter(self._sent_at))]  # the oldest
        return info

    def _failed(self, kind: FailureKind) -> None:
        """One failed attempt (or a lost connection) for the reach watch, once."""
        if self._judged:
            return
        self._judged = True
        if self.reach is not None:
            self.reach.failed(kind)

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
    def between_attempts(self) -> bool:
        """Not connected and no connection attempt under way (backing off)."""
        return not self.connected.is_set() and self._client.socket() is None

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
            self._failed("timeout")
            self._client.disconnect()  # no CONNACK in time: drop it and back off
            self._next_attempt = now + self.backoff.next_delay()
        if self._client.socket() is not None:
            # paho handles CONNACK, PUBACK and keepalive here, and reports a lost
            # connection through on_disconnect (which schedules the next attempt).
            self._client.loop(timeout=max(0.0, timeout_s))
        else:
            # The caller's timeout: it waits for the next attempt, or on purpose
            # longer (agent.service lets a cut-off laptop retry at its next look).
            time.sleep(max(0.0, timeout_s))

    def _try_connect(self) -> None:
        self._judged = False
        if not self._resolves():
            delay = self.backoff.next_delay()
            self._next_attempt = time.monotonic() + delay
            return
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
            self._failed(failure_kind(exc))
            delay = self.backoff.next_delay()
            self._next_attempt = time.monotonic() + delay
            self._log_failure(exc, f"; next try in {delay:.0f} s")

    def _resolves(self) -> bool:
        """Resolve the broker's name first, to tell a DNS failure apart (paho still
        connects by name: the TLS certificate is checked against it). An address
        in `mqtt.host` needs no resolution: `dns_ok` stays unknown."""
        host = self.cfg.host
        if is_ip_literal(host):
            return True
        try:
            socket.getaddrinfo(host, self.cfg.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            if self.reach is not None:
                self.reach.dns(False)
            self._failed("dns")
            log.info("broker %s:%s unreachable (name not resolved: %s)", host, self.cfg.port, exc)
            return False
        if self.reach is not None:
            self.reach.dns(True)
        return True

    def _on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        # paho calls this from its `except OSError:` around connect. Threaded mode
        # simulates hundreds of laptops: only a configuration fault is worth a line.
        exc = sys.exc_info()[1]
        self._judged = False
        self._failed(failure_kind(exc))
        self._log_failure(exc, "; retrying", quiet_when_down=True)

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

    def failing(self) -> bool:
        """Not connected, and at least one attempt failed since the last connection
        (not merely "not connected yet", as in the first moments after start)."""
        return not self.connected.is_set() and self.backoff.failures > 0

    def publish(self, payload: bytes) -> mqtt.MQTTMessageInfo | None:
        """Queue a telemetry message; None when not connected (the spool keeps it)."""
        if not self.connected.is_set():
            return None
        info = self._timed(lambda: self._client.publish(self.telemetry_topic, payload, qos=1))
        return info if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS else None

    def stop(self, timeout_s: float = 5.0) -> None:
        """Say "offline" (retained) and disconnect cleanly: the Last Will is for crashes."""
        self._stopping = True
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
