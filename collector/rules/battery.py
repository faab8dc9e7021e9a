"""Battery rules: replace, watch, charging fault, overheating (category hardware).

Health-based verdicts need a trusted capacity reading (trust.py, judged once per
reading by the caller): an untrusted one gives no verdict, so it neither raises nor
clears anything.

`judge_batteries` runs the enabled rules over a sample in one pass. A finding is
made when a condition starts, when it ends, and while it holds only as long as the
engine may still be waiting for the rule's minimum duration, then once an hour of
the device's sample time (`BatteryRule.still_reported`): the alerts are those of a
finding on every sample, at a fraction of the cost (docs/alerts.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from collector.alerts.model import Finding, Severity, Subject
from collector.rules.base import SampleRule, Verdict, battery_key, fr, iso
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


class BatteryRule(SampleRule):
    """A battery rule in two steps: `holds` answers the question on one battery (the
    cheap part, every sample), `describe` builds the verdict a finding carries (its
    summary, action and evidence: only when there is a finding to make)."""

    subject: ClassVar[Subject] = "battery"

    def __init__(self, config: RulesConfig) -> None:
        super().__init__(config)
        self.min_duration_s = config.timing(self.name).min_duration_s

    def evaluate(
        self, state: DeviceState, sample: Sample, trust: Sequence[Assessment | None]
    ) -> list[Finding]:
        return judge_batteries((self,), state, sample, trust)

    def holds(
        self, state: DeviceState, key: str, active: bool, battery: Battery, trust: Assessment
    ) -> bool | None:
        """Does the condition hold for this battery (None: cannot be told from this
        reading)? `active`: it held at the device's previous finding (hysteresis)."""
        raise NotImplementedError

    def describe(  # noqa: PLR0917 - the battery, its reading, and the answer
        self,
        state: DeviceState,
        key: str,
        battery: Battery,
        trust: Assessment,
        ts: datetime,
        holds: bool,
    ) -> Verdict:
        raise NotImplementedError

    def still_reported(self, state: DeviceState, key: str, ts: datetime) -> bool:
        """A condition that held at the device's previous sample and still holds:
        is this sample's finding needed? Yes while the engine may still be waiting
        for the minimum duration (each sample can be the one that opens the alert),
        then once per `STILL_HOLDS_EVERY_S` of the device's sample time (it refreshes
        the readings a reminder shows). The same samples give the same findings
        whatever their arrival order or batching: it depends only on the device's own
        previous sample (`last_seen`) and the condition's start."""
        since, prev = state.since(key), state.last_seen
        if since is None or prev is None:
            return True
        before = (prev - since).total_seconds()
        if before < self.min_duration_s:
            return True
        now = (ts - since).total_seconds()
        return now // STILL_HOLDS_EVERY_S != before // STILL_HOLDS_EVERY_S


# A condition that keeps holding is reported once per this much of the device's
# sample time, after its minimum duration (BatteryRule.still_reported): a worn battery
# reporting every minute makes one finding an hour, not sixty.
STILL_HOLDS_EVERY_S = 3600


def judge_batteries(
    rules: Sequence[BatteryRule],
    state: DeviceState,
    sample: Sample,
    trust: Sequence[Assessment | None],
    keys: dict[str, tuple[tuple[BatteryRule, str], ...]] | None = None,
) -> list[Finding]:
    """Every rule's findings on the sample's present batteries, rule by rule (the
    order of each rule's `evaluate` in turn), in one pass. A finding is made when
    the condition holds and was not active (it starts), holds and is still reported
    (`still_reported`), or stops holding while active (it ends, past hysteresis).
    `keys`: battery name -> (rule, its finding key) for each rule, kept by the caller
    over a device's run so the keys are made once, not once per sample."""
    if keys is None:
        keys = {}
    found: list[Finding] = []
    ts, conditions = sample.ts, state.conditions
    judged_batteries = 0
    # (indexed, not zipped: zip(strict=True) costs more than this whole loop's
    # bookkeeping, for every sample)
    batteries: Sequence[Battery] = sample.batteries
    for index, battery in enumerate(batteries):
        assessment = trust[index]
        if assessment is None:
            continue
        judged_batteries += 1
        rule_keys = keys.get(battery.name)
        if rule_keys is None:
            prefix = battery_key(state.school, state.device, battery.name, "")
            rule_keys = keys[battery.name] = tuple((rule, prefix + rule.name) for rule in rules)
        for rule, key in rule_keys:
            active = conditions is not None and key in conditions
            holds = rule.holds(state, key, active, battery, assessment)
            if holds is None:
                continue
            if holds == active and not (holds and rule.still_reported(state, key, ts)):
                continue  # no change (idle, or still holding and reported lately)
            verdict = rule.describe(state, key, battery, assessment, ts, holds)
            found.append(rule.finding(state, ts, key, verdict))
    if judged_batteries > 1 and len(found) > 1:  # rule by rule, batteries in order
        names = [rule.name for rule in rules]
        found.sort(key=lambda finding: names.index(finding.rule))
    return found


def replace_holds(config: RulesConfig, health_pct: float, was_active: bool) -> bool:
    """Health below the replace threshold (below the clear level while active)."""
    cfg = config.battery_replace
    return health_pct < (cfg.clear_at_pct if was_active else cfg.health_below_pct)


