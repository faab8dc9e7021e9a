"""What the network rules remember and find: one school's access points in one
window (radio and reachability), the faults open after the last window, and the
shape of a network finding (routed to the network contractor).

Shared by the radio judgement (network.py) and the reachability one (reach.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from collector.alerts.model import Finding, Subject
from collector.rules.config import RulesConfig

MAX_DEVICES_IN_EVIDENCE = 100


@dataclass(slots=True)
class Reach:
    """One access point's reachability in one window (whole seconds: an integer
    sum does not depend on the order laptops are added in)."""

    seen: int = 0  # laptops that reported their reachability there
    cut_off: list[str] = field(default_factory=list)
    online_s: int = 0
    cut_s: int = 0
    dns_failed: int = 0  # cut-off laptops whose broker name did not resolve
    gateway_down: int = 0  # cut-off laptops whose gateway did not answer
    failures: dict[str, int] = field(default_factory=dict)  # cause -> cut-off laptops
    # Cut-off laptops whose failure a broker outage explains too (no DNS or TLS cause).
    central: list[str] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        return len(self.cut_off) / self.seen if self.seen else 0.0


@dataclass(slots=True)
class AccessPointWindow:
    """One access point in one window: laptops seen, and the degraded ones."""

    seen: int = 0
    degraded: list[str] = field(default_factory=list)
    # Sum of each laptop's mean RSSI there, in tenths of a dB: an integer sum does not
    # depend on the order laptops are added in (a float sum does, in its last digits).
    rssi_tenths: int = 0
    rssi_laptops: int = 0
    reach: Reach | None = None  # reachability, when laptops there reported it

    @property
    def fraction(self) -> float:
        return len(self.degraded) / self.seen if self.seen else 0.0

    def mean_rssi_dbm(self) -> float | None:
        return round(self.rssi_tenths / self.rssi_laptops / 10, 1) if self.rssi_laptops else None


@dataclass(slots=True)
class NetworkState:
    """Which network faults of one school were active after the last judged window."""

    faulty_aps: set[str] = field(default_factory=set)
    school_fault: bool = False
    cut_aps: set[str] = field(default_factory=set)  # ap_unreachable open
    school_cut: bool = False  # school_unreachable open


@dataclass(frozen=True, slots=True)
class WindowVerdict:
    findings: list[Finding]
    covered: frozenset[str]  # devices whose own Wi-Fi is not judged in this window


def window_span(start: datetime, config: RulesConfig) -> dict[str, Any]:
    end = start + timedelta(seconds=config.network.window_s)
    return {"window_start": start.isoformat(), "window_end": end.isoformat()}


def network_finding(  # noqa: PLR0917 - one call shape for both network findings
    key: str,
    subject: Subject,
    school: str,
    at: datetime,
    holds: bool,
    summary: str,
    action: str,
    evidence: dict[str, Any],
) -> Finding:
    return Finding(
        rule=key.rsplit("/", 1)[1],
        key=key,
        subject=subject,
        school=school,
        device=None,
        category="network",
        severity="critical",
        active=holds,
        at=at,
        summary=summary,
        action=action if holds else "",
        evidence=evidence | {"ts": at.isoformat()},
    )
