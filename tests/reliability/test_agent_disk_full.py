"""The laptop's disk fills up under the agent's spool (a 2 MiB tmpfs, mounted by the
test, filled to the last byte while the broker is not acknowledging, so the spool
must grow). The agent service must keep running, count what it could not keep and
report it (`agent.spool_dropped`), and go back to normal once space returns: every
sample taken is then stored exactly once, still in the spool, or counted as dropped.

Needs root (mount); CI runs as root."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import AgentConfig, CadenceConfig, MqttConfig, SpoolConfig
from agent.model import Reading
from agent.service import run
from collector.config import CollectorSettings, IngestSettings, MqttSettings, StoreSettings
from collector.service import Collector
from lordi import vm
from lordi.stack import LocalStack
from tests.helpers import unique_school
from tests.integration.test_pipeline import full_reading
from tests.reliability.servers import (
    duplicates,
    stored_timestamps,
    stored_total,
    wait_stored_total,
    wait_until,
)

TMPFS_SIZE = "2m"


class CountingProvider:
    def __init__(self) -> None:
        self.reads = 0

    def read(self) -> Reading:
        self.reads += 1
        return full_reading()


@pytest.fixture
def small_disk() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="lordi-full-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(folder)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    try:
        yield folder
    finally:
        done = subprocess.run(["umount", str(folder)], capture_output=True, timeout=30, check=False)
        if done.returncode != 0:  # a spool left open by a crashed agent: detach it anyway
            subprocess.run(
                ["umount", "-l", str(folder)], capture_output=True, timeout=30, check=False
            )
        folder.rmdir()


def _left_in_spool(path: Path) -> tuple[int, int]:
    """(samples still spooled, drops counted but not yet reported) after the agent stopped:
    what was not stored nor reported yet, but not lost either."""
    db = sqlite3.connect(path)
    try:
        bodies = [json.loads(b) for (b,) in db.execute("SELECT body FROM spool")]
        counter = db.execute("SELECT value FROM counters WHERE name='dropped'").fetchone()
    finally:
        db.close()
    reported = sum((b.get("agent") or {}).get("spool_dropped") or 0 for b in bodies)
    return len(bodies), reported + (int(counter[0]) if counter else 0)


def _fill(folder: Path) -> int:
    """Write a filler file until the file system refuses (ENOSPC); its size."""
    written = 0
    with (folder / "filler").open("wb", buffering=0) as out:
        try:
            while True:
                written += out.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC
    return written


@pytest.mark.timeout(300)
def test_agent_survives_a_full_disk_counts_what_it_lost_and_recovers(
    private_stack: LocalStack, small_disk: Path
) -> None:
    school = unique_school()
    cfg = AgentConfig(
        school=school,
        device="dev-full",
        mqtt=MqttConfig(port=private_stack.mqtt_port),
        cadence=CadenceConfig(report_interval_s=1, wifi_interval_s=1, drain_spread_s=0),
        spool=SpoolConfig(path=str(small_disk / "spool.sqlite3")),
    )
    provider = CountingProvider()
    stop = threading.Event()
    crashed: list[BaseException] = []

    def service() -> None:
        try:
            run(cfg, stop, provider)
        except BaseException as exc:  # the point of the test: it must not get here
            crashed.append(exc)

    collector = Collector(
        CollectorSettings(
            mqtt=MqttSettings(port=private_stack.mqtt_port, client_id="full-disk-collector"),
            store=StoreSettings(url=private_stack.vm_url),
            ingest=IngestSettings(linger_ms=20, retry_initial_s=0.2),
        )
    )
    collector.start()
    thread = threading.Thread(target=service, name="agent-service", daemon=True)
    broker = private_stack.procs["mosquitto"]
    try:
        assert collector.connected.wait(20)
        thread.start()
        assert wait_stored_total(private_stack.vm_url, school, 3, timeout_s=60) >= 3
        broker.send_signal(signal.SIGSTOP)  # no PUBACK: the spool must grow
        filler = _fill(small_disk)
        full_from = provider.reads
        time.sleep(8.0)  # ~8 reports with the disk full
        full_reads = provider.reads - full_from
        (small_disk / "filler").unlink()  # space returns
        broker.send_signal(signal.SIGCONT)
        time.sleep(6.0)  # ~6 reports after, one of them says what was dropped
        alive = thread.is_alive()
        stop.set()
        thread.join(30)
        taken = provider.reads
        left, dropped_left = _left_in_spool(small_disk / "spool.sqlite3")
        wait_until(lambda: stored_total(private_stack.vm_url, school) >= 1, 10)
        time.sleep(2.0)
        stamps = stored_timestamps(private_stack.vm_url, school)
        vm.force_flush(private_stack.vm_url)
        dropped = sum(
            int(v)
            for row in vm.export(private_stack.vm_url, f'device_spool_dropped{{school="{school}"}}')
            for v in row["values"]
        )
    finally:
        broker.send_signal(signal.SIGCONT)
        stop.set()
        thread.join(30)
        collector.stop()
    stored = sum(len(t) for t in stamps.values())
    assert filler > 0 and full_reads >= 1, "the agent did not sample while the disk was full"
    assert not crashed, f"the agent service died: {crashed[0]!r}"
    assert alive and full_reads >= 3
    assert duplicates(stamps) == 0
    dropped += dropped_left
    assert stored + left + dropped == taken, (
        f"{stored} stored + {left} still spooled + {dropped} counted as dropped != {taken} taken"
    )
    print(
        f"agent disk full ({full_reads} reports while full): {taken} samples taken, "
        f"{stored} stored once, {dropped} reported as dropped"
    )
