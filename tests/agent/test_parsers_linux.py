"""Unit tests of the Linux parsers (sysfs power supplies, /proc/net/wireless, iw link)
and of the Linux provider over an in-memory source. Replay of real captures lives in
tests/replay/linux (run by test_replay.py)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.parsers.linux_sysfs import (
    BATTERY_ATTRS,
    mains_online,
    parse_attribute,
    parse_uevent,
    supply_kind,
    to_battery,
    to_int,
)
from agent.parsers.linux_wifi import (
    band_ghz,
    channel,
    parse_iw_link,
    parse_proc_net_wireless,
)
from agent.providers import replay_provider
from agent.providers.linux import LinuxProvider
from agent.sources import LiveSource

PROC_HEADER = (
    "Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE\n"
    " face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22\n"
)


class FakeSource:
    """In-memory Source: files by path, commands by capture name."""

    def __init__(
        self,
        files: dict[str, str] | None = None,
        commands: dict[str, str] | None = None,
        is_live: bool = False,
    ) -> None:
        self.files = files or {}
        self.commands = commands or {}
        self.is_live = is_live
        self.argvs: list[list[str]] = []

    def read_text(self, path: str) -> str | None:
        return self.files.get(path)

    def list_dir(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return sorted({p[len(prefix) :].split("/")[0] for p in self.files if p.startswith(prefix)})

    def command(self, name: str, argv: list[str]) -> str | None:
        self.argvs.append(argv)
        return self.commands.get(name)

    def call(self, name: str, read: Callable[[], str | None]) -> str | None:
        return self.commands.get(name)


# -- uevent and attribute files ------------------------------------------------------


def test_uevent_keys_any_order_crlf_and_odd_whitespace() -> None:
    text = (
        "POWER_SUPPLY_STATUS=Not charging\r\n"
        "  POWER_SUPPLY_ENERGY_FULL=50740000  \r\n"
        "POWER_SUPPLY_MODEL_NAME=A=B\n"
        "ACTION=change\n"
        "## POWER_SUPPLY_SERIAL_NUMBER=41167\n"
        "POWER_SUPPLY_=nothing\n"
        "garbage line\n"
    )
    assert parse_uevent(text) == {
        "status": "Not charging",
        "energy_full": "50740000",
        "model_name": "A=B",
    }


def test_uevent_last_value_wins_and_empty_text() -> None:
    assert parse_uevent("POWER_SUPPLY_CAPACITY=50\nPOWER_SUPPLY_CAPACITY=51\n") == {
        "capacity": "51"
    }
    assert parse_uevent("") == {}


def test_attribute_file_values() -> None:
    assert parse_attribute("Battery\r\n") == "Battery"
    assert parse_attribute(" 1242\n") == "1242"
    assert parse_attribute("  \n") is None


@pytest.mark.parametrize(
    ("text", "value"),
    [("12", 12), (" -1 \n", -1), ("+5", 5), ("1.5", None), ("", None), ("١٢", None), (None, None)],
)
def test_to_int_accepts_plain_ascii_integers_only(text: str | None, value: int | None) -> None:
    assert to_int(text) == value


def test_supply_kind() -> None:
    assert supply_kind({"type": "Battery", "scope": "Device"}) is None
    assert supply_kind({"type": "Battery", "scope": "System"}) == "battery"
    assert supply_kind({"type": "Mains", "online": "1"}) == "mains"
    assert supply_kind({"type": "USB", "online": "1"}) is None
    assert supply_kind({"capacity": "50"}) == "battery"  # old kernel: no TYPE key
    assert supply_kind({"online": "0"}) == "mains"
    assert supply_kind({}) is None


def test_mains_online() -> None:
    assert mains_online({"online": "1"}) is True
    assert mains_online({"online": "0"}) is False
    assert mains_online({"online": "2"}) is True  # programmable USB supplies say 2
    assert mains_online({"online": "yes"}) is None
    assert mains_online({}) is None


# -- battery readings ------------------------------------------------------------------


def test_energy_battery_reading() -> None:
    attrs = {
        "type": "Battery",
        "status": "Not charging",
        "present": "1",
        "cycle_count": "531",
        "energy_full_design": "60000000",
        "energy_full": "50740000",
        "energy_now": "28930000",
        "voltage_now": "12000000",
        "temp": "305",
        "manufacturer": "Sunwoda",
        "model_name": "L20D4PC0",
        "technology": "Unknown",
        "serial_number": "12345",
    }
    b = to_battery("BAT0", attrs, plugged=True)
    assert b is not None
    assert b.status == "not_charging"
    assert b.design_capacity_mwh == 60000.0
    assert b.full_capacity_mwh == 50740.0
    assert b.health_pct == 84.57
    assert b.cycle_count == 531
    assert b.percent == 57.0  # no capacity key: energy_now / energy_full = 28930000 / 50740000
    assert b.voltage_mv == 12000.0
    assert b.temperature_c == 30.5
    assert b.plugged is True
    assert b.technology is None  # the kernel's "Unknown"
    assert "12345" not in str(asdict(b))  # the serial number never enters a reading


def test_charge_battery_without_design_voltage_keeps_health() -> None:
    attrs = {"charge_full_design": "9420000", "charge_full": "8479000", "capacity": "62"}
    b = to_battery("BATT", attrs)
    assert b is not None
    assert b.design_capacity_mwh is None  # µAh without a design voltage: not convertible
    assert b.full_capacity_mwh is None
    assert b.health_pct == 90.01
    assert b.percent == 62.0


def test_charge_battery_uses_voltage_min_design_not_max() -> None:
    attrs = {
        "charge_full_design": "4000000",
        "charge_full": "3000000",
        "voltage_min_design": "11100000",
        "voltage_max_design": "12600000",
    }
    b = to_battery("BAT1", attrs)
    assert b is not None
    assert b.design_capacity_mwh == 44400.0
    assert b.full_capacity_mwh == 33300.0


@pytest.mark.parametrize(("cycles", "expected"), [("0", None), ("-1", None), ("5", 5), ("x", None)])
def test_cycle_count_zero_or_negative_is_unknown(cycles: str, expected: int | None) -> None:
    b = to_battery("BAT0", {"type": "Battery", "cycle_count": cycles})
    assert b is not None
    assert b.cycle_count == expected


def test_zero_design_and_odd_status_stay_unknown() -> None:
    attrs = {"type": "Battery", "energy_full_design": "0", "energy_full": "100", "status": "Idle"}
    b = to_battery("BAT0", attrs)
    assert b is not None
    assert b.design_capacity_mwh is None
    assert b.health_pct is None
    assert b.full_capacity_mwh == 0.1
    assert b.status == "unknown"


def test_absent_battery_and_non_batteries() -> None:
    absent = to_battery("BAT1", {"type": "Battery", "present": "0"})
    assert absent is not None
    assert absent.present is False
    assert absent.percent is None
    assert to_battery("AC", {"type": "Mains", "online": "1"}) is None
    assert to_battery("hidpp_battery_0", {"type": "Battery", "scope": "Device"}) is None


def test_percent_from_energy_when_capacity_missing_is_clamped() -> None:
    b = to_battery("BAT1", {"energy_full": "93550000", "energy_now": "93790000"})
    assert b is not None
    assert b.percent == 100.0
    half = to_battery("BAT1", {"energy_full": "1000", "energy_now": "482"})
    assert half is not None
    assert half.percent == 48.2


# -- /proc/net/wireless ------------------------------------------------------------------


def test_proc_wireless_dbm_relative_and_no_noise() -> None:
    text = PROC_HEADER + (
        "wlp5s0: 0000   68.  -42.  -256        0      0      0      0   3851        0\r\n"
        " wlan0: 0000  100.   95.    0.       0      0      0      0      0        0\n"
        "  wlx0: 0000   50.  -60.   -95.      0      0      0      0      0        0\n"
    )
    entries = parse_proc_net_wireless(text)
    assert [e.interface for e in entries] == ["wlp5s0", "wlan0", "wlx0"]
    assert entries[0].level_dbm == -42.0
    assert entries[0].noise_dbm is None  # -256 = no noise value
    assert entries[0].associated
    assert entries[1].level_dbm is None  # positive = relative scale, not dBm
    assert entries[1].associated  # link quality 100
    assert entries[2].noise_dbm == -95.0


def test_proc_wireless_header_only_garbage_and_idle_wext_line() -> None:
    assert parse_proc_net_wireless(PROC_HEADER) == []
    assert parse_proc_net_wireless("nonsense: here\n\n:::\n") == []
    idle = parse_proc_net_wireless(PROC_HEADER + " wlan0: 0000    0.    0.    0.   0 0 0 0 0 0\n")
    assert len(idle) == 1
    assert not idle[0].associated


# -- iw dev <if> link ----------------------------------------------------------------------


def test_iw_link_he_rates_escaped_ssid_and_uppercase_bssid() -> None:
    text = (
        "Connected to AA:BB:CC:DD:EE:0F (on wlp2s0)\r\n"
        "\tSSID: Lyc\\xc3\\xa9e Jean\\x20\r\n"
        "\tfreq: 5955.0\r\n"
        "\tsignal: -67 dBm\r\n"
        "\trx bitrate: 1200.9 MBit/s 80MHz HE-MCS 11 HE-NSS 2 HE-GI 0 HE-DCM 0\r\n"
        "\ttx bitrate: 960.7 MBit/s 80MHz VHT-MCS 9 VHT-NSS 2\r\n"
    )
    link = parse_iw_link(text)
    assert link is not None
    assert link.connected
    assert link.interface == "wlp2s0"
    assert link.bssid == "aa:bb:cc:dd:ee:0f"
    assert link.ssid == "Lycée Jean "
    assert link.freq_mhz == 5955.0
    assert link.signal_dbm == -67.0
    assert link.rx_rate_mbps == 1200.9
    assert link.tx_rate_mbps == 960.7
    assert link.radio == "802.11ax"


def test_iw_link_not_connected_authenticated_and_garbage() -> None:
    not_connected = parse_iw_link("Not connected.\n")
    assert not_connected is not None
    assert not not_connected.connected
    authenticated = parse_iw_link("Authenticated with 00:11:22:33:44:55 (on wlan0)\n")
    assert authenticated is not None
    assert not authenticated.connected
    assert parse_iw_link("") is None
    assert parse_iw_link("command failed: No such device (-19)\n") is None


def test_iw_link_positive_signal_and_masked_bssid_are_dropped() -> None:
    link = parse_iw_link("Connected to a4:12:42:xx:xx:xx (on wlp3s0)\n\tsignal: 93 dBm\n")
    assert link is not None
    assert link.bssid is None
    assert link.signal_dbm is None
    assert link.ssid is None
    assert link.radio is None


def test_iw_link_comma_decimal_frequency_keeps_integer_part() -> None:
    link = parse_iw_link("Connected to 00:11:22:33:44:55 (on wlan0)\n\tfreq: 2412,0\n")
    assert link is not None
    assert link.freq_mhz == 2412.0
    assert channel(link.freq_mhz) == 1


@pytest.mark.parametrize(
    ("freq", "chan", "band"),
    [
        (2412.0, 1, 2.4),
        (2472, 13, 2.4),
        (2484, 14, 2.4),
        (4920, 184, 5.0),
        (5180, 36, 5.0),
        (5885, 177, 5.0),
        (5935, 2, 6.0),
        (5955, 1, 6.0),
        (7115, 233, 6.0),
        (60480, None, None),
        (None, None, None),
        (float("nan"), None, None),
        (float("inf"), None, None),
    ],
)
def test_channel_and_band(freq: float | None, chan: int | None, band: float | None) -> None:
    assert channel(freq) == chan
    assert band_ghz(freq) == band


# -- provider over an in-memory source ----------------------------------------------------

BAT = "sys/class/power_supply"


def test_provider_sorts_batteries_and_reads_adapter_and_missing_attributes() -> None:
    source = FakeSource(
        files={
            f"{BAT}/BAT1/uevent": "POWER_SUPPLY_TYPE=Battery\nPOWER_SUPPLY_ENERGY_FULL=1\n",
            f"{BAT}/BAT0/uevent": "POWER_SUPPLY_TYPE=Battery\nPOWER_SUPPLY_CAPACITY=80\n",
            f"{BAT}/BAT0/cycle_count": "42\n",  # not in the uevent: read from its file
            f"{BAT}/AC/uevent": "POWER_SUPPLY_NAME=AC\nPOWER_SUPPLY_ONLINE=1\n",
            f"{BAT}/AC/type": "Mains\n",
            f"{BAT}/hidpp_battery_0/uevent": "POWER_SUPPLY_TYPE=Battery\n"
            "POWER_SUPPLY_SCOPE=Device\n",
        }
    )
    reading = LinuxProvider(source, "6.8.0").read()
    assert reading.os.platform == "linux"
    assert reading.os.release == "6.8.0"
    assert [b.name for b in reading.batteries] == ["BAT0", "BAT1"]
    assert reading.batteries[0].cycle_count == 42
    assert reading.batteries[0].percent == 80.0
    assert all(b.plugged is True for b in reading.batteries)
    assert reading.wifi is None


def test_provider_adapter_offline_gives_unplugged() -> None:
    source = FakeSource(
        files={
            f"{BAT}/ADP1/uevent": "POWER_SUPPLY_TYPE=Mains\nPOWER_SUPPLY_ONLINE=0\n",
            f"{BAT}/BAT0/uevent": "POWER_SUPPLY_TYPE=Battery\nPOWER_SUPPLY_CAPACITY=50\n",
        }
    )
    assert [b.plugged for b in LinuxProvider(source).read().batteries] == [False]


def test_provider_merges_proc_and_iw() -> None:
    source = FakeSource(
        files={"proc/net/wireless": PROC_HEADER + "wlp2s0: 0000 40. -70. -92. 0 0 0 0 0 0\n"},
        commands={
            "iw-dev-link.txt": "Connected to 00:11:22:33:44:55 (on wlp2s0)\n"
            "\tSSID: school\n\tfreq: 2437\n\tsignal: -69 dBm\n"
        },
    )
    wifi = LinuxProvider(source).read().wifi
    assert wifi is not None
    assert wifi.interface == "wlp2s0"
    assert wifi.connected
    assert wifi.rssi_dbm == -69.0  # iw's value wins over the proc level
    assert wifi.noise_dbm == -92.0  # only /proc/net/wireless knows the noise
    assert wifi.channel == 6
    assert source.argvs == [["iw", "dev", "wlp2s0", "link"]]


def test_provider_live_without_interface_does_not_run_iw() -> None:
    source = FakeSource(commands={"iw-dev-link.txt": "Not connected.\n"}, is_live=True)
    assert LinuxProvider(source).read().wifi is None
    assert source.argvs == []


def test_provider_live_finds_idle_interface_in_sysfs() -> None:
    source = FakeSource(
        files={
            "sys/class/net/lo/operstate": "unknown\n",
            "sys/class/net/wlan0/phy80211/name": "phy0\n",
        },
        commands={"iw-dev-link.txt": "Not connected.\n"},
        is_live=True,
    )
    wifi = LinuxProvider(source).read().wifi
    assert wifi is not None
    assert wifi.interface == "wlan0"
    assert not wifi.connected
    assert source.argvs == [["iw", "dev", "wlan0", "link"]]


REPLAY = Path(__file__).resolve().parent.parent / "replay" / "linux"


def test_live_capture_replays_to_the_same_reading(tmp_path: Path) -> None:
    # A fake machine root built from two real captures (one per-file tree as BAT0, one
    # uevent as BAT1; no Wi-Fi, so no command runs): what the live reader saves must
    # replay to the same reading.
    root, capture = tmp_path / "root", tmp_path / "capture"
    per_file = REPLAY / "thinkpad_00HW022_sysfs_files_full_gt_design_cycle5"
    shutil.copytree(per_file / "sys", root / "sys")
    uevent = REPLAY / "dell_PN1VN08_charge_uAh" / "sys/class/power_supply/BAT0/uevent"
    (root / "sys/class/power_supply/BAT1").mkdir()
    shutil.copy(uevent, root / "sys/class/power_supply/BAT1/uevent")
    live = LinuxProvider(LiveSource(root=root, capture_dir=capture)).read()
    (capture / "platform").write_text("linux\n", encoding="utf-8")
    replayed = replay_provider(capture).read()
    assert [b.name for b in live.batteries] == ["BAT0", "BAT1"]
    assert [b.health_pct for b in live.batteries] == [102.25, 83.82]
    assert asdict(replayed) == asdict(live)
    # Only what the parsers use is read, hence captured: never the serial number.
    assert not (capture / "sys/class/power_supply/BAT0/serial_number").exists()


class BrokenSource(FakeSource):
    def read_text(self, path: str) -> str | None:
        raise OSError("device gone")

    def list_dir(self, path: str) -> list[str]:
        return ["BAT0"]


def test_provider_never_raises_when_the_source_does() -> None:
    reading = LinuxProvider(BrokenSource()).read()
    assert reading.batteries == []
    assert reading.wifi is None


# -- never raise on arbitrary text ----------------------------------------------------------

KEYS = st.sampled_from((*BATTERY_ATTRS, "type", "scope", "online"))


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_text_parsers_never_raise(text: str) -> None:
    assert isinstance(parse_uevent(text), dict)
    value = parse_attribute(text)
    assert value is None or value == value.strip()
    assert isinstance(parse_proc_net_wireless(text), list)
    link = parse_iw_link(text)
    assert link is None or isinstance(link.connected, bool)
    battery = to_battery("BAT0", parse_uevent(text))
    assert battery is None or battery.status in {
        "charging",
        "discharging",
        "full",
        "not_charging",
        "unknown",
    }


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(KEYS, st.text()))
def test_to_battery_never_raises_on_any_attribute_values(attrs: dict[str, str]) -> None:
    battery = to_battery("BAT0", attrs)
    assert battery is None or battery.name == "BAT0"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_provider_never_raises_when_every_file_holds_arbitrary_text(text: str) -> None:
    files = {
        f"{BAT}/BAT0/uevent": text,
        f"{BAT}/BAT0/type": text,
        f"{BAT}/AC/uevent": text,
        "proc/net/wireless": text,
    }
    reading = LinuxProvider(FakeSource(files, {"iw-dev-link.txt": text})).read()
    assert reading.os.platform == "linux"
    assert len(reading.batteries) <= 2


def test_absurdly_long_numbers_are_unknown_not_errors() -> None:
    digits = "9" * 5000
    assert to_int(digits) is None
    link = parse_iw_link(f"Connected to 00:11:22:33:44:55 (on wlan0)\n\tfreq: {digits}\n")
    assert link is not None
    assert link.freq_mhz is None
