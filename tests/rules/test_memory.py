"""Device state must stay small: 250,000 devices well under 1 GB (design.md)."""

from __future__ import annotations

import gc
import tracemalloc
from datetime import timedelta

from collector.rules import DeviceState, RulesConfig, build_rules
from collector.rules.history import HISTORY_WEEKS, add_point
from tests.rules.factory import SCHOOL, T0, battery, sample, wifi

DEVICES = 10_000
BUDGET_BYTES_PER_DEVICE = 2_000  # 250,000 x 2 kB = 500 MB: half the 1 GB target


def _fleet() -> list[DeviceState]:
    config = RulesConfig()
    rules = build_rules(config)
    states = []
    for i in range(DEVICES):
        st = DeviceState(device=f"dev-{i:06d}", school=SCHOOL)
        for k in range(3):  # a few samples: estimator, Wi-Fi and cycle state all filled
            smp = sample(
                T0 + timedelta(minutes=5 * k + i % 5),
                [battery(90.0 - k * 0.01 - i % 7, cycle_count=100 + k + i % 11)],
                wifi(-60.0 - i % 9, bssid_hash=f"{i % 40:016x}"),
            )
            st.apply(smp, [f for r in rules for f in r.evaluate(st, smp, smp.ts)], config.trust)
        states.append(st)
    return states


def test_state_per_device_is_small() -> None:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    states = _fleet()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    retained = sum(s.size_diff for s in after.compare_to(before, "filename"))
    per_device = retained / DEVICES
    print(
        f"\nrules state: {per_device:.0f} bytes per device, "
        f"{per_device * 250_000 / 2**20:.0f} MiB for 250,000 devices"
    )
    assert len(states) == DEVICES
    assert states[-1].batteries["BAT0"].fade.n == 3
    assert 200 < per_device < BUDGET_BYTES_PER_DEVICE


def test_a_full_capacity_history_stays_within_budget() -> None:
    """Half a year of weekly capacity points on every battery (the worst case)."""
    states = _fleet()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for st in states:
        bat = st.batteries["BAT0"]
        for week in range(HISTORY_WEEKS):
            bat.history = add_point(
                bat.history,
                T0 + timedelta(weeks=week),
                full_capacity_mwh=45_000.0 - week,
                design_capacity_mwh=50_000.0,
                health_pct=90.0 - week / 10,
                cycle_count=100 + week,
            )
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    added = sum(s.size_diff for s in after.compare_to(before, "filename")) / DEVICES
    print(f"\nfull capacity history: {added:.0f} more bytes per device")
    assert len(states[0].batteries["BAT0"].history) == 18 * HISTORY_WEEKS
    assert added < 600  # packed points, not 26 dicts
