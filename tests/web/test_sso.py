"""Single sign-on behind the region's proxy: the proxy's header names the person,
trusted only when the request comes from the proxy's address and the mode is on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from lordi.web.accounts import web_audit
from lordi.web.auth import is_trusted
from tests.alerts.helpers import database
from tests.web.site import SCHOOL_A, SCHOOL_B, Site, site

PROXY = "testclient"  # the address Starlette's test client connects from


@pytest.fixture
def sso_web(tmp_path: Path) -> Iterator[Site]:
    with database("sqlite", str(tmp_path / "a.sqlite3")) as db, site(
        db(), None, tmp_path, sso={"enabled": True, "trusted_proxies": [PROXY]}
    ) as opened:
        opened.accounts.add("sso-a", "school", [SCHOOL_A], None)  # no password at all
        yield opened


def _client(web: Site) -> TestClient:
    return web.client()


def test_the_proxys_header_logs_the_person_in(sso_web: Site) -> None:
    client = _client(sso_web)
    page = client.get(f"/etablissements/{SCHOOL_A}", headers={"X-Remote-User": "sso-a"})
    assert page.status_code == 200
    assert "lordi_session" in page.headers["set-cookie"]  # a session, so forms have a token
    assert client.get(f"/etablissements/{SCHOOL_B}",
                      headers={"X-Remote-User": "sso-a"}).status_code == 404  # fmt: skip
    assert [e.detail for e in sso_web.accounts.audit_of("")] == ["single sign-on"]


def test_unknown_or_disabled_people_are_not_let_in(sso_web: Site) -> None:
    assert _client(sso_web).get("/", headers={"X-Remote-User": "nobody"}).status_code == 303
    sso_web.accounts.set_disabled("sso-a", True)
    assert _client(sso_web).get("/", headers={"X-Remote-User": "sso-a"}).status_code == 303


def test_a_password_login_is_refused_to_an_sso_only_account(sso_web: Site) -> None:
    assert sso_web.accounts.authenticate("sso-a", "") is None
    assert sso_web.accounts.authenticate("sso-a", "anything at all") is None


def test_the_header_from_elsewhere_than_the_proxy_is_ignored(tmp_path: Path) -> None:
    with database("sqlite", str(tmp_path / "b.sqlite3")) as db, site(
        db(), None, tmp_path, sso={"enabled": True, "trusted_proxies": ["10.0.0.5"]}
    ) as web:
        response = web.client().get("/", headers={"X-Remote-User": "region"})
        assert response.status_code == 303
        assert response.headers["location"].startswith("/connexion")


def test_single_sign_on_is_off_unless_configured(tmp_path: Path) -> None:
    with database("sqlite", str(tmp_path / "c.sqlite3")) as db, site(db(), None, tmp_path) as web:
        assert not web.app.settings.sso.enabled
        response = web.client().get("/", headers={"X-Remote-User": "region"})
        assert response.status_code == 303


def test_the_proxys_forwarded_for_neither_breaks_sso_nor_fools_the_audit(
    sso_web: Site,
) -> None:
    """Behind nginx every request also carries X-Forwarded-For: the SSO header is
    still believed (the connection comes from the proxy), and the person's address
    recorded is the proxy's last hop."""
    headers = {"X-Remote-User": "sso-a", "X-Forwarded-For": "203.0.113.7, 198.51.100.4"}
    assert _client(sso_web).get(f"/etablissements/{SCHOOL_A}", headers=headers).status_code == 200
    with sso_web.store.engine.connect() as conn:
        clients = [row.client for row in conn.execute(web_audit.select())]
    assert clients == ["198.51.100.4"]


def test_trusted_proxies_are_addresses_or_networks() -> None:
    proxies = ["127.0.0.1", "10.1.0.0/16", "not an address"]
    assert is_trusted("127.0.0.1", proxies)
    assert is_trusted("10.1.200.3", proxies)
    assert not is_trusted("10.2.0.1", proxies)
    assert not is_trusted("::1", proxies)
    assert is_trusted("not an address", proxies)  # a name matches only itself
