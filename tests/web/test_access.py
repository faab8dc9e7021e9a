"""Access that holds: a school account reaches nothing of another school through
any route, form field or export; state changes need the session's CSRF token; the
log-in is rate-limited; single sign-on is trusted only from the proxy."""

from __future__ import annotations

import pytest
from starlette.routing import Mount, Route

from tests.web.site import PASSWORD, SCHOOL_A, SCHOOL_B, Site, csrf_of, post_login

ACTIONS = ("prendre", "commenter", "resoudre", "escalader")
FORM = {"texte": "tentative", "motif": "battery_replaced"}


def _routes_of_b(web: Site) -> dict[str, list[tuple[str, str]]]:
    """Every route template, with the URL of school B's data it is tried on."""
    alert_b = web.ids[SCHOOL_B][0]
    device_b = f"dev-{SCHOOL_B}-0001"
    return {
        "/etablissements/{uai}": [("GET", f"/etablissements/{SCHOOL_B}"),
                                  ("GET", f"/etablissements/{SCHOOL_B}?tout=1")],
        "/etablissements/{uai}/alertes.csv": [
            ("GET", f"/etablissements/{SCHOOL_B}/alertes.csv"),
            ("GET", f"/etablissements/{SCHOOL_B}/alertes.csv?tout=1"),
        ],
        "/etablissements/{uai}/appareils/{device}": [
            ("GET", f"/etablissements/{SCHOOL_B}/appareils/{device_b}"),
            # B's laptop named under A's school: still B's laptop, still not found.
            ("GET", f"/etablissements/{SCHOOL_A}/appareils/{device_b}"),
        ],
        "/alertes/{alert_id:int}": [("GET", f"/alertes/{alert_b}")],
        "/alertes/{alert_id:int}/{action:str}": [
            ("POST", f"/alertes/{alert_b}/{action}") for action in ACTIONS
        ],
        "/region": [("GET", "/region")],
    }


# Routes that hold no school's data (/metrics, when on: route templates and counts).
PUBLIC = {"/connexion", "/deconnexion", "/", "/healthz", "/readyz", "/metrics", "/static"}


def test_every_route_is_tried_by_the_access_test(web: Site) -> None:
    templates = {r.path for r in web.app.asgi().routes if isinstance(r, Route | Mount)}
    assert templates - PUBLIC == set(_routes_of_b(web))


def test_a_school_account_reaches_nothing_of_another_school(web: Site) -> None:
    client = web.login("tech-a")
    csrf = csrf_of(client.get(f"/etablissements/{SCHOOL_A}").text)
    before = {a.id: (a.status, a.updated_at) for a in web.store.list_alerts()}
    mails_before = len(web.smtp.messages()) if web.smtp else 0
    for template, tries in _routes_of_b(web).items():
        for method, url in tries:
            if method == "GET":
                response = client.get(url)
            else:
                response = client.post(url, data={"csrf": csrf, **FORM})
            assert response.status_code == 404, (template, url, response.status_code)
            assert "Page introuvable." in response.text
            assert SCHOOL_B not in response.text.replace(url, "")
    after = {a.id: (a.status, a.updated_at) for a in web.store.list_alerts()}
    assert after == before  # nothing changed anywhere
    assert all(t.by == "engine" for a in after for t in web.store.transitions_of(a))
    assert (len(web.smtp.messages()) if web.smtp else 0) == mails_before


def test_an_unknown_alert_answers_like_another_schools(web: Site) -> None:
    client = web.login("tech-a")
    other = client.get(f"/alertes/{web.ids[SCHOOL_B][0]}")
    missing = client.get("/alertes/999999")
    assert other.status_code == missing.status_code == 404
    assert other.text == missing.text  # an id's existence is not revealed


def test_the_region_account_sees_every_school(web: Site) -> None:
    client = web.login("region")
    for school in (SCHOOL_A, SCHOOL_B):
        assert client.get(f"/etablissements/{school}").status_code == 200
        assert client.get(f"/alertes/{web.ids[school][0]}").status_code == 200


