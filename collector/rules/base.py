"""What every rule shares: the `Rule` protocol, alert keys and the active/clear logic.

A per-sample rule answers one question per subject (a battery) with a `Verdict`:
the condition holds, it does not, or it cannot be told from this sample (missing
field, untrusted reading: None, and nothing is emitted). The Wi-Fi rules give the
same verdicts on a device's completed telemetry window (wifi.py). Hysteresis lives
in the verdict: each rule compares with its clear threshold while the condition was
active (`DeviceState.is_active`), and with its raise threshold otherwise. From the verdict:

- holds            -> an active finding (the battery rules: when it starts, on every
                      sample until the engine may have opened the alert, then once
                      an hour of the device's sample time: collector.rules.battery);
- not held, active -> one inactive finding (the state then forgets the condition);
- not held, idle   -> nothing (most samples: keeps the engine's load low).

Timing (minimum duration, clear duration, repeat interval) is the engine's; findings
carry `evidence["since"]`, when the condition started, so the engine can measure it.
Evidence values are JSON-serialisable (timestamps as ISO 8601 strings).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol

from collector.alerts.model import Category, Finding, Severity, Subject
from collector.rules.config import RulesConfig
from collector.rules.state import DeviceState
from collector.rules.trust import Assessment
from collector.samples import Sample


class Rule(Protocol):
    @property
    def name(self) -> str: ...

    def evaluate(
        self, state: DeviceState, sample: Sample, trust: Sequence[Assessment | None]
    ) -> list[Finding]: ...


def _part(text: str) -> str:
    # Keys are '/'-separated; a battery name may contain '/' (any printable text).
    return text.replace("/", "_")


def battery_key(school: str, device: str, battery: str, rule: str) -> str:
    return f"{school}/{device}/{_part(battery)}/{rule}"


def device_key(school: str, device: str, rule: str) -> str:
    return f"{school}/{device}/{rule}"


def ap_key(school: str, bssid_hash: str, rule: str) -> str:
    return f"{school}/ap/{bssid_hash}/{rule}"


def school_key(school: str, rule: str) -> str:
    return f"{school}/{rule}"


def fr(value: float) -> str:
    """A reading for French text: one decimal only when it matters, decimal comma
    (59.9 -> "59,9", 52.0 -> "52", -75.0 -> "-75")."""
    text = f"{value:.1f}"
    return (text[:-2] if text.endswith(".0") else text).replace(".", ",")


def iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


@dataclass(slots=True)  # a value; not frozen: built for each sample a condition holds
class Verdict:
    holds: bool
    summary: str
    action: str = ""
    evidence: dict[str, Any] | None = None


# "Does not hold, and was not active": emits nothing, so rules return this before
# building evidence (the common case, worth keeping cheap at 50,000 samples/s).
IDLE = Verdict(False, "")


class RuleBase:
    """What every device rule has: its identity, its configuration, and the finding
    it builds from a verdict."""

    name: ClassVar[str]
    subject: ClassVar[Subject]
    category: ClassVar[Category] = "hardware"
    severity: ClassVar[Severity] = "warning"

    def __init__(self, config: RulesConfig) -> None:
        self.config = config

    def finding(self, state: DeviceState, at: datetime, key: str, verdict: Verdict) -> Finding:
        evidence = dict(verdict.evidence or {})
        evidence["ts"] = iso(at)
        evidence["since"] = iso(state.since(key) or at) if verdict.holds else None
        return Finding(
            rule=self.name,
            key=key,
            subject=self.subject,
            school=state.school,
            device=state.device,
            category=self.category,
            severity=self.severity,
            active=verdict.holds,
            at=at,
            summary=verdict.summary,
            action=verdict.action if verdict.holds else "",
            evidence=evidence,
        )


class SampleRule(RuleBase):
    """Base of the per-sample rules (the battery rules: collector.rules.battery)."""

    def evaluate(
        self, state: DeviceState, sample: Sample, trust: Sequence[Assessment | None]
    ) -> list[Finding]:
        raise NotImplementedError
