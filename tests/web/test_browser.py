"""The web worklist in a real browser: Debian's Chromium, driven by Playwright, on
the real `lordi-web` process over a seeded SQLite alert store and a real SMTP
server, with accounts made by `lordi web user add`.

A technician's loop (log in, own school only, take, comment, escalate, resolve,
CSV), a forged CSRF token, another school's URLs, a phone screen, and axe-core's
accessibility checks. The screenshots of docs/web.md come from these runs
(`LORDI_WEB_SCREENSHOTS=docs/img/web .venv/bin/pytest tests/web/test_browser.py`).
"""

from __future__ import annotations

import csv
import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from collector.notify.dispatch import OutboxDeliverer
from lordi.smtp import running_smtp
from lordi.worklist import open_worklist
from tests.web.browser import (
    CHROMIUM,
    DESKTOP,
    PHONE,
    WebServer,
    axe_source,
    axe_violations,
    chromium_args,
    log_in,
    no_horizontal_scroll,
    running_web,
    screenshot,
    wait_for_mail,
)
from tests.web.site import PASSWORD, SCHOOL_A, SCHOOL_B

BLOCKING = {"serious", "critical"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    tmp = tmp_path_factory.mktemp("browser")
    with running_smtp(tmp / "smtp") as smtp, running_web(tmp, smtp) as web:
        yield web
        assert web.proc.poll() is None, f"lordi-web died:\n{web.log_tail()}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args()
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def axe(request: pytest.FixtureRequest) -> str:
    """axe.min.js, kept in pytest's cache (or the virtualenv's without the cache
    plugin), neither of which is in git."""
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    where = cache.mkdir("axe-core") if cache else Path(sys.prefix) / "cache" / "axe-core"
    where.mkdir(parents=True, exist_ok=True)
    return axe_source(Path(where))


def _context(
    browser: Browser, *, phone: bool = False, bypass_csp: bool = False
) -> BrowserContext:
    """A fresh browser profile (no cookies): a desktop screen, or a phone's."""
    if phone:
        return browser.new_context(
            viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=1,
            locale="fr-FR", bypass_csp=bypass_csp,
        )  # fmt: skip
    return browser.new_context(
        viewport=DESKTOP, locale="fr-FR", accept_downloads=True, bypass_csp=bypass_csp
    )


@pytest.fixture
def desktop(browser: Browser) -> Iterator[Page]:
    context = _context(browser)
    yield context.new_page()
    context.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = _context(browser, phone=True)
    yield context.new_page()
    context.close()


def _alert_ids_listed(page: Page) -> set[int]:
    hrefs = page.locator("ul.cards a[href^='/alertes/']").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    return {int(h.rsplit("/", 1)[1]) for h in hrefs}


# --- the technician's loop -------------------------------------------------------


def test_a_technicians_loop_from_log_in_to_csv(server: WebServer, desktop: Page) -> None:
    page, base = desktop, server.url
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/connexion?suite=/")
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
    screenshot(page, "login")

    log_in(page, base, "tech-a")
    expect(page).to_have_url(f"{base}/etablissements/{SCHOOL_A}")
    # The Secure session cookie is kept by Chromium on http://127.0.0.1 (a
    # "potentially trustworthy" origin): the log-in above would fail otherwise.
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "lordi_session"]
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    _worklist_is_one_schools(page, server)
    screenshot(page, "worklist", full_page=True)

    alert_id = server.ids[SCHOOL_A][0]  # the worn battery, first (critical)
    page.get_by_role("link", name=re.compile("batterie usée")).click()
    expect(page).to_have_url(f"{base}/alertes/{alert_id}")
    expect(page.locator("svg.chart").first).to_be_visible()
    screenshot(page, "alert", full_page=True)

    _take_comment_escalate_resolve(page, server, alert_id)
    _csv_of_ones_school(page, server, alert_id)


