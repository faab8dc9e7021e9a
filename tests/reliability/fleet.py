"""A few real agents (spool on disk, MQTT link, the runtime's pump) driven by one thread:
they sample and publish continuously, and keep what the broker has not acknowledged."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.config import MqttConfig
from agent.mqtt import Publisher
from agent.privacy import PrivacyPolicy
from agent.runtime import Agent
from agent.spool import Spool
from tests.integration.test_pipeline import FixedProvider, full_reading


class AgentFleet:
    def __init__(self, port: int, school: str, count: int, folder: Path) -> None:
        self.school = school
        self.phase = "start"
        # (device, ts, phase) of every sample taken
        self.taken: list[tuple[str, str, str]] = []
        self.sampling = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        base = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
        self.links: list[Publisher] = []
        self.agents: list[Agent] = []
        # one second of sample time per sample taken: distinct timestamps per device
        self._ticks: dict[str, int] = {}
        for i in range(count):
            device = f"agent-{i}"
            link = Publisher(MqttConfig(port=port), school, device, max_delay_s=2)
            self._ticks[device] = 0

            def clock(device: str = device) -> datetime:
                return base + timedelta(seconds=self._ticks[device])

            agent = Agent(
                school,
                device,
                provider=FixedProvider(full_reading()),
                link=link,
                spool=Spool(folder / f"{device}.sqlite3"),
                policy=PrivacyPolicy(frozenset(), b""),
                clock=clock,
            )
            self.links.append(link)
            self.agents.append(agent)
        self._thread = threading.Thread(target=self._run, name="fleet", daemon=True)

    def start(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        for link in self.links:
            link.start()
        self.sampling.set()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for agent in self.agents:
                if self.sampling.is_set():
                    self._ticks[agent.device] += 1
                    sample = agent.take_sample()
                    with self._lock:
                        self.taken.append((agent.device, sample["ts"], self.phase))
                agent.pump()
            time.sleep(self.interval_s)

    def connected(self) -> bool:
        return all(link.connected.is_set() for link in self.links)

    def idle(self) -> bool:
        """Everything taken was acknowledged by the broker."""
        return all(agent.idle() for agent in self.agents)

    def taken_count(self) -> int:
        with self._lock:
            return len(self.taken)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for link in self.links:
            link.stop(2)
        for agent in self.agents:
            agent.spool.close()
