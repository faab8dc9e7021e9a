"""Windows Native Wi-Fi API reader (wlanapi.dll through ctypes, no dependency).

Used only when `netsh` withholds the link (Windows 11 24H2 without location
consent). It asks for what reveals no SSID or BSSID: the interface state, the link
RSSI and the channel, and returns them as the text `agent.parsers.windows_wlanapi`
parses (so `lordi-agent capture` records it and a replay reads it back).

Written from the wlanapi.h declarations; NOT run on a real Windows machine yet (the
project has none): every failure returns None or omits the field, never raises.
"""

from __future__ import annotations

import ctypes
import logging
from ctypes import wintypes
from typing import Any

log = logging.getLogger(__name__)

CLIENT_VERSION = 2  # Windows Vista and later
ERROR_SUCCESS = 0
OPCODE_CHANNEL_NUMBER = 8  # wlan_intf_opcode_channel_number -> ULONG
OPCODE_RSSI = 0x10000102  # wlan_intf_opcode_rssi -> LONG, dBm


class _GUID(ctypes.Structure):
    _fields_ = [
        ("Data1", wintypes.DWORD),
        ("Data2", wintypes.WORD),
        ("Data3", wintypes.WORD),
        ("Data4", ctypes.c_ubyte * 8),
    ]


class _InterfaceInfo(ctypes.Structure):
    _fields_ = [
        ("InterfaceGuid", _GUID),
        ("strInterfaceDescription", ctypes.c_wchar * 256),
        ("isState", ctypes.c_uint),
    ]


class _InterfaceInfoList(ctypes.Structure):
    _fields_ = [
        ("dwNumberOfItems", wintypes.DWORD),
        ("dwIndex", wintypes.DWORD),
        ("InterfaceInfo", _InterfaceInfo * 1),
    ]


def _query(api: Any, handle: Any, guid: _GUID, opcode: int, ctype: Any) -> int | None:
    size = wintypes.DWORD()
    data = ctypes.c_void_p()
    rc = api.WlanQueryInterface(
        handle, ctypes.byref(guid), opcode, None, ctypes.byref(size), ctypes.byref(data), None
    )
    if rc != ERROR_SUCCESS or not data.value:
        log.debug("WlanQueryInterface(%#x) refused: %s", opcode, rc)
        return None
    try:
        return int(ctypes.cast(data, ctypes.POINTER(ctype)).contents.value)
    finally:
        api.WlanFreeMemory(data)


def _dump(api: Any, handle: Any) -> str | None:
    listing = ctypes.POINTER(_InterfaceInfoList)()
    if api.WlanEnumInterfaces(handle, None, ctypes.byref(listing)) != ERROR_SUCCESS:
        return None
    try:
        count = listing.contents.dwNumberOfItems
        if not count:
            return None
        items = ctypes.cast(
            ctypes.byref(listing.contents.InterfaceInfo),
            ctypes.POINTER(_InterfaceInfo * count),
        ).contents
        chosen = next((i for i in items if i.isState == 1), items[0])
        guid = _GUID()
        ctypes.memmove(ctypes.byref(guid), ctypes.byref(chosen.InterfaceGuid), ctypes.sizeof(_GUID))
        state = int(chosen.isState)
    finally:
        api.WlanFreeMemory(listing)
    lines = [f"state={state}"]
    rssi = _query(api, handle, guid, OPCODE_RSSI, ctypes.c_long)
    if rssi is not None:
        lines.append(f"rssi={rssi}")
    channel = _query(api, handle, guid, OPCODE_CHANNEL_NUMBER, ctypes.c_ulong)
    if channel is not None:
        lines.append(f"channel={channel}")
    return "\n".join(lines) + "\n"


def read_link() -> str | None:
    """The `key=value` dump of the connected (else first) Wi-Fi interface, or None
    when the API is unavailable (not Windows, no WLAN service, no adapter)."""
    windll = getattr(ctypes, "WinDLL", None)
    if windll is None:
        return None
    try:
        api = windll("wlanapi.dll")
        handle = wintypes.HANDLE()
        negotiated = wintypes.DWORD()
        if (
            api.WlanOpenHandle(CLIENT_VERSION, None, ctypes.byref(negotiated), ctypes.byref(handle))
            != ERROR_SUCCESS
        ):
            return None
        try:
            return _dump(api, handle)
        finally:
            api.WlanCloseHandle(handle, None)
    except (OSError, AttributeError, ValueError):
        log.debug("Native Wi-Fi API unavailable", exc_info=True)
        return None
