"""The agent's durable queue: every sample is written here first and leaves only when
the broker has acknowledged the message that carried it.

SQLite in WAL mode: a kill -9 loses nothing that was committed, and a power cut
never corrupts the file (with synchronous=NORMAL it may lose the last few
commits, which is the price of not waking the disk on every sample). Samples are
sent oldest first, in batches bounded in count and bytes. The spool is bounded by
age and size; what had to be dropped is counted and reported in the next sample.

A full disk (SQLITE_FULL) or a failing one never stops the agent: a sample that
cannot be written is counted as dropped (in memory, since the disk cannot take
the counter either) and reported like the others; an acknowledgement that cannot
be recorded leaves the samples spooled, to be sent again (the store keeps one
point per series and timestamp, so a resend is not a duplicate).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL,
                                  body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SpoolLimits:
    max_samples: int = 50_000  # ~5 months of 5-minute school-day reports
    max_age_s: float = 60 * 86_400


class Spool:
    """Thread-safe. `path=None` keeps the spool in memory (simulations only)."""

    def __init__(self, path: Path | None, limits: SpoolLimits = SpoolLimits()) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(path) if path else ":memory:", check_same_thread=False, isolation_level=None
        )
        if path:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._unsaved_drops = 0  # drops the disk could not record (full disk)
        self._failing = False

    def put(self, body: str, ts: float) -> int:
        """The sample's id, or 0 when the disk refused it (then it counts as dropped)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                cur = self._db.execute("INSERT INTO spool (ts, body) VALUES (?, ?)", (ts, body))
                self._enforce_limits(ts)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                self._unsaved_drops += 1
                self._disk_failed("sample not spooled", exc)
                return 0
            self._disk_ok()
            return int(cur.lastrowid or 0)

    def add_dropped(self, count: int) -> None:
        """Count `count` more samples as dropped (e.g. a drop count taken for a
        sample that could not be spooled, so it is reported with the next one)."""
        with self._lock:
            self._unsaved_drops += count

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # no transaction left open
            self._db.execute("ROLLBACK")

    def _disk_failed(self, what: str, exc: sqlite3.Error) -> None:
        if not self._failing:  # once per episode, not every 30 s
            log.error("spool write failed (%s): %s; counting what is lost", what, exc)
        self._failing = True

    def _disk_ok(self) -> None:
        if self._failing:
            log.warning("spool writes work again")
        self._failing = False

    def _enforce_limits(self, now: float) -> None:
        dropped = self._db.execute(
            "DELETE FROM spool WHERE ts < ?", (now - self.limits.max_age_s,)
        ).rowcount
        excess = self._count() - self.limits.max_samples
        if excess > 0:
            dropped += self._db.execute(
                "DELETE FROM spool WHERE id IN (SELECT id FROM spool ORDER BY id LIMIT ?)",
                (excess,),
            ).rowcount
        if dropped:
            self._db.execute(
                "INSERT INTO counters VALUES ('dropped', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (dropped,),
            )

    def _count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM spool").fetchone()[0])

    def batch(self, after_id: int, max_samples: int, max_bytes: int) -> list[tuple[int, str]]:
        """Oldest samples with id > after_id, as many as fit the bounds (at least one)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, body FROM spool WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, max_samples),
            ).fetchall()
        out: list[tuple[int, str]] = []
        size = 0
        for row_id, body in rows:
            size += len(body) + 1
            if out and size > max_bytes:
                break
            out.append((int(row_id), str(body)))
        return out

    def ack(self, ids: list[int]) -> None:
        if not ids:
            return
        with self._lock:
            try:
                self._db.execute(
                    f"DELETE FROM spool WHERE id IN ({','.join('?' * len(ids))})",  # noqa: S608
                    ids,
                )
            except sqlite3.Error as exc:  # kept, sent again: the same points in the store
                self._disk_failed("acknowledgement not recorded", exc)

    def pending(self) -> int:
        with self._lock:
            return self._count()

    def take_dropped(self) -> int:
        """Samples dropped (bounds, full disk) since the last call (reported once)."""
        with self._lock:
            dropped, self._unsaved_drops = self._unsaved_drops, 0
            try:
                self._db.execute("BEGIN IMMEDIATE")
                row = self._db.execute(
                    "SELECT value FROM counters WHERE name='dropped'"
                ).fetchone()
                self._db.execute("DELETE FROM counters WHERE name='dropped'")
                self._db.execute("COMMIT")
            except sqlite3.Error:  # the counter stays on disk for a later call
                self._rollback()
                return dropped
        return dropped + (int(row[0]) if row else 0)

    def close(self) -> None:
        with self._lock:
            self._db.close()
