"""Delivery against real servers: an aiosmtpd SMTP process, an HTTP server, and the
session's Mosquitto. Failures are reported per channel, never raised, never with a
secret in them."""

from __future__ import annotations

import json
import logging
import time
import tomllib
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

import pytest

from collector.notify.deliver import DeliveryReport, Notifier
from collector.notify.registry import Registry, parse_registry
from collector.notify.settings import NotifySettings
from lordi.stack import LocalStack, free_port
from tests.helpers import Subscriber
from tests.notify.conftest import SmtpServer, WebhookServer
from tests.notify.factories import (
    SAMPLE_REGISTRY,
    ap_alert,
    battery_alert,
    opened,
    resolved,
)

SMTP_PASSWORD = "Zx9-tres-secret-pw"
MQTT_PASSWORD = "Mq7-tres-secret-pw"


def _settings(smtp_port: int, mqtt_port: int, **smtp: Any) -> NotifySettings:
    return NotifySettings.model_validate(
        {
            "smtp": {"host": "127.0.0.1", "port": smtp_port, "tls": "none", **smtp},
            "alert_topic": {"host": "127.0.0.1", "port": mqtt_port, "timeout_s": 5},
            "webhook_timeout_s": 5,
        }
    )


def _local_registry(webhooks: WebhookServer | None = None) -> Registry:
    """The sample registry with its (example.org) webhooks replaced by the local
    server, or removed: tests never reach outside the loopback interface."""
    data = tomllib.loads(SAMPLE_REGISTRY.read_text(encoding="utf-8"))
    for school in data["schools"].values():
        school.pop("helpdesk_webhook_url", None)
    for contractor in data["contractors"].values():
        contractor.pop("webhook_url", None)
    if webhooks is not None:
        school = data["schools"]["0340001A"]
        school["helpdesk_webhook_url"] = webhooks.url("/helpdesk?token=tok-123")
        data["contractors"]["occimat"]["webhook_url"] = webhooks.url("/occimat")
    return parse_registry(data)


def _subject(msg: Message) -> str:
    return str(make_header(decode_header(msg["Subject"])))


def _text(msg: Message) -> str:
    part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    raw = part.get_payload(decode=True)
    assert isinstance(raw, bytes)
    return raw.decode(part.get_content_charset() or "utf-8")


def _channels(report: DeliveryReport) -> dict[str, tuple[bool, str | None]]:
    return {r.channel: (r.ok, r.error) for r in report.results}


def test_level1_email_reaches_the_smtp_mailbox_within_2_s(
    smtp_server: SmtpServer, stack: LocalStack
) -> None:
    smtp_server.clear()
    notifier = Notifier(_local_registry(), _settings(smtp_server.port, stack.mqtt_port))
    alert = battery_alert()
    started = time.monotonic()
    report = notifier.send("opened", alert, opened(alert))
    messages = smtp_server.wait_for(2, timeout_s=2.0)
    elapsed_s = time.monotonic() - started
    assert elapsed_s <= 2.0, f"mail took {elapsed_s:.2f} s"
    assert _channels(report) == {"email_level1": (True, None), "mqtt_alerts": (True, None)}
    assert sorted(m["X-RcptTo"] for m in messages) == [
        "camille.roux@jeanmoulin.example.org",
        "karim.benali@jeanmoulin.example.org",
    ]
    for msg in messages:
        assert msg["X-MailFrom"] == "lordi-alertes@example.org"
        assert _subject(msg) == (
            "[Lordi 0340001A] Nouvelle alerte : batterie usée : santé 52 % (< 60 %) — "
            "ordinateur dev-0340001A-0001 (n° d'inventaire LRD-34-000101)"
        )
        body = _text(msg).splitlines()
        assert "Quoi : batterie usée : santé 52 % (< 60 %)" in body
        assert "Appareil : ordinateur dev-0340001A-0001 (n° d'inventaire LRD-34-000101)" in body
        assert "Depuis : 27/11/2026 à 08:15" in body
        assert "À faire : Remplacer la batterie (garantie prestataire matériel)." in body


