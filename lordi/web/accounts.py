"""Web accounts, sessions and the audit trail, in the alert store's database.

- Users: a name, a role (`school`: the UAI codes listed; `region`: every school),
  an argon2id password hash (argon2-cffi's defaults, RFC 9106's second
  recommendation), or none for an account that only logs in through the region's
  single-sign-on proxy. Disabling a user ends their sessions at once.
- Sessions: a random token in the cookie; only its SHA-256 is stored, with the
  session's CSRF token, so a copy of the database opens no session.
- Audit: who did what, when, from where (log-ins, failures, every action, exports).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine

from collector.alerts.schema import UtcDateTime

Role = Literal["school", "region"]
ROLES: tuple[Role, ...] = ("school", "region")
MIN_PASSWORD = 12

metadata = sa.MetaData()
web_users = sa.Table(
    "web_users",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("schools", sa.JSON, nullable=False),  # UAI codes (role school)
    sa.Column("password_hash", sa.String(256)),  # None: single sign-on only
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)
web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("token_sha256", sa.String(64), primary_key=True),
    sa.Column("user", sa.String(128), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)
sa.Index("ix_web_sessions_user", web_sessions.c.user)
web_audit = sa.Table(
    "web_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("user", sa.String(128), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("target", sa.String(200), nullable=False, default=""),
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("client", sa.String(64), nullable=False, default=""),
)
sa.Index("ix_web_audit_target", web_audit.c.target, web_audit.c.id)


class AccountError(ValueError):
    """A refused account change; the message names the field and the value."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    schools: frozenset[str]
    disabled: bool = False
    has_password: bool = True

    @property
    def scope(self) -> frozenset[str] | None:
        """What the worklist service may show this user (None: every school)."""
        return None if self.role == "region" else self.schools


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    user: str
    action: str
    target: str
    detail: str


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user(row: Any) -> User:
    return User(
        row.name,
        row.role,
        frozenset(row.schools),
        bool(row.disabled),
        row.password_hash is not None,
    )


class Accounts:
    def __init__(self, engine: Engine, session_ttl_s: float = 12 * 3600.0) -> None:
        self._engine = engine
        self._hasher = PasswordHasher()
        self._ttl = timedelta(seconds=session_ttl_s)
        # Verified against when the user does not exist, so both cases cost the same.
        self._dummy = self._hasher.hash(secrets.token_hex(16))

    def create_tables(self) -> None:
        metadata.create_all(self._engine)

    # --- users --------------------------------------------------------------------

    def add(
        self, name: str, role: str, schools: Sequence[str], password: str | None
    ) -> User:
        name = name.strip()
        if not 1 <= len(name) <= 128 or any(c.isspace() or not c.isprintable() for c in name):
            raise AccountError(f"name: 1 to 128 printable characters without spaces, got {name!r}")
        if role not in ROLES:
            raise AccountError(f"role: {role!r} is not one of {', '.join(ROLES)}")
        codes = sorted({s.strip().upper() for s in schools if s.strip()})
        if role == "school" and not codes:
            raise AccountError("schools: a school account needs at least one UAI code")
        if role == "region" and codes:
            raise AccountError(f"schools: a region account sees every school, got {codes}")
        row = {
            "name": name, "role": role, "schools": codes, "disabled": False,
            "password_hash": None if password is None else self._hash(password),
            "created_at": datetime.now(UTC),
        }  # fmt: skip
        try:
            with self._engine.begin() as conn:
                conn.execute(web_users.insert().values(row))
        except sa.exc.IntegrityError:
            raise AccountError(f"name: a user {name!r} already exists") from None
        return User(name, role, frozenset(codes), False, password is not None)

    def _hash(self, password: str) -> str:
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"password: at least {MIN_PASSWORD} characters")
        return self._hasher.hash(password)

    def get(self, name: str) -> User | None:
        with self._engine.connect() as conn:
            row = conn.execute(web_users.select().where(web_users.c.name == name)).first()
        return None if row is None else _user(row)

    def all_users(self) -> list[User]:
        with self._engine.connect() as conn:
            return [_user(r) for r in conn.execute(web_users.select().order_by(web_users.c.name))]

    def set_disabled(self, name: str, disabled: bool) -> None:
        """Disable (or enable again) a user; disabling ends their sessions."""
        with self._engine.begin() as conn:
            done = conn.execute(
                web_users.update().where(web_users.c.name == name).values(disabled=disabled)
            )
            if done.rowcount != 1:
                raise AccountError(f"name: no user {name!r}")
            if disabled:
                conn.execute(web_sessions.delete().where(web_sessions.c.user == name))

    def reset_password(self, name: str, password: str) -> None:
        """A new password; every open session of the user ends."""
        hashed = self._hash(password)
        with self._engine.begin() as conn:
            done = conn.execute(
                web_users.update().where(web_users.c.name == name).values(password_hash=hashed)
            )
            if done.rowcount != 1:
                raise AccountError(f"name: no user {name!r}")
            conn.execute(web_sessions.delete().where(web_sessions.c.user == name))

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when the password is theirs and the account is enabled."""
        with self._engine.connect() as conn:
            row = conn.execute(web_users.select().where(web_users.c.name == name)).first()
        stored = row.password_hash if row is not None else None
        try:
            self._hasher.verify(stored or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or stored is None or row.disabled:
            return None
        if self._hasher.check_needs_rehash(stored):
            with self._engine.begin() as conn:
                conn.execute(
                    web_users.update()
                    .where(web_users.c.name == name)
                    .values(password_hash=self._hasher.hash(password))
                )
        return _user(row)

    # --- sessions -----------------------------------------------------------------

    def open_session(self, user: User) -> tuple[str, Session]:
        """(cookie token, session); the token itself is never stored."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            conn.execute(web_sessions.delete().where(web_sessions.c.expires_at <= now))
            conn.execute(
                web_sessions.insert().values(
                    token_sha256=_sha(token), user=user.name, csrf=csrf,
                    created_at=now, expires_at=now + self._ttl,
                )
            )  # fmt: skip
        return token, Session(user, csrf, now + self._ttl)

    def session(self, token: str) -> Session | None:
        """The live session of an enabled user for this cookie token, else None."""
        if not token or len(token) > 100:
            return None
        query = (
            sa.select(web_sessions, web_users)
            .join(web_users, web_users.c.name == web_sessions.c.user)
            .where(web_sessions.c.token_sha256 == _sha(token))
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None or row.disabled or row.expires_at <= datetime.now(UTC):
            return None
        return Session(_user(row), row.csrf, row.expires_at)

    def close_session(self, token: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(web_sessions.delete().where(web_sessions.c.token_sha256 == _sha(token)))

    # --- audit --------------------------------------------------------------------

    def audit(
        self, user: str, action: str, target: str = "", detail: str = "", client: str = ""
    ) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                web_audit.insert().values(
                    at=datetime.now(UTC), user=user[:128], action=action, target=target[:200],
                    detail=detail[:2000], client=client[:64],
                )
            )  # fmt: skip

    def audit_of(self, target: str, limit: int = 200) -> list[AuditEntry]:
        query = (
            sa.select(web_audit)
            .where(web_audit.c.target == target)
            .order_by(web_audit.c.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [
                AuditEntry(r.at, r.user, r.action, r.target, r.detail) for r in conn.execute(query)
            ]


def same_token(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
