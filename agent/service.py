"""The long-running agent: look at Wi-Fi often, report every few minutes, drain the spool.

No busy loop: the thread sleeps on an Event between looks (every 30 s by default,
slower on battery at low charge), so the laptop wakes at most twice a minute.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from agent.config import AgentConfig
from agent.mqtt import Publisher
from agent.privacy import PrivacyPolicy
from agent.providers import live_provider
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


def run(cfg: AgentConfig, stop: threading.Event) -> None:
    spool = Spool(
        Path(cfg.spool.path) if cfg.spool.path else None,
        SpoolLimits(cfg.spool.max_samples, cfg.spool.max_age_days * 86_400.0),
    )
    link = Publisher(cfg.mqtt, cfg.school, cfg.device)
    agent = Agent(
        cfg.school,
        cfg.device,
        provider=live_provider(),
        link=link,
        spool=spool,
        policy=policy_from(cfg),
        clock=lambda: datetime.now(UTC),
        batch_max_samples=cfg.spool.batch_max_samples,
        batch_max_bytes=cfg.spool.batch_max_bytes,
    )
    link.start()
    next_report = 0.0
    elapsed = 0.0
    try:
        while not stop.is_set():
            factor = _slowdown(agent, cfg)
            if elapsed >= next_report:
                agent.take_sample()
                next_report = elapsed + cfg.cadence.report_interval_s * factor
            else:
                agent.observe_wifi()
            agent.pump()
            step = cfg.cadence.wifi_interval_s * factor
            stop.wait(step)
            elapsed += step
    finally:
        agent.drain(timeout_s=5)
        link.stop()
        spool.close()
