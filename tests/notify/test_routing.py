"""Routing: level 1 is always the school; level 2 follows the alert's category;
an unknown school goes to the fallback address and says so."""

from __future__ import annotations

import logging

import pytest

from collector.notify.deliver import Notifier
from collector.notify.routing import route
from collector.notify.settings import NotifySettings
from tests.notify.factories import ap_alert, battery_alert, registry


def test_hardware_alert_escalates_to_the_hardware_contractor() -> None:
    r = route(battery_alert(school="0340001A"), registry())
    assert [x.email for x in r.level1] == [
        "camille.roux@jeanmoulin.example.org",
        "karim.benali@jeanmoulin.example.org",
    ]
    assert r.school_name == "Lycée Jean Moulin"
    assert r.escalation.party_id == "occimat"
    assert r.escalation.category == "hardware"
    assert r.escalation.emails == ("sav-lordi@occimat.example.org",)
    assert r.escalation.webhook_url == "https://tickets.occimat.example.org/api/lordi"
    assert r.escalation.reason == (
        "alerte de catégorie « matériel » (règle battery_replace) : OcciMat Services (fictif) "
        "est le prestataire matériel de l'établissement Lycée Jean Moulin"
    )
    assert r.helpdesk_webhook_url == "https://assistance.example.org/api/lordi/0340001A"
    assert not r.fallback_used
    assert r.problem is None


def test_network_alert_escalates_to_the_network_contractor() -> None:
    r = route(ap_alert(school="0310003C"), registry())
    assert [x.email for x in r.level1] == [
        "julien.garcia@fermat.example.org",
        "nadia.ferrand@fermat.example.org",
    ]
    assert r.escalation.party_id == "sudreseaux"
    assert r.escalation.category == "network"
    assert r.escalation.emails == (
        "noc@sudreseaux.example.org",
        "astreinte@sudreseaux.example.org",
    )
    assert r.escalation.webhook_url is None
    assert "prestataire réseau de l'établissement Lycée Pierre de Fermat" in r.escalation.reason
    assert r.helpdesk_webhook_url is None


def test_category_alone_picks_the_contractor() -> None:
    """A device alert whose rule says "network" (Wi-Fi weak on the school network)
    goes to the network contractor even though its subject is a laptop."""
    alert = battery_alert(school="0340002B", device="dev-x", category="network")
    assert route(alert, registry()).escalation.party_id == "sudreseaux"


def test_unknown_school_goes_to_the_fallback_and_says_so() -> None:
    r = route(battery_alert(school="0999999Z"), registry())
    assert r.fallback_used
    assert r.school_name is None
    assert [x.email for x in r.level1] == ["registre-lordi@example.org"]
    assert r.escalation.party_id == "fallback"
    assert r.escalation.emails == ("registre-lordi@example.org",)
    assert r.problem == (
        "school '0999999Z' is not in the school registry: alert 42 sent to the fallback "
        "address registre-lordi@example.org"
    )
    assert "absent du registre" in r.escalation.reason


def test_notifier_logs_the_fallback(caplog: pytest.LogCaptureFixture) -> None:
    settings = NotifySettings.model_validate({"alert_topic": {"enabled": False}})
    notifier = Notifier(registry(), settings)
    with caplog.at_level(logging.WARNING, logger="collector.notify.deliver"):
        ctx = notifier.context(battery_alert(school="0999999Z"))
        report = notifier.send("acknowledged", battery_alert(school="0999999Z"))
    assert ctx.route.fallback_used
    # Acknowledged with no webhook and no MQTT: nothing to send, but the problem is logged.
    assert report.results == []
    assert "routing: school '0999999Z' is not in the school registry" in caplog.text
