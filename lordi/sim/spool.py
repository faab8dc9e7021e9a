"""A spool for thousands of simulated laptops in one process.

The agent's `Spool(None)` is an in-memory SQLite database per laptop: right for a
few hundred laptops, heavy for ten thousand (a connection and a page cache each).
This one keeps the same contract (oldest first, batches bounded in count and bytes,
at least one sample, forget only what was acknowledged) in a dict, bounded by count only.
It is for the simulator only; the agent's durability tests use the real SQLite spool.
"""

from __future__ import annotations

from agent.spool import Spool, SpoolLimits

DEFAULT_LIMITS = SpoolLimits()


class MemorySpool(Spool):
    def __init__(self, limits: SpoolLimits = DEFAULT_LIMITS) -> None:  # no SQLite
        self.limits = limits
        self._rows: dict[int, str] = {}  # id -> body, in insertion (= id) order
        self._next_id = 1
        self._dropped = 0

    def put(self, body: str, ts: float) -> int:
        row_id = self._next_id
        self._next_id += 1
        self._rows[row_id] = body
        while len(self._rows) > self.limits.max_samples:  # oldest first, as the agent
            del self._rows[next(iter(self._rows))]
            self._dropped += 1
        return row_id

    def batch(self, after_id: int, max_samples: int, max_bytes: int) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        size = 0
        for row_id, body in self._rows.items():
            if row_id <= after_id:
                continue
            size += len(body) + 1
            if out and (size > max_bytes or len(out) >= max_samples):
                break
            out.append((row_id, body))
        return out

    def ack(self, ids: list[int]) -> None:
        for row_id in ids:
            self._rows.pop(row_id, None)

    def pending(self) -> int:
        return len(self._rows)

    def take_dropped(self) -> int:
        dropped, self._dropped = self._dropped, 0
        return dropped

    def close(self) -> None:
        self._rows.clear()
