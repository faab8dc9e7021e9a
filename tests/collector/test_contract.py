"""The agent's output and the collector's contract agree (and the committed schema is current)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.privacy import PrivacyPolicy
from agent.providers import replay_provider
from agent.runtime import Agent
from agent.sample import build_envelope, build_sample, encode
from agent.spool import Spool
from collector.cli import SCHEMA_FILE, json_schema
from collector.contract import Envelope
from lordi.sim.hardware import AccessPoint, SimLaptop
from tests.agent.test_replay import CASES

POLICY = PrivacyPolicy(frozenset({"LORDI-EDU", "HOME5"}), b"test-key")
NOW = datetime.now(UTC).replace(microsecond=0)


def test_committed_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == json_schema()


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_replayed_machine_produces_a_valid_message(case: Path) -> None:
    sample = build_sample(replay_provider(case).read(), NOW, POLICY)
    env = Envelope.model_validate_json(encode(build_envelope("0341234A", "dev-1", [sample])))
    assert env.samples[0].os.platform == (case / "platform").read_text().strip()


def test_simulated_agent_batches_validate() -> None:
    clock = [NOW - timedelta(hours=3)]
    hw = SimLaptop(
        "dev-sim",
        "01AV431",
        "SMP",
        57020.0,
        83.0,
        AccessPoint("02:00:00:00:00:01", "LORDI-EDU", -60.0),
        lambda: clock[0],
        random.Random(1),
    )
    sent: list[bytes] = []

    class Capture:
        def publish(self, payload: bytes) -> None:
            sent.append(payload)

    agent = Agent(
        "0341234A",
        "dev-sim",
        provider=hw,
        link=Capture(),
        spool=Spool(None),
        policy=POLICY,
        clock=lambda: clock[0],
    )
    for _ in range(30):
        agent.take_sample()
        clock[0] += timedelta(minutes=5)
    agent.pump()  # Capture returns None ("not connected"): nothing leaves the spool
    assert agent.spool.pending() == 30
    rows = agent.spool.batch(0, 200, 256 * 1024)
    payload = encode(build_envelope("0341234A", "dev-sim", [json.loads(b) for _, b in rows]))
    env = Envelope.model_validate_json(payload)
    assert len(env.samples) == 30
    assert env.samples[0].batteries[0].health_pct == pytest.approx(83.0, abs=0.1)
    assert env.samples[0].wifi is not None and env.samples[0].wifi.ssid_state == "school"
    assert len(payload) / 30 < 2048  # a live report stays under 2 KB