def _worklist_is_one_schools(page: Page, server: WebServer) -> None:
    expect(page.get_by_role("heading", level=1)).to_contain_text("Lycée Jean Moulin")
    expect(page.get_by_role("heading", name="4 alertes en cours")).to_be_visible()
    assert _alert_ids_listed(page) == set(server.ids[SCHOOL_A])
    assert SCHOOL_B not in page.inner_text("body")
    first, second = page.locator("ul.cards > li").all()[:2]
    expect(first).to_contain_text("critique")  # the most severe first
    expect(second).to_contain_text("Personne ne l'a encore prise")


def _take_comment_escalate_resolve(page: Page, server: WebServer, alert_id: int) -> None:
    status = page.get_by_role("status")
    page.get_by_role("button", name="Je la prends en charge").click()
    expect(status).to_have_text("Alerte prise en charge.")
    expect(page.locator("dl.facts")).to_contain_text("tech-a")

    page.get_by_label("Commentaire").fill("vu en salle 12")
    page.get_by_role("button", name="Ajouter le commentaire").click()
    expect(status).to_have_text("Commentaire ajouté.")
    expect(page.locator("ol.history").first).to_contain_text("vu en salle 12")

    server.smtp.clear()
    page.get_by_label(re.compile("Escalader au prestataire")).fill("sous garantie")
    page.get_by_role("button", name="Escalader au niveau 2").click()
    expect(status).to_contain_text("le prestataire a reçu le dossier")
    screenshot(page, "escalated")
    mails = wait_for_mail(server.smtp, "Escalade")
    assert len(mails) == 1, [m["Subject"] for m in server.smtp.messages()]
    assert mails[0]["To"] == "sav-lordi@occimat.example.org"
    payload = mails[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    body = payload.decode()
    assert "Historique de capacité (20 relevés)" in body  # the evidence packet
    assert "sous garantie" in body

    page.get_by_label("Résoudre : motif").select_option(label="Batterie remplacée")
    page.get_by_label(re.compile("Précision")).fill("pack neuf")
    page.get_by_role("button", name="Résoudre l'alerte").click()
    expect(status).to_have_text("Alerte résolue.")
    expect(page.locator("dl.facts")).to_contain_text("résolue")
    expect(page.get_by_role("heading", name="Agir")).to_have_count(0)
    expect(page.locator("ol.history").first).to_contain_text("Batterie remplacée — pack neuf")


def _csv_of_ones_school(page: Page, server: WebServer, resolved_id: int) -> None:
    page.get_by_role("link", name=re.compile("Alertes de l'établissement")).click()
    expect(page.get_by_role("heading", name="3 alertes en cours")).to_be_visible()
    rows = _download_csv(page)
    assert {r["school"] for r in rows} == {SCHOOL_A}
    assert {int(r["id"]) for r in rows} == set(server.ids[SCHOOL_A]) - {resolved_id}

    page.get_by_role("link", name="Voir aussi les alertes résolues").click()
    rows = _download_csv(page)
    assert {r["school"] for r in rows} == {SCHOOL_A}
    assert {int(r["id"]) for r in rows} == set(server.ids[SCHOOL_A])
    (resolved,) = [r for r in rows if int(r["id"]) == resolved_id]
    assert resolved["status"] == "resolved" and resolved["asset_tag"] == "LRD-34-000101"


def _download_csv(page: Page) -> list[dict[str, str]]:
    with page.expect_download() as info:
        page.get_by_role("link", name="Exporter en CSV").click()
    download = info.value
    assert re.fullmatch(rf"lordi-alertes-{SCHOOL_A}-\d{{8}}\.csv", download.suggested_filename)
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    return list(csv.DictReader(text.splitlines()))


def test_from_the_alert_email_to_an_escalation_on_a_phone(
    server: WebServer, phone: Page
) -> None:
    """As a technician meets the app: the alert e-mail the collector's outbox sends
    (its real delivery code), its link opened on a phone, the log-in, then take,
    comment and escalate from that page. Opening the link changes nothing."""
    collector_toml = server.log.parent / "collector.toml"
    worklist = open_worklist(None, collector_toml)
    alert_id = server.ids[SCHOOL_A][3]  # the access point (the other tests leave it open)
    now = datetime.now(UTC)
    worklist.store.enqueue(alert_id, "opened", now)
    assert worklist.notifier is not None
    assert OutboxDeliverer(worklist.store, worklist.notifier).deliver_due(now).sent == 1
    mail = wait_for_mail(server.smtp, "Nouvelle alerte : point d'accès dégradé")[0]
    body = bytes(mail.get_payload(decode=True)).decode()
    link = re.search(r"Pour la voir, la prendre en charge ou l'escalader : (\S+)", body)
    assert link is not None, body
    assert link.group(1) == f"{server.url}/alertes/{alert_id}"
    assert "lordi alerts" not in body  # no shell command for a technician
    # An access point's alert reaches the network contractor as it opens, too.
    before = len(wait_for_mail(server.smtp, "Escalade réseau : point d'accès dégradé"))

    page = phone
    page.goto(link.group(1))  # what a mail scanner does too: nothing may change
    expect(page).to_have_url(re.compile("/connexion"))
    assert worklist.store.get_alert(alert_id).status == "open"
    page.get_by_label("Identifiant").fill("tech-a")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(f"{server.url}/alertes/{alert_id}")
    page.get_by_role("button", name="Je la prends en charge").click()
    expect(page.get_by_role("status")).to_have_text("Alerte prise en charge.")
    page.get_by_label("Commentaire").fill("borne du CDI éteinte, rallumée sans effet")
    page.get_by_role("button", name="Ajouter le commentaire").click()
    expect(page.get_by_role("status")).to_have_text("Commentaire ajouté.")
    page.get_by_role("button", name="Escalader au niveau 2").click()
    expect(page.get_by_role("status")).to_contain_text("le prestataire a reçu le dossier")
    no_horizontal_scroll(page)
    deadline = time.monotonic() + 10
    while len(wait_for_mail(server.smtp, "Escalade réseau : point d'accès dégradé")) == before:
        assert time.monotonic() < deadline, "the escalation's packet never arrived"
        time.sleep(0.05)
    alert = worklist.store.get_alert(alert_id)
    assert (alert.status, alert.acknowledged_by) == ("acknowledged", "tech-a")
    assert alert.escalated_to is not None


# --- what is refused ---------------------------------------------------------------


def test_a_form_with_a_forged_csrf_token_is_refused(server: WebServer, desktop: Page) -> None:
    page = desktop
    log_in(page, server.url, "tech-a")
    alert_id = server.ids[SCHOOL_A][1]
    page.goto(f"{server.url}/alertes/{alert_id}")
    page.evaluate(
        """() => document.querySelector('form[action$="/commenter"] input[name=csrf]')
                 .value = 'forged-token'"""
    )
    page.get_by_label("Commentaire").fill("tentative")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Ajouter le commentaire").click()
    assert answer.value.status == 403
    expect(page.locator("body")).to_contain_text("jeton de sécurité absent ou invalide")
    page.goto(f"{server.url}/alertes/{alert_id}")
    expect(page.locator("main")).not_to_contain_text("tentative")
    expect(page.get_by_role("button", name="Je la prends en charge")).to_be_visible()


def test_the_pages_forbid_scripts(server: WebServer, desktop: Page) -> None:
    """The Content-Security-Policy holds in the browser: an injected script is not run
    (the accessibility checks below need a context that bypasses it)."""
    page = desktop
    page.goto(f"{server.url}/connexion")
    with pytest.raises(PlaywrightError, match="violates the following Content Security Policy"):
        page.add_script_tag(content="window.injected = true")
    assert page.evaluate("window.injected === undefined")


def test_another_schools_pages_are_not_found(server: WebServer, desktop: Page) -> None:
    page, base = desktop, server.url
    log_in(page, base, "tech-a")
    for path in (
        f"/alertes/{server.ids[SCHOOL_B][0]}",
        f"/etablissements/{SCHOOL_B}/appareils/dev-{SCHOOL_B}-0001",
        f"/etablissements/{SCHOOL_B}/alertes.csv",
        f"/etablissements/{SCHOOL_B}",
    ):
        response = page.goto(f"{base}{path}")
        assert response is not None and response.status == 404, path
        expect(page.get_by_role("heading", level=1)).to_have_text("Page introuvable.")
        assert SCHOOL_B not in page.inner_text("body")


# --- the other pages ---------------------------------------------------------------


def test_device_page_and_region_overview(
    server: WebServer, desktop: Page, browser: Browser
) -> None:
    page, base = desktop, server.url
    log_in(page, base, "tech-a", f"/etablissements/{SCHOOL_A}/appareils/dev-{SCHOOL_A}-0001")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Ordinateur dev-{SCHOOL_A}-0001")
    expect(page.locator("dl.facts")).to_contain_text("LRD-34-000101")
    expect(page.locator("svg.chart")).to_be_visible()
    screenshot(page, "device", full_page=True)

    context = _context(browser)
    region = context.new_page()
    log_in(region, base, "region")
    expect(region).to_have_url(f"{base}/region")
    table = region.get_by_role("table")
    expect(table).to_contain_text("Lycée Jean Moulin")
    expect(table).to_contain_text(SCHOOL_B)
    screenshot(region, "region")
    context.close()


def test_on_a_phone(server: WebServer, phone: Page) -> None:
    page, base = phone, server.url
    log_in(page, base, "tech-a")
    expect(page.get_by_role("heading", name=re.compile("alertes en cours"))).to_be_visible()
    no_horizontal_scroll(page)
    screenshot(page, "worklist-phone")
    _buttons_within_reach(page)

    alert_id = server.ids[SCHOOL_A][2]  # the charger fault, with the laptop's chart
    page.get_by_role("link", name=re.compile("branché mais ne charge pas")).tap()
    expect(page).to_have_url(f"{base}/alertes/{alert_id}")
    no_horizontal_scroll(page)
    _buttons_within_reach(page)
    page.get_by_role("button", name="Je la prends en charge").tap()
    expect(page.get_by_role("status")).to_have_text("Alerte prise en charge.")
    no_horizontal_scroll(page)
    screenshot(page, "alert-phone")


def _buttons_within_reach(page: Page) -> None:
    """Every button can be scrolled to, fits the screen's width, is a finger's size
    (44 px, WCAG 2.5.5) and nothing covers it."""
    viewport = page.viewport_size
    assert viewport is not None
    buttons = page.get_by_role("button").all()
    assert buttons
    for button in buttons:
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        assert box is not None
        label = button.inner_text()
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], label
        assert box["height"] >= 44, label
        button.click(trial=True)  # visible, enabled, not covered by anything


