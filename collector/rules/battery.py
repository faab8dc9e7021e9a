"""Battery rules: replace, watch, charging fault, overheating (category hardware).

Health-based verdicts need a trusted capacity reading (trust.py, judged once per
reading by the caller): an untrusted one gives no verdict, so it neither raises nor
clears anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from collector.alerts.model import Severity, Subject
from collector.rules.base import IDLE, SampleRule, Verdict, battery_key, fr, iso
from collector.rules.config import RulesConfig
from collector.rules.state import BatteryState, DeviceState
from collector.rules.trust import Assessment, health_of
from collector.samples import Battery, Sample

STATUS_FR = {
    "charging": "en charge",
    "discharging": "se décharge",
    "full": "pleine",
    "not_charging": "ne charge pas",
    "unknown": "inconnu",
}


def battery_evidence(battery: Battery, prev: BatteryState | None) -> dict[str, Any]:
    """The readings an escalation needs: capacity, cycles, model and the fade forecast."""
    evidence: dict[str, Any] = {
        "battery": battery.name,
        "health_pct": health_of(battery),
        "design_capacity_mwh": battery.design_capacity_mwh,
        "full_capacity_mwh": battery.full_capacity_mwh,
        "cycle_count": battery.cycle_count,
        "model": battery.model,
        "manufacturer": battery.manufacturer,
        "percent": battery.percent,
        "status": battery.status,
        "plugged": battery.plugged,
        "temperature_c": battery.temperature_c,
    }
    if prev is not None:
        fade = prev.fade
        evidence["fade_pct_per_day"] = fade.slope_pct_per_day()
        evidence["predicted_80_date"] = iso(fade.predicted_date(80))
        evidence["predicted_60_date"] = iso(fade.predicted_date(60))
    return evidence


def _model_text(battery: Battery) -> str:
    return battery.model or "inconnu : relever la référence sur la batterie"


class _BatteryRule(SampleRule):
    subject: ClassVar[Subject] = "battery"

    def _verdicts(
        self, state: DeviceState, sample: Sample, trust: Sequence[Assessment | None]
    ) -> list[tuple[str, Verdict | None]]:
        out: list[tuple[str, Verdict | None]] = []
        batteries: Sequence[Battery] = sample.batteries
        for index, battery in enumerate(batteries):
            verdict = trust[index]
            if verdict is None:  # not present
                continue
            key = battery_key(state.school, state.device, battery.name, self.name)
            out.append((key, self._judge(state, key, battery, verdict, sample.ts)))
        return out

    def _judge(
        self, state: DeviceState, key: str, battery: Battery, trust: Assessment, ts: datetime
    ) -> Verdict | None:
        raise NotImplementedError


def replace_holds(config: RulesConfig, health_pct: float, was_active: bool) -> bool:
    """Health below the replace threshold (below the clear level while active)."""
    cfg = config.battery_replace
    return health_pct < (cfg.clear_at_pct if was_active else cfg.health_below_pct)


class BatteryReplace(_BatteryRule):
    name = "battery_replace"

    def _judge(
        self, state: DeviceState, key: str, battery: Battery, trust: Assessment, ts: datetime
    ) -> Verdict | None:
        prev = state.batteries.get(battery.name)
        health = trust.trusted_health_pct
        if health is None:
            return None
        cfg = self.config.battery_replace
        holds = replace_holds(self.config, health, state.is_active(key))
        if not holds and not state.is_active(key):
            return IDLE
        evidence = battery_evidence(battery, prev) | {"threshold_pct": cfg.health_below_pct}
        if not holds:
            return Verdict(
                False, f"Batterie de nouveau correcte : santé {fr(health)} %", evidence=evidence
            )
        return Verdict(
            True,
            f"Batterie à remplacer : santé {fr(health)} % (seuil {fr(cfg.health_below_pct)} %)",
            f"Remplacer la batterie (modèle {_model_text(battery)})",
            evidence,
        )


class BatteryWatch(_BatteryRule):
    """60-80 % health, or cycles at the model's rating; yields to battery_replace."""

    name = "battery_watch"
    severity: ClassVar[Severity] = "info"

    def _judge(
        self, state: DeviceState, key: str, battery: Battery, trust: Assessment, ts: datetime
    ) -> Verdict | None:
        cfg = self.config.battery_watch
        prev = state.batteries.get(battery.name)
        worn = self._worn(state, key, battery, trust)
        if worn is None:
            return None
        health, worn_health, worn_cycles = worn
        if not (worn_health or worn_cycles) and not state.is_active(key):
            return IDLE
        rating = cfg.rating_for(battery.model)
        evidence = battery_evidence(battery, prev) | {
            "threshold_pct": cfg.health_below_pct,
            "cycle_rating": rating,
        }
        if not (worn_health or worn_cycles):
            return Verdict(False, "Batterie sortie de surveillance", evidence=evidence)
        what = (
            f"santé {fr(health)} % (seuil {fr(cfg.health_below_pct)} %)"
            if worn_health and health is not None
            else f"{battery.cycle_count} cycles (durée de vie nominale {rating})"
        )
        return Verdict(
            True,
            f"Batterie à surveiller : {what}",
            f"Prévoir le remplacement de la batterie (modèle {_model_text(battery)}) "
            "aux prochaines vacances",
            evidence,
        )

    def _worn(
        self, state: DeviceState, key: str, battery: Battery, trust: Assessment
    ) -> tuple[float | None, bool, bool] | None:
        """(trusted health, worn by health, worn by cycles); None: nothing believable."""
        cfg = self.config.battery_watch
        health = trust.trusted_health_pct
        cycles = battery.cycle_count if trust.cycles_trusted else None
        worn_cycles = cycles is not None and cycles >= cfg.rating_for(battery.model)
        if health is None:
            return None if not worn_cycles else (None, False, True)
        replace_key = battery_key(state.school, state.device, battery.name, "battery_replace")
        if self.config.is_enabled("battery_replace") and replace_holds(
            self.config, health, state.is_active(replace_key)
        ):
            return health, False, False  # battery_replace speaks for this battery
        limit = cfg.clear_at_pct if state.is_active(key) else cfg.health_below_pct
        return health, health < limit, worn_cycles


