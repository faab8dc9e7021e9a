"""`CollectorProcess.start` with a log that an earlier run of the same collector
already wrote to (a restart): it returns once THIS process has subscribed, not at
once on the earlier run's line."""

from __future__ import annotations

import uuid

from lordi.collectorproc import CollectorProcess
from lordi.stack import LocalStack


def test_a_restart_waits_for_its_own_subscription(stack: LocalStack) -> None:
    log = stack.root / f"restart-{uuid.uuid4().hex[:8]}.log"
    client_id = f"restart-{uuid.uuid4().hex[:8]}"
    first = CollectorProcess.start(stack, client_id, log=log)
    first.stop()
    size = log.stat().st_size
    assert log.read_bytes().count(b"subscribed to") == 1
    second = CollectorProcess.start(stack, client_id, log=log)
    try:
        assert b"subscribed to" in log.read_bytes()[size:]
        assert second.proc.poll() is None
    finally:
        second.stop()
