"""Thresholds of the failing-device rules, each with its direction and its source.

Every rule judges telemetry in sample time (design.md "Time"): the battery rules on
each sample as it arrives, in the device's order; the Wi-Fi rules on completed
telemetry windows (`network.window_s`) of the school; the silence rules on completed
school days. Each rule's section also carries the alert timing the engine applies.

Direction matters for hysteresis: for a "lower is worse" reading (battery health,
Wi-Fi RSSI) an alert clears only once the reading is back *above* the threshold by
a margin; for a "higher is worse" reading (temperature, cycles, disconnects) once
it is back *below* it. Each rule's section also carries the alert timing the engine
applies: `min_duration_s` (condition must hold that long before an alert opens),
`clear_duration_s` (must stay clear that long before it resolves) and
`repeat_interval_s` (no second notification for the same key inside it).
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The explicit registry's names. `collector.rules.RULES` maps the per-sample ones to
# their classes. Window rules judge a school's completed telemetry windows (a device's
# Wi-Fi, an access point, the school's Wi-Fi); day rules its completed school days.
SAMPLE_RULES = ("battery_replace", "battery_watch", "charging_fault", "battery_hot")
WINDOW_RULES = (
    "wifi_weak",
    "wifi_unstable",
    "wifi_ap_fault",
    "wifi_school_fault",
    "ap_unreachable",
    "school_unreachable",
)
DAY_RULES = ("device_silent", "school_silent")
RULE_NAMES = SAMPLE_RULES + WINDOW_RULES + DAY_RULES

Seconds = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]
Pct = Annotated[float, Field(gt=0, le=100)]
Count = Annotated[int, Field(ge=1)]
Dbm = Annotated[float, Field(ge=-120, le=0)]
Celsius = Annotated[float, Field(ge=0, le=150)]
Positive = Annotated[float, Field(gt=0)]


class _Model(BaseModel):
    # validate_default: a default of 60 for a float field is 60.0, as a configured 60
    # is; alerts' evidence then says the same whatever set it (and the compiled rules,
    # which convert an int read as float, agree with the pure ones: tests/compiled).
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class RuleTiming(_Model):
    """The engine's timing for one rule (collector.alerts.engine), in sample time:
    an alert opens once the condition was seen for `min_duration_s`, resolves once
    it was absent for `clear_duration_s`, and a comeback within `repeat_interval_s`
    of its resolution re-opens the same alert; reminders of an open alert go out
    every `repeat_interval_s` of the collector's clock."""

    min_duration_s: Seconds = 0
    clear_duration_s: Seconds = 0
    repeat_interval_s: Seconds = 86_400

    @model_validator(mode="before")
    @classmethod
    def _removed(cls, data: object) -> object:
        if isinstance(data, dict) and "max_sample_age_s" in data:
            raise ValueError(
                "max_sample_age_s was removed: rules judge every sample in sample time, "
                "whatever its age; old episodes are recorded but not mailed, see "
                "[alerts] notify_max_age_s (docs/alerts.md)"
            )
        return data


def _check_direction(
    section: _Model, rule: str, threshold: str, clear: str, *, lower_is_worse: bool
) -> None:
    """`threshold` raises the alert, `clear` ends it: when lower is worse the clear
    level must not be below the threshold; when higher is worse, not above it."""
    raise_at, clear_at = getattr(section, threshold), getattr(section, clear)
    if (clear_at < raise_at) if lower_is_worse else (clear_at > raise_at):
        op, side = (">=", "above") if lower_is_worse else ("<=", "below")
        worse = "lower" if lower_is_worse else "higher"
        raise ValueError(
            f"{rule}.{clear} ({clear_at:g}) must be {op} {rule}.{threshold} ({raise_at:g}): "
            f"{worse} is worse, so the alert clears {side} the threshold"
        )


class BatteryReplace(RuleTiming):
    """Lower health is worse. Intune "battery health": < 60 % is the worst band."""

    # No wait: the trust checks already drop one-sample glitches, and a crossing
    # must reach the technician within seconds.
    min_duration_s: Seconds = 0
    clear_duration_s: Seconds = 3600
    repeat_interval_s: Seconds = 7 * 86_400
    health_below_pct: Pct = 60
    clear_at_pct: Pct = 62  # 2-point margin against gauge noise

    @model_validator(mode="after")
    def _direction(self) -> Self:
        _check_direction(
            self, "battery_replace", "health_below_pct", "clear_at_pct", lower_is_worse=True
        )
        return self


