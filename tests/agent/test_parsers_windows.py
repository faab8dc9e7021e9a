"""Unit tests of the Windows parsers (battery report, WMI, netsh) and provider.

Real captures live in tests/replay/windows/ and are read from there; the short
inline texts below are built in the shape of those captures to reach one edge case
each (they are not captures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.model import BatteryReading, WifiReading
from agent.parsers.windows_battery_report import parse_battery_report
from agent.parsers.windows_netsh import parse_netsh_interfaces
from agent.parsers.windows_wlanapi import parse_wlanapi
from agent.parsers.windows_wmi import (
    WmiBattery,
    combine_wmi,
    fill_gaps,
    match_record,
    parse_wmi_batteries,
    to_battery,
    with_wmi,
)
from agent.providers import windows as windows_provider
from agent.providers.windows import WindowsProvider

CASES = Path(__file__).resolve().parent.parent / "replay" / "windows"
REPORT = "powercfg-batteryreport.xml"
WMI = "wmi-battery.txt"
NETSH = "netsh-wlan-show-interfaces.txt"


def capture(case: str, name: str) -> str:
    with (CASES / case / "commands" / name).open(encoding="utf-8", newline="") as f:
        return f.read()


# ------------------------------------------------------------------ netsh


def test_netsh_french_capture_by_structure() -> None:
    wifi = parse_netsh_interfaces(capture("netsh_fr_FR_win11_ax201", NETSH))
    assert wifi is not None
    assert (wifi.interface, wifi.connected, wifi.ssid) == ("Wi-Fi", True, "SSID-1")
    assert wifi.bssid == "fe:dc:ba:09:87:02"
    assert (wifi.signal_pct, wifi.channel, wifi.band_ghz) == (80.0, 11, 2.4)
    assert (wifi.rx_rate_mbps, wifi.tx_rate_mbps, wifi.radio) == (103.0, 206.0, "802.11ax")
    assert wifi.rssi_dbm is None


def test_netsh_crlf_and_tabs_give_the_same_reading() -> None:
    text = capture("netsh_fr_FR_win11_ax201", NETSH)
    crlf = text.replace("\n", "\r\n").replace("   ", "\t")
    assert parse_netsh_interfaces(crlf) == parse_netsh_interfaces(text)


def test_netsh_windows11_rssi_and_decimal_rates() -> None:
    wifi = parse_netsh_interfaces(capture("netsh_en_US_win11_ax201_2_4ghz_rssi", NETSH))
    assert wifi is not None
    assert (wifi.rssi_dbm, wifi.signal_pct) == (-62.0, 81.0)
    assert (wifi.rx_rate_mbps, wifi.tx_rate_mbps) == (43.3, 115.6)


def _block(state: str, *tail: str, name: str = "Wi-Fi", guid: str = "1") -> str:
    head = [
        f"    Nom                    : {name}",
        "    Description            : Example adapter",
        f"    GUID                   : 0000000{guid}-0000-0000-0000-000000000000",
        "    Adresse physique       : 02:00:00:00:00:0" + guid,
        f"    État                   : {state}",
    ]
    return "\n".join(head + list(tail)) + "\n\n"


CONNECTED_TAIL = (
    "    SSID                   : École",
    "    BSSID                  : 02:00:00:00:00:aa",
    "    Bande                  : 5,0 GHz",
    "    Canal                  : 36",
    "    Type de radio          : 802.11ac",
    "    Réception (Mbits/s)    : 866,7",
    "    Transmission (Mbits/s) : 433",
    "    Signal                 : 70%",
)


def test_netsh_takes_the_connected_interface_of_several() -> None:
    text = _block("déconnecté") + _block("connecté", *CONNECTED_TAIL, name="Wi-Fi 2", guid="2")
    wifi = parse_netsh_interfaces(text)
    assert wifi is not None
    assert (wifi.interface, wifi.connected, wifi.ssid) == ("Wi-Fi 2", True, "École")
    assert (wifi.band_ghz, wifi.channel, wifi.rx_rate_mbps) == (5.0, 36, 866.7)


def test_netsh_disconnected_only_adapter() -> None:
    wifi = parse_netsh_interfaces(_block("déconnecté", "    Signal                 : 0%"))
    assert wifi is not None
    assert (wifi.interface, wifi.connected, wifi.ssid, wifi.signal_pct) == (
        "Wi-Fi",
        False,
        None,
        None,
    )


def test_netsh_turkish_percent_sign_first_and_cyrillic_band() -> None:
    tail = (
        "    SSID     : okul",
        "    BSSID    : 02:00:00:00:00:aa",
        "    Диапазон : 2,4 ГГц",
        "    Канал    : 6",
        "    Sinyal   : %55",
    )
    wifi = parse_netsh_interfaces(_block("ba\u011fl\u0131", *tail))
    assert wifi is not None
    assert (wifi.signal_pct, wifi.band_ghz, wifi.channel) == (55.0, 2.4, 6)


def test_netsh_signal_without_bssid_means_hidden_by_os() -> None:
    wifi = parse_netsh_interfaces(_block("connecté", "    Signal : 64%", "    Rssi : -70"))
    assert wifi is not None
    assert (wifi.connected, wifi.ssid_hidden_by_os, wifi.ssid, wifi.bssid) == (
        True,
        True,
        None,
        None,
    )
    assert (wifi.signal_pct, wifi.rssi_dbm) == (64.0, -70.0)


def test_netsh_location_denied_any_language() -> None:
    text = (
        "Il existe 1 interface sur le système :\n\nLes commandes de l'interpréteur "
        "réseau ont besoin de l'autorisation de localisation.\n\n"
        "ms-settings:privacy-location\n"
    )
    wifi = parse_netsh_interfaces(text)
    assert wifi is not None
    assert (wifi.ssid_hidden_by_os, wifi.connected, wifi.signal_pct) == (True, False, None)


LOCATION_DENIED_FR = (
    "Il existe 1 interface sur le système :\n\nLes commandes de l'interpréteur "
    "réseau ont besoin de l'autorisation de localisation.\n\n"
    "ms-settings:privacy-location\n"
)


def test_wlanapi_dump_gives_signal_and_channel_with_ssid_hidden() -> None:
    wifi = parse_wlanapi("state=1\r\nrssi=-67\r\nchannel=6\r\n")
    assert wifi is not None
    assert (wifi.connected, wifi.ssid_hidden_by_os, wifi.rssi_dbm, wifi.channel) == (
        True,
        True,
        -67.0,
        6,
    )
    assert (wifi.ssid, wifi.bssid, wifi.band_ghz) == (None, None, None)


@pytest.mark.parametrize(
    ("text", "connected", "rssi", "channel"),
    [
        ("state=4\nrssi=-50\nchannel=11\n", False, None, None),  # disconnected: no link values
        ("state=1\n", True, None, None),  # both queries refused by Windows
        ("state=1\nrssi=12\nchannel=999\n", True, None, None),  # out of range: not a reading
        ("state=1\nrssi=-61\nrssi=-20\n", True, -61.0, None),  # first value wins
    ],
)
def test_wlanapi_dump_edge_cases(
    text: str, connected: bool, rssi: float | None, channel: int | None
) -> None:
    wifi = parse_wlanapi(text)
    assert wifi is not None
    assert (wifi.connected, wifi.rssi_dbm, wifi.channel) == (connected, rssi, channel)


@pytest.mark.parametrize("text", ["", "rssi=-60\n", "state=x\n", "\x00\xff garbage"])
def test_wlanapi_dump_without_state_is_none(text: str) -> None:
    assert parse_wlanapi(text) is None


def test_provider_asks_the_wlan_api_only_when_netsh_withholds_the_link() -> None:
    denied = FakeSource({NETSH: LOCATION_DENIED_FR, "wlanapi-link.txt": "state=1\nrssi=-72\n"})
    wifi = WindowsProvider(denied)._wifi()
    assert wifi is not None
    assert (wifi.connected, wifi.ssid_hidden_by_os, wifi.rssi_dbm) == (True, True, -72.0)
    assert "wlanapi-link.txt" in denied.calls

    normal = FakeSource({NETSH: capture("netsh_fr_FR_win11_ax201", NETSH)})
    assert WindowsProvider(normal)._wifi() is not None
    assert "wlanapi-link.txt" not in normal.calls


def test_provider_keeps_the_hidden_reading_when_the_wlan_api_is_unavailable() -> None:
    wifi = WindowsProvider(FakeSource({NETSH: LOCATION_DENIED_FR}))._wifi()
    assert wifi is not None
    assert (wifi.ssid_hidden_by_os, wifi.connected, wifi.rssi_dbm) == (True, False, None)


def test_native_wifi_reader_is_unavailable_off_windows() -> None:
    from agent.winwlan import read_link  # noqa: PLC0415

    assert read_link() is None


@pytest.mark.parametrize(
    "text",
    ["", "\r\n", "There is no wireless interface on the system.\n", "garbage : 42%"],
)
def test_netsh_no_interface_is_none(text: str) -> None:
    assert parse_netsh_interfaces(text) is None


def test_netsh_non_ascii_digits_are_not_numbers() -> None:
    tail = (
        "    SSID : x",
        "    BSSID : 02:00:00:00:00:aa",
        "    Canal : \u0661\u0662",
        "    Signal : \u0665\u0660%",
    )
    wifi = parse_netsh_interfaces(_block("connecté", *tail))
    assert wifi is not None
    assert (wifi.connected, wifi.channel, wifi.signal_pct) == (True, None, None)


# ------------------------------------------------------------------ battery report


def test_report_dual_battery_values_and_no_serial() -> None:
    text = capture("battery_report_thinkpad_t470s_dual", REPORT)
    packs = parse_battery_report(text)
    assert packs is not None
    assert [(p.model, p.design_capacity_mwh, p.full_capacity_mwh) for p in packs] == [
        ("00HW023", 23540.0, 19450.0),
        ("01AV406", 26060.0, 17860.0),
    ]
    assert [p.cycle_count for p in packs] == [173, 143]
    assert "541" not in str([asdict(p) for p in packs])  # serial "  541" never copied


def test_report_bom_crlf_and_no_namespace() -> None:
    text = (
        "\ufeff<?xml version='1.0'?>\r\n<BatteryReport><Batteries><Battery>"
        "<Id>X1</Id><DesignCapacity> 50000 </DesignCapacity>"
        "<FullChargeCapacity>40000</FullChargeCapacity><CycleCount>12</CycleCount>"
        "<Chemistry>Li-I</Chemistry></Battery></Batteries></BatteryReport>\r\n"
    )
    (pack,) = parse_battery_report(text) or []
    assert (pack.health_pct, pack.cycle_count, pack.technology) == (80.0, 12, "Li-ion")


def test_report_cut_inside_second_battery_keeps_the_first() -> None:
    text = capture("battery_report_thinkpad_t470s_dual", REPORT)
    cut = text[: text.index("<FullChargeCapacity>17860")]
    packs = parse_battery_report(cut)
    assert packs is not None
    assert [p.model for p in packs] == ["00HW023"]


def test_report_zero_design_and_zero_cycles_are_unknown() -> None:
    text = (
        "<BatteryReport><Batteries><Battery><DesignCapacity>0</DesignCapacity>"
        "<FullChargeCapacity>40000</FullChargeCapacity><CycleCount>0</CycleCount>"
        "<Manufacturer></Manufacturer></Battery></Batteries></BatteryReport>"
    )
    (pack,) = parse_battery_report(text) or []
    assert (pack.design_capacity_mwh, pack.full_capacity_mwh) == (None, 40000.0)
    assert (pack.health_pct, pack.cycle_count, pack.manufacturer) == (None, None, None)


def test_report_garbage_numbers_are_unknown() -> None:
    text = "<BatteryReport><Batteries><Battery><CycleCount>n/a</CycleCount></Battery>"
    (pack,) = parse_battery_report(text) or []
    assert (pack.cycle_count, pack.design_capacity_mwh) == (None, None)


@pytest.mark.parametrize("text", ["", "not xml", "<html><body/></html>", "<a><b>"])
def test_report_not_a_report_is_none(text: str) -> None:
    assert parse_battery_report(text) is None


def test_report_without_packs_is_empty_list() -> None:
    assert parse_battery_report("<BatteryReport><Batteries /></BatteryReport>") == []


# ------------------------------------------------------------------ WMI


def test_wmi_gwmi_list_of_two_classes_merges_by_instance() -> None:
    text = capture("wmi_gwmi_batterystatus_only", WMI) + capture(
        "wmi_gwmi_fullchargedcapacity_only", WMI
    )
    (record,) = parse_wmi_batteries(text) or []
    assert record.instance == "ACPI\\PNP0C0A\\1_0"
    assert (record.remaining_mwh, record.full_mwh, record.voltage_mv) == (
        55152.0,
        52304.0,
        16447.0,
    )
    assert (record.charging, record.discharging, record.power_online) == (False, False, True)


def test_win32_battery_lie_empty_capacities_stay_unknown() -> None:
    """glpi-agent issue 240: Win32_Battery DesignCapacity/FullChargeCapacity empty."""
    (record,) = parse_wmi_batteries(capture("wmic_win32_battery_lie_de_DE_t470s", WMI)) or []
    assert record.from_win32
    assert (record.design_mwh, record.full_mwh) == (None, None)  # never 0
    assert (record.percent, record.win32_status, record.device_name) == (100.0, 2, "00HW023")
    battery = to_battery(record, "battery0")
    assert (battery.health_pct, battery.plugged, battery.status) == (None, True, "unknown")


# The shape of the agent's own script (Get-CimInstance | Format-List), two packs.
CIM = """
InstanceName     : ACPI\\PNP0C0A\\1_0
DeviceName       : 5B10W13930
DesignedCapacity : 57000

