"""One batch of MQTT messages -> line protocol and dead letters (no I/O here)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from collector.contract import Sample
from collector.deadletter import DeadLetter
from collector.lineproto import to_lines
from collector.validate import MessageRejected, check_message

log = logging.getLogger(__name__)


class Writer(Protocol):
    def write(self, lines: Sequence[str]) -> None: ...


@dataclass(slots=True)
class Batch:
    lines: list[str] = field(default_factory=list)
    sample_count: int = 0
    messages: int = 0
    rejected_messages: int = 0
    rejected_samples: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # (topic, first line, end line, samples) per message with accepted samples
    spans: list[tuple[str, int, int, int]] = field(default_factory=list)
    # the accepted samples themselves, for the rules once the store has them
    accepted: list[tuple[str, str, Sample]] = field(default_factory=list)

    def isolate(self, writer: Writer) -> None:
        """The store refused the batch: write message by message and dead-letter the
        messages it still refuses (Telegraf's "split batch" for 4xx answers).
        `StoreUnavailable` propagates: the caller retries the whole batch."""
        from collector.store import StoreRejected  # noqa: PLC0415 - avoid a cycle

        written = 0
        for topic, start, end, samples in self.spans:
            try:
                writer.write(self.lines[start:end])
                written += samples
            except StoreRejected as exc:
                self.dead_letters.append(DeadLetter(topic, str(exc), self.lines[start:end]))
                self.rejected_messages += 1
        self.sample_count = written


def build_batch(messages: Sequence[tuple[str, bytes]]) -> Batch:
    batch = Batch(messages=len(messages))
    for topic, payload in messages:
        try:
            checked = check_message(topic, payload)
        except MessageRejected as exc:
            batch.dead_letters.append(DeadLetter(topic, exc.reason, payload))
            batch.rejected_messages += 1
            continue
        for rej in checked.rejected:
            batch.dead_letters.append(DeadLetter(topic, rej.reason, rej.raw, rej.index))
            batch.rejected_samples += 1
        if not checked.samples:
            continue
        start = len(batch.lines)
        batch.accepted.extend((checked.school, checked.device, s) for s in checked.samples)
        for sample in checked.samples:
            batch.lines.extend(
                to_lines(checked.school, checked.device, checked.agent_version, sample)
            )
        batch.sample_count += len(checked.samples)
        batch.spans.append((topic, start, len(batch.lines), len(checked.samples)))
    return batch