class BatteryWatch(RuleTiming):
    """Lower health / higher cycles are worse. Intune: 60-80 % is "moderate"; Apple:
    80 % is the end of design life; Fleet and ChromeOS: 1000 cycles is the rating."""

    clear_duration_s: Seconds = 3600
    repeat_interval_s: Seconds = 30 * 86_400
    health_below_pct: Pct = 80
    clear_at_pct: Pct = 82
    cycle_rating: Count = 1000
    # Per battery model (the `model` field of the reading), when the maker rates it
    # differently, e.g. {"01AV431": 1000, "L19M3PF4": 800}.
    cycle_rating_by_model: dict[str, Count] = {}

    @model_validator(mode="after")
    def _direction(self) -> Self:
        _check_direction(
            self, "battery_watch", "health_below_pct", "clear_at_pct", lower_is_worse=True
        )
        return self

    def rating_for(self, model: str | None) -> int:
        return self.cycle_rating_by_model.get(model or "", self.cycle_rating)


ChargingStatus = Literal["not_charging", "discharging"]


class ChargingFault(RuleTiming):
    """Plugged in, not charging, below `percent_below` for `min_duration_s` (30 min).

    Lower charge is worse. Caveat: a charge limit set in the firmware (e.g. "stop at
    80 %" conservation modes) reports the same thing; such models need a lower
    `percent_below`.
    """

    min_duration_s: Seconds = 1800
    clear_duration_s: Seconds = 600
    percent_below: Pct = 95
    # "discharging" while plugged: dead adapter, or one too weak for the laptop.
    statuses: list[ChargingStatus] = ["not_charging", "discharging"]


class BatteryHot(RuleTiming):
    """Higher temperature is worse. Li-ion cells are rated for charging up to 45 °C
    and for discharge up to 60 °C (Battery University BU-410 "Charging at High and
    Low Temperatures"; cell datasheets such as Panasonic NCR18650B); 50 °C at the
    pack sensor is past the charging limit with a margin for sensor placement, and
    early enough to act before the discharge cut-off. UNVERIFIED: 50 °C is this
    project's choice, and the limits above were not re-checked against the cited
    sources (docs/alerts.md, "Unverified values")."""

    min_duration_s: Seconds = 300
    clear_duration_s: Seconds = 600
    repeat_interval_s: Seconds = 4 * 3600
    temperature_at_or_above_c: Celsius = 50
    clear_below_c: Celsius = 47

    @model_validator(mode="after")
    def _direction(self) -> Self:
        _check_direction(
            self, "battery_hot", "temperature_at_or_above_c", "clear_below_c", lower_is_worse=False
        )
        return self


class WifiWeak(RuleTiming):
    """Lower RSSI is worse; only on the school network. -75 dBm lies between the
    -67 dBm cell edge of Cisco's enterprise WLAN design guidance (voice/real-time
    grade) and the -80 dBm Cisco and Zebra treat as unusable; 5 dB below ChromeOS'
    "signal low" event at -70 dBm (design.md "Failing-device rules")."""

    min_duration_s: Seconds = 1800
    clear_duration_s: Seconds = 1800
    rssi_below_dbm: Dbm = -75
    clear_at_dbm: Dbm = -72

    @model_validator(mode="after")
    def _direction(self) -> Self:
        _check_direction(self, "wifi_weak", "rssi_below_dbm", "clear_at_dbm", lower_is_worse=True)
        return self


class WifiUnstable(RuleTiming):
    """More disconnects per report are worse; only on the school network. 3 is our
    reading of "repeated disconnects" (design.md); no published figure found."""

    min_duration_s: Seconds = 1800
    clear_duration_s: Seconds = 1800
    disconnects_at_or_above: Count = 3
    clear_below: Count = 2

    @model_validator(mode="after")
    def _direction(self) -> Self:
        _check_direction(
            self, "wifi_unstable", "disconnects_at_or_above", "clear_below", lower_is_worse=False
        )
        return self


class DeviceSilent(RuleTiming):
    """More silent school days are worse. A day counts only when it is a school day
    (weekends and holidays do not) and the laptop's school reported that day: at
    least `school_active_share` as many of its laptops as on its busiest day of the
    previous four weeks, and at least `school_active_min_devices`. A laptop is
    silent when its school reported for `school_days` such days without it."""

    repeat_interval_s: Seconds = 7 * 86_400
    school_days: Count = 3
    school_active_share: Fraction = 0.3
    school_active_min_devices: Count = 1


class SchoolSilent(RuleTiming):
    """A whole school without reports (fewer laptops than `device_silent` requires
    for an active day) for `school_days` school days while other schools of the
    region reported: one alert for the school (its network or its access to the
    broker), routed to the network contractor, instead of an alert per laptop."""

    repeat_interval_s: Seconds = 7 * 86_400
    school_days: Count = 1


