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

Reachability (laptops associated with an access point but unable to reach the
broker) is judged after the radio, by the same counts, in `collector.rules.reach`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from collector.alerts.model import Finding
from collector.rules.base import ap_key, school_key
from collector.rules.config import RulesConfig
from collector.rules.netstate import (
    MAX_DEVICES_IN_EVIDENCE,
    AccessPointWindow,
    NetworkState,
    Reach,
    WindowVerdict,
    network_finding,
    window_span,
)
from collector.rules.reach import AP_CUT_RULE, SCHOOL_CUT_RULE, judge_reach, vanished_reach

AP_RULE = "wifi_ap_fault"
SCHOOL_RULE = "wifi_school_fault"
NETWORK_RULES = (AP_RULE, SCHOOL_RULE, AP_CUT_RULE, SCHOOL_CUT_RULE)
__all__ = [
    "AP_CUT_RULE",
    "AP_RULE",
    "NETWORK_RULES",
    "SCHOOL_CUT_RULE",
    "SCHOOL_RULE",
    "AccessPointWindow",
    "NetworkState",
    "Reach",
    "WindowVerdict",
    "judge_window",
    "vanished",
]


def judge_window(
    school_name: str,
    start: datetime,
    aps: dict[str, AccessPointWindow],
    state: NetworkState,
    config: RulesConfig,
    *,
    broker_down: bool = False,
) -> WindowVerdict:
    """Findings for one completed window of `school`; updates `state`: the radio
    first (wifi_ap_fault, wifi_school_fault), then reachability where the radio is
    not at fault (reach.py; `broker_down`: the collector lost the broker then)."""
    verdict = _judge_radio(school_name, start, aps, state, config)
    cut = judge_reach(school_name, start, aps, state, config, broker_down=broker_down)
    return WindowVerdict(verdict.findings + cut, verdict.covered) if cut else verdict


def _judge_radio(
    school_name: str,
    start: datetime,
    aps: dict[str, AccessPointWindow],
    state: NetworkState,
    config: RulesConfig,
) -> WindowVerdict:
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
    return out + vanished_reach(school, at, used, state, config)


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
    } | window_span(start, config)
    key = ap_key(school, bssid, AP_RULE)
    return network_finding(key, "access_point", school, start, holds, summary, action, evidence)


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
    } | window_span(start, config)
    key = school_key(school, SCHOOL_RULE)
    return network_finding(key, "school", school, start, holds, summary, action, evidence)
