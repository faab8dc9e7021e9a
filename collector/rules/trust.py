"""Is a battery reading plausible? (design.md "Trust")

`battery_trust` returns the reasons a reading cannot be believed; empty means
trusted. Two kinds of reasons:

- capacity reasons (`CAPACITY_REASONS`) discredit the health figure: the health
  rules skip the reading and the fade forecast ignores it;
- cycle reasons (`CYCLE_REASONS`) discredit only the cycle count: the cycle-based
  watch skips it, the health figure still counts (many gauges report 0 cycles
  forever while measuring capacity correctly).

Untrusted readings never alert on their own and produce no finding at all: there
is nothing for a technician to do about a gauge that misreports, and a finding
would have to be filtered out of every worklist. Callers that want the reasons
(a store, a dashboard) call `battery_trust`; `BatteryState.untrusted_samples`
counts the untrusted readings per battery.

A collapse (health down by more than `collapse_drop_pct` from the last trusted
reading) stays untrusted until it has been seen on `collapse_confirm_samples`
consecutive samples: a one-sample glitch is forgotten, a pack that really failed
keeps reading low and then alerts ("runtime-relevant capacity collapse" is a
replace condition in design.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from collector.rules.config import Trust
from collector.samples import Battery

if TYPE_CHECKING:
    from collector.rules.state import BatteryState

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


def battery_trust(
    prev: BatteryState | None, battery: Battery, config: Trust = DEFAULT_TRUST
) -> list[str]:
    """Reasons not to believe `battery` (empty list: trusted). `prev` is the state of
    the same battery before this reading, None for its first reading."""
    reasons = _capacity_reasons(battery, config)
    health = health_of(battery)
    if _collapsed(prev, health, config):
        reasons.append(COLLAPSE)
    if _cycles_stuck(prev, battery, health, config):
        reasons.append(CYCLES_STUCK_ZERO)
    return reasons


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


def _collapsed(prev: BatteryState | None, health: float | None, config: Trust) -> bool:
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
    prev: BatteryState | None, battery: Battery, health: float | None, config: Trust
) -> bool:
    """Cycle count 0 although the pack has visibly worn: the counter is not kept."""
    if battery.cycle_count != 0 or health is None:
        return False
    if health < config.zero_cycles_health_below_pct:
        return True
    start = prev.zero_cycle_start_health_pct if prev is not None else None
    return start is not None and abs(health - start) >= config.zero_cycles_health_move_pct


def capacity_trusted(reasons: list[str]) -> bool:
    return not CAPACITY_REASONS.intersection(reasons)


def cycles_trusted(reasons: list[str]) -> bool:
    return not CYCLE_REASONS.intersection(reasons)
