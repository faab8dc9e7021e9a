"""Alerts and transitions for the notify tests, with realistic evidence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.alerts.model import Alert, Category, Transition
from collector.notify.registry import Registry, load_registry

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_REGISTRY = ROOT / "provisioning" / "schools.toml"
OPENED_AT = datetime(2026, 11, 27, 7, 15, tzinfo=UTC)  # 08:15 in Paris (UTC+1 in winter)

BATTERY_EVIDENCE: dict[str, Any] = {
    "battery": "BAT0",
    "battery_model": "5B10W13930",
    "manufacturer": "SMP",
    "health_pct": 52.3,
    "design_capacity_mwh": 57000.0,
    "full_capacity_mwh": 29811.0,
    "cycle_count": 812,
    "capacity_history": [
        {"ts": datetime(2026, 9, 1, 8, 0, tzinfo=UTC), "full_capacity_mwh": 34200.0},
        {"ts": datetime(2026, 10, 1, 8, 0, tzinfo=UTC), "full_capacity_mwh": 31900.0},
        {"ts": datetime(2026, 11, 1, 8, 0, tzinfo=UTC), "full_capacity_mwh": 29811.0},
    ],
    "forecast": {"date_80_pct": None, "date_60_pct": "2026-10-20", "fade_pct_per_year": 14.5},
}


def registry() -> Registry:
    return load_registry(SAMPLE_REGISTRY)


def battery_alert(
    school: str = "0340001A",
    device: str = "dev-0340001A-0001",
    alert_id: int = 42,
    category: Category = "hardware",
) -> Alert:
    return Alert(
        id=alert_id,
        key=f"{school}/{device}/BAT0/battery_replace",
        rule="battery_replace",
        subject="battery",
        school=school,
        device=device,
        category=category,
        severity="critical",
        status="open",
        opened_at=OPENED_AT,
        updated_at=OPENED_AT,
        summary="batterie usée : santé 52 % (< 60 %)",
        action="Remplacer la batterie (garantie prestataire matériel).",
        evidence=dict(BATTERY_EVIDENCE),
    )


def ap_alert(school: str = "0310003C", alert_id: int = 7) -> Alert:
    return Alert(
        id=alert_id,
        key=f"{school}/ap/3fa2c41b9d0e7a51/wifi_ap_degraded",
        rule="wifi_ap_degraded",
        subject="access_point",
        school=school,
        device=None,
        category="network",
        severity="warning",
        status="open",
        opened_at=OPENED_AT,
        updated_at=OPENED_AT,
        summary="14 ordinateurs perdent le Wi-Fi sur le même point d'accès",
        action="Signaler au prestataire réseau ; vérifier l'alimentation de la borne.",
        evidence={"bssid_hash": "3fa2c41b9d0e7a51", "devices": 14, "rssi_median_dbm": -82.0},
    )


def opened(alert: Alert) -> list[Transition]:
    return [
        Transition(
            alert_id=alert.id,
            at=alert.opened_at,
            from_status=None,
            to_status="open",
            by="engine",
            evidence={"health_pct": 52.3},
        )
    ]


def resolved(alert: Alert, at: datetime) -> Alert:
    return replace(alert, status="resolved", resolved_at=at, updated_at=at)
