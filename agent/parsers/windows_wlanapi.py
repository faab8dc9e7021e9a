"""Parse the agent's own dump of the Windows Native Wi-Fi API (`agent.winwlan`).

Why: Windows 11 24H2 without location consent makes `netsh wlan show interfaces`
print an error instead of the interface block, so the signal would be lost. The
Native Wi-Fi API still answers queries that reveal no SSID or BSSID (Microsoft
gates the BSSID-bearing ones: "Changes to API behavior for Wi-Fi access and
location", learn.microsoft.com, nativewifi/wi-fi-access-location-changes). The
agent asks for the interface state (WlanEnumInterfaces), the link RSSI
(WlanQueryInterface, wlan_intf_opcode_rssi) and the channel
(wlan_intf_opcode_channel_number), and writes them as `key=value` lines:

    state=1
    rssi=-61
    channel=36

`state` is the WLAN_INTERFACE_STATE number (1 = connected), `rssi` is in dBm,
`channel` the IEEE channel number. A query Windows refused is absent. Which of
these queries 24H2 still allows without consent is NOT verified on a real machine
(no Windows here); a refused query just leaves its field null.

The band is not derived from the channel: 2.4 GHz channels 1-14 and 6 GHz channels
1-233 overlap, and this opcode does not say which band it means.
"""

from __future__ import annotations

import re

from agent.model import WifiReading

WLAN_INTERFACE_STATE_CONNECTED = 1
_LINE = re.compile(r"^\s*([a-z_]+)\s*=\s*(-?\d{1,6})\s*$", re.A)
_RSSI_RANGE = (-120, 0)
_CHANNEL_RANGE = (1, 233)


def _values(text: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m and m.group(1) not in found:
            found[m.group(1)] = int(m.group(2))
    return found


def parse_wlanapi(text: str) -> WifiReading | None:
    """The link as the Native Wi-Fi API gave it, SSID and BSSID unknown (hidden by
    the OS), or None when the dump holds no interface state."""
    values = _values(text)
    state = values.get("state")
    if state is None:
        return None
    connected = state == WLAN_INTERFACE_STATE_CONNECTED
    rssi = values.get("rssi")
    channel = values.get("channel")
    return WifiReading(
        interface=None,
        connected=connected,
        ssid_hidden_by_os=True,
        rssi_dbm=float(rssi)
        if connected and rssi is not None and _RSSI_RANGE[0] <= rssi <= _RSSI_RANGE[1]
        else None,
        channel=channel
        if connected and channel is not None and _CHANNEL_RANGE[0] <= channel <= _CHANNEL_RANGE[1]
        else None,
    )
