"""Failing-device rules: pure objects from telemetry to `Finding`s (design.md).

No I/O and no clock reads: every rule judges telemetry in sample time.

- Per-sample rules (`RULES`: battery replace/watch, charging fault, overheating) run
  on each sample of a device, in the device's order:

      trust = [assess(...) per battery]          # once per battery and sample
      findings = judge_batteries(rules, state, sample, trust)  # = each rule's evaluate
      state.apply(sample, findings, trust)

- Window rules run on a school's completed telemetry windows: the laptops' own
  Wi-Fi (`WINDOW_RULE_CLASSES`, wifi.py) once the access-point verdict of the same
  window is known (network.py).
- Day rules run on a school's completed days: silent laptops and silent schools
  (silent.py).

collector.alerting decides when windows and days are complete. `scope_of` tells the
engine which sample-time clock fires a key's timers. `RulesConfig.timing(rule)`
gives each rule's minimum duration, clear duration and repeat interval. An unknown
name in `RulesConfig.enabled` fails validation when the configuration is loaded.
"""

from __future__ import annotations

from collector.alerts.model import Finding
from collector.rules.base import Rule
from collector.rules.battery import (
    BatteryHot,
    BatteryReplace,
    BatteryRule,
    BatteryWatch,
    ChargingFault,
    judge_batteries,
)
from collector.rules.config import (
    DAY_RULES,
    RULE_NAMES,
    SAMPLE_RULES,
    WINDOW_RULES,
    RulesConfig,
)
from collector.rules.state import BatteryState, DeviceState
from collector.rules.trust import Assessment, assess
from collector.rules.wifi import WifiUnstable, WifiWeak, WindowRule

RULES: dict[str, type[BatteryRule]] = {
    cls.name: cls for cls in (BatteryReplace, BatteryWatch, ChargingFault, BatteryHot)
}
WINDOW_RULE_CLASSES: dict[str, type[WindowRule]] = {
    cls.name: cls for cls in (WifiWeak, WifiUnstable)
}
# The config validates names against these lists; the registry must agree.
assert tuple(RULES) == SAMPLE_RULES, "collector.rules.RULES and config.SAMPLE_RULES differ"
_COMPLETED = frozenset(WINDOW_RULES + DAY_RULES)


def build_rules(config: RulesConfig) -> list[BatteryRule]:
    """The enabled per-sample rules, in registry order (`judge_batteries` runs them
    over a sample in one pass)."""
    return [cls(config) for name, cls in RULES.items() if config.is_enabled(name)]


def build_window_rules(config: RulesConfig) -> list[WindowRule]:
    """The enabled per-device Wi-Fi window rules."""
    return [cls(config) for name, cls in WINDOW_RULE_CLASSES.items() if config.is_enabled(name)]


def scope_of(finding: Finding) -> str:
    """Whose sample-time clock fires the timers of the finding's key: the device's
    (its latest sample) for per-sample rules, the school's completed telemetry for
    window and day rules."""
    if finding.rule in _COMPLETED or finding.device is None:
        return f"s:{finding.school}"
    return f"d:{finding.school}/{finding.device}"


def device_scope(school: str, device: str) -> str:
    return f"d:{school}/{device}"


def school_scope(school: str) -> str:
    return f"s:{school}"


__all__ = [
    "DAY_RULES",
    "RULES",
    "RULE_NAMES",
    "SAMPLE_RULES",
    "WINDOW_RULES",
    "Assessment",
    "BatteryRule",
    "BatteryState",
    "DeviceState",
    "Rule",
    "RulesConfig",
    "assess",
    "build_rules",
    "build_window_rules",
    "device_scope",
    "judge_batteries",
    "school_scope",
    "scope_of",
]
