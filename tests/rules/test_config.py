from __future__ import annotations

import pytest
from pydantic import ValidationError

from collector.rules import RULE_NAMES, RULES, SAMPLE_RULES, SWEEP_RULES, RulesConfig, build_rules


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
    assert config.wifi_unstable.disconnects_at_or_above == 3
    assert config.device_silent.school_days == 3
    assert config.trust.full_over_design_max_pct == 110
    assert config.trust.collapse_drop_pct == 15
    assert config.network.ap_min_devices == 5
    assert config.network.ap_min_fraction == 0.5
    assert config.network.window_s == 3600
    assert config.enabled == list(RULE_NAMES)


def test_unknown_rule_name_fails_with_the_name() -> None:
    with pytest.raises(ValidationError) as err:
        RulesConfig(enabled=["battery_replace", "battery_replase"])
    message = str(err.value)
    assert "unknown rule 'battery_replase'" in message
    assert "battery_replace, battery_watch" in message  # the known names are listed


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


def test_unknown_threshold_field_is_rejected() -> None:
    with pytest.raises(ValidationError) as err:
        RulesConfig.model_validate({"battery_replace": {"health_below": 50}})
    assert "battery_replace.health_below" in str(err.value)


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
    assert config.timing("wifi_ap_fault").min_duration_s == 600
    assert config.timing("device_silent").repeat_interval_s == 7 * 86_400
    with pytest.raises(KeyError, match="unknown rule 'nope'"):
        config.timing("nope")


def test_registry_matches_names_and_builds_enabled_rules() -> None:
    assert tuple(RULES) == SAMPLE_RULES
    assert set(SWEEP_RULES).isdisjoint(RULES)
    names = [r.name for r in build_rules(RulesConfig(enabled=["wifi_weak", "battery_replace"]))]
    assert names == ["battery_replace", "wifi_weak"]  # registry order
    assert [r.name for r in build_rules(RulesConfig())] == list(SAMPLE_RULES)
