"""The long-running agent: look at Wi-Fi often, report every few minutes, drain the spool.

No busy loop and no background thread: one loop sleeps until the next look (every
30 s by default, slower on battery at low charge) or until the broker answers, so
an idle laptop wakes about twice a minute.

Reachability (`agent.reach`, the `connectivity` block): the link feeds the agent's
`ReachWatch`; while the broker cannot be reached on a school network, each report
first asks whether the default gateway answers (`agent.gateway`); and the report
after a morning's first connection is taken as soon as the broker answered, so that
it carries the connection delay at the time the laptop could report.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from agent.config import AgentConfig
from agent.gateway import GatewayCheck
from agent.mqtt import Publisher
from agent.privacy import PrivacyPolicy
from agent.providers import live_provider
from agent.providers.base import Provider
from agent.runtime import Agent
from agent.spool import Spool, SpoolLimits

log = logging.getLogger(__name__)


def policy_from(cfg: AgentConfig) -> PrivacyPolicy:
    return PrivacyPolicy(frozenset(cfg.privacy.school_ssids), cfg.privacy.bssid_key.encode())


def _slowdown(agent: Agent, cfg: AgentConfig) -> int:
    """How much to stretch the intervals: on battery below the threshold, save power."""
    reading = agent.last_reading
    if reading is None:
        return 1
    for b in reading.batteries:
        low = b.percent is not None and b.percent < cfg.cadence.low_battery_pct
        if low and b.plugged is False:
            return cfg.cadence.low_battery_slowdown
    return 1


# The default gateway is asked at most this often while cut off (one `ping`, the
# answer kept meanwhile): at the default 5-minute reports, once per report.
GATEWAY_EVERY_S = 300.0


class _Gateway:
    """The default gateway's answer, asked at most every `GATEWAY_EVERY_S`."""

    def __init__(self, check: Callable[[], bool | None]) -> None:
        self.check = check
        self.ok: bool | None = None
        self.at: float | None = None  # monotonic time of the last check

    def answer(self, now: float) -> bool | None:
        if self.at is None or now - self.at >= GATEWAY_EVERY_S:
            self.ok, self.at = self.check(), now
        return self.ok


def max_look_gap_s(cfg: AgentConfig) -> float:
    """Longer than this between two looks, the laptop slept: four looks at the
    slowest cadence (on battery at low charge), so a slowed-down agent is not taken
    for a sleeping one."""
    return 4.0 * cfg.cadence.wifi_interval_s * cfg.cadence.low_battery_slowdown


def run(
    cfg: AgentConfig,
    stop: threading.Event,
    provider: Provider | None = None,
    gateway_check: Callable[[], bool | None] | None = None,
) -> None:
    """The agent's only loop. It sleeps in the network's `select()` until the broker
    answers or the next look is due; SIGTERM/SIGINT interrupt it (see agent.cli).
    `gateway_check` replaces the live one (`GatewayCheck().check`) in tests."""
    spool = Spool(
        Path(cfg.spool.path) if cfg.spool.path else None,
        SpoolLimits(cfg.spool.max_samples, cfg.spool.max_age_days * 86_400.0),
    )
    link = Publisher(cfg.mqtt, cfg.school, cfg.device, threaded=False)
    agent = Agent(
        cfg.school,
        cfg.device,
        provider=provider or live_provider(),
        link=link,
        spool=spool,
        policy=policy_from(cfg),
        clock=lambda: datetime.now(UTC),
        batch_max_samples=cfg.spool.batch_max_samples,
        batch_max_bytes=cfg.spool.batch_max_bytes,
        max_look_gap_s=max_look_gap_s(cfg),
    )
    link.reach = agent.reach
    check_gateway = gateway_check or GatewayCheck().check
    rng = random.Random()
    link.start()
    next_look = next_report = time.monotonic()
    gateway = _Gateway(check_gateway)
    seen_connects = 0
    try:
        while not stop.is_set():
            now = time.monotonic()
            if agent.reach.connect_delay_s is not None:
                # The morning's first answer from the broker: report now, with the
                # delay, rather than at the next report time.
                next_look = next_report = now
            if now >= next_look:
                factor = _slowdown(agent, cfg)
                if now >= next_report:
                    if agent.reach.on_school and link.failing():
                        agent.reach.gateway(gateway.answer(now))
                    agent.take_sample()
                    next_report = now + cfg.cadence.report_interval_s * factor
                else:
                    agent.observe_wifi()
                next_look = now + cfg.cadence.wifi_interval_s * factor
            if link.connects != seen_connects:
                seen_connects = link.connects
                if spool.pending() > 1:
                    # A backlog after a reconnect: wait a random part of the spread
                    # so that a region reconnecting at 8:00 does not drain at once.
                    agent.hold_until = now + rng.uniform(0, cfg.cadence.drain_spread_s)
            agent.pump()
            deadline = link.next_deadline()
            if link.between_attempts():
                # Cut off: the next attempt waits for the next look (at most one
                # look interval later), so retrying costs no wake-up of its own.
                deadline = max(deadline, next_look)
            wake = min(next_look, deadline)
            if agent.hold_until > now:
                wake = min(wake, agent.hold_until)
            link.service(max(0.0, wake - time.monotonic()))
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        agent.drain_once()
        link.stop()
        spool.close()
