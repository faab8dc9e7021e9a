"""A technician's loop through the web app (Starlette's test client, real store on
SQLite and PostgreSQL, real SMTP server): log in, worklist, take, comment,
escalate (the contractor's e-mail arrives), resolve with a reason, CSV; the CLI
sees the same actions."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.notify.deliver import Notifier
from collector.notify.dispatch import OutboxDeliverer
from collector.notify.settings import NotifySettings, SmtpSettings
from lordi.smtp import SmtpServer
from tests.alerts.helpers import database
from tests.web.site import (
    PASSWORD,
    SCHOOL_A,
    Site,
    csrf_of,
    mail_only_registry,
    post_login,
    site,
)


def test_login_then_the_worklist_of_ones_school(web: Site) -> None:
    client = web.client()
    first = client.get(f"/etablissements/{SCHOOL_A}")
    assert first.status_code == 303
    assert first.headers["location"] == f"/connexion?suite=/etablissements/{SCHOOL_A}"
    response = post_login(client, "tech-a", PASSWORD)
    assert response.status_code == 303  # type: ignore[attr-defined]
    cookie = response.headers["set-cookie"]  # type: ignore[attr-defined]
    for attribute in ("HttpOnly", "Secure", "SameSite=lax"):
        assert attribute.lower() in cookie.lower()
    home = client.get("/")
    assert home.headers["location"] == f"/etablissements/{SCHOOL_A}"
    page = client.get(f"/etablissements/{SCHOOL_A}")
    assert page.status_code == 200
    text = page.text
    assert "Lycée Jean Moulin" in text
    assert "4 alertes en cours" in text
    # Most severe first: the worn battery (critical) before the charger (warning).
    assert text.index("batterie usée") < text.index("branché mais ne charge pas")
    assert "ordinateur dev-0340001A-0001 (n° d&#39;inventaire LRD-34-000101)" in text
    assert "Personne ne l'a encore prise" in text
    assert "2026-2027 P2 (Toussaint-Noël)" in text  # the forecast per term


def test_take_comment_escalate_resolve(web: Site) -> None:
    assert web.smtp is not None
    client = web.login("tech-a")
    alert_id = web.ids[SCHOOL_A][0]  # the worn battery
    page = client.get(f"/alertes/{alert_id}")
    assert page.status_code == 200
    assert '<svg class="chart"' in page.text  # the capacity history as a picture
    csrf = csrf_of(page.text)

    taken = client.post(f"/alertes/{alert_id}/prendre", data={"csrf": csrf})
    assert taken.status_code == 303
    assert taken.headers["location"] == f"/alertes/{alert_id}?fait=pris"
    client.post(f"/alertes/{alert_id}/commenter", data={"csrf": csrf, "texte": "vu en salle 12"})
    escalated = client.post(
        f"/alertes/{alert_id}/escalader", data={"csrf": csrf, "texte": "sous garantie"}
    )
    assert escalated.headers["location"] == f"/alertes/{alert_id}?fait=escalade"
    mails = web.smtp.wait_for(1, timeout_s=10)
    contractor = [m for m in mails if "Escalade" in m["Subject"]]
    assert len(contractor) == 1, [m["Subject"] for m in mails]
    body = contractor[0].get_payload(decode=True).decode()
    assert "Historique de capacité (20 relevés)" in body  # the evidence packet
    assert "sous garantie" in body

    after = client.get(f"/alertes/{alert_id}?fait=escalade").text
    assert "le prestataire a reçu le dossier" in after
    assert "ouverte → prise en compte par <strong>tech-a</strong>" in after
    assert "escalade par <strong>tech-a</strong> : sous garantie" in after  # the audit trail
    assert "vu en salle 12" in after
    assert "escaladée vers OcciMat Services (fictif)" in after  # the contractor's name

    resolved = client.post(
        f"/alertes/{alert_id}/resoudre",
        data={"csrf": csrf, "motif": "battery_replaced", "texte": "pack neuf"},
    )
    assert resolved.status_code == 303
    alert = web.store.get_alert(alert_id)
    assert alert.status == "resolved"
    assert alert.acknowledged_by == "tech-a"
    assert alert.escalated_to is not None
    notes = [t.note for t in web.store.transitions_of(alert_id)]
    assert "Batterie remplacée — pack neuf" in notes
    actions = [e.action for e in web.accounts.audit_of(f"alert:{alert_id}")]
    assert actions == ["prendre", "commenter", "escalader", "resoudre"]


def test_resolve_needs_a_known_reason_and_says_which_field(web: Site) -> None:
    client = web.login("tech-a")
    alert_id = web.ids[SCHOOL_A][1]
    csrf = csrf_of(client.get(f"/alertes/{alert_id}").text)
    bad = client.post(f"/alertes/{alert_id}/resoudre", data={"csrf": csrf, "motif": "magie"})
    assert bad.status_code == 400
    assert "motif : &#39;magie&#39; n&#39;est pas un motif connu" in bad.text
    other = client.post(f"/alertes/{alert_id}/resoudre", data={"csrf": csrf, "motif": "other"})
    assert other.status_code == 400
    assert "texte : précisez ce qui a été fait" in other.text
    assert web.store.get_alert(alert_id).status == "open"


def test_csv_export_of_ones_school(web: Site) -> None:
    client = web.login("tech-a")
    response = client.get(f"/etablissements/{SCHOOL_A}/alertes.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert {r["school"] for r in rows} == {SCHOOL_A}
    assert len(rows) == 4
    assert rows[0]["asset_tag"] == "LRD-34-000101"


def test_device_page_and_region_overview(web: Site) -> None:
    client = web.login("tech-a")
    device = client.get(f"/etablissements/{SCHOOL_A}/appareils/dev-{SCHOOL_A}-0001")
    assert device.status_code == 200
    assert "LRD-34-000101" in device.text and '<svg class="chart"' in device.text
    assert client.get("/region").status_code == 404  # a school account has no region view
    region = web.login("region")
    assert region.get("/").headers["location"] == "/region"
    overview = region.get("/region").text
    assert "Lycée Jean Moulin" in overview and SCHOOL_A in overview


def test_overview_counts_per_school(web: Site) -> None:
    client = web.login("tech-a")
    alert_id = web.ids[SCHOOL_A][1]
    client.post(f"/alertes/{alert_id}/prendre",
                data={"csrf": csrf_of(client.get(f"/alertes/{alert_id}").text)})  # fmt: skip
    summaries = {s.school: s for s in web.app.worklist.overview(None)}
    a = summaries[SCHOOL_A]
    assert (a.devices, a.open_alerts, a.critical, a.unacknowledged, a.to_replace) == (6, 4, 1, 3, 1)
    assert [f.term for f in a.forecast] == ["2026-27 T2", "2026-27 T3", "2026-27 T4"]
    assert [s.school for s in web.app.worklist.overview(frozenset({SCHOOL_A}))] == [SCHOOL_A]


def test_an_escalation_the_relay_refuses_is_kept_and_sent_later(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    """SMTP down when the technician escalates: the page says so, the escalation is
    recorded, and the collector's outbox pass sends the packet once the relay is back."""
    with database("sqlite", str(tmp_path / "down.sqlite3")) as db, site(
        db(), None, tmp_path  # None: the relay is a closed port
    ) as down:
        client = down.login("tech-a")
        alert_id = down.ids[SCHOOL_A][0]
        csrf = csrf_of(client.get(f"/alertes/{alert_id}").text)
        response = client.post(f"/alertes/{alert_id}/escalader", data={"csrf": csrf})
        assert response.headers["location"] == f"/alertes/{alert_id}?fait=escalade-differee"
        assert "il sera réessayé automatiquement" in client.get(response.headers["location"]).text
        assert down.store.get_alert(alert_id).escalated_to == "occimat"
        pending = [r for r in down.store.outbox.rows("pending") if r.kind == "escalated"]
        assert len(pending) == 1 and pending[0].channels == ("email_level2",)

        smtp_server.clear()
        settings = NotifySettings(
            smtp=SmtpSettings(port=smtp_server.port),
            alert_topic={"enabled": False},  # type: ignore[arg-type]
        )
        collector = OutboxDeliverer(down.store, Notifier(mail_only_registry(), settings))
        later = datetime.now(UTC) + timedelta(hours=1)
        assert collector.deliver_due(later).sent == 1
        mails = smtp_server.wait_for(1, timeout_s=10)
        assert any("Escalade" in m["Subject"] for m in mails)
