"""French e-mails, the escalation packet and the JSON documents (pure functions)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from collector.notify.deliver import Notifier
from collector.notify.payload import alert_topic_state, evidence_packet, webhook_document
from collector.notify.render import level1_email, level2_email
from collector.notify.settings import NotifySettings
from tests.notify.factories import ap_alert, battery_alert, opened, registry, resolved

SENT_AT = datetime(2026, 11, 27, 7, 16, tzinfo=UTC)


def _notifier() -> Notifier:
    return Notifier(registry(), NotifySettings())


def test_level1_email_says_what_which_since_when_and_what_to_do() -> None:
    alert = battery_alert()
    text = level1_email("opened", alert, _notifier().context(alert))
    assert text.subject == (
        "[Lordi 0340001A] Nouvelle alerte : batterie usée : santé 52 % (< 60 %) — "
        "ordinateur dev-0340001A-0001 (n° d'inventaire LRD-34-000101)"
    )
    lines = text.body.splitlines()
    assert "Nouvelle alerte pour Lycée Jean Moulin (0340001A)." in lines
    assert "Quoi : batterie usée : santé 52 % (< 60 %)" in lines
    assert "Appareil : ordinateur dev-0340001A-0001 (n° d'inventaire LRD-34-000101)" in lines
    assert "Depuis : 27/11/2026 à 08:15" in lines  # 07:15 UTC is 08:15 in Paris in November
    assert "Gravité : critique" in lines
    assert "À faire : Remplacer la batterie (garantie prestataire matériel)." in lines
    assert "Niveau 2 si besoin : OcciMat Services (fictif) (prestataire matériel)" in lines
    assert (
        "Tableau de bord : https://grafana.example.org/d/lordi-device?"
        "var-school=0340001A&var-device=dev-0340001A-0001"
    ) in lines
    assert (
        "Pour la prendre en charge (sur le serveur de la télémétrie) : "
        "lordi alerts --config <collector.toml> ack 42 --by <votre nom>"
    ) in lines


def test_level1_email_links_to_the_alert_page_when_the_web_is_configured() -> None:
    alert = battery_alert()
    settings = NotifySettings(web_url="https://lordi.example.org/alertes/{id}")
    notifier = Notifier(registry(), settings)
    lines = level1_email("opened", alert, notifier.context(alert)).body.splitlines()
    assert (
        "Pour la voir, la prendre en charge ou l'escalader : "
        "https://lordi.example.org/alertes/42"
    ) in lines
    assert not any("lordi alerts" in line for line in lines)


def test_level1_email_for_a_device_without_asset_tag_and_a_resolution() -> None:
    alert = resolved(battery_alert(device="dev-sans-etiquette"), SENT_AT + timedelta(days=2))
    text = level1_email("resolved", alert, _notifier().context(alert))
    assert text.subject.startswith("[Lordi 0340001A] Alerte résolue : ")
    assert "n° d'inventaire inconnu" in text.subject
    assert "Résolue le : 29/11/2026 à 08:16" in text.body.splitlines()
    assert "État : résolue" in text.body.splitlines()


def test_fallback_email_warns_that_the_school_is_missing() -> None:
    alert = battery_alert(school="0999999Z", device="dev-1")
    text = level1_email("opened", alert, _notifier().context(alert))
    assert "ATTENTION : l'établissement 0999999Z n'est pas dans le registre" in text.body
    assert "établissement absent du registre (0999999Z)" in text.body


def test_escalation_packet_carries_the_battery_evidence() -> None:
    alert = battery_alert()
    ctx = _notifier().context(alert)
    packet = evidence_packet(alert, opened(alert), ctx)
    assert packet["alert"]["asset_tag"] == "LRD-34-000101"
    assert packet["alert"]["device"] == "dev-0340001A-0001"
    assert packet["school"] == {"uai": "0340001A", "name": "Lycée Jean Moulin", "town": "Béziers"}
    assert packet["battery"]["battery_model"] == "5B10W13930"
    assert packet["battery"]["battery_manufacturer"] == "SMP"
    assert packet["battery"]["cycle_count"] == 812
    assert [p["full_capacity_mwh"] for p in packet["battery"]["capacity_history"]] == [
        34200.0,
        31900.0,
        29811.0,
    ]
    assert packet["battery"]["capacity_history"][0]["ts"] == "2026-09-01T08:00:00+00:00"
    assert packet["forecast"] == {
        "date_80_pct": None,
        "date_60_pct": "2026-10-20",
        "fade_pct_per_year": 14.5,
        "fade_pct_per_day": None,
    }
    assert packet["transitions"] == [
        {
            "at": "2026-11-27T07:15:00+00:00",
            "from_status": None,
            "to_status": "open",
            "by": "engine",
            "note": "",
            "evidence": {"health_pct": 52.3},
        }
    ]
    json.dumps(packet)  # raises if anything is not JSON


def test_flat_forecast_keys_are_read_too() -> None:
    alert = battery_alert()
    alert.evidence.pop("forecast")
    alert.evidence.update(date_80_pct="2026-03-01", date_60_pct="2027-01-15")
    packet = evidence_packet(alert, [], _notifier().context(alert))
    assert packet["forecast"]["date_80_pct"] == "2026-03-01"
    assert packet["forecast"]["date_60_pct"] == "2027-01-15"


def test_level2_email_text_and_json() -> None:
    alert = battery_alert()
    text, packet = level2_email("escalated", alert, opened(alert), _notifier().context(alert))
    assert text.subject.startswith("[Lordi 0340001A] Escalade matériel : batterie usée")
    lines = text.body.splitlines()
    assert "Destinataire : OcciMat Services (fictif)" in lines
    assert "Modèle de batterie : 5B10W13930" in lines
    assert "Cycles : 812" in lines
    assert "Prévision 60 % : 2026-10-20" in lines
    assert "Prévision 80 % : non disponible" in lines
    assert "Historique de capacité (3 relevés) :" in lines
    assert "  - 27/11/2026 à 08:15 : création → ouverte (par engine)" in lines
    start = text.body.index("Dossier complet (JSON) :\n") + len("Dossier complet (JSON) :\n")
    end = text.body.index("\n\n-- \n")
    assert json.loads(text.body[start:end]) == packet


def test_network_escalation_shows_the_access_point_readings() -> None:
    alert = ap_alert()
    text, _ = level2_email("opened", alert, [], _notifier().context(alert))
    assert text.subject == (
        "[Lordi 0310003C] Escalade réseau : 14 ordinateurs perdent le Wi-Fi sur le même "
        "point d'accès — point d'accès 3fa2c41b9d0e7a51"
    )
    assert "  - devices : 14" in text.body.splitlines()
    assert "Modèle de batterie" not in text.body


def test_webhook_document_fields() -> None:
    alert = battery_alert()
    doc = webhook_document("opened", alert, opened(alert), _notifier().context(alert), SENT_AT)
    assert set(doc) == {"schema", "schema_version", "event", "sent_at", "routing", "packet"}
    assert doc["schema"] == "lordi.alert-event"
    assert doc["schema_version"] == 1
    assert doc["event"] == "opened"
    assert doc["sent_at"] == "2026-11-27T07:16:00+00:00"
    assert doc["routing"]["level2"]["party_id"] == "occimat"
    assert doc["routing"]["fallback"] is False
    assert doc["packet"]["alert"]["id"] == 42


def test_alert_topic_state_lists_open_alerts_most_severe_first() -> None:
    later = battery_alert(alert_id=2)
    later = replace(later, severity="warning", opened_at=later.opened_at + timedelta(hours=1))
    older_warning = replace(battery_alert(alert_id=3), severity="warning")
    critical = battery_alert(alert_id=4)
    acked = replace(battery_alert(alert_id=5), status="acknowledged", severity="info")
    gone = resolved(battery_alert(alert_id=6), SENT_AT)
    state = alert_topic_state(
        [(later, None), (gone, None), (acked, "T5"), (older_warning, None), (critical, "T4")]
    )
    assert [(a["id"], a["severity"], a["asset_tag"]) for a in state] == [
        (4, "critical", "T4"),
        (3, "warning", None),
        (2, "warning", None),
        (5, "info", "T5"),
    ]
    assert alert_topic_state([]) == []


def test_emails_and_packet_say_when_the_condition_started_in_sample_time() -> None:
    """An alert opened from telemetry that arrived late: "Depuis" is its condition's
    first reading, the opening time follows, both as the laptop measured them."""
    started = datetime(2026, 11, 24, 9, 40, tzinfo=UTC)  # 10:40 in Paris
    alert = replace(battery_alert(), since=started)
    lines = level1_email("opened", alert, _notifier().context(alert)).body.splitlines()
    assert "Depuis : 24/11/2026 à 10:40" in lines
    assert "Alerte ouverte le : 27/11/2026 à 08:15" in lines
    text, packet = level2_email("escalated", alert, opened(alert), _notifier().context(alert))
    assert "Depuis : 24/11/2026 à 10:40" in text.body.splitlines()
    assert packet["alert"]["since"] == started.isoformat()
    assert packet["alert"]["opened_at"] == alert.opened_at.isoformat()
    # Opened as soon as it started (no minimum duration): one line.
    same = replace(battery_alert(), since=alert.opened_at)
    body = level1_email("opened", same, _notifier().context(same)).body
    assert "Alerte ouverte le" not in body
