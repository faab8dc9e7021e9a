"""Two collector processes' worth of work on one shared subscription: every message
is stored once, and both collectors take part."""

from __future__ import annotations

from collector.service import Collector
from lordi import vm
from lordi.stack import LocalStack
from tests.helpers import (
    envelope,
    minimal_sample,
    publish,
    recent,
    settings_for,
    unique_school,
    wait_stored,
)

MESSAGES = 400
DEVICES = 40


def test_two_collectors_share_the_load_without_loss_or_duplicate(stack: LocalStack) -> None:
    school = unique_school()
    group = "pair-test"  # its own group: other tests' sessions must not take a share
    collectors = []
    for name in ("pair-a", "pair-b"):
        settings = settings_for(stack, client_id=name)
        settings = settings.model_copy(
            update={"mqtt": settings.mqtt.model_copy(update={"share_group": group})}
        )
        collector = Collector(settings)
        collector.start()
        assert collector.connected.wait(10)
        collectors.append(collector)
    try:
        for d in range(DEVICES):  # one publisher per device, 10 messages each
            device = f"dev-{d}"
            samples = [
                minimal_sample(recent(1000 - 10 * d - k)) for k in range(MESSAGES // DEVICES)
            ]
            publish(
                stack,
                f"lordi/v1/{school}/{device}/telemetry",
                [envelope(school, device, [s]) for s in samples],
            )
        assert wait_stored(stack, school, MESSAGES, timeout_s=30) == MESSAGES
    finally:
        for collector in collectors:
            collector.stop()
    written = [c.stats.samples_written for c in collectors]
    assert sum(written) == MESSAGES, written  # each message written by exactly one
    assert all(w > MESSAGES // 4 for w in written), written  # both took a real share
    vm.force_flush(stack.vm_url)
    series = vm.export(stack.vm_url, f'device_report{{school="{school}"}}')
    assert sum(len(s["values"]) for s in series) == MESSAGES
