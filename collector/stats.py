"""Counters a collector keeps about its own work (logged, and read by tests/benchmarks)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collector.ingest import Batch


@dataclass
class Stats:
    messages: int = 0
    samples_accepted: int = 0
    samples_written: int = 0
    rejected_messages: int = 0
    rejected_samples: int = 0
    # refused by the per-device rate limit (dead-lettered with their payload)
    rate_limited_messages: int = 0
    write_retries: int = 0
    acked: int = 0
    alerting_errors: int = 0
    summary_write_errors: int = 0

    def count_batch(self, batch: Batch) -> None:
        self.messages += batch.messages
        self.samples_accepted += batch.sample_count
        self.rejected_messages += batch.rejected_messages
        self.rejected_samples += batch.rejected_samples
        self.rate_limited_messages += batch.rate_limited_messages

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