class BatteryReplace(BatteryRule):
    name = "battery_replace"

    def holds(
        self, state: DeviceState, key: str, active: bool, battery: Battery, trust: Assessment
    ) -> bool | None:
        health = trust.trusted_health_pct
        return None if health is None else replace_holds(self.config, health, active)

    def describe(  # noqa: PLR0917
        self,
        state: DeviceState,
        key: str,
        battery: Battery,
        trust: Assessment,
        ts: datetime,
        holds: bool,
    ) -> Verdict:
        health = trust.trusted_health_pct
        assert health is not None
        cfg = self.config.battery_replace
        evidence = battery_evidence(battery, state.batteries.get(battery.name))
        evidence["threshold_pct"] = cfg.health_below_pct
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


class BatteryWatch(BatteryRule):
    """60-80 % health, or cycles at the model's rating; yields to battery_replace."""

    name = "battery_watch"
    severity: ClassVar[Severity] = "info"

    def __init__(self, config: RulesConfig) -> None:
        super().__init__(config)
        self.replace_enabled = config.is_enabled(BatteryReplace.name)

    def holds(
        self, state: DeviceState, key: str, active: bool, battery: Battery, trust: Assessment
    ) -> bool | None:
        worn = self._worn(state, key, active, battery, trust)
        return None if worn is None else worn[1] or worn[2]

    def describe(  # noqa: PLR0917
        self,
        state: DeviceState,
        key: str,
        battery: Battery,
        trust: Assessment,
        ts: datetime,
        holds: bool,
    ) -> Verdict:
        cfg = self.config.battery_watch
        worn = self._worn(state, key, state.is_active(key), battery, trust)
        assert worn is not None
        health, worn_health, _ = worn
        rating = cfg.rating_for(battery.model)
        evidence = battery_evidence(battery, state.batteries.get(battery.name))
        evidence["threshold_pct"] = cfg.health_below_pct
        evidence["cycle_rating"] = rating
        if not holds:
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
        self, state: DeviceState, key: str, active: bool, battery: Battery, trust: Assessment
    ) -> tuple[float | None, bool, bool] | None:
        """(trusted health, worn by health, worn by cycles); None: nothing believable."""
        cfg = self.config.battery_watch
        health = trust.trusted_health_pct
        cycles = battery.cycle_count if trust.cycles_trusted else None
        worn_cycles = cycles is not None and cycles >= cfg.rating_for(battery.model)
        if health is None:
            return None if not worn_cycles else (None, False, True)
        if self.replace_enabled:
            replace = self.config.battery_replace
            conditions = state.conditions
            # (the same battery's battery_replace key: this key with the other name)
            if conditions is not None and (
                key[: len(key) - len(self.name)] + BatteryReplace.name in conditions
            ):
                replacing = health < replace.clear_at_pct
            else:
                replacing = health < replace.health_below_pct
            if replacing:  # = replace_holds: battery_replace speaks for this battery
                return health, False, False
        limit = cfg.clear_at_pct if active else cfg.health_below_pct
        return health, health < limit, worn_cycles


class ChargingFault(BatteryRule):
    """Plugged in, not charging, below 95 % (the engine waits `min_duration_s`)."""

    name = "charging_fault"

    def holds(
        self, state: DeviceState, key: str, active: bool, battery: Battery, trust: Assessment
    ) -> bool | None:
        if battery.plugged is False or battery.status in ("charging", "full"):
            return False
        percent = battery.percent
        if battery.plugged is None or percent is None:
            return None
        cfg = self.config.charging_fault
        return battery.status in cfg.statuses and percent < cfg.percent_below

    def describe(  # noqa: PLR0917
        self,
        state: DeviceState,
        key: str,
        battery: Battery,
        trust: Assessment,
        ts: datetime,
        holds: bool,
    ) -> Verdict:
        cfg = self.config.charging_fault
        evidence = battery_evidence(battery, None)
        evidence["threshold_pct"] = cfg.percent_below
        if not holds:
            return Verdict(False, "Charge de nouveau normale", evidence=evidence)
        since = state.since(key)
        duration_s = 0.0 if since is None else max(0.0, (ts - since).total_seconds())
        evidence["duration_s"] = duration_s
        return Verdict(
            True,
            f"Ne charge pas : branché à {fr(battery.percent or 0.0)} % "
            f"(état « {STATUS_FR[battery.status]} ») depuis {duration_s / 60:.0f} min",
            "Essayer un autre chargeur et une autre prise ; si le défaut persiste, "
            "escalader au prestataire matériel (batterie ou circuit de charge)",
            evidence,
        )


class BatteryHot(BatteryRule):
    name = "battery_hot"
    severity: ClassVar[Severity] = "critical"  # swelling and fire risk

    def holds(
        self, state: DeviceState, key: str, active: bool, battery: Battery, trust: Assessment
    ) -> bool | None:
        temp_c = battery.temperature_c
        if temp_c is None:
            return None
        cfg = self.config.battery_hot
        return temp_c >= (cfg.clear_below_c if active else cfg.temperature_at_or_above_c)

    def describe(  # noqa: PLR0917
        self,
        state: DeviceState,
        key: str,
        battery: Battery,
        trust: Assessment,
        ts: datetime,
        holds: bool,
    ) -> Verdict:
        cfg = self.config.battery_hot
        temp_c = battery.temperature_c
        assert temp_c is not None
        evidence = battery_evidence(battery, None)
        evidence["threshold_c"] = cfg.temperature_at_or_above_c
        if not holds:
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
