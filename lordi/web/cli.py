"""`lordi-web --config web.toml` serves the worklist; `lordi web user ...` manages
its accounts (run by the region's operators on the server)."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import secrets
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lordi.web.accounts import Accounts
    from lordi.web.config import WebSettings


def build(settings: WebSettings) -> Any:
    """The ASGI application over the collector's alert store and registry."""
    from lordi.web.accounts import Accounts  # noqa: PLC0415
    from lordi.web.app import WebApp  # noqa: PLC0415
    from lordi.worklist import open_worklist  # noqa: PLC0415

    worklist = open_worklist(None, settings.collector_config)
    accounts = Accounts(worklist.store.engine, settings.session_ttl_s)
    accounts.create_tables()
    return WebApp(settings, worklist, accounts).asgi()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lordi-web", description=__doc__)
    parser.add_argument("--config", required=True, help="web.toml (provisioning/web/)")
    parser.add_argument("--port", type=int, help="override [web] port (0: any free port)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from lordi.web.config import WebConfigError, load_web_settings  # noqa: PLC0415

    try:
        settings = load_web_settings(Path(args.config))
    except WebConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    if args.port is not None:
        settings = settings.model_copy(update={"port": args.port})
    import uvicorn  # noqa: PLC0415

    watch_for_systemd(settings.host, settings.port)
    uvicorn.run(
        build(settings),
        host=settings.host,
        port=settings.port,
        # The connection's own address stays the proxy's: single sign-on trusts its
        # header only from there; the app reads X-Forwarded-For itself, only from
        # the proxies (lordi.web.auth.client_of).
        proxy_headers=False,
        server_header=False,
        log_level="info",
    )
    return 0


def watch_for_systemd(host: str, port: int) -> threading.Thread | None:
    """Under systemd's `Type=notify` (NOTIFY_SOCKET set): READY=1 once the server
    answers its own /healthz, then WATCHDOG=1 at half `WatchdogSec` each time it
    answers again within that half: a stuck event loop starves the watchdog and
    systemd restarts the process. Nothing outside systemd."""
    from collector.sdnotify import notify, watchdog_period_s  # noqa: PLC0415

    if not os.environ.get("NOTIFY_SOCKET") or port == 0:
        return None
    # Listening on every address: ask through loopback (nothing is bound here).
    target = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    url = f"http://{target if ':' not in target else f'[{target}]'}:{port}/healthz"
    period = watchdog_period_s()

    def answers(timeout_s: float) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def watch() -> None:
        while not answers(1.0):
            time.sleep(0.2)
        notify("READY=1")
        while period is not None:
            started = time.monotonic()
            if answers(period):
                notify("WATCHDOG=1")
            time.sleep(max(period - (time.monotonic() - started), 0.0))

    thread = threading.Thread(target=watch, name="systemd-watchdog", daemon=True)
    thread.start()
    return thread


# --- lordi web user ... ------------------------------------------------------------


def _accounts(args: argparse.Namespace) -> Accounts:
    from lordi.web.accounts import Accounts  # noqa: PLC0415
    from lordi.web.config import load_web_settings  # noqa: PLC0415
    from lordi.worklist import open_worklist  # noqa: PLC0415

    settings = load_web_settings(Path(args.config))
    accounts = Accounts(open_worklist(None, settings.collector_config).store.engine)
    accounts.create_tables()
    return accounts


def _password(args: argparse.Namespace) -> tuple[str | None, bool]:
    """(password, generated); None for a single-sign-on-only account."""
    from lordi.web.accounts import AccountError  # noqa: PLC0415

    if args.sso_only:
        return None, False
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    if sys.stdin.isatty():
        first = getpass.getpass("Mot de passe : ")
        if getpass.getpass("Encore : ") != first:
            raise AccountError("password: the two entries differ")
        return first, False
    return secrets.token_urlsafe(15), True


def cmd_user(args: argparse.Namespace) -> int:
    from lordi.web.accounts import AccountError  # noqa: PLC0415
    from lordi.web.config import WebConfigError  # noqa: PLC0415

    try:
        accounts = _accounts(args)
        if args.action == "add":
            password, generated = _password(args)
            schools = [s for s in (args.schools or "").split(",") if s]
            user = accounts.add(args.name, args.role, schools, password)
            accounts.audit("lordi web", "user_add", f"user:{user.name}", args.role)
            print(f"compte {user.name} créé ({user.role} {','.join(sorted(user.schools))})")
            if generated:
                print(f"mot de passe (à transmettre, il ne sera plus affiché) : {password}")
        elif args.action in ("disable", "enable"):
            accounts.set_disabled(args.name, args.action == "disable")
            accounts.audit("lordi web", f"user_{args.action}", f"user:{args.name}")
            print(f"compte {args.name} {'désactivé' if args.action == 'disable' else 'réactivé'}")
        elif args.action == "reset":
            password, generated = _password(args)
            if password is None:
                raise AccountError("password: --sso-only does not apply to reset")
            accounts.reset_password(args.name, password)
            accounts.audit("lordi web", "user_reset", f"user:{args.name}")
            print(f"mot de passe de {args.name} changé ; ses sessions sont fermées")
            if generated:
                print(f"nouveau mot de passe : {password}")
        else:
            for u in accounts.all_users():
                state = "désactivé" if u.disabled else "actif"
                login = "mot de passe" if u.has_password else "SSO seulement"
                print(f"{u.name}\t{u.role}\t{','.join(sorted(u.schools)) or '*'}\t{state}\t{login}")
    except (AccountError, WebConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("web", help="the web worklist's accounts")
    p.add_argument("--config", required=True, help="web.toml")
    what = p.add_subparsers(dest="what", required=True)
    u = what.add_parser("user", help="add, disable, enable, reset, list accounts")
    u.add_argument("action", choices=["add", "disable", "enable", "reset", "list"])
    u.add_argument("name", nargs="?", default="")
    u.add_argument("--role", choices=["school", "region"], default="school")
    u.add_argument("--schools", help="UAI codes, comma-separated (role school)")
    u.add_argument("--password-stdin", action="store_true", help="read the password on stdin")
    u.add_argument("--sso-only", action="store_true", help="no password: single sign-on only")
    u.set_defaults(func=cmd_user)
