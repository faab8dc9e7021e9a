"""Network faults are not laptop faults: the access-point and school correlator.

Pure: judges one completed telemetry window of one school (collector.alerting.school
decides when a window is complete, in sample time). For each access point
(`bssid_hash`, school networks only) the window holds how many laptops were seen
there and which of them were degraded (most of their readings weak or unstable:
`Tally.is_degraded`). When at least `ap_min_devices` laptops and `ap_min_fraction`
of those seen on one access point are degraded, the access point is at fault: ONE
"network" finding for it (routed to the network contractor), and the laptops it
covers get no Wi-Fi finding of their own for that window. When most access points
of a school are degraded, ONE school-wide finding replaces the access-point ones.

Hysteresis: the caller passes which faults were active after the previous window
(`NetworkState`) and gets the new ones back. An access point seen by too few
laptops to judge gives no verdict (an open alert stays open); one not seen at all
during an active school day clears (`vanished`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from collector.alerts.model import Finding, Subject
from collector.rules.base import ap_key, school_key
from collector.rules.config import RulesConfig

AP_RULE = "wifi_ap_fault"
SCHOOL_RULE = "wifi_school_fault"
NETWORK_RULES = (AP_RULE, SCHOOL_RULE)
MAX_DEVICES_IN_EVIDENCE = 100


@dataclass(slots=True)
class AccessPointWindow:
    """One access point in one window: laptops seen, and the degraded ones."""

    seen: int = 0
    degraded: list[str] = field(default_factory=list)
    # Sum of each laptop's mean RSSI there, in tenths of a dB: an integer sum does not
    # depend on the order laptops are added in (a float sum does, in its last digits).
    rssi_tenths: int = 0
    rssi_laptops: int = 0

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


@dataclass(frozen=True, slots=True)
class WindowVerdict:
    findings: list[Finding]
    covered: frozenset[str]  # devices whose own Wi-Fi is not judged in this window


def judge_window(
    school_name: str,
    start: datetime,
    aps: dict[str, AccessPointWindow],
    state: NetworkState,
    config: RulesConfig,
) -> WindowVerdict:
    """Findings for one completed window of `school`; updates `state`."""
    findings: list[Finding] = []
    covered: set[str] = set()
    school = _school_verdict(aps, state, config) if config.is_enabled(SCHOOL_RULE) else False
    if school is None and state.school_fault:
        # Too few access points seen to tell: the school-wide fault stands, unjudged.
        covered.update(d for ap in aps.values() for d in ap.degraded)
        return WindowVerdict(findings, frozenset(covered))
    if school:
        findings.append(_school_finding(school_name, start, aps, True, config))
        covered.update(d for ap in aps.values() for d in ap.degraded)
        # The school-wide alert speaks for its access points: theirs clear.
        for bssid in sorted(state.faulty_aps):
            ap = AccessPointWindow()
            findings.append(_ap_finding(school_name, bssid, ap, start, False, config))
        state.faulty_aps.clear()
        state.school_fault = True
        return WindowVerdict(findings, frozenset(covered))
    if state.school_fault:
        findings.append(_school_finding(school_name, start, aps, False, config))
        state.school_fault = False
    if config.is_enabled(AP_RULE):
        findings += _ap_findings(school_name, start, aps, state, config, covered)
    return WindowVerdict(findings, frozenset(covered))


def _ap_findings(  # noqa: PLR0917 - one window of one school
    school: str,
    start: datetime,
    aps: dict[str, AccessPointWindow],
    state: NetworkState,
    config: RulesConfig,
    covered: set[str],
) -> list[Finding]:
    cfg = config.network
    findings: list[Finding] = []
    for bssid in sorted(aps):
        ap = aps[bssid]
        was = bssid in state.faulty_aps
        min_devices = cfg.ap_clear_devices if was else cfg.ap_min_devices
        if ap.seen < min_devices:
            if was:  # too few laptops to tell: the fault stands, and speaks for them
                covered.update(ap.degraded)
            continue
        min_fraction = cfg.ap_clear_fraction if was else cfg.ap_min_fraction
        holds = len(ap.degraded) >= min_devices and ap.fraction >= min_fraction
        if holds:
            findings.append(_ap_finding(school, bssid, ap, start, True, config))
            covered.update(ap.degraded)
            state.faulty_aps.add(bssid)
        elif was:
            findings.append(_ap_finding(school, bssid, ap, start, False, config))
            state.faulty_aps.discard(bssid)
    return findings


def _counted(aps: dict[str, AccessPointWindow], config: RulesConfig) -> list[AccessPointWindow]:
    return [ap for ap in aps.values() if ap.seen >= config.network.school_ap_min_seen]


def _bad(ap: AccessPointWindow, config: RulesConfig) -> bool:
    """Degraded enough to count against the school: the access-point fault's fraction,
    and at least the laptops that keep an access-point fault open (a school-wide
    fault from one weak laptop per access point would be noise)."""
    cfg = config.network
    return len(ap.degraded) >= cfg.ap_clear_devices and ap.fraction >= cfg.ap_min_fraction


def _school_verdict(
    aps: dict[str, AccessPointWindow], state: NetworkState, config: RulesConfig
) -> bool | None:
    """Most access points of the school degraded? None: too few seen to tell."""
    cfg = config.network
    counted = _counted(aps, config)
    if len(counted) < cfg.school_min_access_points:
        return None
    bad = sum(1 for ap in counted if _bad(ap, config))
    limit = cfg.school_clear_fraction if state.school_fault else cfg.school_min_fraction
    return bad / len(counted) >= limit


def vanished(
    school: str, at: datetime, seen: Iterable[str], state: NetworkState, config: RulesConfig
) -> list[Finding]:
    """Clear the faults of access points no laptop used during a school day on which
    the school reported (`seen`: the access points used that day), and the
    school-wide fault when no access point was used at all."""
    used = set(seen)
    gone = sorted(state.faulty_aps.difference(used))
    state.faulty_aps.difference_update(gone)
    out = [_ap_finding(school, b, AccessPointWindow(), at, False, config) for b in gone]
    if state.school_fault and not used:
        state.school_fault = False
        out.append(_school_finding(school, at, {}, False, config))
    return out


def _ap_finding(  # noqa: PLR0917
    school: str,
    bssid: str,
    ap: AccessPointWindow,
    start: datetime,
    holds: bool,
    config: RulesConfig,
) -> Finding:
    short = bssid[:8]
    summary = (
        f"Borne Wi-Fi en défaut : {len(ap.degraded)} ordinateurs sur {ap.seen} "
        f"dégradés sur la borne {short}"
        if holds
        else f"Borne Wi-Fi {short} de nouveau normale"
    )
    action = (
        "Vérifier la borne (alimentation, câble, canal, charge) ; escalader au "
        "prestataire réseau avec la liste des ordinateurs touchés"
    )
    evidence = {
        "bssid_hash": bssid,
        "devices_seen": ap.seen,
        "devices_degraded": len(ap.degraded),
        "degraded_fraction": round(ap.fraction, 3),
        "devices": sorted(ap.degraded)[:MAX_DEVICES_IN_EVIDENCE],
        "mean_rssi_dbm": ap.mean_rssi_dbm(),
    } | _window(start, config)
    key = ap_key(school, bssid, AP_RULE)
    return _network_finding(key, "access_point", school, start, holds, summary, action, evidence)


def _school_finding(
    school: str,
    start: datetime,
    aps: dict[str, AccessPointWindow],
    holds: bool,
    config: RulesConfig,
) -> Finding:
    degraded = sorted(d for ap in aps.values() for d in ap.degraded)
    bad_aps = sorted(b for b, ap in aps.items() if _bad(ap, config))
    counted = len(_counted(aps, config))
    summary = (
        f"Wi-Fi de l'établissement en défaut : {len(bad_aps)} bornes sur {counted}, "
        f"{len(degraded)} ordinateurs dégradés"
        if holds
        else "Wi-Fi de l'établissement de nouveau normal"
    )
    action = (
        "Escalader au prestataire réseau : panne probable du contrôleur Wi-Fi ou "
        "du lien de l'établissement"
    )
    evidence = {
        "access_points_seen": counted,
        "access_points_degraded": bad_aps[:MAX_DEVICES_IN_EVIDENCE],
        "devices_degraded": len(degraded),
        "devices": degraded[:MAX_DEVICES_IN_EVIDENCE],
    } | _window(start, config)
    key = school_key(school, SCHOOL_RULE)
    return _network_finding(key, "school", school, start, holds, summary, action, evidence)


def _window(start: datetime, config: RulesConfig) -> dict[str, Any]:
    end = start + timedelta(seconds=config.network.window_s)
    return {"window_start": start.isoformat(), "window_end": end.isoformat()}


def _network_finding(  # noqa: PLR0917 - one call shape for both network findings
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
