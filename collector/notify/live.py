"""The school registry a running collector routes with, replaced without a restart.

`LiveRegistry.current` is the `Registry` in force. A reload reads and validates the
whole file (`load_registry`) first and only then replaces `current` with the new
object, whole: a reader that takes `current` once and keeps it for the whole
notification (as `Notifier.send` does) never mixes two versions. A refused file
changes nothing: the previous registry stays in force, and one line names the
file, the field and the value.

`RegistryWatch` is a small thread that looks at the file's identity (inode, size,
modification time) every `POLL_S` seconds and reloads once a change has stayed the
same for one look (a file being written is not read half-way), so an edit takes
effect within 2 x `POLL_S`; `request()` (the collector's SIGHUP) reloads at once.
A refused file is logged once: the watch tries it again only when it changes again
(a SIGHUP always tries, and logs, again).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from collector.notify.errors import RegistryError
from collector.notify.registry import Registry, load_registry

log = logging.getLogger(__name__)

POLL_S = 2.0
# Identifiers named one by one in a reload's log line; the rest are counted.
MAX_NAMED = 10

# (inode, size, mtime in ns) of the registry file; None: it cannot be stat'ed.
Stamp = tuple[int, int, int] | None


def file_stamp(path: Path) -> Stamp:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _names(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:MAX_NAMED])
    return shown + (f" (+{len(keys) - MAX_NAMED} more)" if len(keys) > MAX_NAMED else "")


def _diff(what: str, before: Mapping[str, object], after: Mapping[str, object]) -> list[str]:
    added = after.keys() - before.keys()
    removed = before.keys() - after.keys()
    changed = {k for k in after.keys() & before.keys() if after[k] != before[k]}
    return [
        f"{what} {verb}: {_names(keys)}"
        for verb, keys in (("added", added), ("removed", removed), ("changed", changed))
        if keys
    ]


def changes(old: Registry, new: Registry) -> str:
    """What differs from `old` to `new`, in words: schools added, removed or changed
    (any of their keys: contacts, contractors, asset tags...), contractors likewise,
    the fallback address; "no change" when nothing does."""
    parts = _diff("schools", old.schools, new.schools)
    parts += _diff("contractors", old.contractors, new.contractors)
    if old.fallback_email != new.fallback_email:
        parts.append(f"fallback_email changed to {new.fallback_email}")
    return "; ".join(parts) or "no change"


def _counts(registry: Registry) -> str:
    return f"{len(registry.schools)} schools, {len(registry.contractors)} contractors"


class LiveRegistry:
    """The registry in force, its file and the outcome of the latest load.

    `current` may be read from any thread. `reload` and `poll` run one at a time
    (the watch thread, a test); the figures below are for the metrics."""

    def __init__(
        self,
        registry: Registry,
        path: Path | None = None,
        stamp: Stamp = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._current = registry
        self.path = path  # None: a fixed registry, nothing to reload
        self._clock = clock
        self.loaded_at = clock()  # epoch seconds of the load of `current`
        self.failures = 0  # refused reloads
        self.refused: str | None = None  # why the file on disk is refused, while it is
        self._handled = stamp  # the file's identity at the latest load or refusal
        self._seen = stamp  # ... and at the latest look
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path, clock: Callable[[], float] = time.time) -> LiveRegistry:
        """The registry of `path`; `RegistryError` when it is invalid (at start-up)."""
        stamp = file_stamp(path)  # before reading: a later write is seen as a change
        return cls(load_registry(path), path, stamp, clock)

    @property
    def current(self) -> Registry:
        """The registry in force. Take it once per use: a reload replaces it whole."""
        return self._current

    def reload(self, why: str = "reload requested") -> bool:
        """Read and validate the file; swap it in if valid. One log line either way.
        True when the new registry is in force."""
        if self.path is None:
            return False
        with self._lock:
            stamp = file_stamp(self.path)
            self._seen = stamp
            return self._load(self.path, stamp, why)

    def fresh(self) -> Registry:
        """The registry in force, first reloaded if its file changed since the latest
        load or refusal: a notification about a laptop enrolled a second ago (its
        asset tag just written) does not wait for the watch. One stat per call."""
        if self.path is not None and file_stamp(self.path) != self._handled:
            with self._lock:
                stamp = file_stamp(self.path)
                if stamp != self._handled:
                    self._seen = stamp
                    self._load(self.path, stamp, "file changed, read before a notification")
        return self._current

    def poll(self) -> bool | None:
        """One look at the file: reload when its identity differs from the one last
        loaded or refused and is the same as at the previous look. None: nothing done."""
        if self.path is None:
            return None
        with self._lock:
            stamp = file_stamp(self.path)
            settled, self._seen = stamp == self._seen, stamp
            if not settled or stamp == self._handled:
                return None
            return self._load(self.path, stamp, "file changed")

    def _load(self, path: Path, stamp: Stamp, why: str) -> bool:
        self._handled = stamp
        old = self._current
        try:
            new = load_registry(path)
        except RegistryError as exc:
            self.failures += 1
            self.refused = str(exc)
            since = datetime.fromtimestamp(self.loaded_at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
            log.error(
                "registry reload (%s) refused: %s; the previous registry stays in force "
                "(%s, loaded %s)",
                why, exc, _counts(old), since,
            )  # fmt: skip
            return False
        self._current = new
        self.loaded_at = self._clock()
        self.refused = None
        log.info("registry %s reloaded (%s): %s; %s", path, why, _counts(new), changes(old, new))
        return True


class RegistryWatch:
    """The thread that reloads a `LiveRegistry` when its file changes or on request."""

    def __init__(self, live: LiveRegistry, poll_s: float = POLL_S) -> None:
        self.live = live
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._requested = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="registry-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self) -> None:
        """Reload now (for a signal handler: it only sets a flag and wakes the thread)."""
        self._requested = True
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                if self._requested:
                    self._requested = False
                    self.live.reload("SIGHUP")
                else:
                    self.live.poll()
            except Exception:  # a bug must not end the watch: the registry stays in force
                log.exception("registry watch: reload failed")