def test_state_changes_need_the_sessions_csrf_token(web: Site) -> None:
    client = web.login("tech-a")
    alert_id = web.ids[SCHOOL_A][0]
    other = web.login("tech-a")  # another session of the same person: another token
    foreign = csrf_of(other.get(f"/alertes/{alert_id}").text)
    for data in ({}, {"csrf": ""}, {"csrf": "forged"}, {"csrf": foreign}):
        for action in ACTIONS:
            response = client.post(f"/alertes/{alert_id}/{action}", data={**FORM, **data})
            assert response.status_code == 403, (action, data)
            assert "jeton de sécurité" in response.text
    assert web.store.get_alert(alert_id).status == "open"
    assert [t.by for t in web.store.transitions_of(alert_id)] == ["engine"]
    logout = client.post("/deconnexion", data={})
    assert logout.status_code == 403  # even logging out needs the token


def test_a_get_never_changes_anything(web: Site) -> None:
    client = web.login("tech-a")
    alert_id = web.ids[SCHOOL_A][0]
    for action in ACTIONS:
        assert client.get(f"/alertes/{alert_id}/{action}").status_code == 405
    client.get(f"/alertes/{alert_id}?fait=pris")
    assert web.store.get_alert(alert_id).status == "open"


def test_without_a_session_pages_lead_to_the_log_in_and_posts_are_refused(web: Site) -> None:
    client = web.client()
    page = client.get(f"/alertes/{web.ids[SCHOOL_A][0]}")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/connexion?suite=/alertes/")
    post = client.post(f"/alertes/{web.ids[SCHOOL_A][0]}/prendre", data={"csrf": "x"})
    assert post.status_code == 403


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil"])
def test_the_log_in_never_redirects_off_site(web: Site, target: str) -> None:
    client = web.client()
    page = client.get("/connexion", params={"suite": target})
    response = client.post(
        "/connexion",
        data={"utilisateur": "tech-a", "mot_de_passe": PASSWORD, "csrf": csrf_of(page.text),
              "suite": target},
    )  # fmt: skip
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_log_in_flooding_is_refused_even_with_the_right_password(web: Site) -> None:
    client = web.client()
    for _ in range(web.app.settings.login.per_user):
        assert post_login(client, "tech-a", "wrong password!").status_code == 401  # type: ignore[attr-defined]
    blocked = post_login(client, "tech-a", PASSWORD)
    assert blocked.status_code == 401  # type: ignore[attr-defined]
    assert "Trop d&#39;essais" in blocked.text  # type: ignore[attr-defined]
    # Another account from the same address is not blocked by tech-a's failures.
    assert post_login(web.client(), "tech-b", PASSWORD).status_code == 303  # type: ignore[attr-defined]
    audit = [e.action for e in web.accounts.audit_of("")]
    assert audit.count("login_failed") == 5 and "login_blocked" in audit


def test_log_in_without_the_forms_token_is_refused(web: Site) -> None:
    client = web.client()
    response = client.post(
        "/connexion", data={"utilisateur": "tech-a", "mot_de_passe": PASSWORD, "csrf": "x"}
    )
    assert response.status_code == 403


def test_a_disabled_account_loses_its_session_at_once(web: Site) -> None:
    client = web.login("tech-a")
    assert client.get(f"/etablissements/{SCHOOL_A}").status_code == 200
    web.accounts.set_disabled("tech-a", True)
    assert client.get(f"/etablissements/{SCHOOL_A}").status_code == 303
    assert post_login(web.client(), "tech-a", PASSWORD).status_code == 401  # type: ignore[attr-defined]


def test_logout_ends_the_session(web: Site) -> None:
    client = web.login("tech-a")
    csrf = csrf_of(client.get(f"/etablissements/{SCHOOL_A}").text)
    token = client.cookies.get("lordi_session")
    assert client.post("/deconnexion", data={"csrf": csrf}).status_code == 303
    fresh = web.client()
    fresh.cookies.set("lordi_session", token or "", domain="testserver")
    assert fresh.get(f"/etablissements/{SCHOOL_A}").status_code == 303


def test_pages_carry_protective_headers(web: Site) -> None:
    client = web.login("tech-a")
    headers = client.get(f"/etablissements/{SCHOOL_A}").headers
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
