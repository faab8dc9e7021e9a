"""MQTT messages -> one write batch of line protocol and dead letters (no I/O here).

A batch is built message by message (`Batch.add`), so the ingest thread validates
while it waits for more messages to fill the batch, and can close it on a sample
budget (the write size) rather than on a message count.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from collector.deadletter import DeadLetter
from collector.lineproto import append_message, epoch_ms, version_field
from collector.ratelimit import DeviceRateLimiter
from collector.samples import Sample
from collector.validate import MessageRejected, check_message

log = logging.getLogger(__name__)


class Writer(Protocol):
    def write(self, lines: Sequence[str]) -> None: ...


class Accepted(NamedTuple):
    """A message's accepted samples."""

    school: str
    device: str
    samples: list[Sample]
    ts_ms: list[int]  # each sample's time in epoch milliseconds


def each_sample(groups: Sequence[Accepted]) -> list[tuple[str, str, Sample]]:
    """The groups' samples one by one, as the rules take them."""
    return [(g.school, g.device, s) for g in groups for s in g.samples]


@dataclass(slots=True)
class Batch:
    lines: list[str] = field(default_factory=list)
    sample_count: int = 0
    messages: int = 0
    rejected_messages: int = 0
    rejected_samples: int = 0
    rate_limited_messages: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # (topic, first line, end line, samples) per message with accepted samples
    spans: list[tuple[str, int, int, int]] = field(default_factory=list)
    # the accepted samples, for the summaries and rules once the store has them:
    # per message, its school, device, samples and their times in epoch ms
    groups: list[Accepted] = field(default_factory=list)
    # `[store] string_fields`: write the string fields (InfluxDB) or not (VictoriaMetrics)
    string_fields: bool = True

    @property
    def accepted(self) -> list[tuple[str, str, Sample]]:
        """(school, device, sample) for every accepted sample, in order."""
        return each_sample(self.groups)

    def add(
        self,
        topic: str,
        payload: bytes,
        limiter: DeviceRateLimiter | None = None,
        now: float = 0.0,
    ) -> None:
        """Validate one message and append its lines, or its dead letters."""
        self.messages += 1
        if limiter is not None and self._rate_limited(topic, payload, limiter, now):
            return
        start, letters, rejected = len(self.lines), len(self.dead_letters), self.rejected_samples
        try:
            self._check_and_encode(topic, payload)
        except MessageRejected as exc:
            self.dead_letters.append(DeadLetter(topic, exc.reason, payload))
            self.rejected_messages += 1
        except Exception as exc:  # a collector bug must not stop ingest nor lose the input
            log.exception("could not handle a message on %s", topic)
            # The whole message becomes one dead letter: undo what it half added.
            del self.lines[start:]
            del self.dead_letters[letters:]
            self.rejected_samples = rejected
            reason = f"collector error: {type(exc).__name__}: {exc}"
            self.dead_letters.append(DeadLetter(topic, reason, payload))
            self.rejected_messages += 1

    def _check_and_encode(self, topic: str, payload: bytes) -> None:
        checked = check_message(topic, payload)
        for rej in checked.rejected:
            self.dead_letters.append(DeadLetter(topic, rej.reason, rej.raw, rej.index))
            self.rejected_samples += 1
        samples = checked.samples
        if not samples:
            return
        school, device = checked.school, checked.device
        lines = self.lines
        start = len(lines)
        version = version_field(checked.agent_version)
        strings = self.string_fields
        ts_ms = checked.ts_ms or [epoch_ms(s.ts) for s in samples]
        append_message(lines, school, device, version, samples, ts_ms=ts_ms, strings=strings)
        # Nothing below can fail: the message's lines, samples and span go together.
        self.groups.append(Accepted(school, device, samples, ts_ms))
        self.sample_count += len(samples)
        self.spans.append((topic, start, len(lines), len(samples)))

    def _rate_limited(
        self, topic: str, payload: bytes, limiter: DeviceRateLimiter, now: float
    ) -> bool:
        """Refuse the message when its device is over its rate. Keyed by the topic's
        levels as they are: a malformed topic is still rejected by validation, and
        still counts against the bucket of whatever it names."""
        parts = topic.split("/")
        if len(parts) != 5:
            return False
        verdict = limiter.check(parts[2], parts[3], now)
        if verdict.allowed:
            return False
        reason = limiter.describe(parts[2], parts[3], verdict)
        self.dead_letters.append(DeadLetter(topic, reason, payload))
        self.rate_limited_messages += 1
        return True

    def isolate(self, writer: Writer) -> None:
        """The store refused the batch: write message by message and dead-letter the
        messages it still refuses (Telegraf's "split batch" for 4xx answers).
        `StoreUnavailable` propagates: the caller retries the whole batch."""
        from collector.store import StoreRejected  # noqa: PLC0415 - avoid a cycle

        written = 0
        refused: list[DeadLetter] = []  # kept only if the whole pass completes
        for topic, start, end, samples in self.spans:
            try:
                writer.write(self.lines[start:end])
                written += samples
            except StoreRejected as exc:
                refused.append(DeadLetter(topic, str(exc), self.lines[start:end]))
        self.dead_letters.extend(refused)
        self.rejected_messages += len(refused)
        self.sample_count = written


def build_batch(
    messages: Sequence[tuple[str, bytes]],
    limiter: DeviceRateLimiter | None = None,
    now: float = 0.0,
) -> Batch:
    batch = Batch()
    for topic, payload in messages:
        batch.add(topic, payload, limiter, now)
    return batch