def test_helpdesk_webhook_receives_the_plain_json_document(
    smtp_server: SmtpServer, webhook_server: WebhookServer, stack: LocalStack
) -> None:
    notifier = Notifier(
        _local_registry(webhook_server), _settings(smtp_server.port, stack.mqtt_port)
    )
    alert = battery_alert()
    report = notifier.send("acknowledged", alert, opened(alert))
    assert _channels(report)["webhook_helpdesk"] == (True, None)
    [request] = webhook_server.requests
    assert request["path"] == "/helpdesk?token=tok-123"  # the helpdesk's own token kept
    assert request["content_type"] == "application/json"
    doc = request["json"]
    # Exactly our document: none of apprise's envelope fields (version, message...).
    assert set(doc) == {"schema", "schema_version", "event", "sent_at", "routing", "packet"}
    assert (doc["schema"], doc["schema_version"], doc["event"]) == (
        "lordi.alert-event",
        1,
        "acknowledged",
    )
    assert doc["packet"]["alert"]["asset_tag"] == "LRD-34-000101"
    assert doc["packet"]["battery"]["cycle_count"] == 812
    assert doc["routing"]["level1"] == [
        "camille.roux@jeanmoulin.example.org",
        "karim.benali@jeanmoulin.example.org",
    ]
    # The report shows the webhook without its query string (tokens live there).
    targets = {r.channel: r.target for r in report.results}
    assert targets["webhook_helpdesk"] == f"http://127.0.0.1:{webhook_server.port}/helpdesk"


def test_escalation_reaches_the_hardware_contractor_with_the_packet(
    smtp_server: SmtpServer, webhook_server: WebhookServer, stack: LocalStack
) -> None:
    smtp_server.clear()
    notifier = Notifier(
        _local_registry(webhook_server), _settings(smtp_server.port, stack.mqtt_port)
    )
    alert = battery_alert()
    report = notifier.send("escalated", alert, opened(alert))
    assert report.ok, report.results
    assert report.escalated_to == "occimat"
    assert set(_channels(report)) == {
        "email_level2",
        "webhook_contractor",
        "webhook_helpdesk",
        "mqtt_alerts",
    }
    [msg] = smtp_server.wait_for(1, timeout_s=2.0)
    assert msg["X-RcptTo"] == "sav-lordi@occimat.example.org"
    assert _subject(msg).startswith("[Lordi 0340001A] Escalade matériel : batterie usée")
    body = _text(msg)
    assert "Modèle de batterie : 5B10W13930" in body
    packet_json = body[body.index("Dossier complet (JSON) :\n") + 25 : body.index("\n\n-- \n")]
    assert json.loads(packet_json)["battery"]["capacity_history"][2]["full_capacity_mwh"] == 29811.0
    paths = sorted(r["path"] for r in webhook_server.requests)
    assert paths == ["/helpdesk?token=tok-123", "/occimat"]
    contractor_doc = next(r["json"] for r in webhook_server.requests if r["path"] == "/occimat")
    assert contractor_doc["event"] == "escalated"
    assert contractor_doc["routing"]["level2"]["party_id"] == "occimat"


def test_network_alert_is_escalated_on_open_to_the_network_contractor(
    smtp_server: SmtpServer, stack: LocalStack
) -> None:
    smtp_server.clear()
    notifier = Notifier(_local_registry(), _settings(smtp_server.port, stack.mqtt_port))
    report = notifier.send("opened", ap_alert(school="0310003C"))
    assert report.ok, report.results
    assert report.escalated_to == "sudreseaux"
    messages = smtp_server.wait_for(4, timeout_s=2.0)
    assert sorted(m["X-RcptTo"] for m in messages) == [
        "astreinte@sudreseaux.example.org",
        "julien.garcia@fermat.example.org",
        "nadia.ferrand@fermat.example.org",
        "noc@sudreseaux.example.org",
    ]
    noc = next(m for m in messages if m["X-RcptTo"] == "noc@sudreseaux.example.org")
    assert _subject(noc).startswith("[Lordi 0310003C] Escalade réseau : 14 ordinateurs")


def test_unknown_school_mail_goes_to_the_fallback_address(
    smtp_server: SmtpServer, stack: LocalStack
) -> None:
    smtp_server.clear()
    notifier = Notifier(_local_registry(), _settings(smtp_server.port, stack.mqtt_port))
    report = notifier.send("opened", battery_alert(school="0999999Z", device="dev-9"))
    assert report.route.fallback_used
    assert _channels(report)["email_level1"] == (True, None)
    [msg] = smtp_server.wait_for(1, timeout_s=2.0)
    assert msg["X-RcptTo"] == "registre-lordi@example.org"
    assert "n'est pas dans le registre des établissements" in _text(msg)


