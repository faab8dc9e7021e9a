"""The escalation packet carries the battery's weekly capacity history, from the
collector's memory or from the saved device state, and the e-mail prints it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from collector.alerting import Alerting
from collector.alerts.model import Finding
from collector.alerts.store import AlertStore
from collector.notify.deliver import Notifier
from collector.notify.payload import evidence_packet
from collector.notify.render import level2_email
from collector.notify.settings import NotifySettings
from collector.rules import RulesConfig
from tests.notify.factories import registry
from tests.rules.factory import T0, battery, sample

SCHOOL, DEVICE = "0340001A", "dev-0340001A-0001"


def _worn_over_four_weeks(store: AlertStore) -> Alerting:
    alerting = Alerting(RulesConfig(), store)
    for week, health in enumerate((63.0, 62.0, 61.0, 59.0)):
        ts = T0 + timedelta(weeks=week)
        alerting.on_samples([(SCHOOL, DEVICE, sample(ts, [battery(health, cycle_count=700)]))], ts)
    return alerting


def test_packet_history_from_memory_and_from_the_store(tmp_path: Path) -> None:
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.sqlite3'}")
    store.create_tables()
    alerting = _worn_over_four_weeks(store)
    [alert] = [a for a in store.list_alerts() if a.rule == "battery_replace"]
    assert "capacity_history" not in alert.evidence  # not stored with every finding
    expected = [
        {"date": (T0 + timedelta(weeks=w)).date().isoformat(), "full_capacity_mwh": h * 500,
         "design_capacity_mwh": 50_000.0, "health_pct": h, "cycle_count": 700}
        for w, h in enumerate((63.0, 62.0, 61.0, 59.0))
    ]  # fmt: skip
    ctx = Notifier(registry(), NotifySettings()).context(alert)
    packet = evidence_packet(alerting.with_history(alert), [], ctx)
    assert packet["battery"]["capacity_history"] == expected
    alerting.stop()
    restarted = Alerting(RulesConfig(), store)  # holds no device: reads the store
    assert (
        evidence_packet(restarted.with_history(alert), [], ctx)["battery"]["capacity_history"]
        == expected
    )
    text, _ = level2_email("escalated", restarted.with_history(alert), [], ctx)
    assert "Historique de capacité (4 relevés) :" in text.body
    assert '"health_pct": 59.0' in text.body


def test_alerts_without_a_battery_are_left_alone(tmp_path: Path) -> None:
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.sqlite3'}")
    store.create_tables()
    alerting = _worn_over_four_weeks(store)
    finding = Finding(
        rule="device_silent", key=f"{SCHOOL}/{DEVICE}/device_silent", subject="device",
        school=SCHOOL, device=DEVICE, category="hardware", severity="warning", active=True,
        at=T0, summary="Aucun rapport depuis 3 jours d'école",
    )  # fmt: skip
    silent = store.open_alert(finding, T0 + timedelta(weeks=5))
    assert alerting.with_history(silent) is silent
