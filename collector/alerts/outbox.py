"""The delivery outbox: notifications stored with the alert change that causes them.

`enqueue(conn, ...)` runs inside the store's transaction that opens, resolves or
re-opens the alert, so the notification exists exactly when the change does. A
deliverer then `claim`s due rows, sends them and marks each one `sent`, or
`retry`s it later with only the channels that failed, or gives up (`failed`).

Several collectors on one PostgreSQL database: `claim` selects due rows with
`FOR UPDATE SKIP LOCKED` and leases them (`claimed_by`, `claimed_until`) in one
short transaction, so two collectors never take the same row, and a collector that
dies mid-delivery leaves its rows to the others once the lease expires (the e-mail
may then go out twice: at-least-once is the guarantee past a crash *during* a send).
SQLite serialises writers, so there a single collector is assumed.

Digests (collector/notify/digest.py): a row's level-1 e-mail can be `defer`red to
the school's next digest time: in one transaction the row loses that channel and a
row of kind `digest_<kind>` (its only channel the level-1 e-mail, due at the digest
time) is added. `claim_digest` then takes every due digest row of one school, so
one e-mail lists them all.

Times are the caller's `now` (the collector's clock), like everything in the engine.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from collector.alerts.schema import alerts, outbox

OutboxStatus = Literal["pending", "sent", "failed"]
DIGEST_PREFIX = "digest_"  # kind of a row waiting for its school's digest e-mail


def digest_kind(kind: str) -> str:
    return f"{DIGEST_PREFIX}{kind}"


def is_digest(kind: str) -> bool:
    return kind.startswith(DIGEST_PREFIX)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    alert_id: int
    kind: str
    channels: tuple[str, ...] | None  # None: every channel the notifier plans
    status: OutboxStatus
    created_at: datetime
    next_attempt_at: datetime
    attempts: int
    sent_at: datetime | None = None
    last_error: str | None = None


_INSERT = outbox.insert()


def enqueue(
    conn: Connection,
    alert_id: int,
    kind: str,
    at: datetime,
    channels: Collection[str] | None = None,
) -> None:
    """Add a pending notification, inside the caller's transaction."""
    conn.execute(
        _INSERT,  # built once; the values are parameters (collector/alerts/store.py)
        {
            "alert_id": alert_id,
            "kind": kind,
            "channels": None if channels is None else sorted(channels),
            "status": "pending",
            "created_at": at,
            "next_attempt_at": at,
            "attempts": 0,
        },
    )


def _to_row(row: sa.Row[Any]) -> OutboxRow:
    m = row._mapping
    channels = m["channels"]
    return OutboxRow(
        id=m["id"],
        alert_id=m["alert_id"],
        kind=m["kind"],
        channels=None if channels is None else tuple(channels),
        status=m["status"],
        created_at=m["created_at"],
        next_attempt_at=m["next_attempt_at"],
        attempts=m["attempts"],
        sent_at=m["sent_at"],
        last_error=m["last_error"],
    )


