"""A provider's `Reading` -> the v1 wire sample and envelope (plain dicts, no pydantic:
the agent stays light; the collector's models are the contract and a test proves
that what this module builds validates against them)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from agent import __version__
from agent.model import Reading, without_implausible_mwh
from agent.privacy import PrivacyPolicy

SCHEMA_VERSION = 1

# The contract's text fields: no C0/C1 control characters, at most 64 characters (a
# battery's name 32). Firmware strings break both (NUL padding, 8-bit garbage); the
# collector would reject the whole sample, health and all, for a manufacturer name.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
TEXT_MAX, NAME_MAX = 64, 32
_BATTERY_TEXT = ("manufacturer", "model", "technology")
_WIFI_TEXT = ("interface", "ssid", "radio")


def clean_text(value: object, limit: int = TEXT_MAX) -> object:
    """`value` without control characters, trimmed to `limit`; None when nothing is
    left. Anything that is not a string is returned as it is."""
    if not isinstance(value, str):
        return value
    text = _CONTROL.sub("", value).strip()[:limit].rstrip()
    return text or None


def _clean_battery(battery: dict[str, Any], index: int) -> dict[str, Any]:
    for key in _BATTERY_TEXT:
        battery[key] = clean_text(battery.get(key))
    battery["name"] = clean_text(battery.get("name"), NAME_MAX) or f"battery{index}"
    return battery


def rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def build_sample(
    reading: Reading,
    ts: datetime,
    policy: PrivacyPolicy,
    *,
    wifi_summary: dict[str, Any] | None = None,
    connectivity: dict[str, Any] | None = None,
    agent_health: dict[str, int] | None = None,
) -> dict[str, Any]:
    os_info = asdict(reading.os)
    os_info["release"] = clean_text(os_info.get("release"))
    sample: dict[str, Any] = {
        "ts": rfc3339(ts),
        "os": os_info,
        "batteries": [
            _clean_battery(asdict(without_implausible_mwh(b)), i)
            for i, b in enumerate(reading.batteries)
        ],
        "wifi": None,
        "connectivity": connectivity,
        "agent": agent_health,
    }
    if reading.wifi is not None:
        wifi = {**policy.wifi_fields(reading.wifi), **(wifi_summary or {})}
        for key in _WIFI_TEXT:
            if key in wifi:
                wifi[key] = clean_text(wifi[key])
        sample["wifi"] = wifi
    return sample


def build_envelope(school: str, device: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "device": device,
        "school": school,
        "agent_version": __version__,
        "samples": samples,
    }


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
