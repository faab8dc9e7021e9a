"""The Wi-Fi band of a link, from what the OS tool printed.

Shared by the macOS and Windows parsers (Linux has the centre frequency, which
needs no guessing: `agent.parsers.linux_wifi.band_ghz`).

Rule: an explicit band wins ("5 GHz", "2,4 GHz", wdutil's "6g37/160", "(6GHz,
160MHz)"). Only when the tool printed no band is it derived from the channel
number: 1-14 is 2.4 GHz and 32-177 is 5 GHz. 6 GHz channels (1-233) overlap both
ranges, so 6 GHz is never derived from a number alone; a 6 GHz link whose tool
omits the band reads as 2.4 or 5 GHz, which only tools that predate 6 GHz do
(airport, Windows 10's netsh).
"""

from __future__ import annotations

import re

# "5 GHz", "2,4 GHz", "2.4GHz", "6 GHz" (Russian Windows writes "ГГц").
_BAND_TEXT = re.compile(r"(\d{1,2}(?:[.,]\d{1,3})?)\s*(?:GHz|ГГц)", re.I | re.A)
_KNOWN_BANDS = (2.4, 5.0, 6.0)


def channel_band_ghz(channel: int | None) -> float | None:
    """Band from a bare channel number: 1-14 -> 2.4, 32-177 -> 5, else None."""
    if channel is None:
        return None
    if 1 <= channel <= 14:
        return 2.4
    if 32 <= channel <= 177:
        return 5.0
    return None


def parse_band_text(text: str | None) -> float | None:
    """2.4, 5.0 or 6.0 from a band written out ("2,4 GHz", "5GHz"), else None."""
    match = _BAND_TEXT.search(text or "")
    if match is None:
        return None
    value = float(match.group(1).replace(",", "."))
    return value if value in _KNOWN_BANDS else None


def band_ghz(explicit: float | None, channel: int | None) -> float | None:
    """The explicit band when the tool gave one, else the one the channel implies."""
    return explicit if explicit is not None else channel_band_ghz(channel)
