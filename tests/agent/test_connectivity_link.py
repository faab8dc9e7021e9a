"""The MQTT link feeding the reach watch on its own (no broker needed): name
resolution before connecting, the cause of a failed attempt, what "failing" means,
and the service's sleep threshold for a slowed-down agent."""

from __future__ import annotations

import pytest

from agent.config import AgentConfig, MqttConfig
from agent.mqtt import Publisher, is_ip_literal
from agent.reach import ReachWatch
from agent.service import max_look_gap_s
from lordi.stack import free_port

T0 = 1_800_000_000.0


def _attempt(host: str, port: int) -> tuple[Publisher, ReachWatch]:
    reach = ReachWatch()
    reach.look(True, False, T0)  # on a school network, not connected
    link = Publisher(MqttConfig(host=host, port=port), "0341234A", "dev", threaded=False)
    link.reach = reach
    link.start()
    assert not link.failing()  # not connected yet is not failing
    link.service(0.0)  # the first attempt
    return link, reach


def test_an_unknown_broker_name_is_dns_and_paho_is_not_called() -> None:
    link, reach = _attempt("lordi-broker.invalid", 8883)
    assert link.failing() and reach.dns_ok is False
    assert reach.last_failure == "dns" and reach.failures == 1


def test_a_name_that_resolves_then_a_closed_port() -> None:
    link, reach = _attempt("localhost", free_port())
    assert link.failing() and reach.dns_ok is True
    assert reach.last_failure == "connect" and reach.failures == 1


def test_an_address_needs_no_resolution() -> None:
    _, reach = _attempt("127.0.0.1", free_port())
    assert reach.dns_ok is None and reach.last_failure == "connect"


@pytest.mark.parametrize(
    ("host", "literal"),
    [("127.0.0.1", True), ("::1", True), ("10.0.0.1", True), ("mqtt.lordi.fr", False), ("", False)],
)
def test_ip_literals(host: str, literal: bool) -> None:
    assert is_ip_literal(host) is literal


def test_a_slowed_down_agent_is_not_taken_for_a_sleeping_one() -> None:
    cfg = AgentConfig()  # looks every 30 s, x3 on battery at low charge
    assert max_look_gap_s(cfg) == 360.0
    reach = ReachWatch(max_gap_s=max_look_gap_s(cfg))
    for i in range(4):
        reach.look(True, True, T0 + 90 * i)  # slowed down: a look every 90 s
    out = reach.summary()
    assert out is not None and out["school_online_s"] == 270.0