InstanceName     : ACPI\\PNP0C0A\\2_1
DeviceName       : 01AV406
DesignedCapacity : 26060

InstanceName        : ACPI\\PNP0C0A\\1_0
FullChargedCapacity : 45600

InstanceName      : ACPI\\PNP0C0A\\1_0
RemainingCapacity : 22800
Voltage           : 11850
Charging          : True
Discharging       : False
PowerOnline       : True

InstanceName : ACPI\\PNP0C0A\\1_0
CycleCount   : 0

InstanceName : ACPI\\PNP0C0A\\2_1
CycleCount   : 88
"""


def test_wmi_agent_script_shape_two_packs() -> None:
    records = parse_wmi_batteries(CIM.replace("\n", "\r\n")) or []
    assert [r.device_name for r in records] == ["5B10W13930", "01AV406"]
    first = to_battery(records[0], "battery0")
    assert (first.status, first.percent, first.plugged) == ("charging", 50.0, True)
    assert (first.health_pct, first.voltage_mv, first.cycle_count) == (80.0, 11850.0, None)
    assert records[1].cycle_count == 88


def test_wmi_double_spaced_text_keeps_its_blocks() -> None:
    """CRLF saved again in text mode reads back with a blank line after every line."""
    doubled = CIM.replace("\n", "\r\r\n").replace("\r\r\n", "\n\n")
    assert parse_wmi_batteries(doubled) == parse_wmi_batteries(CIM)
    win32 = "Name : A\n\nEstimatedChargeRemaining : 7\n\n\n\nCycleCount : 3\n\n"
    records = parse_wmi_batteries(win32) or []
    assert [(r.from_win32, r.percent, r.cycle_count) for r in records] == [
        (False, None, 3),
        (True, 7.0, None),
    ]


def test_wmi_oneliner_prompts() -> None:
    text = capture("wmi_powershell_oneliners_dell_xps15", WMI)
    (record,) = parse_wmi_batteries(text) or []
    assert (record.design_mwh, record.full_mwh) == (83995.0, 44232.0)


def test_wmi_zero_charge_is_kept_but_nan_and_inf_are_not() -> None:
    text = "EstimatedChargeRemaining=0\nDesignCapacity=inf\nFullChargeCapacity=nan\n"
    (record,) = parse_wmi_batteries(text) or []
    assert (record.percent, record.design_mwh, record.full_mwh) == (0.0, None, None)


def test_wmi_idle_on_ac_is_full_only_when_percent_says_so() -> None:
    idle = WmiBattery(charging=False, discharging=False, power_online=True)
    assert to_battery(idle, "b").status == "not_charging"
    idle.remaining_mwh, idle.full_mwh = 45000.0, 45000.0
    assert to_battery(idle, "b").status == "full"


@pytest.mark.parametrize(
    ("code", "status", "plugged"),
    [(1, "discharging", False), (2, "unknown", True), (3, "full", None), (6, "charging", True),
     (9, "charging", True), (11, "unknown", None)],
)  # fmt: skip
def test_win32_battery_status_codes(code: int, status: str, plugged: bool | None) -> None:
    (record,) = parse_wmi_batteries(f"BatteryStatus={code}\nEstimatedChargeRemaining=50\n") or []
    battery = to_battery(record, "battery0")
    assert (battery.status, battery.plugged, battery.percent) == (status, plugged, 50.0)


@pytest.mark.parametrize("text", ["", "PS C:\\> ", "Foo : bar\n", "###"])
def test_wmi_nothing_known_is_none(text: str) -> None:
    assert parse_wmi_batteries(text) is None


def test_combine_folds_win32_into_its_root_twin_by_name() -> None:
    root = WmiBattery(instance="a", device_name="X", design_mwh=50000.0)
    other = WmiBattery(instance="b", device_name="Y")
    win32 = WmiBattery(device_name="Y", percent=42.0, from_win32=True)
    merged = combine_wmi([root, other, win32])
    assert [(r.device_name, r.percent) for r in merged] == [("X", None), ("Y", 42.0)]


def test_match_record_by_name_then_by_position() -> None:
    pool = [WmiBattery(device_name="A"), WmiBattery(device_name="B")]
    assert match_record(pool, 0, 2, "B") is pool[1]
    assert match_record(pool, 0, 2, "Z") is pool[0]
    assert match_record(pool, 0, 3, "Z") is None


def test_fill_gaps_report_wins_wmi_fills() -> None:
    report = BatteryReading(name="battery0", design_capacity_mwh=50000.0, full_capacity_mwh=45000.0)
    wmi = WmiBattery(design_mwh=99999.0, full_mwh=45000.0, remaining_mwh=22500.0, discharging=True)
    out = fill_gaps(report, wmi)
    assert (out.design_capacity_mwh, out.full_capacity_mwh) == (50000.0, 45000.0)
    assert (out.status, out.percent, out.health_pct) == ("discharging", 50.0, 90.0)
    assert report.status == "unknown"  # the input is not modified


def test_with_wmi_uses_wmi_when_report_lists_nothing() -> None:
    packs = with_wmi([], [WmiBattery(design_mwh=60000.0, full_mwh=30000.0)])
    assert [(p.name, p.health_pct) for p in packs] == [("battery0", 50.0)]


# ------------------------------------------------------------------ provider


class FakeSource:
    def __init__(self, outputs: dict[str, str], is_live: bool = True) -> None:
        self.outputs = outputs
        self.is_live = is_live
        self.calls: list[str] = []

    def read_text(self, path: str) -> str | None:
        return None

    def list_dir(self, path: str) -> list[str]:
        return []

    def command(self, name: str, argv: list[str]) -> str | None:
        self.calls.append(name)
        if name == "boom":
            raise OSError("broken")
        return self.outputs.get(name)

    def call(self, name: str, read: Callable[[], str | None]) -> str | None:
        self.calls.append(name)
        return self.outputs.get(name)


def _psutil(percent: float, plugged: bool) -> Callable[[], list[BatteryReading]]:
    def fake() -> list[BatteryReading]:
        return [BatteryReading(name="battery", percent=percent, plugged=plugged)]

    return fake


def test_live_provider_fills_single_pack_from_psutil_and_caches_native(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(windows_provider, "psutil_batteries", _psutil(57.0, False))
    report = capture("battery_report_dell_inspiron_5515_cycles0_excerpt", REPORT)
    source = FakeSource({REPORT: report})
    provider = WindowsProvider(source, "10")
    first = provider.read()
    (pack,) = first.batteries
    assert (pack.percent, pack.plugged, pack.health_pct) == (57.0, False, 84.67)
    second = provider.read()
    assert second.batteries[0].health_pct == 84.67
    assert source.calls.count(REPORT) == 1  # powercfg not run again within the interval
    provider.native_interval_s = 0.0
    provider.read()
    assert source.calls.count(REPORT) == 2


def test_live_provider_psutil_stands_in_when_nothing_native(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(windows_provider, "psutil_batteries", _psutil(90.0, True))
    reading = WindowsProvider(FakeSource({})).read()
    assert [(b.name, b.percent, b.plugged) for b in reading.batteries] == [("battery0", 90.0, True)]


def test_replay_provider_never_asks_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden() -> list[BatteryReading]:
        raise AssertionError("psutil asked in replay")

    monkeypatch.setattr(windows_provider, "psutil_batteries", forbidden)
    reading = WindowsProvider(FakeSource({}, is_live=False)).read()
    assert (reading.batteries, reading.wifi, reading.os.platform) == ([], None, "windows")


def test_provider_survives_a_raising_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(windows_provider, "NETSH_INTERFACES", ("boom", ["netsh"]))
    source = FakeSource({}, is_live=False)
    reading = WindowsProvider(source).read()
    assert reading.wifi is None
    assert "boom" in source.calls


# ------------------------------------------------------------------ never raise

PARSERS: list[Callable[[str], Any]] = [
    parse_netsh_interfaces,
    parse_battery_report,
    parse_wmi_batteries,
]
# Text made of the pieces the parsers look for, so the search reaches deep paths.
PIECES = st.sampled_from(
    [" : ", ":", "=", "\n", "\r\n", "%", "-", "GHz", "2,4", "802.11ax", "00", "ab:", "-62",
     "0000000a-0000-0000-0000-000000000000", "02:00:00:00:00:01", "<Battery>", "</Battery>",
     "<BatteryReport>", "<DesignCapacity>", "</DesignCapacity>", "InstanceName", "Voltage",
     "CycleCount", "True", "PS> (x).DesignedCapacity", "privacy-location", "1e999", "\u0661"]
)  # fmt: skip


def _well_formed(result: object) -> bool:
    if result is None:
        return True
    if isinstance(result, WifiReading):
        return isinstance(result.connected, bool)
    return isinstance(result, list) and all(
        isinstance(item, BatteryReading | WmiBattery) for item in result
    )


@pytest.mark.parametrize("parse", PARSERS, ids=lambda f: f.__name__)
@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_parsers_never_raise_on_any_text(parse: Callable[[str], Any], text: str) -> None:
    assert _well_formed(parse(text))


@pytest.mark.parametrize("parse", PARSERS, ids=lambda f: f.__name__)
@settings(max_examples=200, deadline=None)
@given(text=st.lists(PIECES | st.text(max_size=5), max_size=40).map("".join))
def test_parsers_never_raise_on_near_miss_text(parse: Callable[[str], Any], text: str) -> None:
    result = parse(text)
    assert _well_formed(result)
    assert parse(text) == result  # pure: same input, same output
