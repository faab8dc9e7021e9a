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
# collectors share it. `due_at` is the next time the engine must look at the key
# (open, resolve or remind) even if no finding arrives: indexed for the sweep.
engine_state = sa.Table(
    "engine_state",
    metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("pending_since", UtcDateTime),
    sa.Column("clear_since", UtcDateTime),
    sa.Column("last_notified_at", UtcDateTime),
    sa.Column("last_notified_kind", sa.String(16)),
    sa.Column("alert_id", sa.Integer),
    sa.Column("alert_open", sa.Boolean, nullable=False, default=False),
    sa.Column("due_at", UtcDateTime),
    sa.Column("finding", sa.JSON, nullable=False),
)
sa.Index("ix_engine_state_due", engine_state.c.due_at)

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
