"""The agent's durable queue: order, batch bounds, acks, limits, durability, kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent.spool import Spool, SpoolLimits

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["memory", "file"])
def spool(request: pytest.FixtureRequest, tmp_path: Path) -> Spool:
    s = Spool(None if request.param == "memory" else tmp_path / "spool.db")
    request.addfinalizer(s.close)
    return s


def body(n: int) -> str:
    return f'{{"n":{n:04d}}}'  # 10 characters


def fill(spool: Spool, n: int, t0: float = 1000.0) -> list[int]:
    return [spool.put(body(i), t0 + i) for i in range(n)]


def test_ids_count_from_one_and_batches_are_fifo(spool: Spool) -> None:
    assert fill(spool, 5) == [1, 2, 3, 4, 5]
    assert spool.pending() == 5
    assert spool.batch(0, 100, 1 << 20) == [(i + 1, body(i)) for i in range(5)]


def test_empty_spool(spool: Spool) -> None:
    assert spool.pending() == 0
    assert spool.batch(0, 10, 1000) == []
    assert spool.take_dropped() == 0


def test_batch_bounded_by_count(spool: Spool) -> None:
    fill(spool, 10)
    assert [i for i, _ in spool.batch(0, 3, 1 << 20)] == [1, 2, 3]
    assert [i for i, _ in spool.batch(0, 1, 1 << 20)] == [1]


def test_batch_bounded_by_bytes(spool: Spool) -> None:
    fill(spool, 10)
    # each body costs its length plus one separator: 11
    assert [i for i, _ in spool.batch(0, 100, 33)] == [1, 2, 3]
    assert [i for i, _ in spool.batch(0, 100, 32)] == [1, 2]
    assert [i for i, _ in spool.batch(0, 100, 22)] == [1, 2]
    assert [i for i, _ in spool.batch(0, 100, 21)] == [1]


def test_batch_always_holds_at_least_one(spool: Spool) -> None:
    spool.put("x" * 5000, 1.0)
    spool.put("y", 2.0)
    assert spool.batch(0, 100, 10) == [(1, "x" * 5000)]
    assert spool.batch(1, 100, 1) == [(2, "y")]


def test_ack_removes_only_the_acked(spool: Spool) -> None:
    fill(spool, 5)
    spool.ack([2, 4])
    assert spool.pending() == 3
    assert [i for i, _ in spool.batch(0, 100, 1 << 20)] == [1, 3, 5]
    spool.ack([])
    spool.ack([2])  # acking twice is harmless
    assert spool.pending() == 3
    spool.ack([1, 3, 5])
    assert spool.pending() == 0
    assert spool.batch(0, 100, 1 << 20) == []


def test_after_id_pages_through_the_spool(spool: Spool) -> None:
    fill(spool, 7)
    pages: list[list[int]] = []
    after = 0
    while rows := spool.batch(after, 3, 1 << 20):
        pages.append([i for i, _ in rows])
        after = rows[-1][0]
    assert pages == [[1, 2, 3], [4, 5, 6], [7]]
    assert spool.pending() == 7  # paging does not remove anything


def test_ids_are_never_reused_after_ack(spool: Spool) -> None:
    fill(spool, 3)
    spool.ack([1, 2, 3])
    assert spool.put(body(9), 2000.0) == 4


def test_max_samples_drops_the_oldest_and_reports_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", SpoolLimits(max_samples=3, max_age_s=1e9))
    fill(spool, 5)
    assert spool.pending() == 3
    assert spool.batch(0, 100, 1 << 20) == [(3, body(2)), (4, body(3)), (5, body(4))]
    assert spool.take_dropped() == 2
    assert spool.take_dropped() == 0
    spool.put(body(5), 2000.0)
    assert spool.take_dropped() == 1
    assert [i for i, _ in spool.batch(0, 100, 1 << 20)] == [4, 5, 6]
    spool.close()


def test_max_age_drops_old_samples(spool: Spool) -> None:
    spool.limits = SpoolLimits(max_samples=1000, max_age_s=100.0)
    spool.put(body(0), 1000.0)
    spool.put(body(1), 1050.0)
    spool.put(body(2), 1100.0)  # the first is exactly 100 s old: kept
    assert spool.pending() == 3
    assert spool.take_dropped() == 0
    spool.put(body(3), 1100.5)
    assert [i for i, _ in spool.batch(0, 100, 1 << 20)] == [2, 3, 4]
    spool.put(body(4), 1300.0)
    assert [i for i, _ in spool.batch(0, 100, 1 << 20)] == [5]
    assert spool.take_dropped() == 4
    assert spool.take_dropped() == 0


def test_file_spool_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    first = Spool(path, SpoolLimits(max_samples=4))
    fill(first, 6)
    first.ack([3])
    first.close()

    again = Spool(path, SpoolLimits(max_samples=4))
    assert again.pending() == 3
    assert again.batch(0, 100, 1 << 20) == [(4, body(3)), (5, body(4)), (6, body(5))]
    assert again.take_dropped() == 2  # the drop count is durable too
    assert again.put(body(6), 2000.0) == 7
    again.close()


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from agent.spool import Spool

    spool = Spool(Path(sys.argv[1]))
    i = 0
    while True:
        i += 1
        row_id = spool.put('{"n":%d,"pad":"%s"}' % (i, "x" * 200), float(i))
        sys.stdout.write(f"{row_id}\\n")
        sys.stdout.flush()
    """
)


def test_kill_9_mid_write_leaves_an_intact_spool(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
        text=True,
    )
    assert proc.stdout is not None
    acknowledged = 0
    try:
        for line in proc.stdout:
            acknowledged = int(line)
            if acknowledged >= 300:
                break
        assert acknowledged >= 300, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    acknowledged = max([acknowledged, *(int(x) for x in rest.split())])

    db = sqlite3.connect(str(path))
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        ids = [r[0] for r in db.execute("SELECT id FROM spool ORDER BY id")]
    finally:
        db.close()
    # every put that returned is there, and nothing is missing in between
    assert len(ids) >= acknowledged
    assert ids == list(range(1, len(ids) + 1))

    spool = Spool(path)
    rows = spool.batch(0, 100_000, 1 << 30)
    assert [i for i, _ in rows] == ids
    assert all(b == '{"n":%d,"pad":"%s"}' % (i, "x" * 200) for i, b in rows)  # noqa: UP031
    assert spool.put("after", float(len(ids) + 1)) == len(ids) + 1
    spool.close()


def test_a_full_disk_drops_and_counts_instead_of_raising(tmp_path: Path) -> None:
    """SQLITE_FULL (here from a page cap; tests/reliability does it with a real full
    file system): put() returns 0 and counts the sample, nothing raises, and writes
    work again once there is room."""
    spool = Spool(tmp_path / "spool.sqlite3")
    pages = spool._db.execute("PRAGMA page_count").fetchone()[0]
    spool._db.execute(f"PRAGMA max_page_count={pages + 2}")
    body = "x" * 3000
    ids = [spool.put(body, 1000.0 + i) for i in range(20)]
    assert 0 in ids, "the page cap never filled"
    refused = ids.count(0)
    kept = [i for i in ids if i]
    assert spool.pending() == len(kept)
    spool.add_dropped(5)  # a count that a refused sample was carrying
    assert spool.take_dropped() == refused + 5
    assert spool.take_dropped() == 0
    spool.ack(kept)  # deleting frees pages
    spool._db.execute("PRAGMA max_page_count=1000000")
    assert spool.put(body, 2000.0) > 0
    assert spool.pending() == 1
    spool.close()
