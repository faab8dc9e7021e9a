"""Who is asking: the session cookie, or the region's single-sign-on proxy; the
log-in limiter; the CSRF check of every state change."""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Collection
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


def peer_of(request: Request) -> str:
    """The address the connection comes from (the reverse proxy, when there is one)."""
    return request.client.host if request.client else "?"


def is_trusted(peer: str, proxies: Collection[str]) -> bool:
    """Whether `peer` is one of the proxies (addresses or networks, e.g. 10.0.0.0/8)."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:  # not an address (a test client's name): exact match only
        return peer in proxies
    for entry in proxies:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def client_of(request: Request, proxies: Collection[str]) -> str:
    """The person's address for the log-in limits and the audit: the last hop the
    trusted proxy added to X-Forwarded-For, else the connection's own address."""
    peer = peer_of(request)
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and is_trusted(peer, proxies):
        return forwarded.rsplit(",", 1)[-1].strip()[:64] or peer
    return peer


def identify(request: Request, accounts: Accounts, settings: WebSettings) -> Identity | None:
    """The session of the person making the request, if any."""
    token = request.cookies.get(SESSION_COOKIE, "")
    session = accounts.session(token) if token else None
    sso = settings.sso
    if not sso.enabled:
        return None if session is None else Identity(session)
    name = request.headers.get(sso.user_header)
    if name is None or not is_trusted(peer_of(request), sso.trusted_proxies):
        # Without the proxy's word, only a session the proxy once opened counts.
        return None if session is None else Identity(session)
    if session is not None and session.user.name == name:
        return Identity(session)
    user = accounts.get(name)
    if user is None or user.disabled:
        return None
    new_token, fresh = accounts.open_session(user)
    client = client_of(request, sso.trusted_proxies)
    accounts.audit(name, "login", detail="single sign-on", client=client)
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
