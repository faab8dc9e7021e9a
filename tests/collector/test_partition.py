"""Partitions (collector/partition.py, partition_lock.py): which schools a collector
owns, the topics it subscribes to on the real broker as the registry changes, and
the locks that keep one process per partition (a real PostgreSQL, real flock)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.cli import supervise
from collector.config import ConfigError, MetricsSettings, load_settings
from collector.partition import (
    Partition,
    PartitionSettings,
    hashed_partition,
    school_filter,
    split,
)
from collector.partition_lock import FileLock, PostgresLock, lock_key, make_lock
from collector.service import Collector
from lordi.stack import LocalStack, free_port
from tests.alerts.helpers import POSTGRES_URL
from tests.helpers import envelope, minimal_sample, publish, settings_for, unique_school

TOPIC = "lordi/v1/+/+/telemetry"
REPO = Path(__file__).resolve().parents[2]


def _partition(count: int, index: int, placements: dict[str, int | None]) -> Partition:
    return Partition(PartitionSettings(count=count, index=index), TOPIC, lambda: placements)


# -- ownership ------------------------------------------------------------------------------


def test_the_hash_is_the_same_in_every_process() -> None:
    """Not Python's salted hash(): two processes with other hash seeds agree."""
    uais = [f"{n:07d}A" for n in range(0, 5000, 97)]
    code = (
        "from collector.partition import hashed_partition\n"
        f"print([hashed_partition(u, 7) for u in {uais!r}])"
    )
    seen = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)},
        ).stdout.strip()
        for seed in ("1", "2")
    }  # fmt: skip
    assert seen == {str([hashed_partition(u, 7) for u in uais])}


def test_every_school_has_exactly_one_partition_and_the_split_is_even() -> None:
    uais = [f"{n:07d}{'ABCDEFGHJK'[n % 10]}" for n in range(300, 90_000, 149)]
    placements: dict[str, int | None] = dict.fromkeys(uais)
    owned = [_partition(3, i, placements).owned() for i in range(3)]
    assert sorted(u for part in owned for u in part) == sorted(uais)
    assert all(set(a).isdisjoint(b) for a in owned for b in owned if a is not b)
    assert owned == [split(uais, 3)[i] for i in range(3)]
    assert all(len(part) > len(uais) / 3 * 0.8 for part in owned), [len(p) for p in owned]


def test_the_registry_places_a_school_and_a_bad_place_falls_back_to_the_hash() -> None:
    placements: dict[str, int | None] = {"0000001A": 2, "0000002B": 7, "0000003C": None}
    p2 = _partition(3, 2, placements)
    assert p2.owns("0000001A")
    assert p2.misplaced() == ["0000002B (partition = 7)"]
    for uai in ("0000002B", "0000003C"):
        owner = hashed_partition(uai, 3)
        assert [_partition(3, i, placements).owns(uai) for i in range(3)] == [
            i == owner for i in range(3)
        ]


def test_filters_client_id_and_the_schools_to_leave() -> None:
    p = _partition(2, 1, {"0000001A": 1, "0000002B": 0})
    assert p.filters() == ["lordi/v1/0000001A/+/telemetry"]
    assert p.foreign_filters() == [TOPIC, "lordi/v1/0000002B/+/telemetry"]
    assert p.client_id("lordi-collector") == "lordi-collector-p1of2"
    assert p.name == "partition 1 of 2"
    with pytest.raises(ValueError, match=r"mqtt.topic = 'lordi/v1/all/telemetry'"):
        school_filter("lordi/v1/all/telemetry", "0000001A")


