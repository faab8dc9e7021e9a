"""Unit tests of the macOS parsers (ioreg, system_profiler, wdutil/airport) and provider.

Real captures live in tests/replay/darwin/ and are read from there; short inline texts
below are built in the shape of those captures to reach one edge case each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.model import WifiReading
from agent.parsers import macos_ioreg
from agent.parsers.macos_ioreg import (
    MacBatteryFacts,
    fill_gaps,
    has_gaps,
    parse_ioreg_battery,
    parse_ioreg_properties,
    to_battery_reading,
    to_signed64,
)
from agent.parsers.macos_system_profiler import parse_power_sections, parse_system_profiler_power
from agent.parsers.macos_wifi import (
    channel_band_ghz,
    normalize_bssid,
    parse_airport_info,
    parse_wdutil_info,
)
from agent.providers.macos import MacProvider

CASES = Path(__file__).resolve().parent.parent / "replay" / "darwin"


def capture(case: str, name: str) -> str:
    return (CASES / case / "commands" / name).read_text(encoding="utf-8")


IOREG = "ioreg-AppleSmartBattery.txt"
PROFILER = "system_profiler-SPPowerDataType.txt"

# Apple Silicon shape: MaxCapacity/CurrentCapacity are percentages, AppleRaw* are mAh.
APPLE_SILICON = """+-o AppleSmartBattery  <class AppleSmartBattery>
    {
      "ExternalConnected" = Yes
      "IsCharging" = No
      "FullyCharged" = No
      "CurrentCapacity" = 80
      "MaxCapacity" = 100
      "AppleRawCurrentCapacity" = 4100
      "AppleRawMaxCapacity" = 5184
      "DesignCapacity" = 6075
      "CycleCount" = 0
      "Temperature" = 3065
      "Voltage" = 12850
    }
"""

APPLE_SILICON_PROFILER = """Power:

    Battery Information:

      Model Information:
          Serial Number: F8Y00000000000000
          Device Name: bq40z651
      Charge Information:
          The battery\u2019s charge is below the warning level: No
          Fully Charged: Yes
          Charging: No
          State of Charge (%): 100
      Health Information:
          Cycle Count: 0
          Condition: Service Recommended
          Maximum Capacity: 79 %

    AC Charger Information:

      Connected: Yes
      Charging: No
