"""The types shared by the rules, the alert engine, the store and the notifiers.

A rule looks at one device (or one access point, or one school) and returns
`Finding`s: "this condition holds now" (active=True) or "it no longer holds"
(active=False, already past the rule's hysteresis). The engine turns findings into
`Alert`s: it opens one after the condition held for the rule's minimum duration,
resolves it after the condition has been clear for the clear duration, never
notifies the same key twice within the minimum repeat interval, and records every
`Transition` with the evidence that caused it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Category = Literal["hardware", "network"]  # which level-2 contractor acts
Severity = Literal["info", "warning", "critical"]
Status = Literal["open", "acknowledged", "resolved"]
Subject = Literal["battery", "device", "access_point", "school"]


# A value: nothing changes a finding once made. Not `frozen`: a frozen dataclass
# costs 1.8 us to build against 0.7 here.
@dataclass(slots=True)
class Finding:
    rule: str  # registry name, e.g. "battery_replace"
    # Alert identity: one open alert per key. Conventions:
    #   battery:      "<school>/<device>/<battery>/<rule>"
    #   device:       "<school>/<device>/<rule>"
    #   access point: "<school>/ap/<bssid_hash>/<rule>"
    #   school:       "<school>/<rule>"
    key: str
    subject: Subject
    school: str
    device: str | None
    category: Category
    severity: Severity
    active: bool
    at: datetime  # sample time of the reading (or window) that produced it, UTC
    summary: str = ""  # one line for the worklist, e.g. "battery health 52 % (< 60 %)"
    action: str = ""  # what the technician should do
    evidence: dict[str, Any] = field(default_factory=dict)  # the readings behind it
    # When the condition started, if before `at` (a silent laptop: its last sample);
    # None: at the episode's first active finding.
    since: datetime | None = None


@dataclass(slots=True)
class Transition:
    alert_id: int
    at: datetime
    from_status: Status | None  # None when the alert is created
    to_status: Status
    by: str  # "engine", or the person who acknowledged / commented
    note: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Alert:
    id: int
    key: str
    rule: str
    subject: Subject
    school: str
    device: str | None
    category: Category
    severity: Severity
    status: Status
    opened_at: datetime
    updated_at: datetime
    summary: str
    action: str
    evidence: dict[str, Any]
    resolved_at: datetime | None = None
    # When the condition started (its first sample time); None only in a store
    # written before the column existed (then `opened_at` is the best estimate).
    since: datetime | None = None
    acknowledged_by: str | None = None
    escalated_to: str | None = None  # level-2 party, once escalated
