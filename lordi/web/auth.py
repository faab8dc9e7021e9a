"""Who is asking: the session cookie, or the region's single-sign-on proxy; the
log-in limiter; the CSRF check of every state change."""

from __future__ import annotations

import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from lordi.web.accounts import Accounts, Session, same_token
from lordi.web.config import LoginLimits, WebSettings

SESSION_COOKIE = "lordi_session"
LOGIN_COOKIE = "lordi_login"  # the log-in form's CSRF token (no session yet)


class LoginLimiter:
    """Failed log-ins per account and per client address over a sliding window."""

    def __init__(self, limits: LoginLimits) -> None:
        self.limits = limits
        self._fails: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str, now: float) -> int:
        fails = self._fails[key]
        while fails and fails[0] <= now - self.limits.window_s:
            fails.popleft()
        if not fails:
            del self._fails[key]
            return 0
        return len(fails)

    def blocked(self, user: str, client: str) -> bool:
        now = time.monotonic()
        return (
            self._recent(f"u:{user}", now) >= self.limits.per_user
            or self._recent(f"c:{client}", now) >= self.limits.per_client
        )

    def failed(self, user: str, client: str) -> None:
        now = time.monotonic()
        self._fails[f"u:{user}"].append(now)
        self._fails[f"c:{client}"].append(now)


@dataclass(frozen=True, slots=True)
class Identity:
    session: Session
    new_token: str | None = None  # set: the response must carry this new cookie


def client_of(request: Request) -> str:
    return request.client.host if request.client else "?"


def identify(request: Request, accounts: Accounts, settings: WebSettings) -> Identity | None:
    """The session of the person making the request, if any."""
    token = request.cookies.get(SESSION_COOKIE, "")
    session = accounts.session(token) if token else None
    sso = settings.sso
    if not sso.enabled:
        return None if session is None else Identity(session)
    name = request.headers.get(sso.user_header)
    if name is None or client_of(request) not in sso.trusted_proxies:
        # Without the proxy's word, only a session the proxy once opened counts.
        return None if session is None else Identity(session)
    if session is not None and session.user.name == name:
        return Identity(session)
    user = accounts.get(name)
    if user is None or user.disabled:
        return None
    new_token, fresh = accounts.open_session(user)
    accounts.audit(name, "login", detail="single sign-on", client=client_of(request))
    return Identity(fresh, new_token)


def set_session_cookie(response: Response, token: str, settings: WebSettings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.session_ttl_s),
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
        path="/",
    )


def login_token(request: Request) -> str:
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)


def set_login_cookie(response: Response, token: str, settings: WebSettings) -> None:
    response.set_cookie(
        LOGIN_COOKIE, token, max_age=3600, httponly=True,
        secure=settings.secure_cookies, samesite="strict", path="/connexion",
    )  # fmt: skip


def csrf_ok(given: object, expected: str) -> bool:
    return isinstance(given, str) and bool(given) and same_token(given, expected)
