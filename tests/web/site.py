"""A web worklist over a seeded alert store, for the web tests: two schools of the
sample registry, an account for each, a region account, and a real SMTP server
receiving what escalations send."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.testclient import TestClient

from collector.alerts.store import AlertStore
from collector.notify.deliver import Notifier
from collector.notify.registry import Registry
from collector.notify.settings import NotifySettings, SmtpSettings
from collector.worklist import Worklist
from lordi.smtp import SmtpServer
from lordi.web.accounts import Accounts
from lordi.web.app import WebApp
from lordi.web.config import WebSettings
from lordi.web.seed import now_utc, seed_school
from tests.notify.factories import registry

SCHOOL_A, SCHOOL_B = "0340001A", "0310003C"
PASSWORD = "correct horse battery"
USERS = {"tech-a": [SCHOOL_A], "tech-b": [SCHOOL_B]}


def mail_only_registry() -> Registry:
    """The sample registry without its webhooks (their example.org hosts do not
    exist): escalations go by e-mail to the real SMTP server."""
    doc = registry().model_dump()
    for entry in [*doc["schools"].values(), *doc["contractors"].values()]:
        entry.pop("webhook_url", None)
        entry.pop("helpdesk_webhook_url", None)
    return Registry.model_validate(doc)


@dataclass
class Site:
    app: WebApp
    store: AlertStore
    accounts: Accounts
    ids: dict[str, list[int]]  # school -> its alert ids
    smtp: SmtpServer | None

    def client(self) -> TestClient:
        return TestClient(self.app.asgi(), base_url="https://testserver", follow_redirects=False)

    def login(self, name: str, password: str = PASSWORD) -> TestClient:
        client = self.client()
        response = post_login(client, name, password)
        assert response.status_code == 303, response.text
        return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def post_login(client: TestClient, name: str, password: str) -> object:
    page = client.get("/connexion")
    return client.post(
        "/connexion",
        data={"utilisateur": name, "mot_de_passe": password, "csrf": csrf_of(page.text)},
    )


@contextmanager
def site(store: AlertStore, smtp: SmtpServer | None, tmp: Path, **web: object) -> Iterator[Site]:
    now = now_utc()
    ids = {school: seed_school(store, school, now) for school in (SCHOOL_A, SCHOOL_B)}
    smtp_settings = SmtpSettings(port=smtp.port) if smtp else SmtpSettings(port=9, timeout_s=1)
    notifier = Notifier(
        mail_only_registry(),
        NotifySettings(
            smtp=smtp_settings,
            alert_topic={"enabled": False},  # type: ignore[arg-type]
            web_url="https://lordi.example.org/alertes/{id}",
        ),
        open_alerts=lambda uai: store.list_alerts(school=uai, unresolved=True),
    )
    accounts = Accounts(store.engine)
    accounts.create_tables()
    for name, schools in USERS.items():
        accounts.add(name, "school", schools, PASSWORD)
    accounts.add("region", "region", [], PASSWORD)
    settings = WebSettings.model_validate({"collector_config": str(tmp / "unused.toml"), **web})
    yield Site(WebApp(settings, Worklist(store, notifier), accounts), store, accounts, ids, smtp)
