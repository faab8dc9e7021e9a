"""The collector killed with SIGKILL in the middle of its work, again and again, while
telemetry keeps arriving: every sample is stored exactly once, and each restarted
process picks up where the broker's persistent session left off."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from lordi.collectorproc import CollectorProcess, write_collector_config
from lordi.stack import LocalStack
from tests.helpers import unique_school
from tests.reliability.servers import (
    SteadyPublisher,
    duplicates,
    stored_timestamps,
    stored_total,
    wait_stored_total,
    wait_until,
)

KILLS = 5


@pytest.mark.timeout(600)
def test_collector_sigkilled_mid_batch_repeatedly_loses_and_doubles_nothing(
    private_stack: LocalStack, tmp_path: Path
) -> None:
    school = unique_school()
    config = write_collector_config(
        tmp_path / "collector.toml",
        mqtt={"port": private_stack.mqtt_port, "client_id": "kill-loop"},  # default share group
        store={"url": private_stack.vm_url},
        # Large batches with a linger: a kill lands inside a batch being built,
        # written or acknowledged, not between two idle polls.
        ingest={"linger_ms": 200, "retry_initial_s": 0.2},
    )
    collector = CollectorProcess(config, tmp_path / "collector.log")
    publisher = SteadyPublisher(private_stack.mqtt_port, school, devices=20, per_message=10)
    rng = random.Random(8)
    try:
        collector.spawn()
        assert collector.wait_subscribed(), collector.this_run()[-3000:]
        publisher.begin()
        for _ in range(KILLS):
            before = stored_total(private_stack.vm_url, school)

            def progressed(before: int = before) -> bool:
                return stored_total(private_stack.vm_url, school) > before

            # The process is working: it has stored something since it (re)started.
            assert wait_until(progressed, 60)
            time.sleep(rng.uniform(0.1, 0.9))  # a different moment of the work each time
            collector.kill()
            # The fleet keeps publishing while the collector is down (the broker queues).
            time.sleep(rng.uniform(0.5, 2.0))
            collector.spawn()
            assert collector.wait_subscribed(), collector.this_run()[-3000:]
        publisher.finish()
        sent = publisher.sent_samples
        assert sent > 1000, f"only {sent} samples published: the load did not run"
        assert wait_stored_total(private_stack.vm_url, school, sent, timeout_s=120) >= sent
        time.sleep(2.0)  # a late duplicate, if any, would land now
        stamps = stored_timestamps(private_stack.vm_url, school)
    finally:
        publisher.finish(5)
        collector.stop()
    stored = sum(len(t) for t in stamps.values())
    assert duplicates(stamps) == 0
    assert stored == sent, f"{stored} stored for {sent} published"
    assert collector.starts == KILLS + 1
    print(
        f"collector SIGKILL x{KILLS} under load: {sent} samples published in "
        f"{publisher.sent_messages} messages, {stored} stored once, 0 lost, 0 doubled"
    )
