from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from collector.alerts.model import Finding
from collector.rules import (
    DAY_RULES,
    RULE_NAMES,
    RULES,
    SAMPLE_RULES,
    WINDOW_RULES,
    RulesConfig,
    build_rules,
    build_window_rules,
    device_scope,
    school_scope,
    scope_of,
)
from collector.rules.wifi import WifiUnstable, WifiWeak

REMOVED = (
    "max_sample_age_s was removed: rules judge every sample in sample time, whatever its "
    "age; old episodes are recorded but not mailed, see [alerts] notify_max_age_s "
    "(docs/alerts.md)"
)


def test_defaults_come_from_design_md() -> None:
    config = RulesConfig()
    assert config.battery_replace.health_below_pct == 60
    assert config.battery_replace.clear_at_pct == 62
    assert config.battery_watch.health_below_pct == 80
    assert config.battery_watch.cycle_rating == 1000
    assert config.charging_fault.percent_below == 95
    assert config.charging_fault.min_duration_s == 1800
    assert config.battery_hot.temperature_at_or_above_c == 50
    assert config.wifi_weak.rssi_below_dbm == -75
    assert config.wifi_weak.clear_at_dbm == -72
    assert config.wifi_unstable.disconnects_at_or_above == 3
    assert config.wifi_unstable.clear_below == 2
    assert config.device_silent.school_days == 3
    assert config.school_silent.school_days == 1
    assert config.trust.full_over_design_max_pct == 110
    assert config.trust.collapse_drop_pct == 15
    assert config.network.ap_min_devices == 5
    assert config.network.ap_min_fraction == 0.5
    assert config.network.ap_clear_devices == 3
    assert config.network.ap_clear_fraction == 0.3
    assert config.network.window_s == 900
    assert isinstance(config.network.window_s, int)
    assert config.enabled == list(RULE_NAMES)


def test_unknown_rule_name_fails_with_the_name() -> None:
    with pytest.raises(ValidationError) as err:
        RulesConfig(enabled=["battery_replace", "battery_replase"])
    message = str(err.value)
    assert "unknown rule 'battery_replase'" in message
    assert "battery_replace, battery_watch" in message  # the known names are listed
    assert "school_silent" in message


def test_names_of_the_removed_sweeps_are_unknown() -> None:
    with pytest.raises(ValidationError, match="unknown rule 'silent_devices'"):
        RulesConfig(enabled=["silent_devices"])


def test_lower_is_worse_clear_level_must_be_above_threshold() -> None:
    with pytest.raises(ValidationError) as err:
        RulesConfig.model_validate(
            {"battery_replace": {"health_below_pct": 60, "clear_at_pct": 58}}
        )
    assert (
        "battery_replace.clear_at_pct (58) must be >= battery_replace.health_below_pct (60): lower is worse"
        in str(err.value)
    )
    with pytest.raises(ValidationError) as err:
        RulesConfig.model_validate({"wifi_weak": {"rssi_below_dbm": -75, "clear_at_dbm": -78}})
    assert "wifi_weak.clear_at_dbm (-78) must be >= wifi_weak.rssi_below_dbm (-75)" in str(
        err.value
    )
    # equal levels: no margin, but allowed
    RulesConfig.model_validate({"battery_replace": {"clear_at_pct": 60}})


def test_higher_is_worse_clear_level_must_be_below_threshold() -> None:
    with pytest.raises(ValidationError) as err:
        RulesConfig.model_validate({"battery_hot": {"clear_below_c": 55}})
    assert (
        "battery_hot.clear_below_c (55) must be <= battery_hot.temperature_at_or_above_c (50): higher is worse"
        in str(err.value)
    )
    with pytest.raises(ValidationError) as err:
        RulesConfig.model_validate({"wifi_unstable": {"clear_below": 4}})
    assert (
        "wifi_unstable.clear_below (4) must be <= wifi_unstable.disconnects_at_or_above (3)"
        in str(err.value)
    )


def test_network_clear_fractions_must_not_exceed_raise_fractions() -> None:
    with pytest.raises(ValidationError, match=r"ap_clear_fraction \(0.6\) must be <="):
        RulesConfig.model_validate({"network": {"ap_clear_fraction": 0.6}})
    with pytest.raises(ValidationError, match=r"school_clear_fraction \(0.7\) must be <="):
        RulesConfig.model_validate({"network": {"school_clear_fraction": 0.7}})


def test_unknown_threshold_field_is_rejected() -> None:
    with pytest.raises(ValidationError) as err:
        RulesConfig.model_validate({"battery_replace": {"health_below": 50}})
    assert "battery_replace.health_below" in str(err.value)