class ChargingFault(_BatteryRule):
    """Plugged in, not charging, below 95 % (the engine waits `min_duration_s`)."""

    name = "charging_fault"

    def _judge(
        self, state: DeviceState, key: str, battery: Battery, trust: Assessment, ts: datetime
    ) -> Verdict | None:
        cfg = self.config.charging_fault
        percent = battery.percent
        if battery.plugged is False or battery.status in ("charging", "full"):
            holds = False
        elif battery.plugged is None or percent is None:
            return None
        else:
            holds = battery.status in cfg.statuses and percent < cfg.percent_below
        if not holds and not state.is_active(key):
            return IDLE
        evidence = battery_evidence(battery, None) | {"threshold_pct": cfg.percent_below}
        if not holds:
            return Verdict(False, "Charge de nouveau normale", evidence=evidence)
        since = state.since(key)
        duration_s = 0.0 if since is None else max(0.0, (ts - since).total_seconds())
        evidence["duration_s"] = duration_s
        return Verdict(
            True,
            f"Ne charge pas : branché à {fr(percent or 0.0)} % "
            f"(état « {STATUS_FR[battery.status]} ») depuis {duration_s / 60:.0f} min",
            "Essayer un autre chargeur et une autre prise ; si le défaut persiste, "
            "escalader au prestataire matériel (batterie ou circuit de charge)",
            evidence,
        )


class BatteryHot(_BatteryRule):
    name = "battery_hot"
    severity: ClassVar[Severity] = "critical"  # swelling and fire risk

    def _judge(
        self, state: DeviceState, key: str, battery: Battery, trust: Assessment, ts: datetime
    ) -> Verdict | None:
        cfg = self.config.battery_hot
        temp_c = battery.temperature_c
        if temp_c is None:
            return None
        limit = cfg.clear_below_c if state.is_active(key) else cfg.temperature_at_or_above_c
        if temp_c < limit and not state.is_active(key):
            return IDLE
        evidence = battery_evidence(battery, None) | {"threshold_c": cfg.temperature_at_or_above_c}
        if temp_c < limit:
            return Verdict(
                False, f"Température de la batterie revenue à {fr(temp_c)} °C", evidence=evidence
            )
        return Verdict(
            True,
            f"Batterie trop chaude : {fr(temp_c)} °C "
            f"(seuil {fr(cfg.temperature_at_or_above_c)} °C)",
            "Débrancher et éteindre l'ordinateur, vérifier que la batterie n'est pas "
            "gonflée ; escalader au prestataire matériel",
            evidence,
        )
