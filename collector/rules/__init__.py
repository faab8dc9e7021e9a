"""Failing-device rules: pure objects from telemetry to `Finding`s (design.md).

No I/O and no clock reads: time comes in as arguments. Per sample, the engine runs

    findings = [f for rule in rules for f in rule.evaluate(state, sample, now)]
    state.apply(sample, findings, config.trust)

with `rules = build_rules(config)`; periodically it sweeps all states with
`silent_devices(...)` and `correlate_network(...)`, and drops the per-device Wi-Fi
findings the network findings cover (`suppress_covered`). `RulesConfig.timing(rule)`
gives each rule's minimum duration, clear duration and repeat interval.

The registry is explicit: `RULES` maps each per-sample rule name to its class; the
sweep names are in `SWEEP_RULES`. An unknown name in `RulesConfig.enabled` fails
validation when the configuration is loaded.
"""

from __future__ import annotations

from collector.rules.base import Rule, SampleRule
from collector.rules.battery import BatteryHot, BatteryReplace, BatteryWatch, ChargingFault
from collector.rules.config import RULE_NAMES, SAMPLE_RULES, SWEEP_RULES, RulesConfig
from collector.rules.network import NetworkResult, correlate_network, suppress_covered
from collector.rules.silent import silent_devices
from collector.rules.state import BatteryState, DeviceState, WifiState
from collector.rules.trust import battery_trust
from collector.rules.wifi import WifiUnstable, WifiWeak

RULES: dict[str, type[SampleRule]] = {
    cls.name: cls
    for cls in (BatteryReplace, BatteryWatch, ChargingFault, BatteryHot, WifiWeak, WifiUnstable)
}
# The config validates names against SAMPLE_RULES; both lists must agree.
assert tuple(RULES) == SAMPLE_RULES, "collector.rules.RULES and config.SAMPLE_RULES differ"


def build_rules(config: RulesConfig) -> list[Rule]:
    """The enabled per-sample rules, in registry order."""
    return [cls(config) for name, cls in RULES.items() if config.is_enabled(name)]


__all__ = [
    "RULES",
    "RULE_NAMES",
    "SAMPLE_RULES",
    "SWEEP_RULES",
    "BatteryState",
    "DeviceState",
    "NetworkResult",
    "Rule",
    "RulesConfig",
    "WifiState",
    "battery_trust",
    "build_rules",
    "correlate_network",
    "silent_devices",
    "suppress_covered",
]
