"""A device's sample through the per-sample rules, in the device's own order.

Runs as each confirmed sample arrives: the trust of each battery judged once, the
battery rules against the device's state (their findings go to the engine at once:
a worn pack reaches the technician in seconds), then the sample joins its school's
telemetry (Wi-Fi readings, daily activity: collector.alerting.school) and is folded
into the state. A sample not newer than the device's latest (a duplicate the agent
sent again after a lost acknowledgement) changes nothing: counted in `stale`.
"""

from __future__ import annotations

from collections.abc import Iterable

from collector.alerting.school import SchoolState
from collector.alerts.model import Finding
from collector.rules import RulesConfig, assess, build_rules, judge_batteries
from collector.rules.battery import BatteryRule
from collector.rules.calendar import Calendar
from collector.rules.state import DeviceState
from collector.rules.trust import Assessment
from collector.samples import Sample


class Evaluation:
    def __init__(self, config: RulesConfig, calendar: Calendar) -> None:
        self.config = config
        self.calendar = calendar  # each school's holiday zone
        self.rules = build_rules(config)
        self.stale = 0

    def sample(
        self, state: DeviceState, school: SchoolState, sample: Sample, clock_s: float
    ) -> list[Finding]:
        """The per-sample findings of `sample`; `clock_s`: the connected clock."""
        return self.samples(state, school, (sample,), clock_s)

    def samples(
        self, state: DeviceState, school: SchoolState, samples: Iterable[Sample], clock_s: float
    ) -> list[Finding]:
        """The findings of consecutive samples of one device (a message of its spool),
        one after the other as `sample` would: what is the device's or its school's is
        looked up once for the run."""
        found: list[Finding] = []
        config, trust_config, rules = self.config, self.config.trust, self.rules
        calendar = self.calendar.for_school(school.school)
        batteries = state.batteries
        keys: dict[str, tuple[tuple[BatteryRule, str], ...]] = {}  # its finding keys
        for sample in samples:
            if state.last_seen is not None and sample.ts <= state.last_seen:
                self.stale += 1
                continue
            trust: list[Assessment | None] = []
            for battery in sample.batteries:
                trust.append(
                    assess(batteries.get(battery.name), battery, trust_config)
                    if battery.present
                    else None
                )
            findings = judge_batteries(rules, state, sample, trust, keys)
            school.on_sample(state, sample, config, calendar, clock_s)
            state.apply(sample, findings, trust)
            found += findings
        return found
