"""One storage layer for alerts, their transitions, the engine's state and device state.

`AlertStore(url)` works identically on SQLite (the default, one collector:
`sqlite:///state.sqlite3`, WAL mode) and PostgreSQL (several collectors sharing the
load: `postgresql+psycopg://user@host/db`). Every method is one transaction, or part
of the calling thread's `unit()` (the engine applies a batch's findings in one).

Concurrency: the partial unique index on `alerts.key WHERE status <> 'resolved'`
keeps at most one unresolved alert per key even when two collectors race to open
it; the loser gets the winner's alert back (`try_open_alert` says which happened).
Status changes lock the alert row (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite
serialises writers anyway).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, get_args

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, Row

from collector.alerts import schema
from collector.alerts.devices import DeviceStates
from collector.alerts.enginestore import EngineStates
from collector.alerts.feed import TransitionFeed
from collector.alerts.forecasts import Forecasts
from collector.alerts.model import Alert, Category, Finding, Status, Transition
from collector.alerts.outbox import Outbox, enqueue
from collector.alerts.schema import alerts, devices, transitions
from collector.alerts.schools import SchoolStates

# Which status changes are legal; comments and escalations keep the status.
_ALLOWED: dict[Status, frozenset[Status]] = {
    "open": frozenset({"acknowledged", "resolved"}),
    "acknowledged": frozenset({"resolved"}),
    "resolved": frozenset({"open"}),
}
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


class AlertStoreError(Exception):
    """Base of the alert store's errors."""


class AlertNotFound(AlertStoreError, LookupError):
    """No alert has this id."""


class InvalidTransition(AlertStoreError, ValueError):
    """The requested status change is not allowed from the alert's current status."""


@dataclass(slots=True)
class DeviceRecord:
    school: str
    device: str
    asset_tag: str | None
    battery_model: str | None
    last_seen: datetime | None
    derived: dict[str, Any]


