"""Validated samples to InfluxDB line protocol.

Built with plain string formatting, not influxdb-client's `Point`: measured on this
machine, `Point` costs ~34 µs per sample, three times validation and writing
together (design.md, "Known facts").

Series layout (the dashboards and the VictoriaMetrics names depend on it):
- `device`       tags school, device; one point per sample (`report=1i`), OS and
                 agent version as strings, `batteries` count.
- `battery`      tags school, device, battery[, model]; capacity, health, cycles...
- `wifi`         tags school, device[, bssid_hash]; signal and link quality.
- `connectivity` tags school, device; broker RTT, DNS and gateway checks.
Integers carry the `i` suffix and are always integers (InfluxDB 1.x fixes a field's
type per shard); booleans are written as 0/1 integers so they can be averaged.
Nulls are omitted. Timestamps are in milliseconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from collector.contract import Battery, Connectivity, Sample, Wifi

STATUS_CODES = {"unknown": 0, "charging": 1, "discharging": 2, "full": 3, "not_charging": 4}
SSID_STATE_CODES = {"not_connected": 0, "school": 1, "other": 2, "hidden_by_os": 3}

# A backslash before the separator would escape it; tag values never need one.
_TAG_ESCAPE = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\\": "/"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _tag(value: str) -> str:
    return value.translate(_TAG_ESCAPE)


def _str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _encode(
    values: dict[str, Any],
    floats: tuple[str, ...],
    ints: tuple[str, ...],
    strings: tuple[str, ...],
    extra_ints: tuple[tuple[str, int], ...] = (),
) -> str:
    """Fields of one model, by name from its __dict__ (the hot path of the collector:
    measured 17.7 us per sample with per-field tuples, see BENCHMARKS.md)."""
    parts = [f"{k}={float(v)!r}" for k in floats if (v := values[k]) is not None]
    parts += [f"{k}={int(v)}i" for k in ints if (v := values[k]) is not None]
    parts += [f"{k}={v}i" for k, v in extra_ints]
    parts += [f"{k}={_str(v)}" for k in strings if (v := values[k]) is not None]
    return ",".join(parts)


_BATTERY = (
    (
        "percent",
        "design_capacity_mwh",
        "full_capacity_mwh",
        "health_pct",
        "voltage_mv",
        "temperature_c",
    ),
    ("present", "plugged", "cycle_count"),
    ("status", "manufacturer", "technology"),
)
_WIFI = (
    (
        "rssi_dbm",
        "signal_pct",
        "noise_dbm",
        "band_ghz",
        "rx_rate_mbps",
        "tx_rate_mbps",
        "rssi_min_dbm",
        "connected_s",
    ),
    ("connected", "on_school_network", "channel", "disconnects"),
    ("ssid", "ssid_state", "radio", "interface"),
)


def _battery_fields(b: Battery) -> str:
    floats, ints, strings = _BATTERY
    return _encode(b.__dict__, floats, ints, strings, (("status_code", STATUS_CODES[b.status]),))


def _wifi_fields(w: Wifi) -> str:
    floats, ints, strings = _WIFI
    extra = (("ssid_state_code", SSID_STATE_CODES[w.ssid_state]),)
    return _encode(w.__dict__, floats, ints, strings, extra)


def _connectivity_fields(c: Connectivity) -> str:
    return _encode(c.__dict__, ("broker_rtt_ms",), ("dns_ok", "gateway_ok"), ())


def _device_fields(sample: Sample, agent_version: str) -> str:
    parts = [f"report=1i,batteries={len(sample.batteries)}i"]
    health = sample.agent
    if health is not None:
        if health.spool_pending is not None:
            parts.append(f"spool_pending={health.spool_pending}i")
        if health.spool_dropped is not None:
            parts.append(f"spool_dropped={health.spool_dropped}i")
    parts.append(f"platform={_str(sample.os.platform)}")
    if sample.os.release is not None:
        parts.append(f"os_release={_str(sample.os.release)}")
    parts.append(f"agent_version={_str(agent_version)}")
    return ",".join(parts)


def to_lines(school: str, device: str, agent_version: str, sample: Sample) -> list[str]:
    """The line-protocol lines for one sample (ids are already validated as tag-safe)."""
    ts = f" {(sample.ts - _EPOCH) // _MS}"
    base = f"school={school},device={device}"
    lines = [f"device,{base} {_device_fields(sample, agent_version)}{ts}"]
    for b in sample.batteries:
        tags = f"{base},battery={_tag(b.name)}"
        if b.model:
            tags += f",model={_tag(b.model)}"
        lines.append(f"battery,{tags} {_battery_fields(b)}{ts}")
    if sample.wifi is not None:
        tags = base + (f",bssid_hash={sample.wifi.bssid_hash}" if sample.wifi.bssid_hash else "")
        lines.append(f"wifi,{tags} {_wifi_fields(sample.wifi)}{ts}")
    if sample.connectivity is not None:
        fields = _connectivity_fields(sample.connectivity)
        if fields:
            lines.append(f"connectivity,{base} {fields}{ts}")
    return lines
