"""The agent's work: take samples into the spool, drain the spool to the broker.

`Agent` never blocks and never reads the clock itself (it is given one), so the
same code runs as the real service (`agent.service`) and as hundreds of simulated
laptops in one process (`lordi.sim`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from agent.model import Reading
from agent.privacy import PrivacyPolicy
from agent.providers.base import Provider
from agent.reach import DEFAULT_MAX_GAP_S, ReachWatch
from agent.sample import build_envelope, build_sample, encode
from agent.spool import Spool
from agent.wifi_watch import WifiWatch

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 4  # messages awaiting PUBACK at once: a slow drain, gentle on the broker


class Link(Protocol):
    def publish(self, payload: bytes) -> mqtt.MQTTMessageInfo | None: ...


class OfflineLink:
    """A link that is never connected: samples stay in the spool (previews, tests)."""

    def publish(self, payload: bytes) -> None:
        return None

    def up(self) -> bool:
        return False


def link_up(link: Link) -> bool:
    """Is the link connected to the broker? A link that cannot say is taken as down."""
    up = getattr(link, "up", None)
    return bool(up()) if callable(up) else False


class Agent:
    def __init__(
        self,
        school: str,
        device: str,
        *,
        provider: Provider,
        link: Link,
        spool: Spool,
        policy: PrivacyPolicy,
        clock: Callable[[], datetime],
        batch_max_samples: int = 200,
        batch_max_bytes: int = 128 * 1024,
        max_look_gap_s: float = DEFAULT_MAX_GAP_S,
    ) -> None:
        self.school, self.device = school, device
        self.provider, self.link, self.spool, self.policy = provider, link, spool, policy
        self.clock = clock
        self.batch_max_samples, self.batch_max_bytes = batch_max_samples, batch_max_bytes
        self.wifi = WifiWatch()
        self.reach = ReachWatch(max_gap_s=max_look_gap_s)
        self._in_flight: list[tuple[mqtt.MQTTMessageInfo, list[int]]] = []
        self._sent_up_to = 0  # highest spool id handed to the link
        self.hold_until = 0.0  # monotonic time before which no backlog is sent
        self.last_reading: Reading | None = None

    def observe_wifi(self) -> None:
        """A quick look at the Wi-Fi link between reports."""
        reading = self.provider.read()
        t = self.clock().timestamp()
        self.wifi.observe(reading.wifi, t)
        self.reach.look(self.policy.on_school_network(reading.wifi), link_up(self.link), t)

    def take_sample(self) -> dict[str, Any]:
        """Read the machine, build one sample and put it in the spool."""
        now = self.clock()
        reading = self.provider.read()
        self.last_reading = reading
        dropped = self.spool.take_dropped()
        self.wifi.observe(reading.wifi, now.timestamp())
        on_school = self.policy.on_school_network(reading.wifi)
        self.reach.look(on_school, link_up(self.link), now.timestamp())
        sample = build_sample(
            reading,
            now,
            self.policy,
            wifi_summary=self.wifi.summary(),
            connectivity=self.reach.summary(),
            agent_health={
                "spool_pending": self.spool.pending(),
                "spool_dropped": dropped,
            },
        )
        if not self.spool.put(json.dumps(sample, separators=(",", ":")), now.timestamp()):
            # Not spooled (full disk): the put counted this sample as dropped; the
            # count it carried goes back too, to travel with the next one.
            self.spool.add_dropped(dropped)
        return sample

    def pump(self) -> None:
        """Forget what the broker acknowledged, then send the next batches."""
        still: list[tuple[mqtt.MQTTMessageInfo, list[int]]] = []
        for info, ids in self._in_flight:
            try:
                done = info.is_published()
            except (RuntimeError, ValueError):
                continue  # lost with the connection: its samples are still spooled
            if done:
                self.spool.ack(ids)
            else:
                still.append((info, ids))
        self._in_flight = still
        if not still:
            # Everything sent was acknowledged or lost: restart from the oldest
            # sample still spooled (a resent duplicate is the same point in the store).
            self._sent_up_to = 0
        if time.monotonic() < self.hold_until:
            return
        while len(self._in_flight) < MAX_IN_FLIGHT and self._send_batch():
            pass

    def drain_once(self) -> None:
        """Send what can be sent now without waiting (at shutdown)."""
        self.hold_until = 0.0
        self.pump()

    def _send_batch(self) -> bool:
        rows = self.spool.batch(self._sent_up_to, self.batch_max_samples, self.batch_max_bytes)
        if not rows:
            return False
        body = ",".join(b for _, b in rows)
        head = encode(build_envelope(self.school, self.device, []))
        payload = head.replace(b'"samples":[]', b'"samples":[' + body.encode() + b"]")
        info = self.link.publish(payload)
        if info is None:
            return False
        ids = [i for i, _ in rows]
        self._in_flight.append((info, ids))
        self._sent_up_to = ids[-1]
        return True

    def idle(self) -> bool:
        return not self._in_flight and self.spool.pending() == 0

    def drain(self, timeout_s: float) -> bool:
        """Pump until the spool is empty or the time is up (for shutdown and tests)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.pump()
            if self.idle():
                return True
            time.sleep(0.01)
        return self.idle()
