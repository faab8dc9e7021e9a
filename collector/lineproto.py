"""Validated samples to InfluxDB line protocol.

Built with plain string formatting, not influxdb-client's `Point`: measured on this
machine, `Point` costs ~34 µs per sample, three times validation and writing
together (design.md, "Known facts"). This is the collector's hottest code after
validation, so each measurement's fields are spelled out one by one: a generic
loop over field-name tuples cost 13.8 µs per bench sample, this 4-5 µs
(BENCHMARKS.md).

Series layout (the dashboards and the VictoriaMetrics names depend on it):
- `device`       tags school, device; one point per sample (`report=1i`), OS and
                 agent version as strings, `batteries` count.
- `battery`      tags school, device, battery[, model]; capacity, health, cycles...
- `wifi`         tags school, device[, bssid_hash]; signal and link quality.
- `connectivity` tags school, device[, bssid_hash]; broker RTT, DNS and gateway
                 checks, time online / cut off on a school network, connection delay.
String fields (OS, agent version, status and SSID-state names, manufacturer,
technology, radio, interface) are for InfluxDB, which keeps them; VictoriaMetrics
1.79 turns each into a series of zeros (measured), so a collector writing to it is
configured with `[store] string_fields = false` and writes the codes only.
Integers carry the `i` suffix and are always integers (InfluxDB 1.x fixes a field's
type per shard); booleans are written as 0/1 integers so they can be averaged.
Floats are written with `repr` (shortest round-trip form, always with a point or an
exponent for a float; the contract makes every float field a float). Nulls are
omitted. Timestamps are in milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from collector.samples import Battery, Connectivity, Sample, Wifi

STATUS_CODES = {"unknown": 0, "charging": 1, "discharging": 2, "full": 3, "not_charging": 4}
SSID_STATE_CODES = {"not_connected": 0, "school": 1, "other": 2, "hidden_by_os": 3}
FAILURE_CODES = {"dns": 1, "connect": 2, "timeout": 3, "tls": 4, "refused": 5, "closed": 6}

# A backslash before the separator would escape it; tag values never need one.
_TAG_ESCAPE = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\\": "/"})
_TAG_SPECIAL = frozenset(", =\\")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def epoch_ms(ts: datetime) -> int:
    """Milliseconds since the epoch, floored, exact (integer arithmetic on the
    whole seconds: a float of milliseconds can round across a boundary)."""
    if ts < _EPOCH:
        return (ts - _EPOCH) // _MS
    return int(ts.timestamp()) * 1000 + ts.microsecond // 1000


def _tag(value: str) -> str:
    if _TAG_SPECIAL.isdisjoint(value):
        return value
    return value.translate(_TAG_ESCAPE)


_QUOTED_MAX = 100_000
_quoted: dict[str, str] = {}  # a fleet repeats its names: quote each once


def _str(value: str) -> str:
    quoted = _quoted.get(value)
    if quoted is None:
        quoted = value
        if "\\" in quoted or '"' in quoted:
            quoted = quoted.replace("\\", "\\\\").replace('"', '\\"')
        quoted = f'"{quoted}"'
        if len(_quoted) >= _QUOTED_MAX:
            _quoted.clear()  # many distinct strings must not grow memory
        _quoted[value] = quoted
    return quoted


_FLOATS_MAX = 200_000
_floats: dict[float, str] = {}
_known = _floats.get  # `_known(v) or _float(v)`: repr(v), 40 ns on a hit instead of 100-140


def _float(value: float) -> str:
    """repr(value), remembered: a fleet reports the same few thousand numbers (charge
    to 0.1 %, whole dBm, standard link rates...); measured on the ingest bench's
    varied samples, formatting them was the largest part of the line protocol."""
    text = repr(value)
    if value:  # not 0.0 nor -0.0: equal keys, different texts
        if len(_floats) >= _FLOATS_MAX:
            _floats.clear()  # many distinct numbers must not grow memory
        _floats[value] = text
    return text


def _battery_fields(b: Battery, strings: bool) -> str:
    out = []
    if (v := b.percent) is not None:
        out.append(f"percent={_known(v) or _float(v)}")
    if (v := b.design_capacity_mwh) is not None:
        out.append(f"design_capacity_mwh={_known(v) or _float(v)}")
    if (v := b.full_capacity_mwh) is not None:
        out.append(f"full_capacity_mwh={_known(v) or _float(v)}")
    if (v := b.health_pct) is not None:
        out.append(f"health_pct={_known(v) or _float(v)}")
    if (v := b.voltage_mv) is not None:
        out.append(f"voltage_mv={_known(v) or _float(v)}")
    if (v := b.temperature_c) is not None:
        out.append(f"temperature_c={_known(v) or _float(v)}")
    out.append("present=1i" if b.present else "present=0i")
    if (flag := b.plugged) is not None:
        out.append("plugged=1i" if flag else "plugged=0i")
    if (n := b.cycle_count) is not None:
        out.append(f"cycle_count={n}i")
    status = b.status
    out.append(f"status_code={STATUS_CODES[status]}i")
    if strings:
        out.append(f'status="{status}"')
        if (text := b.manufacturer) is not None:
            out.append(f"manufacturer={_str(text)}")
        if (text := b.technology) is not None:
            out.append(f"technology={_str(text)}")
    return ",".join(out)


def _wifi_signal(w: Wifi) -> list[str]:
    out = []
    if (v := w.rssi_dbm) is not None:
        out.append(f"rssi_dbm={_known(v) or _float(v)}")
    if (v := w.signal_pct) is not None:
        out.append(f"signal_pct={_known(v) or _float(v)}")
    if (v := w.noise_dbm) is not None:
        out.append(f"noise_dbm={_known(v) or _float(v)}")
    if (v := w.band_ghz) is not None:
        out.append(f"band_ghz={_known(v) or _float(v)}")
    if (v := w.rx_rate_mbps) is not None:
        out.append(f"rx_rate_mbps={_known(v) or _float(v)}")
    if (v := w.tx_rate_mbps) is not None:
        out.append(f"tx_rate_mbps={_known(v) or _float(v)}")
    if (v := w.rssi_min_dbm) is not None:
        out.append(f"rssi_min_dbm={_known(v) or _float(v)}")
    if (v := w.connected_s) is not None:
        out.append(f"connected_s={_known(v) or _float(v)}")
    return out


def _wifi_fields(w: Wifi, strings: bool) -> str:
    out = _wifi_signal(w)
    out.append("connected=1i" if w.connected else "connected=0i")
    if (flag := w.on_school_network) is not None:
        out.append("on_school_network=1i" if flag else "on_school_network=0i")
    if (n := w.channel) is not None:
        out.append(f"channel={n}i")
    if (n := w.disconnects) is not None:
        out.append(f"disconnects={n}i")
    state = w.ssid_state
    out.append(f"ssid_state_code={SSID_STATE_CODES[state]}i")
    if not strings:
        return ",".join(out)
    if (text := w.ssid) is not None:
        out.append(f"ssid={_str(text)}")
    out.append(f'ssid_state="{state}"')
    if (text := w.radio) is not None:
        out.append(f"radio={_str(text)}")
    if (text := w.interface) is not None:
        out.append(f"interface={_str(text)}")
    return ",".join(out)


def _connectivity_fields(c: Connectivity, strings: bool) -> str:
    out = []
    if (v := c.broker_rtt_ms) is not None:
        out.append(f"broker_rtt_ms={_known(v) or _float(v)}")
    if (v := c.dns_ok) is not None:
        out.append("dns_ok=1i" if v else "dns_ok=0i")
    if (v := c.gateway_ok) is not None:
        out.append("gateway_ok=1i" if v else "gateway_ok=0i")
    if (v := c.broker_ok) is not None:
        out.append("broker_ok=1i" if v else "broker_ok=0i")
    if (v := c.school_online_s) is not None:
        out.append(f"school_online_s={_float(v)}")
    if (v := c.school_unreachable_s) is not None:
        out.append(f"school_unreachable_s={_float(v)}")
    if (v := c.connect_delay_s) is not None:
        out.append(f"connect_delay_s={_float(v)}")
    if (n := c.failed_attempts) is not None:
        out.append(f"failed_attempts={n}i")
    if (f := c.failure) is not None:
        out.append(f"failure_code={FAILURE_CODES[f]}i")
        if strings:
            out.append(f'failure="{f}"')
    return ",".join(out)


def _device_fields(sample: Sample, version_field: str, strings: bool) -> str:
    out = f"report=1i,batteries={len(sample.batteries)}i"
    health = sample.agent
    if health is not None:
        if (v := health.spool_pending) is not None:
            out += f",spool_pending={v}i"
        if (v := health.spool_dropped) is not None:
            out += f",spool_dropped={v}i"
    if not strings:
        return out
    os = sample.os
    out += f',platform="{os.platform}"'
    if os.release is not None:
        out += f",os_release={_str(os.release)}"
    return f"{out},{version_field}"


def to_lines(
    school: str, device: str, agent_version: str, sample: Sample, *, strings: bool = True
) -> list[str]:
    """The line-protocol lines for one sample (ids are already validated as tag-safe).
    `strings=False` leaves out the string fields (`[store] string_fields`)."""
    return append_lines([], school, device, version_field(agent_version), sample, strings=strings)


def version_field(agent_version: str) -> str:
    """The `agent_version` string field, built once per message."""
    return f"agent_version={_str(agent_version)}"


def append_lines(
    lines: list[str],
    school: str,
    device: str,
    version_field: str,
    sample: Sample,
    *,
    strings: bool = True,
    ts_ms: int | None = None,
) -> list[str]:
    """`to_lines` into an existing list; `version_field` is `version_field(...)`;
    `ts_ms` is `epoch_ms(sample.ts)` when the caller has it already."""
    ms = epoch_ms(sample.ts) if ts_ms is None else ts_ms
    return append_message(
        lines, school, device, version_field, [sample], ts_ms=[ms], strings=strings
    )


def append_message(
    lines: list[str],
    school: str,
    device: str,
    version_field: str,
    samples: Sequence[Sample],
    *,
    ts_ms: Sequence[int],
    strings: bool = True,
) -> list[str]:
    """The lines of a message's samples (one device), `ts_ms` their epoch ms: the
    series keys are built once per message, not once per sample."""
    base = f"school={school},device={device}"
    device_key = f"device,{base} "
    battery_keys: dict[tuple[str, str | None], str] = {}
    wifi_keys: dict[str | None, str] = {}
    for sample, ms in zip(samples, ts_ms, strict=True):
        ts = f" {ms}"
        lines.append(device_key + _device_fields(sample, version_field, strings) + ts)
        for b in sample.batteries:
            key = battery_keys.get((b.name, b.model))
            if key is None:
                tags = f"{base},battery={_tag(b.name)}"
                if b.model:
                    tags += f",model={_tag(b.model)}"
                key = battery_keys[(b.name, b.model)] = f"battery,{tags} "
            lines.append(key + _battery_fields(b, strings) + ts)
        wifi = sample.wifi
        if wifi is not None:
            key = wifi_keys.get(wifi.bssid_hash)
            if key is None:
                bssid = wifi.bssid_hash
                tags = f"{base},bssid_hash={bssid}" if bssid else base
                key = wifi_keys[bssid] = f"wifi,{tags} "
            lines.append(key + _wifi_fields(wifi, strings) + ts)
        if sample.connectivity is not None:
            fields = _connectivity_fields(sample.connectivity, strings)
            if fields:
                # The access point's tag as on the wifi line: per-access-point views.
                ap = wifi.bssid_hash if wifi is not None else None
                tags = f"{base},bssid_hash={ap}" if ap else base
                lines.append(f"connectivity,{tags} {fields}{ts}")
    return lines
