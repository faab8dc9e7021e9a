"""What was enrolled, by which secret, and what was revoked (SQLite or PostgreSQL).

The store is the reference: every live identity's broker line is kept here (the
password's hash, never the password), so the service can put back a line the
password file lost, and an agent asking again with the same request id gets its
own device back instead of a second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from collector.alerts.schema import UtcDateTime

metadata = sa.MetaData()

enrol_secrets = sa.Table(
    "enrol_secrets",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("school", sa.String(8), nullable=False, index=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("revoked_at", UtcDateTime()),
    sa.Column("passwd_line", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
)

enrolments = sa.Table(
    "enrolments",
    metadata,
    sa.Column("device", sa.String(64), primary_key=True),
    sa.Column("school", sa.String(8), nullable=False, index=True),
    sa.Column("secret_id", sa.String(16), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("enrolled_at", UtcDateTime(), nullable=False),
    sa.Column("revoked_at", UtcDateTime()),
    sa.Column("passwd_line", sa.Text, nullable=False),
    sa.UniqueConstraint("secret_id", "request_id", name="enrolments_request"),
)


@dataclass(frozen=True, slots=True)
class Secret:
    id: str
    school: str
    created_at: datetime
    revoked_at: datetime | None
    note: str


@dataclass(frozen=True, slots=True)
class Enrolment:
    device: str
    school: str
    secret_id: str
    request_id: str
    enrolled_at: datetime
    revoked_at: datetime | None


def now() -> datetime:
    return datetime.now(UTC)


class EnrolStore:
    def __init__(self, url: str) -> None:
        self.engine: Engine = sa.create_engine(url, future=True)

    def create_tables(self) -> None:
        metadata.create_all(self.engine)

    # -- secrets ------------------------------------------------------------------
    def add_secret(self, secret_id: str, school: str, passwd_line: str, note: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(enrol_secrets.insert().values(
                id=secret_id, school=school, created_at=now(), passwd_line=passwd_line,
                note=note,
            ))

    def secret(self, secret_id: str) -> Secret | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                enrol_secrets.select().where(enrol_secrets.c.id == secret_id)
            ).first()
        return None if row is None else Secret(
            row.id, row.school, row.created_at, row.revoked_at, row.note
        )

    def secrets(self, school: str | None = None) -> list[Secret]:
        query = enrol_secrets.select().order_by(enrol_secrets.c.school, enrol_secrets.c.created_at)
        if school:
            query = query.where(enrol_secrets.c.school == school)
        with self.engine.connect() as conn:
            return [
                Secret(r.id, r.school, r.created_at, r.revoked_at, r.note)
                for r in conn.execute(query)
            ]

    def revoke_secret(self, secret_id: str) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                enrol_secrets.update()
                .where(enrol_secrets.c.id == secret_id, enrol_secrets.c.revoked_at.is_(None))
                .values(revoked_at=now())
            )
        return bool(done.rowcount)

    # -- enrolments ---------------------------------------------------------------
    def by_request(self, secret_id: str, request_id: str) -> Enrolment | None:
        with self.engine.connect() as conn:
            row = conn.execute(enrolments.select().where(
                enrolments.c.secret_id == secret_id, enrolments.c.request_id == request_id
            )).first()
        return None if row is None else _enrolment(row)

    def device(self, device: str) -> Enrolment | None:
        with self.engine.connect() as conn:
            row = conn.execute(enrolments.select().where(enrolments.c.device == device)).first()
        return None if row is None else _enrolment(row)

    def add_enrolments(self, rows: list[dict[str, object]]) -> None:
        """(device, school, secret_id, request_id, passwd_line) dicts, one transaction."""
        if rows:
            stamp = now()
            with self.engine.begin() as conn:
                conn.execute(enrolments.insert(), [{**r, "enrolled_at": stamp} for r in rows])

    def enrolments(self, school: str | None = None) -> list[Enrolment]:
        query = enrolments.select().order_by(enrolments.c.school, enrolments.c.enrolled_at)
        if school:
            query = query.where(enrolments.c.school == school)
        with self.engine.connect() as conn:
            return [_enrolment(r) for r in conn.execute(query)]

    def revoke_device(self, device: str) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                enrolments.update()
                .where(enrolments.c.device == device, enrolments.c.revoked_at.is_(None))
                .values(revoked_at=now())
            )
        return bool(done.rowcount)

    def live_lines(self) -> dict[str, str]:
        """broker user -> password-file line of every secret and device not revoked."""
        out: dict[str, str] = {}
        with self.engine.connect() as conn:
            for table in (enrol_secrets, enrolments):
                query = sa.select(table.c.passwd_line).where(table.c.revoked_at.is_(None))
                for (line,) in conn.execute(query):
                    out[line.split(":", 1)[0]] = line
        return out

    def revoked_users(self) -> set[str]:
        out: set[str] = set()
        with self.engine.connect() as conn:
            for table in (enrol_secrets, enrolments):
                query = sa.select(table.c.passwd_line).where(table.c.revoked_at.is_not(None))
                out.update(line.split(":", 1)[0] for (line,) in conn.execute(query))
        return out


def _enrolment(row: sa.Row[tuple[object, ...]]) -> Enrolment:
    return Enrolment(
        row.device, row.school, row.secret_id, row.request_id, row.enrolled_at, row.revoked_at
    )
