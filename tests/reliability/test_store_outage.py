"""The time-series store unavailable while telemetry keeps arriving: first hung (the
process frozen: writes time out), then gone (connection refused), then back. The
collector holds its batch, acknowledges nothing, retries with backoff up to its cap,
and catches up by itself: every sample stored exactly once.

A longer outage would add nothing to two behaviours: writes timing out while the
store hangs, and the retry delay reaching `retry_max_s` and staying there for several
attempts. The collector here has a shorter write timeout (1 s; production 10 s) and
retry cap (2 s; production 30 s), so both happen within 12 s hung + 10 s refused,
which keeps the suite under its time budget (the production cap would need minutes):
each writer's delay, 0.5 s doubling, reaches the cap after three timed-out attempts,
about 5 s into the hang, then it retries every 2 s until the store is back. The test
prints the retries and delays."""

from __future__ import annotations

import logging
import re
import signal
import time

import pytest

from collector.config import CollectorSettings, IngestSettings, MqttSettings, StoreSettings
from collector.service import Collector
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

HUNG_S = 12.0
DOWN_S = 10.0
TIMEOUT_MS = 1000  # production: 10 s
RETRY_MAX_S = 2.0  # production: 30 s (retry_initial_s stays 0.5 s)
_RETRY = re.compile(r"retrying in ([0-9.]+) s")


@pytest.mark.timeout(600)
def test_store_hung_then_down_loses_and_doubles_nothing(
    private_stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="collector.service")  # the retry delays
    school = unique_school()
    settings = CollectorSettings(
        mqtt=MqttSettings(port=private_stack.mqtt_port, client_id="outage-collector"),
        store=StoreSettings(url=private_stack.vm_url, timeout_ms=TIMEOUT_MS),
        # the backoff: 0.5 s doubling up to RETRY_MAX_S
        ingest=IngestSettings(linger_ms=50, retry_max_s=RETRY_MAX_S),
    )
    collector = Collector(settings)
    publisher = SteadyPublisher(
        private_stack.mqtt_port, school, devices=10, per_message=5, interval_s=0.2
    )
    collector.start()
    try:
        assert collector.connected.wait(20)
        publisher.begin()
        assert wait_stored_total(private_stack.vm_url, school, 50, timeout_s=60) >= 50
        vm_proc = private_stack.procs["victoria-metrics"]
        outage_start = time.monotonic()
        vm_proc.send_signal(signal.SIGSTOP)  # hung: accepts connections, never answers
        time.sleep(HUNG_S)
        hung_retries = collector.stats.write_retries
        vm_proc.send_signal(signal.SIGCONT)
        private_stack.stop_process("victoria-metrics")  # gone: connection refused
        during = collector.stats.samples_written
        acked_during = collector.stats.acked
        time.sleep(max(0.0, HUNG_S + DOWN_S - (time.monotonic() - outage_start)))
        assert collector.stats.samples_written == during, "written while the store was down?"
        assert collector.stats.acked == acked_during, "acknowledged while the store was down"
        retries = collector.stats.write_retries
        private_stack.start_victoriametrics()
        back_at = time.monotonic()
        outage_s = back_at - outage_start
        backlog = publisher.sent_samples
        assert wait_stored_total(private_stack.vm_url, school, backlog, timeout_s=120) >= backlog
        catch_up_s = time.monotonic() - back_at
        time.sleep(3.0)  # live traffic after the recovery too
        publisher.finish()
        sent = publisher.sent_samples
        assert wait_stored_total(private_stack.vm_url, school, sent, timeout_s=120) >= sent
        assert wait_until(lambda: collector.stats.acked >= publisher.sent_messages, 30)
        time.sleep(1.0)
        stamps = stored_timestamps(private_stack.vm_url, school)
    finally:
        publisher.finish(5)
        collector.stop()
    stored = sum(len(t) for t in stamps.values())
    assert duplicates(stamps) == 0
    assert stored == sent == stored_total(private_stack.vm_url, school)
    assert retries >= 5, f"only {retries} write retries during a {outage_s:.0f} s outage"
    delays = [float(m[1]) for r in caplog.records if (m := _RETRY.search(r.getMessage()))]
    print(
        f"store outage {outage_s:.0f} s ({HUNG_S:.0f} s hung + rest refused): {sent} samples "
        f"published, {stored} stored once, 0 lost; {retries} write retries "
        f"({hung_retries} while hung), backoff up to {max(delays, default=0):g} s "
        f"({delays.count(RETRY_MAX_S)} retries at the {RETRY_MAX_S:g} s cap); the {backlog} "
        f"samples of the backlog stored {catch_up_s:.1f} s after the store came back"
    )
