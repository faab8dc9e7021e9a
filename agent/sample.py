"""A provider's `Reading` -> the v1 wire sample and envelope (plain dicts, no pydantic:
the agent stays light; the collector's models are the contract and a test proves
that what this module builds validates against them)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from agent import __version__
from agent.model import Reading, without_implausible_mwh
from agent.privacy import PrivacyPolicy

SCHEMA_VERSION = 1


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
    sample: dict[str, Any] = {
        "ts": rfc3339(ts),
        "os": asdict(reading.os),
        "batteries": [asdict(without_implausible_mwh(b)) for b in reading.batteries],
        "wifi": None,
        "connectivity": connectivity,
        "agent": agent_health,
    }
    if reading.wifi is not None:
        sample["wifi"] = {**policy.wifi_fields(reading.wifi), **(wifi_summary or {})}
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
