"""One process per partition at a time: the lock a collector holds while it serves a
partition, and a standby waits for.

- PostgreSQL: a session-level advisory lock on a connection of its own. The server
  releases it when that connection ends, i.e. when the holder dies (kill -9, a crash,
  its machine gone: TCP keepalives close the connection within about a minute).
- File: `flock` on a file, released by the kernel when the holder dies; for the
  processes of one machine (the SQLite alert store is on one machine anyway).

The holder checks its lock every `lock_check_s` (`held()`): if the connection that
holds it is gone, another process may already serve the partition, and the holder
must stop at once (collector/cli.py exits with code 3; systemd starts it again, as a
standby). The MQTT broker fences too: the standby connects with the same client id,
and the broker disconnects the previous connection of that session.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from threading import Event
from typing import IO, Any, Protocol

from collector.partition import PartitionSettings

log = logging.getLogger(__name__)

# psycopg's TCP keepalives: a holder whose machine vanished is seen gone in ~1 min.
KEEPALIVE: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 30,
                             "keepalives_interval": 10, "keepalives_count": 3}  # fmt: skip


class PartitionLock(Protocol):
    what: str  # for the log: which lock, where

    def try_acquire(self) -> bool: ...

    def held(self) -> bool: ...

    def release(self) -> None: ...


def lock_key(client_id: str) -> int:
    """A signed 64-bit advisory lock key for one partition's session (its MQTT client
    id, which names the partition): stable everywhere, distinct per region."""
    digest = hashlib.sha256(f"lordi-collector/partition/{client_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def libpq_url(url: str) -> str:
    """An SQLAlchemy URL (postgresql+psycopg://...) as a libpq one (postgresql://...),
    query parameters such as `options` kept."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgresql"):
        raise ValueError(f"partition.lock_url = {url!r} is not a postgresql:// URL")
    return f"postgresql://{rest}"


class PostgresLock:
    def __init__(self, url: str, client_id: str) -> None:
        self.url = libpq_url(url)
        self.key = lock_key(client_id)
        host = self.url.split("@")[-1].split("/")[0]
        self.what = f"PostgreSQL advisory lock {self.key} on {host}"
        self._conn: Any = None

    def _connect(self) -> Any:
        import psycopg  # noqa: PLC0415 - only with a PostgreSQL lock

        return psycopg.connect(self.url, autocommit=True, connect_timeout=10, **KEEPALIVE)

    def try_acquire(self) -> bool:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        except Exception as exc:  # the database is down: a standby keeps waiting
            log.warning("%s: cannot ask for it (%s)", self.what, str(exc).splitlines()[0])
            self._drop()
            return False
        return bool(row and row[0])

    def held(self) -> bool:
        """The connection that holds the lock is alive (then the lock is ours)."""
        if self._conn is None or self._conn.closed:
            return False
        try:
            row = self._conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid() AND granted AND objsubid = 1 "
                "AND classid = %s::bigint::oid AND objid = %s::bigint::oid",
                ((self.key >> 32) & 0xFFFF_FFFF, self.key & 0xFFFF_FFFF),
            ).fetchone()
        except Exception as exc:
            log.error("%s: the connection holding it failed (%s)", self.what, exc)
            self._drop()
            return False
        return bool(row and row[0])

    def release(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # closing a broken connection
                log.debug("closing the lock connection failed", exc_info=True)
        self._conn = None


class FileLock:
    def __init__(self, folder: Path, client_id: str) -> None:
        self.path = folder / f"{client_id}.lock"
        self.what = f"lock file {self.path}"
        self._file: IO[str] | None = None

    def try_acquire(self) -> bool:
        if self._file is not None:
            return True
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")  # who holds it, for an operator
        handle.flush()
        self._file = handle
        return True

    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None


def make_lock(
    partition: PartitionSettings, client_id: str, alerts_enabled: bool, store_url: str
) -> PartitionLock | None:
    """The lock `[partition] lock` asks for (None: "none"), named after the
    partition's MQTT client id."""
    kind = partition.lock
    on_pg = alerts_enabled and store_url.startswith("postgresql")
    if kind == "auto":
        kind = "postgresql" if on_pg or partition.lock_url else "file"
    if kind == "none":
        return None
    if kind == "postgresql":
        return PostgresLock(partition.lock_url or store_url, client_id)
    folder = partition.lock_dir
    if folder is None and alerts_enabled and store_url.startswith("sqlite:///"):
        folder = Path(store_url.removeprefix("sqlite:///")).parent  # beside the alert store
    return FileLock(folder or Path("."), client_id)


def wait_for_lock(
    lock: PartitionLock, name: str, stop: Event, poll_s: float, beat: Callable[[], object]
) -> bool:
    """Standby until this process holds the partition's lock (True) or is asked to
    stop (False). `beat` is called at every try (the systemd watchdog)."""
    first = True
    while not stop.is_set():
        beat()
        if lock.try_acquire():
            log.info("%s: this collector holds %s and serves the partition", name, lock.what)
            return True
        if first:
            log.info("%s: standby, another collector holds %s; trying every %.0f s",
                     name, lock.what, poll_s)  # fmt: skip
            first = False
        stop.wait(poll_s)
    return False