class Outbox:
    """The outbox table of one alert store; `owner` names this collector's claims."""

    def __init__(self, engine: Engine, owner: str | None = None) -> None:
        self._engine = engine
        self.owner = owner or uuid.uuid4().hex[:16]

    def claim(
        self,
        now: datetime,
        limit: int = 100,
        lease_s: float = 300.0,
        alert_id: int | None = None,
    ) -> list[OutboxRow]:
        """Take up to `limit` due rows (oldest first) for `lease_s` seconds; with
        `alert_id`, only that alert's (the web sends a person's action at once)."""
        free = sa.or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until <= now)
        where = [outbox.c.status == "pending", outbox.c.next_attempt_at <= now, free]
        if alert_id is not None:
            where.append(outbox.c.alert_id == alert_id)
        due = (
            sa.select(outbox.c.id)
            .where(*where)
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite renders nothing
        )
        with self._engine.begin() as conn:
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []
            lease = {"claimed_by": self.owner, "claimed_until": now + timedelta(seconds=lease_s)}
            conn.execute(outbox.update().where(outbox.c.id.in_(ids)).values(lease))
            rows = conn.execute(
                outbox.select().where(outbox.c.id.in_(ids)).order_by(outbox.c.id)
            ).all()
        return [_to_row(r) for r in rows]

    def claim_digest(self, school: str, now: datetime, lease_s: float = 300.0) -> list[OutboxRow]:
        """Take every due digest row of `school` not leased by another collector
        (rows this collector already holds included), for `lease_s` seconds."""
        mine_or_free = sa.or_(
            outbox.c.claimed_until.is_(None),
            outbox.c.claimed_until <= now,
            outbox.c.claimed_by == self.owner,
        )
        of_school = sa.select(alerts.c.id).where(alerts.c.school == school)
        due = (
            sa.select(outbox.c.id)
            .where(
                outbox.c.status == "pending",
                outbox.c.kind.startswith(DIGEST_PREFIX),
                outbox.c.next_attempt_at <= now,
                outbox.c.alert_id.in_(of_school),
                mine_or_free,
            )
            .order_by(outbox.c.id)
            .with_for_update(skip_locked=True)
        )
        with self._engine.begin() as conn:
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []
            lease = {"claimed_by": self.owner, "claimed_until": now + timedelta(seconds=lease_s)}
            conn.execute(outbox.update().where(outbox.c.id.in_(ids)).values(lease))
            rows = conn.execute(
                outbox.select().where(outbox.c.id.in_(ids)).order_by(outbox.c.id)
            ).all()
        return [_to_row(r) for r in rows]

    def defer(
        self,
        row: OutboxRow,
        channel: str,
        due_at: datetime,
        now: datetime,
        remaining: Collection[str],
    ) -> bool:
        """Move `channel` of a claimed row to a digest row due at `due_at`; the row
        keeps `remaining` (none left: it is sent). False if our lease was lost."""
        keep: dict[str, Any] = (
            {"channels": sorted(remaining)}
            if remaining
            else {"status": "sent", "sent_at": now, "claimed_by": None, "claimed_until": None}
        )
        query = outbox.update().where(
            outbox.c.id == row.id, outbox.c.claimed_by == self.owner, outbox.c.status == "pending"
        )
        with self._engine.begin() as conn:
            if conn.execute(query.values(keep)).rowcount != 1:
                return False
            conn.execute(
                outbox.insert().values(
                    alert_id=row.alert_id,
                    kind=digest_kind(row.kind),
                    channels=[channel],
                    status="pending",
                    created_at=now,
                    next_attempt_at=due_at,
                    attempts=0,
                )
            )
        return True

    def mark_sent(self, row_id: int, now: datetime) -> bool:
        """The row was delivered on every channel; False if our lease was lost."""
        return self._finish(row_id, {"status": "sent", "sent_at": now, "last_error": None})

    def retry(
        self,
        row_id: int,
        channels: Collection[str],
        error: str,
        next_attempt_at: datetime,
        give_up: bool = False,
    ) -> bool:
        """Some channels failed: try those again at `next_attempt_at`, or give up."""
        values: dict[str, Any] = {
            "channels": sorted(channels),
            "last_error": error[:2000],
            "attempts": outbox.c.attempts + 1,
            "next_attempt_at": next_attempt_at,
        }
        if give_up:
            values["status"] = "failed"
        return self._finish(row_id, values)

    def _finish(self, row_id: int, values: dict[str, Any]) -> bool:
        values = {**values, "claimed_by": None, "claimed_until": None}
        query = outbox.update().where(
            outbox.c.id == row_id, outbox.c.claimed_by == self.owner, outbox.c.status == "pending"
        )
        with self._engine.begin() as conn:
            return conn.execute(query.values(values)).rowcount == 1

    def rows(self, status: OutboxStatus | None = None) -> list[OutboxRow]:
        query = outbox.select().order_by(outbox.c.id)
        if status is not None:
            query = query.where(outbox.c.status == status)
        with self._engine.connect() as conn:
            return [_to_row(r) for r in conn.execute(query)]

    def status_counts(self) -> dict[str, int]:
        """Rows per status (pending and failed: the index ix_outbox_due serves it);
        pending rows waiting for their first digest e-mail are counted apart, as
        "digest" (once a digest failed, its rows are pending like any retry)."""
        waiting = sa.and_(outbox.c.kind.startswith(DIGEST_PREFIX), outbox.c.attempts == 0)
        status = sa.case((sa.and_(outbox.c.status == "pending", waiting), "digest"),
                         else_=outbox.c.status)  # fmt: skip
        query = (
            sa.select(status, sa.func.count())
            .where(outbox.c.status.in_(("pending", "failed")))
            .group_by(status)
        )
        counts: dict[str, int] = {"pending": 0, "failed": 0, "digest": 0}
        with self._engine.connect() as conn:
            for name, count in conn.execute(query):
                counts[str(name)] = int(count)
        return counts

    def pending_count(self) -> int:
        query = sa.select(sa.func.count()).where(outbox.c.status == "pending")
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