def _retained(stack: LocalStack, topic: str) -> list[dict[str, Any]]:
    """What a subscriber arriving now receives on `topic` (the retained message)."""
    late = Subscriber(stack, topic)
    try:
        assert late.wait_for(lambda msgs: len(msgs) >= 1, timeout_s=5)
        [(got_topic, payload, retain)] = late.messages
        assert (got_topic, retain) == (topic, True)
        state: list[dict[str, Any]] = json.loads(payload)
        return state
    finally:
        late.close()


def test_retained_alert_topic_follows_the_open_alerts(stack: LocalStack) -> None:
    settings = _settings(free_port(), stack.mqtt_port)  # nothing listens: e-mails fail
    notifier = Notifier(_local_registry(), settings)
    topic = "lordi/v1/0340002B/alerts"
    first = battery_alert(school="0340002B", device="dev-a", alert_id=101)
    second = battery_alert(school="0340002B", device="dev-b", alert_id=102)
    for alert in (first, second):
        report = notifier.send("opened", alert)
        assert _channels(report)["mqtt_alerts"] == (True, None)
        assert _channels(report)["email_level1"][0] is False  # reported, not raised
    assert [a["id"] for a in _retained(stack, topic)] == [101, 102]
    notifier.send("resolved", resolved(first, first.opened_at))
    assert [(a["id"], a["device"]) for a in _retained(stack, topic)] == [(102, "dev-b")]
    notifier.send("resolved", resolved(second, second.opened_at))
    assert _retained(stack, topic) == []


def test_store_supplies_the_open_alerts_when_given(stack: LocalStack) -> None:
    from_store = [battery_alert(school="0300004D", device="dev-s", alert_id=301)]
    notifier = Notifier(
        _local_registry(),
        _settings(free_port(), stack.mqtt_port),
        open_alerts=lambda uai: from_store,
    )
    notifier.send("acknowledged", from_store[0], only={"mqtt_alerts"})
    assert [a["id"] for a in _retained(stack, "lordi/v1/0300004D/alerts")] == [301]


def test_failures_are_reported_per_channel_without_secrets(
    smtp_server: SmtpServer,
    webhook_server: WebhookServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """aiosmtpd offers no AUTH, so a configured password makes the SMTP login fail;
    the webhook answers 500; nothing listens on the MQTT port."""
    webhook_server.status = 500
    settings = NotifySettings.model_validate(
        {
            "smtp": {"port": smtp_server.port, "user": "lordi", "password": SMTP_PASSWORD},
            "alert_topic": {"port": free_port(), "username": "lordi", "password": MQTT_PASSWORD},
        }
    )
    notifier = Notifier(_local_registry(webhook_server), settings)
    alert = battery_alert()
    with caplog.at_level(logging.DEBUG):
        report = notifier.send("opened", alert, opened(alert))
    assert not report.ok
    assert report.failed_channels == {"email_level1", "webhook_helpdesk", "mqtt_alerts"}
    errors = _channels(report)
    assert "SMTP AUTH extension not supported by server" in str(errors["email_level1"][1])
    assert "error=500" in str(errors["webhook_helpdesk"][1])
    assert "MQTT" in str(errors["mqtt_alerts"][1])
    everything = caplog.text + repr(report) + str(settings)
    for secret in (SMTP_PASSWORD, MQTT_PASSWORD):
        assert secret not in everything
    # A token in the webhook's query string shows only in urllib3's own DEBUG request
    # line (documented; basic-auth credentials in the URL avoid even that).
    leaks = {r.name for r in caplog.records if "tok-123" in r.getMessage()}
    assert leaks <= {"urllib3.connectionpool"}  # never in our own records
    assert "tok-123" not in repr(report)
    assert "webhook_helpdesk to http://127.0.0.1" in caplog.text

    # The caller retries only what failed, once the helpdesk is back.
    webhook_server.status = 200
    retry = notifier.send("opened", alert, opened(alert), only={"webhook_helpdesk"})
    assert _channels(retry) == {"webhook_helpdesk": (True, None)}
    assert len(webhook_server.requests) == 2