def test_configuration_errors_name_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text("[partition]\ncount = 3\nindex = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"partition.*index = 3 is not a partition of count = 3"):
        load_settings(bad)
    bad.write_text('[partition]\ncount = 2\nlock = "postgresql"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"partition.lock = \"postgresql\" needs"):
        load_settings(bad)


def test_auto_lock_is_postgresql_with_a_postgresql_store_else_a_file(tmp_path: Path) -> None:
    s = PartitionSettings(count=2, index=0)
    pg = make_lock(s, "c-p0of2", True, POSTGRES_URL)
    assert isinstance(pg, PostgresLock) and pg.key == lock_key("c-p0of2")
    file = make_lock(s, "c-p0of2", True, f"sqlite:///{tmp_path}/alerts.sqlite3")
    assert isinstance(file, FileLock) and file.path == tmp_path / "c-p0of2.lock"
    assert make_lock(s.model_copy(update={"lock": "none"}), "c", True, POSTGRES_URL) is None


# -- locks -------------------------------------------------------------------------------------

_HOLDER = """
import sys, time
from pathlib import Path
from collector.partition_lock import FileLock, PostgresLock
lock = PostgresLock(sys.argv[2], "holder") if sys.argv[1] == "pg" else FileLock(Path(sys.argv[2]), "holder")
assert lock.try_acquire()
print("held", flush=True)
time.sleep(600)
"""


def _holder(kind: str, where: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, kind, where], stdout=subprocess.PIPE, text=True,
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.parametrize("kind", ["pg", "file"])
def test_a_standby_gets_the_lock_when_the_holder_is_killed(kind: str, tmp_path: Path) -> None:
    where = POSTGRES_URL if kind == "pg" else str(tmp_path)
    mine = PostgresLock(where, "holder") if kind == "pg" else FileLock(tmp_path, "holder")
    holder = _holder(kind, where)
    try:
        assert not mine.try_acquire() and not mine.held()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 10
        while not mine.try_acquire():
            assert time.monotonic() < deadline, "the lock was not released by the dead holder"
            time.sleep(0.1)
        assert mine.held()
    finally:
        holder.kill()
        mine.release()


def test_a_holder_whose_connection_is_cut_no_longer_holds_the_lock() -> None:
    """The fencing check: the database closed the holder's session (failover, network),
    so held() is False and the collector must stop."""
    import psycopg  # noqa: PLC0415

    lock = PostgresLock(POSTGRES_URL, f"cut-{os.getpid()}")
    assert lock.try_acquire() and lock.held()
    pid = lock._conn.info.backend_pid  # the server side of the lock
    with psycopg.connect(lock.url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert not lock.held()
    other = PostgresLock(POSTGRES_URL, f"cut-{os.getpid()}")
    try:
        assert other.try_acquire()
    finally:
        other.release()
        lock.release()


class _Idle:
    refreshed = 0

    def stalled(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def refresh_subscriptions(self) -> int:
        self.refreshed += 1
        return 0


class _LostLock:
    what = "a test lock"

    def held(self) -> bool:
        return False

    def try_acquire(self) -> bool:
        return False

    def release(self) -> None:
        return None


def test_supervise_stops_with_code_3_when_the_lock_is_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("collector.cli._figures", lambda _c: {})
    monkeypatch.setattr("collector.cli.REFRESH_S", 0.05)
    done = threading.Event()
    timer = threading.Timer(10, done.set)
    timer.start()
    try:
        code = supervise(_Idle(), done, 60, _LostLock(), lock_check_s=0.1)  # type: ignore[arg-type]
    finally:
        timer.cancel()
    assert code == 3 and not done.is_set()


# -- subscriptions on the real broker ------------------------------------------------------------


def test_a_partition_receives_its_schools_only_and_follows_the_registry(
    stack: LocalStack,
) -> None:
    mine, other, added = unique_school(), unique_school(), unique_school()
    placements: dict[str, int | None] = {mine: 0, other: 1}
    partition = Partition(PartitionSettings(count=2, index=0), TOPIC, lambda: placements)
    port = free_port()
    settings = settings_for(stack, client_id=f"part-{mine}").model_copy(
        update={"metrics": MetricsSettings(enabled=True, port=port, broker_sys=False)}
    )
    collector = Collector(settings, partition=partition)
    assert collector.client_id == f"part-{mine}-p0of2"
    sample = [minimal_sample(datetime.now(UTC).replace(microsecond=0))]

    def send(uai: str) -> None:
        publish(stack, f"lordi/v1/{uai}/d1/telemetry", [envelope(uai, "d1", sample)])

    collector.start()
    try:
        assert collector.connected.wait(10)
        assert collector.schools_subscribed == 1
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        assert 'lordi_collector_partition_schools{partition="0/2"} 1.0' in text
        send(other)
        send(added)  # not in the registry yet: nobody's
        send(mine)
        deadline = time.monotonic() + 10
        while collector.stats.acked < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the others, if they were coming, would be here
        assert collector.stats.acked == 1
        placements[added] = 0  # the registry gained a school for this partition
        assert collector.refresh_subscriptions() == 1
        assert collector.schools_subscribed == 2
        time.sleep(0.3)  # the SUBSCRIBE reaches the broker
        send(added)
        deadline = time.monotonic() + 10
        while collector.stats.acked < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert collector.stats.acked == 2
        placements[mine] = 1  # moved to the other partition: left
        assert collector.refresh_subscriptions() == 1
        time.sleep(0.3)
        send(mine)
        time.sleep(0.5)
        assert collector.stats.acked == 2
    finally:
        collector.stop()