"""


# --- ioreg -------------------------------------------------------------------------


def test_signed64_turns_ioreg_unsigned_current_negative() -> None:
    assert to_signed64(18446744073709550084) == -1532
    assert to_signed64(2486) == 2486
    assert to_signed64(0) == 0


def test_unsigned_amperage_of_real_capture_is_negative() -> None:
    facts = parse_ioreg_battery(capture("ioreg_intel_cycles325_unsigned_amperage", IOREG))
    assert facts is not None
    assert facts.amperage_ma == -1532
    assert facts.design_mah == 8460
    assert facts.full_mah == 8112


def test_tree_prefixes_are_stripped_and_last_sample_wins() -> None:
    props = parse_ioreg_properties(capture("ioreg_batlog_tree_prefix_two_samples", IOREG))
    assert props["CycleCount"] == "1"
    assert props["CurrentCapacity"] == "6308"  # the second, newer sample
    assert "Tue Aug 14 10:41:46 PDT 2012" not in props


def test_shell_prompt_lines_are_not_properties() -> None:
    props = parse_ioreg_properties(capture("ioreg_grep_mojave_keys_with_prompts", IOREG))
    assert props == {"MaxCapacity": "6077", "DesignCapacity": "6559", "CycleCount": "200"}


def test_apple_silicon_max_capacity_is_a_percentage() -> None:
    facts = parse_ioreg_battery(APPLE_SILICON)
    assert facts is not None
    assert facts.full_mah == 5184  # AppleRawMaxCapacity, not MaxCapacity = 100
    assert facts.percent == 80  # CurrentCapacity is the menu-bar percent here
    reading = to_battery_reading(facts)
    assert reading.health_pct == pytest.approx(85.33)  # 5184 / 6075
    assert reading.status == "not_charging"
    assert reading.plugged is True
    assert reading.cycle_count is None  # 0 means "does not count", not "new"
    assert reading.temperature_c == pytest.approx(30.65)
    assert reading.full_capacity_mwh is None  # no design voltage: mAh stay unconverted


def test_intel_with_raw_copies_uses_mah_everywhere() -> None:
    text = '"AppleRawCurrentCapacity" = 1839\n"AppleRawMaxCapacity" = 4313\n'
    text += '"MaxCapacity" = 4313\n"CurrentCapacity" = 1839\n"DesignCapacity" = 5088\n'
    facts = parse_ioreg_battery(text)
    assert facts is not None
    assert facts.full_mah == 4313
    assert facts.percent == pytest.approx(42.6)  # 1839 / 4313


def test_crlf_and_odd_spacing_are_accepted() -> None:
    text = '  |   "DesignCapacity"   =   6900\r\n  |   "MaxCapacity" = 6806\r\n'
    text += '"IsCharging" = Yes\r\n'
    facts = parse_ioreg_battery(text)
    assert facts is not None
    assert (facts.design_mah, facts.full_mah, facts.charging) == (6900, 6806, True)


def test_fully_charged_wins_over_other_flags() -> None:
    facts = parse_ioreg_battery('"FullyCharged" = Yes\n"ExternalConnected" = Yes\n')
    assert facts is not None
    assert to_battery_reading(facts).status == "full"


def test_not_installed_battery_is_not_present() -> None:
    facts = parse_ioreg_battery('"BatteryInstalled" = No\n')
    assert facts is not None
    assert to_battery_reading(facts).present is False


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage\n{ }\n",
        '"CycleCount" = lots\n"DesignCapacity" = -5\n',
        # HID peripherals (Magic Mouse) show "BatteryPercent" in `ioreg -l`: not ours.
        '    | |   "BatteryPercent" = 55\n',
        '"Voltage" = 12000\n"Temperature" = 3000\n',  # keys other nodes print too
    ],
)
def test_no_battery_key_means_no_battery(text: str) -> None:
    assert parse_ioreg_battery(text) is None


def test_serial_number_never_reaches_the_reading() -> None:
    text = capture("ioreg_intel_cycles325_unsigned_amperage", IOREG)
    facts = parse_ioreg_battery(text)
    assert facts is not None
    values = {str(v) for v in asdict(to_battery_reading(facts)).values()}
    values |= {str(v) for v in asdict(facts).values()}
    assert "D86237200CNDNMGA3" in text
    assert not any("D86237200CNDNMGA3" in v for v in values)


def test_gaps_and_filling() -> None:
    ioreg = MacBatteryFacts(design_mah=6900, full_mah=6806, cycle_count=46)
    profiler = MacBatteryFacts(full_mah=1, percent=50.0, charging=False, external_power=True)
    assert has_gaps(None)
    assert has_gaps(ioreg)
    merged = fill_gaps(ioreg, profiler)
    assert merged.full_mah == 6806  # ioreg wins where it knows
    assert merged.percent == 50.0
    assert merged.external_power is True
    assert not has_gaps(merged)


# --- system_profiler --------------------------------------------------------------


def test_sections_keep_same_keys_apart() -> None:
    values = parse_power_sections(capture("system_profiler_only_usbc_charging", PROFILER))
    charger = ("Power", "AC Charger Information", "Manufacturer")
    battery = ("Power", "Battery Information", "Model Information", "Manufacturer")
    assert values[charger] == "Apple Inc."
    assert values[battery] == "SMP"


def test_profiler_condition_and_serial() -> None:
    text = capture("system_profiler_only_10_11_cycles552", PROFILER)
    facts = parse_system_profiler_power(text)
    assert facts is not None
    assert facts.condition == "Normal"
    assert facts.full_mah == 6078
    assert facts.amperage_ma == -2169
    assert "C01437408B3F90MA2" not in str(asdict(facts))


def test_apple_silicon_profiler_reports_maximum_capacity_percent() -> None:
    facts = parse_system_profiler_power(APPLE_SILICON_PROFILER)
    assert facts is not None
    assert facts.full_mah is None
    assert facts.reported_health_pct == 79
    assert facts.percent == 100
    assert facts.cycle_count is None
    assert facts.condition == "Service Recommended"
    reading = to_battery_reading(facts)
    assert reading.health_pct == 79
    assert reading.status == "full"
    assert reading.model == "bq40z651"


def test_profiler_crlf_tabs_and_comma_decimal() -> None:
    text = (
        "Power:\r\n\tBattery Information:\r\n\t\tCharge Information:\r\n"
        "\t\t\tCharge Remaining (mAh): 1000\r\n\t\t\tFull Charge Capacity (mAh): 4000\r\n"
        "\t\tVoltage (mV): 12345,0\r\n"
    )
    facts = parse_system_profiler_power(text)
    assert facts is not None
    assert facts.percent == 25.0
    assert facts.voltage_mv == 12345.0


NO_BATTERY_REPORT = "Power:\n\n    AC Charger Information:\n      Connected: Yes\n"


@pytest.mark.parametrize("text", ["", NO_BATTERY_REPORT])
def test_profiler_without_battery_section(text: str) -> None:
    assert parse_system_profiler_power(text) is None


# --- Wi-Fi ------------------------------------------------------------------------


def wdutil(body: str) -> str:
    rule = "\u2014" * 20
    return f"{rule}\nNETWORK\n{rule}\n    RSSI : -1 dBm\n{rule}\nWIFI\n{rule}\n{body}{rule}\n"


def test_wdutil_ignores_other_sections() -> None:
    body = "    Op Mode : STA\n    RSSI : -55 dBm\n    Channel : 6g37/160\n    SSID : Lycee\n"
    reading = parse_wdutil_info(wdutil(body))
    assert reading is not None
    assert reading.rssi_dbm == -55
    assert (reading.channel, reading.band_ghz) == (37, 6.0)
    assert reading.ssid == "Lycee"
    assert reading.ssid_hidden_by_os is False


def test_wdutil_power_off_is_not_connected() -> None:
    reading = parse_wdutil_info(wdutil("    Power : Off [Off]\n    Op Mode : None\n"))
    assert reading is not None
    assert reading.connected is False
    assert reading.rssi_dbm is None


def test_wdutil_without_op_mode_line_trusts_a_real_rssi() -> None:
    linked = parse_wdutil_info(wdutil("    RSSI : -60 dBm\n    PHY Mode : 11ac\n"))
    placeholder = parse_wdutil_info(wdutil("    RSSI : 0 dBm\n"))
    assert linked is not None
    assert placeholder is not None
    assert (linked.connected, linked.radio) == (True, "802.11ac")
    assert placeholder.connected is False


def test_wdutil_without_wifi_section_is_unknown() -> None:
    assert parse_wdutil_info("usage: wdutil <command>\n") is None
    assert parse_wdutil_info("") is None


def test_wdutil_dns_continuation_line_is_harmless() -> None:
    text = capture("wdutil_macos15_5ghz_ax_redacted", "wdutil-info.txt")
    reading = parse_wdutil_info(text)
    assert reading is not None
    assert reading.tx_rate_mbps == 103.0
    assert reading.bssid is None


def test_airport_off_and_init_are_not_connected() -> None:
    off = parse_airport_info("AirPort: Off\n")
    assert off is not None
    assert off.connected is False
    init = parse_airport_info("     agrCtlRSSI: 0\n          state: init\n           SSID: \n")
    assert init is not None
    assert init.connected is False
    assert init.ssid is None


def test_airport_crlf_and_secondary_channel() -> None:
    text = "     agrCtlRSSI: -70\r\n          state: running\r\n        channel: 44,-1\r\n"
    reading = parse_airport_info(text)
    assert reading is not None
    assert (reading.rssi_dbm, reading.channel, reading.band_ghz) == (-70, 44, 5.0)


def test_airport_scan_table_is_not_read_as_a_link() -> None:
    # `airport -s` lists neighbours' networks; the agent never runs it, and if such a
    # text were captured by mistake it must not become a reading.
    text = (
        "                            SSID BSSID             RSSI CHANNEL HT CC SECURITY\n"
        "                            Woof 58:b6:33:06:67:a8 -44  1       Y  US WPA2(PSK/AES/AES) \n"
    )
    assert parse_airport_info(text) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("58:b6:33:6:67:ac", "58:b6:33:06:67:ac"),
        ("DA:52:C9:5A:5C:C0", "da:52:c9:5a:5c:c0"),
        ("0:0:0:0:0:0", None),
        ("<redacted>", None),
        ("58:b6:33:6:67", None),
        (None, None),
    ],
)
def test_normalize_bssid(raw: str | None, expected: str | None) -> None:
    assert normalize_bssid(raw) == expected


def test_band_from_bare_channel() -> None:
    assert channel_band_ghz(11) == 2.4
    assert channel_band_ghz(149) == 5.0
    assert channel_band_ghz(0) is None
    assert channel_band_ghz(None) is None


# --- provider ---------------------------------------------------------------------


class FakeSource:
    is_live = False

    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs
        self.asked: list[str] = []

    def read_text(self, path: str) -> str | None:
        return None

    def list_dir(self, path: str) -> list[str]:
        return []

    def command(self, name: str, argv: list[str]) -> str | None:
        self.asked.append(name)
        return self.outputs.get(name)

    def call(self, name: str, read: Callable[[], str | None]) -> str | None:
        self.asked.append(name)
        return self.outputs.get(name)


def test_complete_ioreg_spares_system_profiler() -> None:
    source = FakeSource({IOREG: capture("ioreg_intel_cycles46_charging", IOREG)})
    reading = MacProvider(source, "23.1.0").read()
    assert PROFILER not in source.asked
    assert reading.os.release == "23.1.0"
    assert reading.batteries[0].health_pct == pytest.approx(98.64)


def test_profiler_fills_what_ioreg_lacks() -> None:
    source = FakeSource(
        {
            IOREG: capture("ioreg_grep_mojave_keys_with_prompts", IOREG),
            PROFILER: capture("system_profiler_only_10_11_cycles552", PROFILER),
        }
    )
    battery = MacProvider(source).read().batteries[0]
    assert battery.health_pct == pytest.approx(92.65)  # ioreg: 6077 / 6559
    assert battery.cycle_count == 200  # ioreg wins
    assert battery.status == "discharging"  # from the report
    assert battery.percent == 74.9


def test_a_parser_bug_costs_only_its_part(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(text: str) -> None:
        raise ValueError(text)

    monkeypatch.setattr("agent.providers.macos.parse_ioreg_battery", broken)
    source = FakeSource(
        {IOREG: "x", "airport-I.txt": capture("airport_iphone_hotspot_2ghz_ch6", "airport-I.txt")}
    )
    reading = MacProvider(source).read()
    assert reading.batteries == []
    assert reading.wifi is not None
    assert reading.wifi.rssi_dbm == -29


def test_absurdly_long_numbers_do_not_raise() -> None:
    huge = "9" * 5000
    assert (
        parse_ioreg_battery(f'"CycleCount" = {huge}\n"LegacyBatteryInfo" = {{"Amperage"={huge}}}\n')
        is None
    )
    facts = parse_system_profiler_power(
        f"Power:\n  Battery Information:\n    Cycle Count: {huge}\n    Amperage (mA): {huge}\n"
    )
    assert facts is not None
    assert facts.cycle_count == 999999999999999  # first 15 digits: absurd but harmless
    wifi = parse_airport_info(f"     agrCtlRSSI: -50\n        channel: {huge}\n")
    assert wifi is not None
    assert (wifi.rssi_dbm, wifi.channel, wifi.band_ghz) == (-50, None, None)


# --- never raise ------------------------------------------------------------------

PARSERS: list[tuple[Callable[[str], object], type]] = [
    (parse_ioreg_battery, MacBatteryFacts),
    (macos_ioreg.parse_ioreg_properties, dict),
    (parse_system_profiler_power, MacBatteryFacts),
    (parse_power_sections, dict),
    (parse_wdutil_info, WifiReading),
    (parse_airport_info, WifiReading),
]


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_parsers_never_raise(text: str) -> None:
    for parse, kind in PARSERS:
        result = parse(text)
        assert result is None or isinstance(result, kind)


ALPHABET = st.sampled_from(['"', "=", " ", "|", ":", "\n", "-", "1", "8", "Yes", "No", "<", ">"])
KEYS = st.sampled_from(
    ['"MaxCapacity"', '"CurrentCapacity"', '"Amperage"', "RSSI", "channel", "WIFI", "SSID"]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(ALPHABET, KEYS), max_size=40).map("".join))
def test_parsers_never_raise_on_near_miss_text(text: str) -> None:
    for parse, kind in PARSERS:
        result = parse(text)
        assert result is None or isinstance(result, kind)
    facts = parse_ioreg_battery(text)
    if facts is not None:
        assert to_battery_reading(facts).status in {
            "charging",
            "discharging",
            "full",
            "not_charging",
            "unknown",
        }
