"""Mosquitto restarted (persistence on) while real agents keep sampling and publishing.

The collector is paused (SIGSTOP) across the restart and resumed only after the
agents have reconnected and drained what they took meanwhile: the worst case of the
race between agents and collector coming back, made deterministic. With a plain
subscription (`share_group = ""`) Mosquitto restores the collector's subscription from
its persistence file and queues for it: nothing is lost. With a shared subscription it
does not restore the subscription, and what the agents publish before the collector
resubscribes is acknowledged by the broker and dropped: that loss is measured and
reported (docs/reliability.md), not asserted; so is the loss when nobody is paused and
agents and collector race back in their own time."""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from lordi.collectorproc import CollectorProcess, write_collector_config
from lordi.stack import LocalStack
from tests.helpers import unique_school
from tests.reliability.fleet import AgentFleet
from tests.reliability.servers import (
    duplicates,
    stored_timestamps,
    stored_total,
    wait_stored_total,
    wait_until,
)

AGENTS = 3


def _ms(ts: str) -> int:
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)


WINDOW = ("broker down", "broker back, collector not yet")  # sent after the restart, before
# the collector resubscribed (what the agents took while the broker was down is sent then)


def _restart_under_traffic(
    stack: LocalStack, tmp_path: Path, share_group: str, expect_all: bool, paused: bool = True
) -> tuple[AgentFleet, dict[str, list[int]]]:
    """`paused`: the collector is frozen across the restart and resumed once the agents
    have drained (the forced worst case); otherwise everybody reconnects in its own
    time and the window ends when the collector has resubscribed."""
    school = unique_school()
    config = write_collector_config(
        tmp_path / "collector.toml",
        mqtt={
            "port": stack.mqtt_port,
            "client_id": "restart-collector",
            "share_group": share_group,
        },
        store={"url": stack.vm_url},
        ingest={"linger_ms": 20, "retry_initial_s": 0.2},
    )
    collector = CollectorProcess(config, tmp_path / "collector.log")
    fleet = AgentFleet(stack.mqtt_port, school, AGENTS, tmp_path)
    try:
        collector.spawn()
        assert collector.wait_subscribed(), collector.this_run()[-3000:]
        fleet.phase = "before"
        fleet.start(interval_s=0.1)
        assert wait_stored_total(stack.vm_url, school, 30, timeout_s=60) >= 30
        if paused:
            fleet.phase = "collector paused"
            collector.signal(signal.SIGSTOP)
            time.sleep(1.0)
        # a clean boundary: everything taken so far acknowledged by the broker
        fleet.sampling.clear()
        assert wait_until(fleet.idle, 30), "agents did not drain before the restart"
        fleet.phase = "broker down"
        fleet.sampling.set()
        stack.stop_process("mosquitto")  # SIGTERM: Mosquitto writes its persistence file
        assert wait_until(lambda: not any(link.connected.is_set() for link in fleet.links), 20)
        time.sleep(2.0)
        fleet.phase = "broker back, collector not yet"
        subscribed = collector.this_run().count(b"subscribed to")
        stack.start_mosquitto()
        if paused:
            assert wait_until(fleet.connected, 30), "agents did not reconnect"
            time.sleep(2.0)  # the agents publish live and drain their spools meanwhile
            fleet.sampling.clear()
            assert wait_until(fleet.idle, 30), "agents did not drain"
            collector.signal(signal.SIGCONT)
        resubscribed = wait_until(
            lambda: collector.this_run().count(b"subscribed to") > subscribed, 60, 0.05
        )
        fleet.phase = "after"
        assert resubscribed, collector.this_run()[-3000:]
        fleet.sampling.set()
        time.sleep(2.0)
        fleet.sampling.clear()
        assert wait_until(fleet.idle, 30)
        if expect_all:
            wait_stored_total(stack.vm_url, school, fleet.taken_count(), timeout_s=60)
        # settle: nothing more arrives
        previous, deadline = -1, time.monotonic() + 60
        while (now := stored_total(stack.vm_url, school)) != previous and (
            time.monotonic() < deadline
        ):
            previous = now
            time.sleep(2.0)
        stamps = stored_timestamps(stack.vm_url, school)
    finally:
        fleet.stop()
        collector.stop()
    return fleet, stamps


def _lost_by_phase(fleet: AgentFleet, stamps: dict[str, list[int]]) -> Counter[str]:
    stored = {(device, t) for device, ts in stamps.items() for t in ts}
    return Counter(phase for device, ts, phase in fleet.taken if (device, _ms(ts)) not in stored)


@pytest.mark.timeout(300)
def test_plain_subscription_survives_a_broker_restart_without_loss(
    private_stack: LocalStack, tmp_path: Path
) -> None:
    fleet, stamps = _restart_under_traffic(private_stack, tmp_path, share_group="", expect_all=True)
    taken = len(fleet.taken)
    in_window = sum(1 for _, _, p in fleet.taken if p in WINDOW)
    stored = sum(len(t) for t in stamps.values())
    assert in_window > 0, "no sample was published while the collector was away"
    assert duplicates(stamps) == 0
    assert _lost_by_phase(fleet, stamps) == Counter()
    assert stored == taken
    print(
        f"broker restart, plain subscription: {taken} samples taken by {AGENTS} agents, "
        f"{in_window} of them taken while the broker was down or published after the restart "
        f"before the collector was back; "
        f"{stored} stored once, 0 lost"
    )


@pytest.mark.timeout(300)
def test_shared_subscription_loss_across_a_broker_restart_is_measured(
    private_stack: LocalStack, tmp_path: Path
) -> None:
    """Measures the documented limitation; asserts only what must hold anyway."""
    fleet, stamps = _restart_under_traffic(
        private_stack, tmp_path, share_group="collectors", expect_all=False
    )
    taken = len(fleet.taken)
    in_window = sum(1 for _, _, p in fleet.taken if p in WINDOW)
    stored = sum(len(t) for t in stamps.values())
    lost = _lost_by_phase(fleet, stamps)
    assert duplicates(stamps) == 0
    assert stored + sum(lost.values()) == taken
    # Outside the window nothing may be lost, whatever the subscription.
    assert set(lost) <= set(WINDOW), lost
    print(
        f"broker restart, shared subscription, collector back last: {taken} samples taken, "
        f"{in_window} taken while "
        f"the broker was down or published after the restart before the collector was back; "
        f"lost {sum(lost.values())} "
        f"({dict(lost)})"
    )


@pytest.mark.timeout(300)
def test_shared_subscription_loss_in_natural_reconnect_timing_is_measured(
    private_stack: LocalStack, tmp_path: Path
) -> None:
    """The same restart with nobody paused: agents (paho backoff 1-5 s) and collector
    (1-5 s) race back. Measured, not asserted: the loss depends on who wins."""
    fleet, stamps = _restart_under_traffic(
        private_stack, tmp_path, share_group="collectors", expect_all=False, paused=False
    )
    taken = len(fleet.taken)
    in_window = sum(1 for _, _, p in fleet.taken if p in WINDOW)
    lost = _lost_by_phase(fleet, stamps)
    assert duplicates(stamps) == 0
    assert sum(len(t) for t in stamps.values()) + sum(lost.values()) == taken
    assert set(lost) <= set(WINDOW), lost
    print(
        f"broker restart, shared subscription, natural timing: {taken} samples taken, "
        f"{in_window} taken between the broker stop and the collector's resubscription; "
        f"lost {sum(lost.values())} ({dict(lost)})"
    )
