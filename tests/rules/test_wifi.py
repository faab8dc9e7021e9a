"""A laptop's own Wi-Fi: its school-network readings counted per window (tally.py),
then judged once the window is complete (wifi.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from collector.rules import RulesConfig, build_window_rules
from collector.rules.tally import Tally, merged, observe, school_wifi
from collector.rules.wifi import COVERED, WifiUnstable, WifiWeak
from tests.rules.factory import (
    AP,
    DEVICE,
    SCHOOL,
    T0,
    home_wifi,
    judge,
    sample,
    state,
    tally,
    wifi,
)

W = timedelta(minutes=15)
WEAK_KEY = f"{SCHOOL}/{DEVICE}/wifi_weak"
UNSTABLE_KEY = f"{SCHOOL}/{DEVICE}/wifi_unstable"
CONFIG = RulesConfig()


def weak_rule(config: RulesConfig = CONFIG) -> WifiWeak:
    [rule] = [r for r in build_window_rules(config) if isinstance(r, WifiWeak)]
    return rule


def unstable_rule(config: RulesConfig = CONFIG) -> WifiUnstable:
    [rule] = [r for r in build_window_rules(config) if isinstance(r, WifiUnstable)]
    return rule


def rssi(*values: float) -> Tally:
    return tally(*(wifi(v) for v in values))


def drops(*counts: int) -> Tally:
    return tally(*(wifi(-55.0, disconnects=c) for c in counts))


# --- tally ----------------------------------------------------------------------------


def test_observe_counts_against_the_raise_and_clear_thresholds() -> None:
    t = Tally()
    observe(t, wifi(-75.0), T0, CONFIG)  # not weak (the edge), but past the clear level
    observe(t, wifi(-75.5), T0 + timedelta(minutes=1), CONFIG)  # weak
    observe(t, wifi(-72.0), T0 + timedelta(minutes=2), CONFIG)  # fine: at the clear level
    assert (t.readings, t.rssi_readings, t.weak, t.weak_hold, t.degraded) == (3, 3, 1, 2, 1)
    assert t.rssi_min == -75.5
    assert t.mean_rssi_dbm == pytest.approx((-75.0 - 75.5 - 72.0) / 3)
    observe(t, wifi(None, disconnects=2), T0 + timedelta(minutes=3), CONFIG)  # hold only
    observe(t, wifi(None, disconnects=3), T0 + timedelta(minutes=4), CONFIG)  # unstable
    unstable = t.last
    observe(t, wifi(None, disconnects=None), T0 + timedelta(minutes=5), CONFIG)  # neither
    assert (t.readings, t.rssi_readings, t.disconnect_readings) == (6, 3, 5)
    assert (t.unstable, t.unstable_hold, t.disconnects, t.degraded) == (1, 2, 5, 2)
    # The evidence keeps the latest reading past a clear level, not the latest of all.
    assert unstable is not None and unstable.disconnects == 3
    assert t.last is unstable and t.last_ts == T0 + timedelta(minutes=4)
    fine = Tally()
    observe(fine, wifi(-60.0), T0, CONFIG)
    assert fine.last is None


def test_a_reading_weak_and_unstable_is_one_degraded_reading() -> None:
    t = tally(wifi(-80.0, disconnects=4))
    assert (t.readings, t.weak, t.unstable, t.degraded) == (1, 1, 1, 1)


def test_degraded_means_most_readings() -> None:
    assert not rssi(-80.0, -60.0).is_degraded  # half is not most
    assert rssi(-80.0, -80.0, -60.0).is_degraded
    assert drops(3, 4, 0).is_degraded  # unstable readings count as degraded too
    assert not Tally().is_degraded


def test_near_threshold_is_any_reading_past_a_clear_level() -> None:
    assert not rssi(-72.0, -50.0).near_threshold
    assert rssi(-72.5, -50.0).near_threshold  # not weak, but a weak condition would go on
    assert not drops(1, 0).near_threshold
    assert drops(2).near_threshold
    assert not Tally().near_threshold


def test_the_thresholds_come_from_the_configuration() -> None:
    strict = RulesConfig.model_validate({"wifi_weak": {"rssi_below_dbm": -65, "clear_at_dbm": -60}})
    t = tally(wifi(-70.0), config=strict)
    assert (t.weak, t.weak_hold) == (1, 1)
    assert rssi(-70.0).weak == 0


def test_merged_adds_up_a_device_s_access_points() -> None:
    first = tally(wifi(-80.0, disconnects=1), wifi(-70.0, disconnects=3), ts=T0)
    second = tally(wifi(-90.0, bssid_hash="2" * 16, disconnects=0), ts=T0 + timedelta(minutes=7))
    both = merged([second, first])  # any order
    assert (both.readings, both.rssi_readings, both.disconnect_readings) == (3, 3, 3)
    assert (both.weak, both.weak_hold, both.unstable, both.unstable_hold) == (2, 2, 1, 1)
    assert (both.degraded, both.disconnects) == (3, 4)
    assert both.rssi_sum == -240.0 and both.rssi_min == -90.0
    assert both.mean_rssi_dbm == -80.0
    assert both.last is second.last  # the latest reading, whichever access point
    assert both.last_ts == T0 + timedelta(minutes=7)
    assert merged([first]) == first
    assert merged([]) == Tally()
    assert (first.readings, second.readings) == (2, 1)  # the parts are left as they were


def test_only_school_network_readings_count() -> None:
    on_school = wifi(-60.0)
    assert school_wifi(sample(wifi=on_school)) is on_school
    assert school_wifi(sample(wifi=home_wifi())) is None
    hidden = wifi(-90.0, ssid=None, ssid_state="hidden_by_os", on_school_network=None)
    assert school_wifi(sample(wifi=hidden)) is None
    down = wifi(None, connected=False, ssid=None, ssid_state="not_connected", bssid_hash=None)
    assert school_wifi(sample(wifi=down)) is None
    assert school_wifi(sample(wifi=wifi(-60.0, bssid_hash=None))) is None  # no access point
    assert school_wifi(sample()) is None  # no Wi-Fi reading at all


# --- wifi_weak --------------------------------------------------------------------------


def test_weak_needs_most_readings_of_the_window_below_the_threshold() -> None:
    assert judge(weak_rule(), state(), rssi(-75.0, -75.0, -75.0)) is None  # the edge
    assert judge(weak_rule(), state(), rssi(-80.0, -80.0, -60.0, -60.0)) is None  # half
    found = judge(weak_rule(), state(), rssi(-75.5, -80.0, -60.0))
    assert found is not None and found.active
    assert judge(weak_rule(), state(), rssi(-40.0)) is None  # strong is fine


def test_weak_finding_fields_texts_and_evidence() -> None:
    st = state()
    found = judge(weak_rule(), st, rssi(-80.0, -82.0, -65.0))
    assert found is not None
    assert found.rule == "wifi_weak"
    assert found.key == WEAK_KEY
    assert found.subject == "device"
    assert found.category == "hardware"  # one laptop: level 1 checks the laptop
    assert found.severity == "info"
    assert (found.school, found.device, found.at) == (SCHOOL, DEVICE, T0)
    assert found.summary == (
        "Wi-Fi faible : -75,7 dBm en moyenne (seuil -75 dBm) sur le réseau de l'établissement"
    )
    assert found.action.startswith("Comparer avec un autre ordinateur")
    ev = found.evidence
    assert ev["bssid_hash"] == AP
    assert ev["rssi_dbm"] == -82.0  # the window's latest reading past the clear level
    assert ev["window_start"] == T0.isoformat()
    assert ev["window_s"] == 900
    assert (ev["readings"], ev["weak_readings"], ev["unstable_readings"]) == (3, 2, 0)
    assert ev["mean_rssi_dbm"] == -75.7
    assert ev["min_rssi_dbm"] == -82.0
    assert ev["threshold_dbm"] == -75
    assert ev["ts"] == ev["since"] == T0.isoformat()
    assert st.since(WEAK_KEY) == T0


def test_weak_hysteresis_across_windows() -> None:
    st, rule = state(), weak_rule()
    assert judge(rule, st, rssi(-80.0, -80.0), T0) is not None
    held = judge(rule, st, rssi(-73.0, -73.0, -60.0), T0 + W)
    assert held is not None and held.active  # -73 is above -75, but below the -72 clear level
    assert held.evidence["since"] == T0.isoformat()  # the condition's start is kept
    cleared = judge(rule, st, rssi(-72.0, -72.0, -80.0), T0 + 2 * W)
    assert cleared is not None and not cleared.active
    assert cleared.key == WEAK_KEY
    assert cleared.summary == "Signal Wi-Fi revenu à -74,7 dBm en moyenne"
    assert cleared.action == ""
    assert cleared.evidence["since"] is None
    assert cleared.at == T0 + 2 * W
    assert not st.is_active(WEAK_KEY)
    # once cleared, nothing more until most readings are below -75 again
    assert judge(rule, st, rssi(-73.0, -73.0), T0 + 3 * W) is None


def test_going_home_neither_clears_nor_raises() -> None:
    st, rule = state(), weak_rule()
    judge(rule, st, rssi(-85.0), T0)
    at_home = tally(home_wifi(-40.0), home_wifi(-95.0))
    assert at_home.readings == 0
    assert judge(rule, st, at_home, T0 + W) is None
    assert st.is_active(WEAK_KEY)
    assert judge(weak_rule(), state(), at_home) is None


def test_home_readings_do_not_dilute_the_school_majority() -> None:
    # two school readings out of three are weak; the strong home readings are not counted
    mixed = tally(wifi(-80.0), wifi(-80.0), wifi(-60.0), home_wifi(-40.0), home_wifi(-40.0))
    assert mixed.readings == 3
    assert judge(weak_rule(), state(), mixed) is not None
    # and weak home readings cannot make a fine school window weak
    fine = tally(wifi(-60.0), home_wifi(-95.0), home_wifi(-95.0))
    assert judge(weak_rule(), state(), fine) is None


def test_a_window_without_rssi_gives_no_weak_verdict() -> None:
    st, rule = state(), weak_rule()
    judge(rule, st, rssi(-85.0), T0)
    no_rssi = tally(wifi(None, disconnects=0))
    assert (no_rssi.readings, no_rssi.rssi_readings) == (1, 0)
    assert judge(rule, st, no_rssi, T0 + W) is None
    assert st.is_active(WEAK_KEY)
    assert judge(rule, st, Tally(), T0 + 2 * W) is None


def test_covered_window_clears_an_active_condition_and_raises_nothing() -> None:
    st, rule = state(), weak_rule()
    assert judge(rule, state(), rssi(-85.0), covered=True) is None  # would be weak
    judge(rule, st, rssi(-85.0), T0)
    cleared = judge(rule, st, rssi(-85.0), T0 + W, covered=True)
    assert cleared is not None and not cleared.active
    assert cleared.summary == COVERED
    assert cleared.evidence["covered"] is True
    assert cleared.evidence["since"] is None
    assert cleared.at == T0 + W
    assert not st.is_active(WEAK_KEY)
    # the next uncovered weak window starts a new condition
    again = judge(rule, st, rssi(-85.0), T0 + 2 * W)
    assert again is not None and again.evidence["since"] == (T0 + 2 * W).isoformat()


def test_window_findings_carry_the_configured_window() -> None:
    config = RulesConfig.model_validate({"network": {"window_s": 3600}})
    found = judge(weak_rule(config), state(), rssi(-85.0))
    assert found is not None and found.evidence["window_s"] == 3600


# --- wifi_unstable ----------------------------------------------------------------------


def test_unstable_edges_majority_and_texts() -> None:
    assert judge(unstable_rule(), state(), drops(2, 2, 2)) is None  # below 3
    assert judge(unstable_rule(), state(), drops(3, 0)) is None  # half
    found = judge(unstable_rule(), state(), drops(3, 4, 0))
    assert found is not None and found.active
    assert found.key == UNSTABLE_KEY
    assert found.severity == "warning"
    assert found.category == "hardware"
    assert found.summary == (
        "Wi-Fi instable : 7 déconnexions en 3 rapports sur le réseau de l'établissement "
        "(seuil 3 par rapport)"
    )
    assert found.action.startswith("Mettre à jour le pilote Wi-Fi")
    ev = found.evidence
    assert (ev["unstable_readings"], ev["disconnects_total"]) == (2, 7)
    assert ev["threshold_disconnects"] == 3


def test_unstable_hysteresis_across_windows() -> None:
    st, rule = state(), unstable_rule()
    assert judge(rule, st, drops(3), T0) is not None
    held = judge(rule, st, drops(2, 2, 0), T0 + W)
    assert held is not None and held.active  # clears below 2
    assert held.evidence["since"] == T0.isoformat()
    cleared = judge(rule, st, drops(1, 1, 5), T0 + 2 * W)
    assert cleared is not None and not cleared.active
    assert cleared.summary == "Wi-Fi de nouveau stable (7 déconnexion(s))"
    assert judge(rule, st, drops(2, 2), T0 + 3 * W) is None  # needs 3 again to raise


def test_unstable_covered_and_without_counts() -> None:
    st, rule = state(), unstable_rule()
    judge(rule, st, drops(5), T0)
    assert judge(rule, st, Tally(), T0 + W) is None  # an empty window
    no_counts = tally(wifi(-50.0, disconnects=None))
    assert judge(rule, st, no_counts, T0 + W) is None
    assert st.is_active(UNSTABLE_KEY)
    cleared = judge(rule, st, drops(5), T0 + 2 * W, covered=True)
    assert cleared is not None and not cleared.active and cleared.summary == COVERED


def test_the_two_rules_are_independent() -> None:
    st = state()
    both = tally(wifi(-80.0, disconnects=3), wifi(-80.0, disconnects=0))
    found = [judge(rule, st, both) for rule in build_window_rules(CONFIG)]
    assert [(f.rule, f.active) for f in found if f is not None] == [("wifi_weak", True)]
    assert st.is_active(WEAK_KEY) and not st.is_active(UNSTABLE_KEY)
