"""What of the Wi-Fi link may leave the laptop (design.md, "Privacy by design").

The SSID is sent only when it is one of the school's networks; elsewhere (home, a
café, a phone hotspot) the sample says "other" and carries no name. The BSSID is
sent only on school networks and only as a keyed hash: the collector can group
laptops by access point without learning, or being able to look up, any address.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from agent.model import WifiReading

BSSID_HASH_HEX = 16


def normalise_bssid(bssid: str) -> str | None:
    """ "58:b6:33:6:67:ac" -> "58:b6:33:06:67:ac"; None when it is not a MAC address."""
    parts = bssid.strip().lower().replace("-", ":").split(":")
    if len(parts) != 6:
        return None
    try:
        octets = [int(p, 16) for p in parts]
    except ValueError:
        return None
    if any(not 0 <= o <= 255 for o in octets):
        return None
    return ":".join(f"{o:02x}" for o in octets)


@dataclass(frozen=True, slots=True)
class PrivacyPolicy:
    school_ssids: frozenset[str]
    bssid_key: bytes

    def bssid_hash(self, bssid: str | None) -> str | None:
        norm = normalise_bssid(bssid) if bssid else None
        if norm is None or not self.bssid_key:
            return None
        digest = hmac.new(self.bssid_key, norm.encode(), hashlib.sha256).hexdigest()
        return digest[:BSSID_HASH_HEX]

    def on_school_network(self, r: WifiReading | None) -> bool:
        """Associated with one of the school's networks (known to be)."""
        return (
            r is not None
            and r.connected
            and not r.ssid_hidden_by_os
            and r.ssid is not None
            and r.ssid in self.school_ssids
        )

    def wifi_fields(self, r: WifiReading) -> dict[str, Any]:
        """The wire fields for a reading, with identity removed where required."""
        if r.ssid_hidden_by_os:
            state, ssid, on_school, bssid_hash = "hidden_by_os", None, None, None
        elif not r.connected:
            state, ssid, on_school, bssid_hash = "not_connected", None, False, None
        elif r.ssid is not None and r.ssid in self.school_ssids:
            state, ssid, on_school, bssid_hash = "school", r.ssid, True, self.bssid_hash(r.bssid)
        else:
            state, ssid, on_school, bssid_hash = "other", None, False, None
        return {
            "interface": r.interface,
            "connected": r.connected,
            "ssid": ssid,
            "ssid_state": state,
            "on_school_network": on_school,
            "bssid_hash": bssid_hash,
            "rssi_dbm": r.rssi_dbm,
            "signal_pct": r.signal_pct,
            "noise_dbm": r.noise_dbm,
            "channel": r.channel,
            "band_ghz": r.band_ghz,
            "rx_rate_mbps": r.rx_rate_mbps,
            "tx_rate_mbps": r.tx_rate_mbps,
            "radio": r.radio,
        }
