"""The agent's send loop against a fake link: acks, losses, resends, flow control."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from agent import __version__
from agent.model import BatteryReading, OsInfo, Reading, WifiReading
from agent.privacy import PrivacyPolicy
from agent.runtime import MAX_IN_FLIGHT, Agent
from agent.spool import Spool
from collector.contract import Envelope

SCHOOL, DEVICE = "0341234A", "dev-rt"
POLICY = PrivacyPolicy(frozenset({"LORDI-EDU"}), b"k")


class FakeInfo(mqtt.MQTTMessageInfo):
    """A message handed to the link: pending until acked, or lost with the connection."""

    def __init__(self, mid: int, payload: bytes) -> None:
        super().__init__(mid)
        self.payload = payload
        self.state = "pending"
        self.error: type[Exception] = RuntimeError

    def is_published(self) -> bool:
        if self.state == "lost":
            raise self.error("Message publish failed: The client is not currently connected.")
        return self.state == "acked"

    def samples(self) -> list[dict[str, Any]]:
        doc: dict[str, Any] = json.loads(self.payload)
        return list(doc["samples"])

    def stamps(self) -> list[str]:
        return [s["ts"] for s in self.samples()]


class FakeLink:
    def __init__(self) -> None:
        self.sent: list[FakeInfo] = []
        self.connected = True

    def publish(self, payload: bytes) -> FakeInfo | None:
        if not self.connected:
            return None
        info = FakeInfo(len(self.sent) + 1, payload)
        self.sent.append(info)
        return info

    def pending(self) -> list[FakeInfo]:
        return [i for i in self.sent if i.state == "pending"]

    def ack_all(self) -> None:
        for info in self.pending():
            info.state = "acked"


class FixedProvider:
    def read(self) -> Reading:
        return Reading(
            os=OsInfo("linux", "6.1.0"),
            batteries=[
                BatteryReading(
                    name="BAT0",
                    status="discharging",
                    percent=71.5,
                    plugged=False,
                    design_capacity_mwh=57020.0,
                    full_capacity_mwh=42490.0,
                    health_pct=74.52,
                    cycle_count=73,
                    manufacturer="Société",
                    model="01AV430",
                )
            ],
            wifi=WifiReading(
                "wlan0", True, ssid="LORDI-EDU", bssid="aa:bb:cc:dd:ee:01", rssi_dbm=-61.0
            ),
        )


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)

    def __call__(self) -> datetime:
        return self.now


def make_agent(**kw: Any) -> tuple[Agent, FakeLink, Clock]:
    link, clock = FakeLink(), Clock()
    agent = Agent(
        SCHOOL,
        DEVICE,
        provider=FixedProvider(),
        link=link,
        spool=Spool(None),
        policy=POLICY,
        clock=clock,
        **kw,
    )
    return agent, link, clock


def take(agent: Agent, clock: Clock, n: int) -> list[str]:
    """Take n samples one minute apart; their timestamps identify them."""
    stamps = []
    for _ in range(n):
        stamps.append(agent.take_sample()["ts"])
        clock.now += timedelta(minutes=1)
    return stamps


def test_samples_leave_the_spool_only_when_acked() -> None:
    agent, link, clock = make_agent()
    stamps = take(agent, clock, 2)
    agent.pump()
    assert [i.stamps() for i in link.sent] == [stamps]
    assert agent.spool.pending() == 2
    agent.pump()  # not acknowledged yet: nothing new is sent, nothing is removed
    assert len(link.sent) == 1
    assert agent.spool.pending() == 2
    assert not agent.idle()
    link.ack_all()
    agent.pump()
    assert agent.spool.pending() == 0
    assert len(link.sent) == 1
    assert agent.idle()


@pytest.mark.parametrize("error", [RuntimeError, ValueError])
def test_lost_message_is_resent_from_the_spool(error: type[Exception]) -> None:
    agent, link, clock = make_agent()
    stamps = take(agent, clock, 3)
    agent.pump()
    link.sent[0].state, link.sent[0].error = "lost", error
    agent.pump()
    assert [i.stamps() for i in link.sent] == [stamps, stamps]
    assert agent.spool.pending() == 3
    link.ack_all()
    agent.pump()
    assert agent.spool.pending() == 0
    assert len(link.sent) == 2


def test_lost_message_is_resent_once_the_others_are_settled() -> None:
    agent, link, clock = make_agent(batch_max_samples=1)
    stamps = take(agent, clock, 3)
    agent.pump()
    assert [i.stamps() for i in link.sent] == [[s] for s in stamps]
    link.sent[0].state = "lost"
    agent.pump()
    assert agent.spool.pending() == 3
    link.ack_all()
    agent.pump()
    assert agent.spool.pending() == 1
    assert link.sent[-1].stamps() == [stamps[0]]
    link.ack_all()
    agent.pump()
    assert agent.spool.pending() == 0
    assert sorted(s for i in link.sent if i.state == "acked" for s in i.stamps()) == stamps


def test_not_connected_link_keeps_everything_spooled() -> None:
    agent, link, clock = make_agent()
    link.connected = False
    stamps = take(agent, clock, 4)
    agent.pump()
    agent.pump()
    assert link.sent == []
    assert agent.spool.pending() == 4
    link.connected = True
    agent.pump()
    assert [i.stamps() for i in link.sent] == [stamps]


def test_new_samples_follow_those_in_flight_without_duplicates() -> None:
    agent, link, clock = make_agent()
    first = take(agent, clock, 2)
    agent.pump()
    second = take(agent, clock, 1)
    agent.pump()
    assert [i.stamps() for i in link.sent] == [first, second]
    link.sent[1].state = "acked"
    agent.pump()
    assert agent.spool.pending() == 2
    assert len(link.sent) == 2


def test_at_most_max_in_flight() -> None:
    agent, link, clock = make_agent(batch_max_samples=1)
    stamps = take(agent, clock, 10)
    agent.pump()
    assert len(link.sent) == MAX_IN_FLIGHT == 4
    agent.pump()
    assert len(link.sent) == MAX_IN_FLIGHT
    link.sent[0].state = link.sent[2].state = "acked"
    agent.pump()
    assert len(link.sent) == MAX_IN_FLIGHT + 2
    assert len(link.pending()) == MAX_IN_FLIGHT
    while link.pending():
        link.ack_all()
        agent.pump()
        assert len(link.pending()) <= MAX_IN_FLIGHT
    assert [s for i in link.sent for s in i.stamps()] == stamps  # each once, in order
    assert agent.spool.pending() == 0


@pytest.mark.parametrize(("max_samples", "sizes"), [(3, [3, 3, 1]), (1, [1] * 4), (7, [7])])
def test_batches_respect_batch_max_samples(max_samples: int, sizes: list[int]) -> None:
    agent, link, clock = make_agent(batch_max_samples=max_samples)
    stamps = take(agent, clock, 7)
    agent.pump()
    while link.pending():
        link.ack_all()
        agent.pump()
    assert [len(i.samples()) for i in link.sent][: len(sizes)] == sizes
    assert all(len(i.samples()) <= max_samples for i in link.sent)
    assert [s for i in link.sent for s in i.stamps()] == stamps


def test_batches_respect_batch_max_bytes() -> None:
    agent, link, clock = make_agent()
    take(agent, clock, 1)
    one = len(agent.spool.batch(0, 1, 1 << 20)[0][1])
    # room for two samples and their separators, not three (later samples are a few
    # characters longer: their Wi-Fi summary has grown)
    agent, link, clock = make_agent(batch_max_bytes=2 * one + 20)
    stamps = take(agent, clock, 5)
    agent.pump()
    assert [len(i.samples()) for i in link.sent] == [2, 2, 1]
    assert [s for i in link.sent for s in i.stamps()] == stamps
    # the spool bounds characters; spooled bodies are ASCII ("Société" is escaped), so
    # the samples of a message stay within the byte bound too
    empty = len(
        b'{"schema":1,"device":"dev-rt","school":"0341234A","agent_version":"","samples":[]}'
    )
    assert all(len(i.payload) <= 2 * one + 20 + empty + len(__version__) for i in link.sent)
    assert all(i.payload.isascii() for i in link.sent)


def test_hold_until_defers_the_backlog_and_drain_once_sends_it() -> None:
    agent, link, clock = make_agent()
    take(agent, clock, 2)
    agent.hold_until = float("inf")
    agent.pump()
    assert link.sent == []
    agent.drain_once()
    assert len(link.sent) == 1 and len(link.sent[0].samples()) == 2


def test_payload_is_a_valid_envelope() -> None:
    agent, link, clock = make_agent(batch_max_samples=3)
    stamps = take(agent, clock, 3)
    agent.pump()
    env = Envelope.model_validate_json(link.sent[0].payload)
    assert (env.school, env.device, env.agent_version) == (SCHOOL, DEVICE, __version__)
    assert [s.ts.isoformat().replace("+00:00", "Z") for s in env.samples] == stamps
    first = env.samples[0]
    assert first.os.platform == "linux" and first.os.release == "6.1.0"
    assert first.batteries[0].health_pct == 74.52
    assert first.batteries[0].cycle_count == 73
    assert first.batteries[0].manufacturer == "Société"
    assert first.wifi is not None
    assert first.wifi.ssid == "LORDI-EDU" and first.wifi.ssid_state == "school"
    assert first.wifi.bssid_hash == POLICY.bssid_hash("aa:bb:cc:dd:ee:01")
    assert first.wifi.rssi_min_dbm == -61.0 and first.wifi.disconnects == 0
    assert first.agent is not None
    assert [s.agent.spool_pending for s in env.samples if s.agent] == [0, 1, 2]


def test_resent_payload_is_identical() -> None:
    agent, link, clock = make_agent()
    take(agent, clock, 2)
    agent.pump()
    link.sent[0].state = "lost"
    agent.pump()
    assert link.sent[0].payload == link.sent[1].payload
    Envelope.model_validate_json(link.sent[1].payload)
