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

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

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


def _fields(
    floats: Iterable[tuple[str, float | None]],
    ints: Iterable[tuple[str, int | None]],
    strings: Iterable[tuple[str, str | None]] = (),
) -> str:
    parts = [f"{k}={float(v)!r}" for k, v in floats if v is not None]
    parts += [f"{k}={int(v)}i" for k, v in ints if v is not None]
    parts += [f"{k}={_str(v)}" for k, v in strings if v is not None]
    return ",".join(parts)


def _bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _battery_fields(b: Battery) -> str:
    return _fields(
        (
            ("percent", b.percent),
            ("design_capacity_mwh", b.design_capacity_mwh),
            ("full_capacity_mwh", b.full_capacity_mwh),
            ("health_pct", b.health_pct),
            ("voltage_mv", b.voltage_mv),
            ("temperature_c", b.temperature_c),
        ),
        (
            ("present", _bool(b.present)),
            ("plugged", _bool(b.plugged)),
            ("cycle_count", b.cycle_count),
            ("status_code", STATUS_CODES[b.status]),
        ),
        (
            ("status", b.status),
            ("manufacturer", b.manufacturer),
            ("technology", b.technology),
        ),
    )


def _wifi_fields(w: Wifi) -> str:
    return _fields(
        (
            ("rssi_dbm", w.rssi_dbm),
            ("signal_pct", w.signal_pct),
            ("noise_dbm", w.noise_dbm),
            ("band_ghz", w.band_ghz),
            ("rx_rate_mbps", w.rx_rate_mbps),
            ("tx_rate_mbps", w.tx_rate_mbps),
            ("rssi_min_dbm", w.rssi_min_dbm),
            ("connected_s", w.connected_s),
        ),
        (
            ("connected", _bool(w.connected)),
            ("on_school_network", _bool(w.on_school_network)),
            ("channel", w.channel),
            ("disconnects", w.disconnects),
            ("ssid_state_code", SSID_STATE_CODES[w.ssid_state]),
        ),
        (
            ("ssid", w.ssid),
            ("ssid_state", w.ssid_state),
            ("radio", w.radio),
            ("interface", w.interface),
        ),
    )


def _connectivity_fields(c: Connectivity) -> str:
    return _fields(
        (("broker_rtt_ms", c.broker_rtt_ms),),
        (("dns_ok", _bool(c.dns_ok)), ("gateway_ok", _bool(c.gateway_ok))),
    )


def _device_fields(sample: Sample, agent_version: str) -> str:
    health = sample.agent
    return _fields(
        (),
        (
            ("report", 1),
            ("batteries", len(sample.batteries)),
            ("spool_pending", health.spool_pending if health else None),
            ("spool_dropped", health.spool_dropped if health else None),
        ),
        (
            ("platform", sample.os.platform),
            ("os_release", sample.os.release),
            ("agent_version", agent_version),
        ),
    )


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