def _now(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    if at.tzinfo is None:  # checked here so the caller gets a ValueError, not a StatementError
        raise ValueError(f"at must be a timezone-aware datetime, got {at!r}")
    return at


def _to_alert(row: Row[Any]) -> Alert:
    return Alert(**row._mapping)  # the columns are named after the fields


# The statements of the engine's transitions, built once: a statement built per call
# (`.values(...)`, `.where(column == value)`) costs SQLAlchemy a new cache key each
# time, which was a third of an alert's opening on SQLite (BENCHMARKS.md). The values
# go as parameters; the bind names differ from the columns' (SQLAlchemy reserves those
# for the values of an INSERT or UPDATE).
_FIND_OPEN = alerts.select().where(
    alerts.c.key == sa.bindparam("b_key"), alerts.c.status != "resolved"
)
_GET = alerts.select().where(alerts.c.id == sa.bindparam("b_id"))
_GET_LOCKED = _GET.with_for_update()
_UPDATE_ALERT = alerts.update().where(alerts.c.id == sa.bindparam("b_id")).returning(*alerts.c)
_OPEN_TRIES = 3
_INSERT_TRANSITION = transitions.insert()
_TRANSITION_FIELDS = tuple(f.name for f in fields(Transition))


# The advisory lock that serialises schema creation between collectors (any value
# no other lock of the database uses: "lordi" in ASCII, then "schema").
SCHEMA_LOCK_KEY = 0x6C6F726469_736368


class AlertStore:
    def __init__(self, url: str, *, connect_args: Mapping[str, Any] | None = None) -> None:
        dialect = sa.make_url(url).get_backend_name()
        if dialect not in ("sqlite", "postgresql"):
            raise AlertStoreError(
                f"url: unsupported database {dialect!r}, use sqlite or postgresql"
            )
        self._dialect = dialect
        self._engine: Engine = sa.create_engine(
            url, connect_args=dict(connect_args or {}), json_serializer=schema.to_json
        )
        if self._dialect == "sqlite":
            sa.event.listen(self._engine, "connect", _sqlite_pragmas)
        self.outbox = Outbox(self._engine)
        self.device_states = DeviceStates(self._engine)
        self.engine_states = EngineStates(self._engine)
        self.school_states = SchoolStates(self._engine)
        self.feed = TransitionFeed(self._engine)
        self.forecasts = Forecasts(self._engine)
        self._local = threading.local()  # .unit: this thread's `unit`, if any
        self._insert_alert = (
            self._insert(alerts)
            .on_conflict_do_nothing(
                index_elements=[alerts.c.key],
                # The index's own predicate, as a literal: with a parameter, PostgreSQL
                # cannot match the index once psycopg prepares the statement (its 6th run).
                index_where=alerts.c.status != sa.literal_column("'resolved'"),
            )
            .returning(*alerts.c)
        )

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (the worklist's read-only summaries query it)."""
        return self._engine

    @property
    def single_writer(self) -> bool:
        """SQLite serves one collector; PostgreSQL may be shared by several."""
        return self._dialect == "sqlite"

    def close(self) -> None:
        self._engine.dispose()

    # --- one transaction for many transitions ---------------------------------------

    @contextmanager
    def unit(self) -> Iterator[None]:
        """Every alert transition this thread makes inside the block is one database
        transaction, committed at its end (rolled back on an exception): the engine
        applies a batch's findings in one, not one commit per alert (a first day
        opens hundreds at once). Reads inside it see its writes. Other threads keep
        their own transactions. Nested: part of the outer one. A unit that neither
        reads nor writes does not touch the database."""
        if getattr(self._local, "unit", None) is not None:
            yield
            return
        opened: list[Connection] = []  # its connection, once the unit first needs one
        self._local.unit = opened
        try:
            yield
            if opened:
                opened[0].commit()
        finally:
            self._local.unit = None
            if opened:
                opened[0].close()  # rolls back what was not committed

    def _unit_connection(self) -> Connection | None:
        opened: list[Connection] | None = getattr(self._local, "unit", None)
        if opened is None:
            return None
        if not opened:
            conn = self._engine.connect()
            conn.begin()
            opened.append(conn)
        return opened[0]

    @contextmanager
    def _write(self, *, savepoint: bool = False) -> Iterator[Connection]:
        """A transaction of its own, or a part of this thread's `unit`. `savepoint`: a
        statement of the block may fail on the unique key (a re-opening racing another
        collector's opening); on PostgreSQL a failed statement would abort the whole
        unit, so the block is a savepoint. On SQLite a failed statement undoes only
        itself; and every method raises its own errors before it writes."""
        conn = self._unit_connection()
        if conn is None:
            with self._engine.begin() as conn:
                yield conn
        elif savepoint and self._dialect == "postgresql":
            with conn.begin_nested():
                yield conn
        else:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        conn = self._unit_connection()
        if conn is not None:
            yield conn
            return
        with self._engine.connect() as conn:
            yield conn

    def create_tables(self) -> None:
        """Create what is missing. On PostgreSQL under an advisory lock: collectors
        (partitions) starting together on a new database raced on CREATE TABLE
        ("duplicate key value violates unique constraint pg_type_typname_nsp_index")."""
        if self._engine.dialect.name != "postgresql":
            schema.metadata.create_all(self._engine)
            schema.add_missing_columns(self._engine)
            return
        with self._engine.connect() as lock:
            lock.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            try:
                schema.metadata.create_all(self._engine)
                schema.add_missing_columns(self._engine)
            finally:
                lock.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
                lock.commit()

    # --- alerts -------------------------------------------------------------------

    def open_alert(
        self, finding: Finding, at: datetime, note: str = "", by: str = "engine"
    ) -> Alert:
        """Open an alert for the finding's key, or return the unresolved one it has."""
        return self.try_open_alert(finding, at, note, by)[0]

    def try_open_alert(
        self,
        finding: Finding,
        at: datetime,
        note: str = "",
        by: str = "engine",
        *,
        notify: str | None = None,
        since: datetime | None = None,
        queued_at: datetime | None = None,
    ) -> tuple[Alert, bool]:
        """(alert, True) when this call created it; (existing alert, False) otherwise.
        `at` is when it opens and `since` when its condition started (sample times;
        `since` defaults to `at`). With `notify`, a notification of that kind enters
        the outbox in the same transaction as the new alert (none when the alert
        already existed), queued at `queued_at` (the collector's clock; default `at`)."""
        at = _now(at)
        values = {
            "key": finding.key, "rule": finding.rule, "subject": finding.subject,
            "school": finding.school, "device": finding.device,
            "category": finding.category, "severity": finding.severity,
            "status": "open", "opened_at": at, "updated_at": at, "since": since or at,
            "summary": finding.summary, "action": finding.action,
            "evidence": finding.evidence,
        }  # fmt: skip
        with self._write() as conn:
            for _ in range(_OPEN_TRIES):
                existing = self._find_open(conn, finding.key)
                if existing is not None:  # checked first: a conflicting insert burns an id on PG
                    return existing, False
                # ON CONFLICT DO NOTHING: a collector racing for the key waits for the
                # winner's commit, then inserts nothing instead of failing (a failed
                # statement would abort a PostgreSQL unit); the loop then finds the
                # winner's alert.
                row = conn.execute(self._insert_alert, values).first()
                if row is None:
                    continue
                alert = _to_alert(row)
                self._record(
                    conn, Transition(alert.id, at, None, "open", by, note, finding.evidence)
                )
                if notify is not None:
                    enqueue(conn, alert.id, notify, queued_at or at)
                return alert, True
        raise AlertStoreError(
            f"key {finding.key!r}: lost the race to open an alert {_OPEN_TRIES} times "
            "to alerts resolved at once"
        )

    def get_alert(self, alert_id: int) -> Alert:
        with self._read() as conn:
            return self._get(conn, alert_id)

    def find_open(self, key: str) -> Alert | None:
        """The key's unresolved (open or acknowledged) alert, if any."""
        with self._read() as conn:
            return self._find_open(conn, key)

    @staticmethod
    def _find_open(conn: Connection, key: str) -> Alert | None:
        row = conn.execute(_FIND_OPEN, {"b_key": key}).first()
        return None if row is None else _to_alert(row)

    def list_alerts(
        self,
        school: str | None = None,
        status: Status | None = None,
        *,
        unresolved: bool = False,
        device: str | None = None,
        limit: int | None = None,
    ) -> list[Alert]:
        """Worklist order: most severe first, then oldest first. `unresolved`: open
        and acknowledged ones only."""
        rank = sa.case(_SEVERITY_RANK, value=alerts.c.severity, else_=len(_SEVERITY_RANK))
        query = alerts.select().order_by(rank, alerts.c.opened_at, alerts.c.id)
        if school is not None:
            query = query.where(alerts.c.school == school)
        if status is not None:
            query = query.where(alerts.c.status == status)
        if unresolved:
            query = query.where(alerts.c.status != "resolved")
        if device is not None:
            query = query.where(alerts.c.device == device)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as conn:
            return [_to_alert(row) for row in conn.execute(query)]

    def open_counts(self) -> dict[str, int]:
        """Unresolved (open or acknowledged) alerts per category, every category
        named (the collector's lordi_collector_open_alerts gauge)."""
        query = (
            sa.select(alerts.c.category, sa.func.count())
            .where(alerts.c.status != "resolved")
            .group_by(alerts.c.category)
        )
        counts = dict.fromkeys(get_args(Category), 0)
        with self._engine.connect() as conn:
            for category, count in conn.execute(query):
                counts[category] = int(count)
        return counts

    def transition(
        self,
        alert_id: int,
        to_status: Status,
        by: str,
        *,
        note: str = "",
        evidence: Mapping[str, Any] | None = None,
        at: datetime | None = None,
        notify: str | None = None,
        queued_at: datetime | None = None,
    ) -> Alert:
        """Change the alert's status and record the transition with its evidence; with
        `notify`, enqueue a notification of that kind in the same transaction (at
        `queued_at`, default `at`). A re-opening keeps the alert's `since` (its first
        episode's start: the same alert, flapping)."""
        at = _now(at)
        try:
            # Only a re-opening can fail on the unique key: in a savepoint on PostgreSQL.
            with self._write(savepoint=to_status == "open") as conn:
                current = self._get(conn, alert_id, lock=True)
                if to_status not in _ALLOWED[current.status]:
                    raise InvalidTransition(
                        f"alert {alert_id} is {current.status}; it cannot become {to_status}"
                    )
                changes: dict[str, Any] = {"status": to_status, "updated_at": at}
                if to_status == "acknowledged":
                    changes["acknowledged_by"] = by
                elif to_status == "resolved":
                    changes["resolved_at"] = at
                else:  # re-opened: a new episode of the same alert, not yet acknowledged
                    changes.update(resolved_at=None, acknowledged_by=None)
                row = conn.execute(_UPDATE_ALERT, {**changes, "b_id": alert_id}).one()
                self._record(
                    conn,
                    Transition(
                        alert_id, at, current.status, to_status, by, note, dict(evidence or {})
                    ),
                )
                if notify is not None:
                    enqueue(conn, alert_id, notify, queued_at or at)
                return _to_alert(row)
        except sa.exc.IntegrityError as exc:  # only a re-open can collide with another alert
            other = self.find_open(self.get_alert(alert_id).key)
            raise InvalidTransition(
                f"alert {alert_id} cannot be re-opened: alert "
                f"{other.id if other else '?'} is already unresolved for the same key"
            ) from exc

    def acknowledge(
        self,
        alert_id: int,
        by: str,
        *,
        comment: str = "",
        at: datetime | None = None,
        notify: str | None = None,
    ) -> Alert:
        return self.transition(alert_id, "acknowledged", by, note=comment, at=at, notify=notify)

    def resolve(
        self,
        alert_id: int,
        by: str,
        *,
        note: str = "",
        evidence: Mapping[str, Any] | None = None,
        at: datetime | None = None,
        notify: str | None = None,
        queued_at: datetime | None = None,
    ) -> Alert:
        return self.transition(
            alert_id,
            "resolved",
            by,
            note=note,
            evidence=evidence,
            at=at,
            notify=notify,
            queued_at=queued_at,
        )

    def enqueue(self, alert_id: int, kind: str, at: datetime) -> None:
        """A notification without a status change (a reminder, an escalation)."""
        with self._write() as conn:
            self._get(conn, alert_id)  # a precise error for an unknown id
            enqueue(conn, alert_id, kind, _now(at))

    def comment(self, alert_id: int, by: str, text: str, *, at: datetime | None = None) -> Alert:
        """A comment is a transition that keeps the status, so the history is one list."""
        if not text.strip():
            raise ValueError(f"comment text must not be empty, got {text!r}")
        return self._annotate(alert_id, by, text, _now(at), {})

    def escalate(
        self,
        alert_id: int,
        to_party: str,
        by: str,
        *,
        note: str = "",
        at: datetime | None = None,
        notify: str | None = None,
    ) -> Alert:
        """Record the escalation; with `notify`, the level-2 notification enters the
        outbox in the same transaction."""
        if not to_party.strip():
            raise ValueError(f"escalation party must not be empty, got {to_party!r}")
        note = note or f"escaladée vers {to_party}"
        return self._annotate(
            alert_id, by, note, _now(at), {"escalated_to": to_party}, notify=notify
        )

    def transitions_of(self, alert_id: int) -> list[Transition]:
        query = (
            transitions.select()
            .where(transitions.c.alert_id == alert_id)
            .order_by(transitions.c.at, transitions.c.id)
        )
        with self._engine.connect() as conn:
            self._get(conn, alert_id)  # a precise error for an unknown id
            rows = conn.execute(query).all()
        # Every column but the row id is a field of Transition.
        return [Transition(**{k: v for k, v in r._mapping.items() if k != "id"}) for r in rows]

    def _annotate(
        self,
        alert_id: int,
        by: str,
        note: str,
        at: datetime,
        changes: dict[str, Any],
        *,
        notify: str | None = None,
    ) -> Alert:
        with self._write() as conn:
            current = self._get(conn, alert_id, lock=True)
            if "escalated_to" in changes and current.status == "resolved":
                raise InvalidTransition(f"alert {alert_id} is resolved; it cannot be escalated")
            changes = {**changes, "updated_at": at}
            row = conn.execute(_UPDATE_ALERT, {**changes, "b_id": alert_id}).one()
            self._record(conn, Transition(alert_id, at, current.status, current.status, by, note))
            if notify is not None:
                enqueue(conn, alert_id, notify, at)
            return _to_alert(row)

    def _get(self, conn: Connection, alert_id: int, lock: bool = False) -> Alert:
        row = conn.execute(_GET_LOCKED if lock else _GET, {"b_id": alert_id}).first()
        if row is None:
            raise AlertNotFound(f"alert id {alert_id}: no such alert")
        return _to_alert(row)

    @staticmethod
    def _record(conn: Connection, transition: Transition) -> None:
        # Field by field, not `asdict`, which deep-copies the evidence.
        conn.execute(
            _INSERT_TRANSITION, {name: getattr(transition, name) for name in _TRANSITION_FIELDS}
        )

    # --- devices ------------------------------------------------------------------

    def upsert_device(
        self,
        school: str,
        device: str,
        *,
        asset_tag: str | None = None,
        battery_model: str | None = None,
        last_seen: datetime | None = None,
        derived: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert or update a device; a field left at None keeps its stored value."""
        given = {
            "asset_tag": asset_tag,
            "battery_model": battery_model,
            "last_seen": last_seen,
            "derived": None if derived is None else dict(derived),
        }
        updates = {k: v for k, v in given.items() if v is not None}
        row = {**given, "school": school, "device": device, "derived": given["derived"] or {}}
        self._upsert(devices, row, ["school", "device"], updates)

    def get_device(self, school: str, device: str) -> DeviceRecord | None:
        query = devices.select().where(devices.c.school == school, devices.c.device == device)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else DeviceRecord(**row._mapping)

    def list_devices(self, school: str | None = None) -> list[DeviceRecord]:
        query = devices.select().order_by(devices.c.school, devices.c.device)
        if school is not None:
            query = query.where(devices.c.school == school)
        with self._engine.connect() as conn:
            return [DeviceRecord(**row._mapping) for row in conn.execute(query)]

    def _insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(table)

    def _upsert(
        self, table: sa.Table, row: dict[str, Any], index: list[str], updates: dict[str, Any]
    ) -> None:
        statement = self._insert(table).values(row)
        statement = (
            statement.on_conflict_do_update(index_elements=index, set_=updates)
            if updates
            else statement.on_conflict_do_nothing(index_elements=index)
        )
        with self._engine.begin() as conn:
            conn.execute(statement)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the worklist CLI read while the collector writes; the busy timeout makes
    # a second writer wait instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
