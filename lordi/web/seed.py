"""Example alerts and laptops written into an alert store, as the collector would
write them: for the web's tests, its screenshots and `lordi bench web`. Not used by
the product itself."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.alerts.model import Finding
from collector.alerts.store import AlertStore
from collector.rules.forecast import FadeEstimator
from collector.rules.history import add_point, to_text


def device_document(health_now: float, weeks: int, now: datetime) -> dict[str, Any]:
    """A laptop's saved rule state with `weeks` weekly capacity points losing ~0.4
    point of health a week down to `health_now`, and the matching fade line."""
    history, fade = b"", FadeEstimator()
    design = 57_000.0
    for week in range(weeks):
        at = now - timedelta(weeks=weeks - 1 - week)
        health = health_now + 0.4 * (weeks - 1 - week)
        history = add_point(
            history, at, full_capacity_mwh=design * health / 100, design_capacity_mwh=design,
            health_pct=health, cycle_count=300 + 6 * week,
        )  # fmt: skip
        fade.add(at, health)
    # (its fields, as collector.rules.persist saves them: not `__slots__`, which a
    # class compiled with mypyc does not have)
    fade_doc = {f.name: getattr(fade, f.name) for f in fields(FadeEstimator)}
    return {"batteries": {"BAT0": {"history": to_text(history), "fade": fade_doc}}}


def battery_finding(school: str, device: str, health: float, at: datetime) -> Finding:
    worn = health < 60
    rule = "battery_replace" if worn else "battery_watch"
    return Finding(
        rule=rule, key=f"{school}/{device}/BAT0/{rule}", subject="battery", school=school,
        device=device, category="hardware", severity="critical" if worn else "warning",
        active=True, at=at,
        summary=f"batterie usée : santé {health:.0f} % (< 60 %)" if worn
        else f"batterie à surveiller : santé {health:.0f} % (< 80 %)",
        action="Remplacer la batterie (garantie prestataire matériel)." if worn
        else "Surveiller ; prévoir le remplacement.",
        evidence={"battery": "BAT0", "health_pct": health, "design_capacity_mwh": 57000.0,
                  "full_capacity_mwh": round(570 * health), "cycle_count": 612},
    )  # fmt: skip


def charger_finding(school: str, device: str, at: datetime) -> Finding:
    return Finding(
        rule="charging_fault", key=f"{school}/{device}/charging_fault", subject="device",
        school=school, device=device, category="hardware", severity="warning", active=True,
        at=at, summary="branché mais ne charge pas depuis 3 relevés",
        action="Essayer un autre chargeur ; sinon escalader au prestataire matériel.",
        evidence={"plugged": True, "status": "discharging", "percent": 41.0},
    )  # fmt: skip


def ap_finding(school: str, ap: str, at: datetime) -> Finding:
    return Finding(
        rule="ap_degraded", key=f"{school}/ap/{ap}/ap_degraded", subject="access_point",
        school=school, device=None, category="network", severity="warning", active=True, at=at,
        summary="point d'accès dégradé : 9 ordinateurs sur 11 avec un signal faible",
        action="Le prestataire réseau est prévenu ; vérifier l'alimentation de la borne.",
        evidence={"bssid_hash": ap, "devices_degraded": 9, "devices_seen": 11},
    )  # fmt: skip


def seed_school(
    store: AlertStore, school: str, now: datetime, laptops: int = 6
) -> list[int]:
    """A school with `laptops` laptops: the first worn out (critical), the second to
    watch, the third with a charger fault, and one access point degraded. Returns the
    alert ids."""
    ids = []
    for n in range(laptops):
        device = f"dev-{school}-{n + 1:04d}"
        health = (52.0, 74.0)[n] if n < 2 else 93.0 - n
        store.upsert_device(
            school, device, asset_tag=f"LRD-{school[1:3]}-{n + 101:06d}",
            battery_model="5B10W13930", last_seen=now - timedelta(minutes=5 * n),
            derived=device_document(health, 20, now),
        )  # fmt: skip
        if n < 2:
            since = now - timedelta(days=3 + n)
            alert, _ = store.try_open_alert(
                battery_finding(school, device, health, since), since + timedelta(hours=1),
                since=since,
            )
            ids.append(alert.id)
    since = now - timedelta(hours=7)
    alert, _ = store.try_open_alert(
        charger_finding(school, f"dev-{school}-0003", since), since + timedelta(minutes=30),
        since=since,
    )
    ids.append(alert.id)
    alert, _ = store.try_open_alert(ap_finding(school, "3fa2c19b07d4", since), since, since=since)
    ids.append(alert.id)
    store.forecasts.put(
        {school: {"2026-27 T2": [2, 1], "2026-27 T3": [3, 0], "2026-27 T4": [1, 1]}}, now
    )
    return ids


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