class Trust(_Model):
    """When a battery reading is implausible (design.md "Trust")."""

    full_over_design_max_pct: Annotated[float, Field(gt=100)] = 110
    # 10-200 Wh covers netbooks to 17" workstations; outside, a unit is wrong.
    design_min_mwh: Positive = 10_000
    design_max_mwh: Positive = 200_000
    # full/design below this looks like mAh over mWh (cell voltages 7-15 V give 0.07-0.14).
    unit_ratio_min: Annotated[float, Field(gt=0, lt=1)] = 0.15
    # health_pct disagreeing with full/design by more: the agent converted wrongly.
    health_mismatch_max_pct: Positive = 5
    collapse_drop_pct: Positive = 15  # between consecutive samples
    # A collapse is believed once seen on this many consecutive samples (a glitch is
    # one odd reading; a pack that really failed keeps reading low). 1: at once.
    collapse_confirm_samples: Count = 3
    # cycles stuck at 0 although health moved this much, or is already this low
    zero_cycles_health_move_pct: Positive = 5
    zero_cycles_health_below_pct: Pct = 80

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.design_min_mwh >= self.design_max_mwh:
            raise ValueError(
                f"trust: design_min_mwh ({self.design_min_mwh}) must be below "
                f"design_max_mwh ({self.design_max_mwh})"
            )
        return self


class Network(_Model):
    """Access-point and school-wide Wi-Fi faults (network contractor), judged per
    completed window of `window_s` (aligned on the epoch: 15-minute windows start at
    :00, :15, :30, :45). A laptop is degraded in a window when most of its readings
    there on that access point are weak or unstable (wifi_weak / wifi_unstable
    thresholds)."""

    # Divides an hour, so that windows also end at midnight in Paris.
    window_s: Annotated[int, Field(ge=60, le=3600)] = 900
    ap_min_devices: Count = 5
    ap_min_fraction: Fraction = 0.5
    ap_clear_devices: Count = 3
    ap_clear_fraction: Fraction = 0.3
    # school-wide: most access points (each seen by enough devices) degraded at once
    school_ap_min_seen: Count = 2
    school_min_access_points: Count = 3
    school_min_fraction: Fraction = 0.6
    school_clear_fraction: Fraction = 0.4
    # Reachability (ap_unreachable / school_unreachable, same counts and fractions):
    # a laptop is cut off in a window when it spent at least this long there
    # associated with the access point without reaching the broker, and longer than
    # it spent reaching it (the agent's `connectivity` block).
    unreachable_min_s: Seconds = 120.0
    # A window during which the collector lost the broker (or this long after: the
    # laptops' reconnection backoff) does not count laptops that failed to connect,
    # time out or were dropped as cut off by their school: the broker was away. A
    # failure of their DNS or a TLS interception (captive portal) still counts.
    outage_margin_s: Seconds = 600.0
    ap_timing: RuleTiming = RuleTiming(
        min_duration_s=600, clear_duration_s=1800, repeat_interval_s=4 * 3600
    )
    school_timing: RuleTiming = RuleTiming(
        min_duration_s=600, clear_duration_s=1800, repeat_interval_s=4 * 3600
    )

    @model_validator(mode="after")
    def _direction(self) -> Self:
        if 3600 % self.window_s:
            raise ValueError(f"network: window_s ({self.window_s}) must divide 3600")
        if self.ap_clear_fraction > self.ap_min_fraction:
            raise ValueError(
                f"network: ap_clear_fraction ({self.ap_clear_fraction}) must be <= "
                f"ap_min_fraction ({self.ap_min_fraction})"
            )
        if self.school_clear_fraction > self.school_min_fraction:
            raise ValueError(
                f"network: school_clear_fraction ({self.school_clear_fraction}) must be <= "
                f"school_min_fraction ({self.school_min_fraction})"
            )
        return self


class RulesConfig(_Model):
    enabled: list[str] = list(RULE_NAMES)
    battery_replace: BatteryReplace = BatteryReplace()
    battery_watch: BatteryWatch = BatteryWatch()
    charging_fault: ChargingFault = ChargingFault()
    battery_hot: BatteryHot = BatteryHot()
    wifi_weak: WifiWeak = WifiWeak()
    wifi_unstable: WifiUnstable = WifiUnstable()
    device_silent: DeviceSilent = DeviceSilent()
    school_silent: SchoolSilent = SchoolSilent()
    trust: Trust = Trust()
    network: Network = Network()

    @field_validator("enabled")
    @classmethod
    def _known_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in RULE_NAMES:
                raise ValueError(f"unknown rule {name!r}; known rules: {', '.join(RULE_NAMES)}")
        return names

    def is_enabled(self, rule: str) -> bool:
        return rule in self.enabled

    def timing(self, rule: str) -> RuleTiming:
        """The engine's timing for a rule name (as found in `Finding.rule`)."""
        if rule in ("wifi_ap_fault", "ap_unreachable"):
            return self.network.ap_timing
        if rule in ("wifi_school_fault", "school_unreachable"):
            return self.network.school_timing
        if rule not in RULE_NAMES:
            raise KeyError(f"unknown rule {rule!r}")
        section = getattr(self, rule)
        assert isinstance(section, RuleTiming)
        return section
