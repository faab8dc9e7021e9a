"""Wi-Fi output variants across OS versions (issue 15 item 4): band rule, wdutil
channel forms, netsh with and without a band line, Linux link quality as a percent.

The whole-capture cases are under tests/replay/; these pin the rules on small inputs."""

from __future__ import annotations

import pytest

from agent.parsers.linux_wifi import ProcWireless, parse_proc_net_wireless
from agent.parsers.macos_wifi import parse_wdutil_info
from agent.parsers.wifi_band import band_ghz, channel_band_ghz, parse_band_text
from agent.parsers.windows_netsh import parse_netsh_interfaces


@pytest.mark.parametrize(
    ("channel", "band"),
    [(1, 2.4), (14, 2.4), (15, None), (31, None), (32, 5.0), (177, 5.0), (178, None), (None, None)],
)
def test_band_from_a_bare_channel(channel: int | None, band: float | None) -> None:
    assert channel_band_ghz(channel) == band


@pytest.mark.parametrize(
    ("text", "band"),
    [
        ("2,4 GHz", 2.4),
        ("2.4GHz", 2.4),
        ("5 GHz", 5.0),
        ("(6GHz, 160MHz)", 6.0),
        ("60 GHz", None),
        ("", None),
        (None, None),
    ],
)
def test_band_written_out(text: str | None, band: float | None) -> None:
    assert parse_band_text(text) == band


def test_explicit_band_wins_and_6ghz_is_never_guessed() -> None:
    assert band_ghz(6.0, 5) == 6.0  # 6 GHz channel 5, band given
    assert band_ghz(None, 5) == 2.4  # no band given: the number's band, never 6 GHz
    assert band_ghz(None, 233) is None


WDUTIL = "WIFI\n    Interface Name       : en0\n    Op Mode              : STA\n    RSSI                 : -60 dBm\n    Channel              : {}\n"


@pytest.mark.parametrize(
    ("value", "channel", "band"),
    [
        ("5g36/80", 36, 5.0),
        ("2g6/20", 6, 2.4),
        ("6g37/160", 37, 6.0),
        ("36 (5GHz, 80MHz)", 36, 5.0),
        ("5 (6GHz, 160MHz)", 5, 6.0),
        ("11 (2.4GHz, 20MHz)", 11, 2.4),
        ("149,80", 149, 5.0),
        ("36", 36, 5.0),
        ("6", 6, 2.4),
        ("None", None, None),
        ("300", None, None),
        ("", None, None),
    ],
)
def test_wdutil_channel_forms(value: str, channel: int | None, band: float | None) -> None:
    reading = parse_wdutil_info(WDUTIL.format(value))
    assert reading is not None and reading.connected
    assert (reading.channel, reading.band_ghz) == (channel, band)


def netsh(band_line: str, channel: str) -> str:
    return (
        "There is 1 interface on the system:\n\n"
        "    Name                   : Wi-Fi\n"
        "    Description            : Intel(R) Wi-Fi 6E AX211 160MHz\n"
        "    GUID                   : 3c2b1a09-8f7e-4d6c-b5a4-93e2d1c0b9a8\n"
        "    Physical address       : 02:00:00:aa:60:03\n"
        "    State                  : connected\n"
        "    SSID                   : LYCEE-EDU\n"
        "    AP BSSID               : 02:00:00:5e:60:0e\n"
        f"{band_line}"
        f"    Channel                : {channel}\n"
        "    Network type           : Infrastructure\n"
        "    Radio type             : 802.11ax\n"
        "    Authentication         : WPA3-Personal\n"
        "    Cipher                 : GCMP\n"
        "    Connection mode        : Profile\n"
        "    Receive rate (Mbps)    : 1201\n"
        "    Transmit rate (Mbps)   : 1201\n"
        "    Signal                 : 96%\n"
        "    Rssi                   : -41\n"
        "    Profile                : LYCEE-EDU\n"
    )


def test_netsh_windows11_6ghz_band_line_is_kept() -> None:
    reading = parse_netsh_interfaces(netsh("    Band                   : 6 GHz\n", "5"))
    assert reading is not None
    assert (reading.channel, reading.band_ghz, reading.rssi_dbm) == (5, 6.0, -41.0)


def test_netsh_windows10_layout_derives_the_band_from_the_channel() -> None:
    text = (
        "    Name                   : Wi-Fi\n"
        "    Description            : Intel(R) Wireless-AC 9560 160MHz\n"
        "    GUID                   : 6a3e0d21-7b4c-4f1e-9a2b-0c5d7e8f9a10\n"
        "    Physical address       : 02:00:00:aa:40:01\n"
        "    State                  : connected\n"
        "    SSID                   : LYCEE-EDU\n"
        "    BSSID                  : 02:00:00:5e:40:0c\n"
        "    Network type           : Infrastructure\n"
        "    Radio type             : 802.11ac\n"
        "    Authentication         : WPA2-Personal\n"
        "    Cipher                 : CCMP\n"
        "    Connection mode        : Profile\n"
        "    Channel                : 149\n"
        "    Receive rate (Mbps)    : 400\n"
        "    Transmit rate (Mbps)   : 400\n"
        "    Signal                 : 60%\n"
        "    Profile                : LYCEE-EDU\n"
    )
    reading = parse_netsh_interfaces(text)
    assert reading is not None
    assert (reading.channel, reading.band_ghz) == (149, 5.0)
    # Windows 10 prints no Rssi: the percent is never converted into dBm.
    assert (reading.signal_pct, reading.rssi_dbm) == (60.0, None)


@pytest.mark.parametrize(
    ("quality", "level", "pct"),
    [
        (63.0, -47.0, 90.0),  # Intel 7265 capture: -47 + 110 = 63 of 70
        (70.0, -38.0, 100.0),  # top of the cfg80211 scale
        (52.0, -58.0, 74.3),
        (0.0, -110.0, 0.0),
        (80.0, -30.0, 80.0),  # above 70 with dBm: an old wext driver's 0-100 scale
        (100.0, None, 100.0),  # relative level (Raspberry Pi capture): 0-100
        (150.0, None, None),  # no known scale
        (None, -50.0, None),
    ],
)
def test_proc_link_quality_as_percent(
    quality: float | None, level: float | None, pct: float | None
) -> None:
    entry = ProcWireless("wlan0", link_quality=quality, level_dbm=level, noise_dbm=None)
    assert entry.signal_pct == pct


def test_proc_not_associated_has_no_percent() -> None:
    [entry] = parse_proc_net_wireless(
        "Inter-| sta-|   Quality        |\n face | tus | link level noise |\n"
        "wlan0: 0000    0.    0.    0.       0      0      0      0      0        0\n"
    )
    assert not entry.associated
    assert entry.signal_pct is None


def test_proc_quality_with_trailing_dot_from_a_capture() -> None:
    [entry] = parse_proc_net_wireless(
        "Inter-| sta-|   Quality        |\n face | tus | link level noise |\n"
        "wlp0s20f3: 0000   70.  -38.  -256        0      0      0      0      3        0\n"
    )
    assert (entry.link_quality, entry.level_dbm, entry.signal_pct) == (70.0, -38.0, 100.0)