@pytest.mark.parametrize(
    "section",
    [
        {"charging_fault": {"max_sample_age_s": 21_600}},
        {"battery_hot": {"max_sample_age_s": 21_600}},
        {"wifi_weak": {"max_sample_age_s": 3600}},
        {"wifi_unstable": {"max_sample_age_s": 3600}},
        {"battery_replace": {"max_sample_age_s": None}},
        {"network": {"ap_timing": {"max_sample_age_s": 3600}}},
    ],
)
def test_max_sample_age_s_was_removed_and_says_so(section: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as err:
        RulesConfig.model_validate(section)
    assert REMOVED in str(err.value)


@pytest.mark.parametrize("window_s", [60, 300, 900, 1200, 1800, 3600])
def test_window_s_divides_an_hour(window_s: int) -> None:
    config = RulesConfig.model_validate({"network": {"window_s": window_s}})
    assert config.network.window_s == window_s


def test_window_s_that_does_not_divide_an_hour_fails() -> None:
    with pytest.raises(ValidationError) as err:
        RulesConfig.model_validate({"network": {"window_s": 700}})
    assert "network: window_s (700) must divide 3600" in str(err.value)
    with pytest.raises(ValidationError, match="greater than or equal to 60"):
        RulesConfig.model_validate({"network": {"window_s": 30}})  # divides, but too short
    with pytest.raises(ValidationError, match="less than or equal to 3600"):
        RulesConfig.model_validate({"network": {"window_s": 7200}})
    with pytest.raises(ValidationError, match=r"network\.window_s\n.*valid integer"):
        RulesConfig.model_validate({"network": {"window_s": 900.5}})  # whole seconds


def test_cycle_rating_per_model() -> None:
    config = RulesConfig.model_validate(
        {"battery_watch": {"cycle_rating_by_model": {"L19M3PF4": 800}}}
    )
    assert config.battery_watch.rating_for("L19M3PF4") == 800
    assert config.battery_watch.rating_for("01AV431") == 1000
    assert config.battery_watch.rating_for(None) == 1000


def test_timing_per_rule() -> None:
    config = RulesConfig()
    assert config.timing("charging_fault").min_duration_s == 1800
    assert config.timing("battery_replace").min_duration_s == 0
    assert config.timing("wifi_weak").min_duration_s == 1800
    assert config.timing("wifi_ap_fault").min_duration_s == 600
    assert config.timing("wifi_school_fault").clear_duration_s == 1800
    assert config.timing("device_silent").repeat_interval_s == 7 * 86_400
    assert config.timing("school_silent").repeat_interval_s == 7 * 86_400
    for name in RULE_NAMES:
        assert config.timing(name) is not None
    with pytest.raises(KeyError, match="unknown rule 'nope'"):
        config.timing("nope")


def test_registry_names() -> None:
    assert SAMPLE_RULES == ("battery_replace", "battery_watch", "charging_fault", "battery_hot")
    assert WINDOW_RULES == (
        "wifi_weak",
        "wifi_unstable",
        "wifi_ap_fault",
        "wifi_school_fault",
        "ap_unreachable",
        "school_unreachable",
    )
    assert DAY_RULES == ("device_silent", "school_silent")
    assert RULE_NAMES == SAMPLE_RULES + WINDOW_RULES + DAY_RULES
    assert len(set(RULE_NAMES)) == len(RULE_NAMES)
    assert tuple(RULES) == SAMPLE_RULES


def test_registry_builds_the_enabled_rules_in_registry_order() -> None:
    config = RulesConfig(enabled=["wifi_weak", "battery_hot", "battery_replace"])
    assert [r.name for r in build_rules(config)] == ["battery_replace", "battery_hot"]
    assert [type(r) for r in build_window_rules(config)] == [WifiWeak]
    assert [r.name for r in build_rules(RulesConfig())] == list(SAMPLE_RULES)
    assert [type(r) for r in build_window_rules(RulesConfig())] == [WifiWeak, WifiUnstable]
    assert build_window_rules(RulesConfig(enabled=["battery_replace"])) == []


def _finding(rule: str, device: str | None) -> Finding:
    return Finding(
        rule=rule,
        key="k",
        subject="device",
        school="S",
        device=device,
        category="hardware",
        severity="warning",
        active=True,
        at=datetime(2026, 11, 2, tzinfo=UTC),
    )


def test_scope_of_per_sample_rules_is_the_device_clock() -> None:
    for rule in SAMPLE_RULES:
        assert scope_of(_finding(rule, "D")) == "d:S/D" == device_scope("S", "D")


def test_scope_of_window_and_day_rules_is_the_school_clock() -> None:
    for rule in WINDOW_RULES + DAY_RULES:
        assert scope_of(_finding(rule, "D")) == "s:S" == school_scope("S")
        assert scope_of(_finding(rule, None)) == "s:S"