# --- accessibility -----------------------------------------------------------------


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_no_serious_accessibility_violation(
    server: WebServer, browser: Browser, axe: str, screen: str
) -> None:
    """axe-core on each kind of page. Only this test's context bypasses the site's
    Content-Security-Policy, to inject axe."""
    context = _context(browser, phone=screen == "phone", bypass_csp=True)
    page, base = context.new_page(), server.url
    found: dict[str, list[dict[str, object]]] = {}

    def check(name: str) -> None:
        page.wait_for_load_state()
        found[name] = axe_violations(page, axe)

    page.goto(f"{base}/connexion")
    check("connexion")
    log_in(page, base, "tech-a")
    check("liste")
    page.goto(f"{base}/alertes/{server.ids[SCHOOL_A][1]}")
    check("alerte")
    page.goto(f"{base}/etablissements/{SCHOOL_A}/appareils/dev-{SCHOOL_A}-0001")
    check("ordinateur")
    page.get_by_role("button", name="Se déconnecter").click()
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
    log_in(page, base, "region")
    check("région")
    context.close()

    blocking = {
        name: [v for v in violations if v["impact"] in BLOCKING]
        for name, violations in found.items()
    }
    assert not any(blocking.values()), blocking
    others = {name: [v["id"] for v in vs] for name, vs in found.items() if vs}
    print(f"axe ({screen}), minor or moderate only: {others or 'none'}")
