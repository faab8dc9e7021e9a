"""What of the Wi-Fi link leaves the laptop: school SSIDs only, BSSIDs only as keyed hashes."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import replace
from typing import Any

import pytest

from agent.model import WifiReading
from agent.privacy import PrivacyPolicy, normalise_bssid

KEY = b"school-key"
POLICY = PrivacyPolicy(frozenset({"LORDI-EDU", "LORDI-PROFS"}), KEY)
BSSID = "58:b6:33:06:67:ac"


def reading(**kw: Any) -> WifiReading:
    base = WifiReading(
        interface="wlan0",
        connected=True,
        ssid="LORDI-EDU",
        bssid=BSSID,
        rssi_dbm=-61.0,
        signal_pct=78.0,
        noise_dbm=-92.0,
        channel=36,
        band_ghz=5.0,
        rx_rate_mbps=702.0,
        tx_rate_mbps=866.7,
        radio="802.11ac",
    )
    return replace(base, **kw)


def expected_hash(key: bytes, normalised: str) -> str:
    return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()[:16]


SIGNAL = {
    "interface": "wlan0",
    "rssi_dbm": -61.0,
    "signal_pct": 78.0,
    "noise_dbm": -92.0,
    "channel": 36,
    "band_ghz": 5.0,
    "rx_rate_mbps": 702.0,
    "tx_rate_mbps": 866.7,
    "radio": "802.11ac",
}


def test_school_network_keeps_ssid_and_hashes_bssid() -> None:
    assert POLICY.wifi_fields(reading()) == {
        **SIGNAL,
        "connected": True,
        "ssid": "LORDI-EDU",
        "ssid_state": "school",
        "on_school_network": True,
        "bssid_hash": expected_hash(KEY, BSSID),
    }


def test_second_school_ssid_is_also_kept() -> None:
    fields = POLICY.wifi_fields(reading(ssid="LORDI-PROFS"))
    assert fields["ssid"] == "LORDI-PROFS" and fields["ssid_state"] == "school"


@pytest.mark.parametrize(
    "ssid", ["Freebox-1234", "iPhone de Lea", "lordi-edu", "LORDI-EDU ", "LORDI", ""]
)
def test_other_network_gives_no_name_and_no_bssid(ssid: str) -> None:
    assert POLICY.wifi_fields(reading(ssid=ssid)) == {
        **SIGNAL,
        "connected": True,
        "ssid": None,
        "ssid_state": "other",
        "on_school_network": False,
        "bssid_hash": None,
    }


def test_connected_without_ssid_is_other() -> None:
    fields = POLICY.wifi_fields(reading(ssid=None))
    assert fields["ssid_state"] == "other" and fields["bssid_hash"] is None


def test_hidden_by_os_keeps_signal_and_says_so() -> None:
    fields = POLICY.wifi_fields(reading(ssid=None, bssid=None, ssid_hidden_by_os=True))
    assert fields == {
        **SIGNAL,
        "connected": True,
        "ssid": None,
        "ssid_state": "hidden_by_os",
        "on_school_network": None,
        "bssid_hash": None,
    }


def test_hidden_by_os_never_leaks_a_name_it_was_given() -> None:
    fields = POLICY.wifi_fields(reading(ssid_hidden_by_os=True))
    assert fields["ssid"] is None and fields["bssid_hash"] is None
    assert fields["ssid_state"] == "hidden_by_os"
    assert fields["rssi_dbm"] == -61.0


def test_not_connected() -> None:
    fields = POLICY.wifi_fields(
        reading(connected=False, ssid="LORDI-EDU", rssi_dbm=None, signal_pct=None)
    )
    assert fields["connected"] is False
    assert fields["ssid"] is None
    assert fields["ssid_state"] == "not_connected"
    assert fields["on_school_network"] is False
    assert fields["bssid_hash"] is None
    assert fields["rssi_dbm"] is None


@pytest.mark.parametrize(
    "raw",
    [
        "58:b6:33:06:67:ac",
        "58:B6:33:06:67:AC",
        "58:b6:33:6:67:ac",
        "58-b6-33-06-67-ac",
        "58-B6-33-6-67-AC",
        "  58:b6:33:06:67:ac\n",
    ],
)
def test_bssid_spellings_normalise_to_one_hash(raw: str) -> None:
    assert normalise_bssid(raw) == BSSID
    assert POLICY.bssid_hash(raw) == expected_hash(KEY, BSSID)
    assert POLICY.wifi_fields(reading(bssid=raw))["bssid_hash"] == expected_hash(KEY, BSSID)


def test_unpadded_zero_octets() -> None:
    assert normalise_bssid("0:0:5e:0:1:f") == "00:00:5e:00:01:0f"


def test_hash_is_keyed_16_hex_chars() -> None:
    h1 = POLICY.bssid_hash(BSSID)
    h2 = PrivacyPolicy(POLICY.school_ssids, b"another-key").bssid_hash(BSSID)
    assert h1 is not None and h2 is not None
    assert re.fullmatch(r"[0-9a-f]{16}", h1) and re.fullmatch(r"[0-9a-f]{16}", h2)
    assert h1 != h2
    # not the plain (unkeyed) digest: nobody can look an address up without the key
    assert h1 != hashlib.sha256(BSSID.encode()).hexdigest()[:16]
    assert h1 == expected_hash(KEY, BSSID)


def test_different_access_points_get_different_hashes() -> None:
    assert POLICY.bssid_hash("58:b6:33:06:67:ac") != POLICY.bssid_hash("58:b6:33:06:67:ad")


def test_empty_key_gives_no_hash() -> None:
    policy = PrivacyPolicy(frozenset({"LORDI-EDU"}), b"")
    assert policy.bssid_hash(BSSID) is None
    fields = policy.wifi_fields(reading())
    assert fields["ssid_state"] == "school" and fields["bssid_hash"] is None


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not-a-mac",
        "58:b6:33:06:67",
        "58:b6:33:06:67:ac:01",
        "58:b6:33:06:67:zz",
        "58:b6:33:100:67:ac",
        "58::33:06:67:ac",
        "58:b6:33:-1:67:ac",
    ],
)
def test_invalid_bssid_gives_no_hash(raw: str) -> None:
    assert normalise_bssid(raw) is None
    assert POLICY.bssid_hash(raw) is None
    fields = POLICY.wifi_fields(reading(bssid=raw))
    assert fields["ssid_state"] == "school" and fields["bssid_hash"] is None


def test_missing_bssid_gives_no_hash() -> None:
    assert POLICY.bssid_hash(None) is None
    assert POLICY.wifi_fields(reading(bssid=None))["bssid_hash"] is None


def test_raw_identity_never_appears_in_the_fields() -> None:
    for r in (reading(), reading(ssid="Freebox-1234"), reading(ssid_hidden_by_os=True)):
        values = [str(v).lower() for v in POLICY.wifi_fields(r).values()]
        assert not any("58:b6" in v or "freebox" in v for v in values)
        assert "bssid" not in POLICY.wifi_fields(r)
