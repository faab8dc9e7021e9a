"""Wire contract v1: the telemetry envelope and its samples (design.md, "Contracts").

These models are the single source of truth for what the collector accepts; the
JSON Schema under `collector/schema/` is exported from them (`lordi-collector
schema`) and a test keeps the committed copy in sync. Strict: no type coercion
(a string is never a number), no NaN or infinity, no unknown field, bounded sizes.
Bounds are physical plausibility limits, not alert thresholds: a worn battery is
valid data, a 10 MWh laptop battery is not.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 1
MAX_SAMPLES_PER_MESSAGE = 500
MAX_MESSAGE_BYTES = 256 * 1024
# Agents spool for weeks offline (bounded by the spool's max age); clocks drift.
MAX_SAMPLE_AGE = timedelta(days=400)
MAX_CLOCK_AHEAD = timedelta(hours=1)

ID_PATTERN = r"^[0-9A-Za-z_-]{1,64}$"
UAI_PATTERN = r"^[0-9]{7}[A-Z]$"  # French school code: 7 digits and a check letter
# Printable text only: no C0/C1 control characters (they break logs, CSV, line protocol
# and terminals: U+009B is an 8-bit escape; tests/reliability corpus).
TEXT_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"

DeviceId = Annotated[str, Field(pattern=ID_PATTERN)]
SchoolId = Annotated[str, Field(pattern=UAI_PATTERN)]
Text = Annotated[str, Field(max_length=64, pattern=TEXT_PATTERN)]
Percent = Annotated[float, Field(ge=0, le=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(
        strict=True, extra="forbid", allow_inf_nan=False, frozen=True, str_max_length=256
    )


class OsInfo(_Strict):
    platform: Literal["windows", "linux", "darwin"]
    release: Text | None = None


class Battery(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=32, pattern=TEXT_PATTERN)]
    present: bool
    status: Literal["charging", "discharging", "full", "not_charging", "unknown"]
    percent: Percent | None = None
    plugged: bool | None = None
    design_capacity_mwh: Annotated[float, Field(gt=0, le=1_000_000)] | None = None
    full_capacity_mwh: Annotated[float, Field(ge=0, le=1_000_000)] | None = None
    # Above 100 on new packs; implausible values (>110) are kept and marked
    # untrusted by the rules, not rejected here, so the evidence is stored.
    health_pct: Annotated[float, Field(ge=0, le=200)] | None = None
    cycle_count: Annotated[int, Field(ge=0, le=100_000)] | None = None
    voltage_mv: Annotated[float, Field(ge=0, le=100_000)] | None = None
    temperature_c: Annotated[float, Field(ge=-40, le=150)] | None = None
    manufacturer: Text | None = None
    model: Text | None = None
    technology: Text | None = None


class Wifi(_Strict):
    interface: Text | None = None
    connected: bool
    # SSID only when it is a school network; "hidden_by_os" when the OS withholds
    # it (Windows 11 24H2 location consent, macOS redaction).
    ssid: Text | None = None
    ssid_state: Literal["school", "other", "hidden_by_os", "not_connected"]
    on_school_network: bool | None = None
    bssid_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")] | None = None
    rssi_dbm: Annotated[float, Field(ge=-120, le=0)] | None = None
    signal_pct: Percent | None = None
    noise_dbm: Annotated[float, Field(ge=-130, le=0)] | None = None
    channel: Annotated[int, Field(ge=1, le=233)] | None = None
    band_ghz: Annotated[float, Field(gt=0, le=70)] | None = None
    rx_rate_mbps: Annotated[float, Field(ge=0, le=100_000)] | None = None
    tx_rate_mbps: Annotated[float, Field(ge=0, le=100_000)] | None = None
    radio: Text | None = None
    rssi_min_dbm: Annotated[float, Field(ge=-120, le=0)] | None = None
    disconnects: Annotated[int, Field(ge=0, le=100_000)] | None = None
    connected_s: Annotated[float, Field(ge=0, le=31 * 86_400)] | None = None


ConnectFailure = Literal["dns", "connect", "timeout", "tls", "refused", "closed"]


class Connectivity(_Strict):
    """Reachability on a school network, since the agent's previous report (the
    agent sends this block only for time spent on a school network; docs/contract.md).
    Every field is optional: null when unknown, and absent from older agents."""

    # Median PUBACK round trip of the telemetry the broker acknowledged.
    broker_rtt_ms: Annotated[float, Field(ge=0, le=600_000)] | None = None
    dns_ok: bool | None = None  # the broker's name resolved at the last attempt
    gateway_ok: bool | None = None  # the default gateway answered (checked when cut off)
    broker_ok: bool | None = None  # connected to the broker when the sample was taken
    # Seconds associated with a school network with / without a broker connection.
    school_online_s: Annotated[float, Field(ge=0, le=31 * 86_400)] | None = None
    school_unreachable_s: Annotated[float, Field(ge=0, le=31 * 86_400)] | None = None
    # Association with a school network -> first acknowledged publish (once each).
    connect_delay_s: Annotated[float, Field(ge=0, le=31 * 86_400)] | None = None
    failure: ConnectFailure | None = None  # the last failed attempt's cause
    failed_attempts: Annotated[int, Field(ge=0, le=100_000)] | None = None


class AgentHealth(_Strict):
    """The agent's own state: how much it holds back and what it had to drop."""

    spool_pending: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    spool_dropped: Annotated[int, Field(ge=0, le=10_000_000)] | None = None


class Sample(_Strict):
    ts: AwareDatetime
    os: OsInfo
    batteries: Annotated[list[Battery], Field(max_length=4)] = []
    wifi: Wifi | None = None
    connectivity: Connectivity | None = None
    agent: AgentHealth | None = None

    @field_validator("ts")
    @classmethod
    def _plausible_time(cls, ts: datetime) -> datetime:
        # Called once per sample by the collector: one conversion, one clock read.
        ts = ts.astimezone(UTC)
        now = datetime.now(UTC)
        if ts > now + MAX_CLOCK_AHEAD:
            raise ValueError(f"is more than {MAX_CLOCK_AHEAD} in the future")
        if ts < now - MAX_SAMPLE_AGE:
            raise ValueError(f"is more than {MAX_SAMPLE_AGE.days} days old")
        return ts


class _EnvelopeFields(_Strict):
    schema_: Literal[1] = Field(alias="schema")
    device: DeviceId
    school: SchoolId
    agent_version: Annotated[str, Field(min_length=1, max_length=32, pattern=TEXT_PATTERN)]

    @field_validator("schema_", mode="before")
    @classmethod
    def _integer_version(cls, value: object) -> object:
        # pydantic's Literal[1] takes `true` and `1.0` even in strict mode (found by
        # tests/collector/test_fastpath.py): the version is the JSON integer 1.
        if type(value) is not int:
            raise ValueError(f"must be the integer {SCHEMA_VERSION}")
        return value


class EnvelopeHeader(_EnvelopeFields):
    """The envelope with its samples left unparsed: lets the collector keep the good
    samples of a message whose other samples are bad."""

    model_config = ConfigDict(title="EnvelopeHeader")

    samples: Annotated[list[object], Field(min_length=1, max_length=MAX_SAMPLES_PER_MESSAGE)]


class Envelope(_EnvelopeFields):
    """One telemetry message: a batch of 1..500 samples from one device."""

    model_config = ConfigDict(title="Envelope")

    samples: Annotated[list[Sample], Field(min_length=1, max_length=MAX_SAMPLES_PER_MESSAGE)]
