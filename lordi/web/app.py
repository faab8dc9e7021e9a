"""`lordi-web`: the technicians' worklist in a browser (Starlette, server-rendered).

Every page and every action goes through `collector.worklist.Worklist` with the
person's scope (their schools, or the region): the routes never query the store
themselves, so a school account cannot reach another school through any URL, form
field or export. Every state change is a POST carrying the session's CSRF token; a
GET never changes anything (mail scanners open links).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collector.alerts.store import AlertNotFound, InvalidTransition
from collector.worklist import RESOLVE_REASONS, Worklist, WorklistError
from lordi.web import views
from lordi.web.accounts import Accounts, Session
from lordi.web.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    LoginLimiter,
    client_of,
    csrf_ok,
    identify,
    login_token,
    set_login_cookie,
    set_session_cookie,
)
from lordi.web.config import WebSettings
from lordi.web.metrics import RequestMetrics, WebMetrics
from lordi.web.series import SeriesReader

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
T = TypeVar("T")
Handler = Callable[[Request, Session], Awaitable[Response]]

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
# /readyz: the store must answer `SELECT 1` within this time.
READY_TIMEOUT_S = 5.0
DONE_FR = {  # fixed messages after an action (the query string never carries text)
    "pris": "Alerte prise en charge.",
    "commentaire": "Commentaire ajouté.",
    "resolu": "Alerte résolue.",
    "escalade": "Alerte escaladée : le prestataire a reçu le dossier.",
    "escalade-attente": (
        "Alerte escaladée. Le dossier part au prestataire au prochain passage du collecteur."
    ),
    "escalade-differee": (
        "Alerte escaladée. L'envoi au prestataire a échoué ; il sera réessayé automatiquement."
    ),
}


class WebApp:
    def __init__(
        self,
        settings: WebSettings,
        worklist: Worklist,
        accounts: Accounts,
        series: SeriesReader | None = None,
    ) -> None:
        self.settings = settings
        self.worklist = worklist
        self.accounts = accounts
        self.series = series or SeriesReader(settings.series)
        self.limiter = LoginLimiter(settings.login)
        self.templates = Jinja2Templates(directory=HERE / "templates")
        self.templates.env.globals.update(views.GLOBALS)
        self.templates.env.filters.update(views.FILTERS)
        self.templates.env.globals["party_name"] = worklist.party_name
        # `[web] metrics`: request figures on /metrics (off: neither counted nor served).
        self.metrics = WebMetrics() if settings.metrics else None

    # --- plumbing -----------------------------------------------------------------

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        return self.templates.TemplateResponse(request, template, context, status_code=status)

    def secured(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """The handler runs only for a logged-in person (else: the log-in page, then
        back here); POSTs must carry the session's CSRF token."""

        async def endpoint(request: Request) -> Response:
            identity = await run_in_threadpool(identify, request, self.accounts, self.settings)
            if identity is None:
                if request.method != "GET":
                    return PlainTextResponse("Session expirée : reconnectez-vous.", 403)
                target = quote(request.url.path, safe="/")
                return RedirectResponse(f"/connexion?suite={target}", 303)
            if request.method == "POST":
                form = await request.form()
                if not csrf_ok(form.get("csrf"), identity.session.csrf):
                    await self.call(
                        self.accounts.audit, identity.session.user.name, "csrf_refused",
                        request.url.path, client=self.client(request),
                    )  # fmt: skip
                    return PlainTextResponse(
                        "Requête refusée : jeton de sécurité absent ou invalide "
                        "(rechargez la page).",
                        403,
                    )
            response = await handler(request, identity.session)
            if identity.new_token:
                set_session_cookie(response, identity.new_token, self.settings)
            return response

        return endpoint

    def client(self, request: Request) -> str:
        return client_of(request, self.settings.sso.trusted_proxies)

    @staticmethod
    async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await run_in_threadpool(partial(fn, *args, **kwargs))

    def context(self, request: Request, session: Session) -> dict[str, Any]:
        return {"user": session.user, "csrf": session.csrf}

    # --- log-in -------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        token = login_token(request)
        response = self.page(
            request, "login.html", suite=_safe_next(request.query_params.get("suite")),
            login_csrf=token, error=None,
        )  # fmt: skip
        set_login_cookie(response, token, self.settings)
        return response

    async def login(self, request: Request) -> Response:
        form = await request.form()
        name, password = _text(form, "utilisateur"), _text(form, "mot_de_passe")
        suite = _safe_next(_text(form, "suite"))
        client = self.client(request)
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not csrf_ok(form.get("csrf"), expected):
            return PlainTextResponse("Requête refusée : rechargez la page de connexion.", 403)
        if self.limiter.blocked(name, client):
            error = "Trop d'essais. Réessayez dans quelques minutes."
            await self.call(self.accounts.audit, name, "login_blocked", client=client)
        else:
            user = await self.call(self.accounts.authenticate, name, password)
            if user is not None:
                token, _ = await self.call(self.accounts.open_session, user)
                await self.call(self.accounts.audit, user.name, "login", client=client)
                response = RedirectResponse(suite or "/", 303)
                set_session_cookie(response, token, self.settings)
                response.delete_cookie(LOGIN_COOKIE, path="/connexion")
                return response
            self.limiter.failed(name, client)
            await self.call(self.accounts.audit, name, "login_failed", client=client)
            error = "Identifiant ou mot de passe incorrect."
        return self.page(request, "login.html", 401, suite=suite, login_csrf=expected, error=error)

    async def logout(self, request: Request, session: Session) -> Response:
        await self.call(self.accounts.close_session, request.cookies.get(SESSION_COOKIE, ""))
        client = self.client(request)
        await self.call(self.accounts.audit, session.user.name, "logout", client=client)
        response = RedirectResponse("/connexion", 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # --- pages --------------------------------------------------------------------

    async def home(self, request: Request, session: Session) -> Response:
        user = session.user
        if user.role == "region":
            return RedirectResponse("/region", 303)
        if len(user.schools) == 1:
            return RedirectResponse(f"/etablissements/{next(iter(user.schools))}", 303)
        summaries = await self.call(self.worklist.overview, user.scope)
        return self.page(
            request, "region.html", **self.context(request, session), schools=summaries,
            title="Mes établissements",
        )  # fmt: skip

    async def region(self, request: Request, session: Session) -> Response:
        if session.user.role != "region":
            raise HTTPException(404)
        summaries = await self.call(self.worklist.overview, None)
        return self.page(
            request, "region.html", **self.context(request, session), schools=summaries,
            title="Vue régionale",
        )  # fmt: skip

    async def school(self, request: Request, session: Session) -> Response:
        uai = request.path_params["uai"]
        include_resolved = request.query_params.get("tout") == "1"
        alerts = await self.call(
            self.worklist.alerts, session.user.scope, uai, include_resolved=include_resolved
        )
        tags = await self.call(self.worklist.asset_tags, alerts)
        forecast = (await self.call(self.worklist.forecast, frozenset({uai}))).get(uai, [])
        return self.page(
            request, "school.html", **self.context(request, session), uai=uai,
            school_name=self.worklist.school_name(uai), alerts=alerts, tags=tags,
            forecast=forecast, include_resolved=include_resolved, now=datetime.now(UTC),
        )  # fmt: skip

    async def export_csv(self, request: Request, session: Session) -> Response:
        uai = request.path_params["uai"]
        include_resolved = request.query_params.get("tout") == "1"
        alerts = await self.call(
            self.worklist.alerts, session.user.scope, uai, include_resolved=include_resolved
        )
        text = await self.call(self.worklist.csv, alerts)
        await self.call(
            self.accounts.audit, session.user.name, "export_csv", f"school:{uai}",
            f"{len(alerts)} alertes", self.client(request),
        )  # fmt: skip
        name = f"lordi-alertes-{uai}-{datetime.now(UTC):%Y%m%d}.csv"
        return Response(
            "\ufeff" + text,  # the BOM makes spreadsheet programs read UTF-8
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def alert(self, request: Request, session: Session, error: str | None = None) -> Response:
        alert_id = int(request.path_params["alert_id"])
        scope = session.user.scope
        alert = await self.call(self.worklist.alert, alert_id, scope)
        history = await self.call(self.worklist.history, alert_id, scope)
        audit = await self.call(self.accounts.audit_of, f"alert:{alert_id}")
        tag = await self.call(self.worklist.asset_tag, alert.school, alert.device)
        charts = await self.call(views.alert_charts, self.worklist, self.series, alert, scope)
        done = DONE_FR.get(request.query_params.get("fait", ""))
        return self.page(
            request, "alert.html", 400 if error else 200, **self.context(request, session),
            alert=alert, history=history, audit=audit, tag=tag, charts=charts, done=done,
            error=error, reasons=RESOLVE_REASONS, now=datetime.now(UTC),
        )  # fmt: skip

    async def device(self, request: Request, session: Session) -> Response:
        uai, device = request.path_params["uai"], request.path_params["device"]
        view = await self.call(self.worklist.device, session.user.scope, uai, device)
        charts = await self.call(views.device_charts, self.series, view)
        return self.page(
            request, "device.html", **self.context(request, session), view=view, charts=charts,
            now=datetime.now(UTC),
        )  # fmt: skip

    # --- actions ------------------------------------------------------------------

    async def act(self, request: Request, session: Session) -> Response:
        alert_id = int(request.path_params["alert_id"])
        action = request.path_params["action"]
        form = await request.form()
        scope, by = session.user.scope, session.user.name
        try:
            done = await self._act(action, alert_id, form, by, scope)
        except (WorklistError, InvalidTransition, ValueError) as exc:
            return await self.alert(request, session, error=str(exc))
        await self.call(
            self.accounts.audit, by, action, f"alert:{alert_id}",
            _text(form, "texte") or _text(form, "motif"), self.client(request),
        )  # fmt: skip
        return RedirectResponse(f"/alertes/{alert_id}?fait={done}", 303)

    async def _act(
        self, action: str, alert_id: int, form: FormData, by: str, scope: frozenset[str] | None
    ) -> str:
        w = self.worklist
        if action == "prendre":
            await self.call(w.take, alert_id, by, scope, comment=_text(form, "texte"))
            return "pris"
        if action == "commenter":
            await self.call(w.comment, alert_id, by, _text(form, "texte"), scope)
            return "commentaire"
        if action == "resoudre":
            await self.call(
                w.resolve, alert_id, by, _text(form, "motif"), scope, note=_text(form, "texte")
            )
            return "resolu"
        if action == "escalader":
            esc = await self.call(w.escalate, alert_id, by, scope, note=_text(form, "texte"))
            if not esc.delivery.attempted:
                return "escalade-attente"
            ok = esc.delivery.retrying == esc.delivery.failed == 0
            return "escalade" if ok else "escalade-differee"
        raise HTTPException(404)

    # --- health ---------------------------------------------------------------------

    def _select_one(self) -> None:
        with self.worklist.store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    async def readyz(self, _request: Request) -> Response:
        """200 when the alert store answers; 503 otherwise (the reason is logged,
        not shown: the page is reachable from outside through the proxy)."""
        try:
            await asyncio.wait_for(run_in_threadpool(self._select_one), READY_TIMEOUT_S)
        except Exception as exc:
            log.warning("readyz: the store did not answer SELECT 1 (%s: %s)",
                        type(exc).__name__, " ".join(str(exc).split())[:300])  # fmt: skip
            return PlainTextResponse("not ready: store unreachable\n", 503)
        return PlainTextResponse("ready\n")

    # --- the application ----------------------------------------------------------

    def asgi(self) -> Starlette:
        s = self.secured
        routes = [
            Route("/connexion", self.login_form, methods=["GET"]),
            Route("/connexion", self.login, methods=["POST"]),
            Route("/deconnexion", s(self.logout), methods=["POST"]),
            Route("/", s(self.home)),
            Route("/region", s(self.region)),
            Route("/etablissements/{uai}", s(self.school)),
            Route("/etablissements/{uai}/alertes.csv", s(self.export_csv)),
            Route("/etablissements/{uai}/appareils/{device}", s(self.device)),
            Route("/alertes/{alert_id:int}", s(self.alert)),
            Route(
                "/alertes/{alert_id:int}/{action:str}", s(self.act), methods=["POST"]
            ),
            Route("/healthz", lambda _r: PlainTextResponse("ok")),
            Route("/readyz", self.readyz),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]
        middleware = [Middleware(SecurityHeaders)]
        if self.metrics is not None:
            # Never through the reverse proxy (nginx-lordi-web.conf denies /metrics).
            routes.insert(0, Route("/metrics", self.metrics.endpoint))
            middleware.insert(0, Middleware(RequestMetrics, metrics=self.metrics, routes=routes))
        return Starlette(
            routes=routes,
            middleware=middleware,
            exception_handlers={
                AlertNotFound: self._not_found,
                HTTPException: self._http_error,
            },
        )

    async def _not_found(self, request: Request, _exc: Exception) -> Response:
        return self.page(request, "error.html", 404, message="Page introuvable.")

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = "Page introuvable." if status == 404 else "Requête refusée."
        return self.page(request, "error.html", status, message=message)


class SecurityHeaders:
    """ASGI middleware: the same protective headers on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip()[:4000] if isinstance(value, str) else ""


def _safe_next(target: str | None) -> str:
    """Only a path of this site (no //host, no scheme) may follow the log-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
