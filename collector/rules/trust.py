"""Is a battery reading plausible? (design.md "Trust")

`assess(history, battery, config)` judges one reading once, as a pure value: the
reasons it cannot be believed (empty: trusted), its health, and whether its capacity
and its cycle count may be used. The evaluator computes it once per battery and
sample, and both the rules and the state's update read that one `Assessment`.
`history` is what trust remembers of the battery's earlier readings
(`TrustHistory`: `collector.rules.state.BatteryState` provides it).

Two kinds of reasons:

- capacity reasons (`CAPACITY_REASONS`) discredit the health figure: the health
  rules skip the reading and the fade forecast ignores it;
- cycle reasons (`CYCLE_REASONS`) discredit only the cycle count: the cycle-based
  watch skips it, the health figure still counts (many gauges report 0 cycles
  forever while measuring capacity correctly).

Untrusted readings never alert on their own and produce no finding at all: there
is nothing for a technician to do about a gauge that misreports.
`BatteryState.untrusted_samples` counts them per battery.

A collapse (health down by more than `collapse_drop_pct` from the last trusted
reading) stays untrusted until it has been seen on `collapse_confirm_samples`
consecutive samples: a one-sample glitch is forgotten, a pack that really failed
keeps reading low and then alerts ("runtime-relevant capacity collapse" is a
replace condition in design.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from collector.rules.config import Trust
from collector.samples import Battery

DEFAULT_TRUST = Trust()

FULL_OVER_DESIGN = "full_over_design"
DESIGN_OUT_OF_RANGE = "design_out_of_range"
UNIT_MISMATCH = "unit_mismatch"
HEALTH_MISMATCH = "health_mismatch"
COLLAPSE = "collapse"
CYCLES_STUCK_ZERO = "cycles_stuck_zero"

CAPACITY_REASONS = frozenset(
    {FULL_OVER_DESIGN, DESIGN_OUT_OF_RANGE, UNIT_MISMATCH, HEALTH_MISMATCH, COLLAPSE}
)
CYCLE_REASONS = frozenset({CYCLES_STUCK_ZERO})


def health_of(battery: Battery) -> float | None:
    """Health in % of design: the reported figure, else full/design."""
    if battery.health_pct is not None:
        return battery.health_pct
    if battery.full_capacity_mwh is not None and battery.design_capacity_mwh:
        return 100.0 * battery.full_capacity_mwh / battery.design_capacity_mwh
    return None


class TrustHistory(Protocol):
    """What trust remembers of a battery's earlier readings."""

    @property
    def last_health_pct(self) -> float | None: ...  # last trusted health
    @property
    def collapse_from_pct(self) -> float | None: ...  # health before an unconfirmed collapse
    @property
    def collapse_seen(self) -> int: ...  # samples that showed it
    @property
    def zero_cycle_start_health_pct(self) -> float | None: ...  # health when 0 cycles began
    @property
    def last_trusted(self) -> bool: ...  # last reading: no reason, both capacities known
    @property
    def design_capacity_mwh(self) -> float | None: ...  # then: that reading's figures
    @property
    def full_capacity_mwh(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Assessment:
    reasons: tuple[str, ...]  # empty: trusted
    health_pct: float | None  # the reading's health, trusted or not
    # What the rules and the state ask of each battery of each sample, worked out
    # once when the verdict is made (attributes, not properties: read several times
    # per sample).
    capacity_trusted: bool = field(init=False, repr=False, compare=False)
    cycles_trusted: bool = field(init=False, repr=False, compare=False)
    trusted_health_pct: float | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        reasons = self.reasons
        capacity = not reasons or not CAPACITY_REASONS.intersection(reasons)
        object.__setattr__(self, "capacity_trusted", capacity)
        object.__setattr__(
            self, "cycles_trusted", not reasons or not CYCLE_REASONS.intersection(reasons)
        )
        object.__setattr__(self, "trusted_health_pct", self.health_pct if capacity else None)


def assess(
    history: TrustHistory | None, battery: Battery, config: Trust = DEFAULT_TRUST
) -> Assessment:
    """Judge one reading of `battery`; `history` is None for its first reading."""
    health = health_of(battery)
    if history is not None and history.last_trusted and _repeats(history, battery, health):
        return _trusted(health)
    reasons = _capacity_reasons(battery, config)
    if history is not None and health is not None and _collapsed(history, health, config):
        reasons.append(COLLAPSE)
    if battery.cycle_count == 0 and _cycles_stuck(history, battery, health, config):
        reasons.append(CYCLES_STUCK_ZERO)
    return Assessment(tuple(reasons), health) if reasons else _trusted(health)


def _repeats(history: TrustHistory, battery: Battery, health: float | None) -> bool:
    """The reading repeats the last one, which was trusted in full (a laptop reports
    the same capacity figures for days): trusted again, without the checks. Exact:
    the same design and full capacity pass the same capacity checks; the same health
    as the last trusted one is no collapse; and a cycle count other than 0 cannot
    be stuck at 0."""
    return (
        health is not None
        and health == history.last_health_pct
        and battery.full_capacity_mwh == history.full_capacity_mwh
        and battery.design_capacity_mwh == history.design_capacity_mwh
        and battery.cycle_count != 0
    )


@lru_cache(maxsize=4096)
def _trusted(health: float | None) -> Assessment:
    """The verdict on a trusted reading: one value per health figure (a device's
    readings repeat the same figure for days), not one object per sample."""
    return Assessment((), health)


def _capacity_reasons(battery: Battery, config: Trust) -> list[str]:
    reasons: list[str] = []
    design = battery.design_capacity_mwh
    full = battery.full_capacity_mwh
    if design is not None and not config.design_min_mwh <= design <= config.design_max_mwh:
        reasons.append(DESIGN_OUT_OF_RANGE)
    if design and full is not None:
        ratio = full / design
        # multiplied out, so exactly 110 % is not lost to rounding (55/50*100 > 110)
        if full * 100 > config.full_over_design_max_pct * design:
            reasons.append(FULL_OVER_DESIGN)
        elif 0 < ratio < config.unit_ratio_min:
            reasons.append(UNIT_MISMATCH)
        if battery.health_pct is not None and (
            abs(battery.health_pct - 100 * ratio) > config.health_mismatch_max_pct
        ):
            reasons.append(HEALTH_MISMATCH)
    elif battery.health_pct is not None and battery.health_pct > config.full_over_design_max_pct:
        reasons.append(FULL_OVER_DESIGN)
    return reasons


def _collapsed(prev: TrustHistory | None, health: float | None, config: Trust) -> bool:
    if prev is None or health is None:
        return False
    if prev.collapse_from_pct is not None:  # a collapse awaiting confirmation
        still_low = prev.collapse_from_pct - health > config.collapse_drop_pct
        return still_low and prev.collapse_seen + 1 < config.collapse_confirm_samples
    last = prev.last_health_pct
    return (
        last is not None
        and last - health > config.collapse_drop_pct
        and config.collapse_confirm_samples > 1
    )


def _cycles_stuck(
    prev: TrustHistory | None, battery: Battery, health: float | None, config: Trust
) -> bool:
    """Cycle count 0 although the pack has visibly worn: the counter is not kept."""
    if battery.cycle_count != 0 or health is None:
        return False
    if health < config.zero_cycles_health_below_pct:
        return True
    start = prev.zero_cycle_start_health_pct if prev is not None else None
    return start is not None and abs(health - start) >= config.zero_cycles_health_move_pct
