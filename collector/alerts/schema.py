"""Table definitions of the alert store (SQLAlchemy Core), identical on SQLite and PostgreSQL.

Times are UTC-aware datetimes everywhere in Python. PostgreSQL keeps them in
`timestamptz`; SQLite has no time type, so they are stored as fixed-width ISO-8601
text in UTC, whose lexical order is the chronological order (the store compares
`due_at <= now` in SQL on both backends).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

# Fixed width (always microseconds, always "+00:00"), so that text order is time order.
_SQLITE_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on both backends; a naive datetime is refused."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(32))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"time must be a timezone-aware datetime, got {value!r}")
        utc = value.astimezone(UTC)
        return utc.strftime(_SQLITE_TIME_FORMAT) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value).astimezone(UTC)
        # psycopg returns the session's time zone; normalise so both backends compare equal.
        return value.astimezone(UTC)  # type: ignore[no-any-return]


def _json_default(value: object) -> str:
    # Evidence comes from the rules; a reading time in it must not break storage.
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"evidence value {value!r} of type {type(value).__name__} is not JSON")


def to_json(value: object) -> str:
    """The JSON serializer given to the engine (both dialects accept `json_serializer`)."""
    return json.dumps(value, default=_json_default, ensure_ascii=False, allow_nan=False)


metadata = sa.MetaData()

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(300), nullable=False),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(16), nullable=False),
    sa.Column("school", sa.String(16), nullable=False),
    sa.Column("device", sa.String(128)),
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("opened_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # When the condition started: the first sample time showing it (the engine's
    # times are sample times; `opened_at` is when it had lasted the minimum duration).
    sa.Column("since", UtcDateTime),
    sa.Column("resolved_at", UtcDateTime),
    sa.Column("summary", sa.Text, nullable=False, default=""),
    sa.Column("action", sa.Text, nullable=False, default=""),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("acknowledged_by", sa.String(128)),
    sa.Column("escalated_to", sa.String(128)),
)

# At most one alert per key that is not resolved, even when several collectors race
# to open it: both backends support partial unique indexes.
sa.Index(
    "uq_alerts_unresolved_key",
    alerts.c.key,
    unique=True,
    sqlite_where=alerts.c.status != "resolved",
    postgresql_where=alerts.c.status != "resolved",
)
sa.Index("ix_alerts_school_status", alerts.c.school, alerts.c.status)
# The worklists and the region overview read the unresolved alerts only: this index
# keeps their cost proportional to those, however long the resolved history grows;
# on PostgreSQL the overview's per-school counts read it alone (an index-only scan,
# once vacuumed).
# Measured in BENCHMARKS.md ("Web worklist (issue 14)").
sa.Index(
    "ix_alerts_unresolved",
    alerts.c.school,
    alerts.c.severity,
    alerts.c.status,
    alerts.c.rule,
    alerts.c.device,
    sqlite_where=alerts.c.status != "resolved",
    postgresql_where=alerts.c.status != "resolved",
)

transitions = sa.Table(
    "transitions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "alert_id", sa.Integer, sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("from_status", sa.String(16)),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("by", sa.String(128), nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("evidence", sa.JSON, nullable=False),
)
sa.Index("ix_transitions_alert", transitions.c.alert_id, transitions.c.id)

# How far the transitions were written to the time series (`TransitionFeed`), so a
# restart resumes there: changes made while no collector ran (a technician resolving
# from the worklist) still reach the dashboards.
feed_marks = sa.Table(
    "feed_marks",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("last_id", sa.Integer, nullable=False),
)

# The engine's memory per alert key, so the lifecycle survives a restart and several
# collectors share it. Times are sample times, except the notification ones.
# `due_at`: when the key's clear timer expires, in the sample time of its `scope`
# (the device, or the school's completed windows); `remind_at`: when a sweep must
# look at the key on the collector's clock (a late "opened" notification, a reminder).
engine_state = sa.Table(
    "engine_state",
    metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("scope", sa.String(160), nullable=False, default=""),
    sa.Column("pending_since", UtcDateTime),
    sa.Column("clear_since", UtcDateTime),
    sa.Column("last_notified_at", UtcDateTime),
    sa.Column("last_notified_kind", sa.String(16)),
    sa.Column("alert_id", sa.Integer),
    sa.Column("alert_open", sa.Boolean, nullable=False, default=False),
    sa.Column("due_at", UtcDateTime),
    sa.Column("remind_at", UtcDateTime),
    sa.Column("notify_pending", sa.Boolean, nullable=False, default=False),
    sa.Column("finding", sa.JSON, nullable=False),
)
sa.Index("ix_engine_state_due", engine_state.c.due_at)
sa.Index("ix_engine_state_remind", engine_state.c.remind_at)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("school", sa.String(16), primary_key=True),
    sa.Column("device", sa.String(128), primary_key=True),
    sa.Column("asset_tag", sa.String(64)),
    sa.Column("battery_model", sa.String(128)),
    sa.Column("last_seen", UtcDateTime),
    # Small derived state the rules keep per device (e.g. the fade regression sums).
    sa.Column("derived", sa.JSON, nullable=False),
)

# The alerting's memory per school (collector.alerting.school): telemetry windows
# not complete yet, daily reporting counts, access-point verdicts. One JSON document.
school_state = sa.Table(
    "school_state",
    metadata,
    sa.Column("school", sa.String(16), primary_key=True),
    sa.Column("derived", sa.JSON, nullable=False),
)

# The latest battery-replacement forecast per school and term (written by the
# collector's forecast pass, read by the worklist and the region overview).
forecasts = sa.Table(
    "forecasts",
    metadata,
    sa.Column("school", sa.String(16), primary_key=True),
    sa.Column("term", sa.String(64), primary_key=True),
    sa.Column("devices_below_80", sa.Integer, nullable=False),
    sa.Column("devices_below_60", sa.Integer, nullable=False),
    sa.Column("computed_at", UtcDateTime, nullable=False),
)

# Notifications to send, written in the same transaction as the alert change that
# causes them (the transactional outbox): a crash or an SMTP outage between the
# transition and the e-mail cannot lose the e-mail. `status` is pending, sent or
# failed (gave up); a pending row is claimed by one collector until `claimed_until`.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "alert_id", sa.Integer, sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("kind", sa.String(16), nullable=False),  # opened, resolved, reminder, ...
    sa.Column("channels", sa.JSON),  # channels still to deliver; NULL: every planned one
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claimed_until", UtcDateTime),
    sa.Column("sent_at", UtcDateTime),
    sa.Column("last_error", sa.Text),
)
sa.Index("ix_outbox_due", outbox.c.status, outbox.c.next_attempt_at)


def add_missing_columns(engine: sa.engine.Engine) -> list[str]:
    """Columns added since a store was created (`alerts.since`, the engine's `scope`,
    `remind_at`, `notify_pending`): ALTER TABLE ... ADD COLUMN for each one missing,
    so an existing store keeps its alerts. Returns "table.column" for each added."""
    inspector = sa.inspect(engine)
    added: list[str] = []
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            if not inspector.has_table(table.name):
                continue  # create_all makes it whole
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                ddl_type = column.type.compile(dialect=engine.dialect)
                default = _ddl_default(column)
                conn.execute(
                    sa.text(
                        f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {ddl_type}{default}'
                    )
                )
                added.append(f"{table.name}.{column.name}")
        for table in metadata.sorted_tables:
            if inspector.has_table(table.name):  # create_all skips the indexes of old tables
                for index in table.indexes:
                    index.create(conn, checkfirst=True)
        if "engine_state.scope" in added:
            _upgrade_engine_rows(conn)
    return added


def _upgrade_engine_rows(conn: sa.Connection) -> None:
    """Rows written before the engine worked in sample time: `due_at` was the next
    look at the key (open, resolve or remind) on the collector's clock. Keep a clear
    timer as it is; any other time becomes the next reminder; the scope comes from
    the key (collector.rules.scope_of)."""
    from collector.alerts.model import Finding  # noqa: PLC0415 - schema stays import-light
    from collector.rules import scope_of  # noqa: PLC0415

    table = engine_state
    conn.execute(  # the engine reschedules a reminder not due yet (AlertEngine.sweep)
        table.update()
        .where(table.c.clear_since.is_(None), table.c.alert_open.is_(True))
        .values(remind_at=sa.func.coalesce(table.c.due_at, table.c.last_notified_at), due_at=None)
    )
    conn.execute(table.update().where(table.c.clear_since.is_(None)).values(due_at=None))
    for key, rule, finding in conn.execute(sa.select(table.c.key, table.c.rule, table.c.finding)):
        parts = key.split("/")
        device = finding.get("device") if isinstance(finding, dict) else None
        if device is None and len(parts) >= 3 and parts[1] != "ap":
            device = parts[1]
        probe = Finding(
            rule=rule, key=key, subject="device", school=parts[0], device=device,
            category="hardware", severity="info", active=True, at=datetime.now(UTC),
        )  # fmt: skip
        conn.execute(table.update().where(table.c.key == key).values(scope=scope_of(probe)))


def _ddl_default(column: sa.Column[Any]) -> str:
    """A NOT NULL column added to existing rows needs a default: the Python one."""
    if column.nullable:
        return ""
    value = getattr(column.default, "arg", None)
    if isinstance(value, bool):
        return f" NOT NULL DEFAULT {'TRUE' if value else 'FALSE'}"
    if isinstance(value, str):
        return f" NOT NULL DEFAULT '{value}'"
    raise ValueError(f"column {column.table.name}.{column.name}: no default to add it with")
