"""Delivering the outbox: claim due notifications, send them, record the outcome.

One pass (`deliver_due(now)`) claims up to `OutboxSettings.batch` due rows, sends
each with the `Notifier` (restricted to the channels still owed), then marks the
row sent, or schedules the failed channels again with exponential backoff, or gives
up after `max_attempts`. The alert is read back from the store at sending time, so
a late e-mail shows the alert as it is now. `enrich` may add to the alert before it
is rendered (the collector adds the battery's capacity history from device state).

Digests (collector/notify/digest.py): a row whose level-1 e-mail waits for the
school's next digest time has that channel deferred to a digest row, and its other
channels are sent at once. When a school's digest rows come due, one e-mail lists
them all; they are sent, retried or given up together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from collector.alerts.model import Alert
from collector.alerts.outbox import OutboxRow, is_digest
from collector.alerts.store import AlertNotFound, AlertStore
from collector.notify.deliver import Channel, Notifier
from collector.notify.payload import NotificationKind
from collector.notify.settings import OutboxSettings

log = logging.getLogger(__name__)

Enrich = Callable[[Alert], Alert]


@dataclass(slots=True)
class PassResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0  # given up
    deferred: int = 0  # level-1 e-mails moved to their school's digest
    digests: int = 0  # digest e-mails sent

    def __iadd__(self, other: PassResult) -> PassResult:
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.deferred += other.deferred
        self.digests += other.digests
        return self


def backoff_s(attempts: int, settings: OutboxSettings) -> float:
    """Delay before the next try after `attempts` failed ones (1, 2, ...)."""
    return float(min(settings.retry_initial_s * 2 ** max(attempts - 1, 0), settings.retry_max_s))


def notification_kind(kind: str) -> NotificationKind:
    # A reminder of an unacknowledged alert goes out as the "opened" message again.
    return "opened" if kind == "reminder" else cast(NotificationKind, kind)


class OutboxDeliverer:
    def __init__(
        self,
        store: AlertStore,
        notifier: Notifier,
        settings: OutboxSettings | None = None,
        enrich: Enrich | None = None,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.settings = settings or notifier.settings.outbox
        self._enrich = enrich

    def deliver_due(self, now: datetime, alert_id: int | None = None) -> PassResult:
        """Send every due row (of one alert, with `alert_id`), batch after batch,
        until none is left."""
        total = PassResult()
        while True:
            rows = self.store.outbox.claim(
                now, self.settings.batch, self.settings.lease_s, alert_id=alert_id
            )
            schools: dict[str, None] = {}  # in order: the schools whose digest is due
            with self.notifier.topic_pass():  # each school's alert topic once a batch
                for row in rows:
                    if is_digest(row.kind):
                        school = self._school_of(row, now)
                        if school is not None:
                            schools[school] = None
                        continue
                    total += self._deliver(row, now)
            for school in schools:
                total += self._deliver_digest(school, now)
            if len(rows) < self.settings.batch:
                return total

    def _school_of(self, row: OutboxRow, now: datetime) -> str | None:
        try:
            return self.store.get_alert(row.alert_id).school
        except AlertNotFound:
            self.store.outbox.retry(row.id, (), "alert deleted", now, give_up=True)
            return None

    def _deliver_digest(self, school: str, now: datetime) -> PassResult:
        """Every due digest row of `school` in one level-1 e-mail."""
        events: list[tuple[OutboxRow, Alert]] = []
        for row in self.store.outbox.claim_digest(school, now, self.settings.lease_s):
            try:
                events.append((row, self.store.get_alert(row.alert_id)))
            except AlertNotFound:
                self.store.outbox.retry(row.id, (), "alert deleted", now, give_up=True)
        if not events:
            return PassResult()
        kinds = [(row.kind.removeprefix("digest_"), alert) for row, alert in events]
        result = self.notifier.send_digest(school, kinds, now)
        if result.ok:
            for row, _ in events:
                self.store.outbox.mark_sent(row.id, now)
            return PassResult(sent=len(events), digests=1)
        # Retried together (one e-mail again), on the backoff of the most tried row.
        outcome = PassResult()
        error = f"{result.channel}: {result.error}"
        most = max(row.attempts for row, _ in events) + 1
        retry_at = now + timedelta(seconds=backoff_s(most, self.settings))
        for row, _ in events:
            attempts = row.attempts + 1
            give_up = attempts >= self.settings.max_attempts
            self.store.outbox.retry(row.id, [result.channel], error, retry_at, give_up=give_up)
            outcome += PassResult(failed=1) if give_up else PassResult(retried=1)
        log.warning("school %s: digest of %d events failed; rows retried with backoff",
                    school, len(events))  # fmt: skip
        return outcome

    def _deliver(self, row: OutboxRow, now: datetime) -> PassResult:
        try:
            alert = self.store.get_alert(row.alert_id)
        except AlertNotFound:  # deleted by hand: nothing left to say
            self.store.outbox.retry(row.id, (), "alert deleted", now, give_up=True)
            return PassResult(failed=1)
        if self._enrich is not None:
            alert = self._enrich(alert)
        only = None if row.channels is None else cast(set[Channel], set(row.channels))
        kind = notification_kind(row.kind)
        due = self.notifier.digest_at(row.kind, alert, now)
        owed = set(self.notifier.planned(kind, alert)) if only is None else only
        if due is not None and "email_level1" in owed:
            remaining = owed - {"email_level1"}
            if not self.store.outbox.defer(row, "email_level1", due, now, remaining):
                return PassResult()  # our lease ran out: another collector has the row
            if not remaining:
                return PassResult(deferred=1)
            only = remaining
        report = self.notifier.send(kind, alert, self.store.transitions_of(alert.id), only=only)
        if report.ok:
            self.store.outbox.mark_sent(row.id, now)
            return PassResult(sent=1)
        failed = sorted(report.failed_channels)
        error = "; ".join(f"{r.channel}: {r.error}" for r in report.results if not r.ok)
        attempts = row.attempts + 1
        give_up = attempts >= self.settings.max_attempts
        retry_at = now + timedelta(seconds=backoff_s(attempts, self.settings))
        self.store.outbox.retry(row.id, failed, error, retry_at, give_up=give_up)
        if give_up:
            log.error(
                "alert %s %s: giving up on %s after %d attempts",
                alert.id, row.kind, ", ".join(failed), attempts,
            )  # fmt: skip
            return PassResult(failed=1)
        log.warning(
            "alert %s %s: delivery failed on %s; retry at %s",
            alert.id, row.kind, ", ".join(failed), retry_at.isoformat(timespec="seconds"),
        )  # fmt: skip
        return PassResult(retried=1)
