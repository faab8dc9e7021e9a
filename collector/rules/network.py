"""Network faults are not laptop faults: the access-point and school correlator.

A periodic sweep over the device states. Devices are grouped by the access point
(`bssid_hash`, school networks only) they last reported from within
`network.window_s`; a device is degraded when its last school-network reading is
weak (RSSI below `wifi_weak.rssi_below_dbm`) or unstable (disconnects at or above
`wifi_unstable.disconnects_at_or_above`). When at least `ap_min_devices` devices
and `ap_min_fraction` of those seen on one access point are degraded at once, the
access point is at fault: ONE "network" finding for it (routed to the network
contractor) replaces the per-laptop Wi-Fi findings of the devices it covers. When
most access points of a school are degraded, ONE school-wide finding replaces the
access-point ones. Home networks never count: they carry no `bssid_hash` and
`on_school_network` is not true.

Pure: the caller passes the keys that were active after the previous sweep
(`NetworkResult.active_keys`), which drive hysteresis and the inactive findings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median
from typing import Any

from collector.alerts.model import Finding, Subject
from collector.rules.base import ap_key, school_key
from collector.rules.config import RulesConfig
from collector.rules.state import DeviceState, WifiState

AP_RULE = "wifi_ap_fault"
SCHOOL_RULE = "wifi_school_fault"
DEVICE_WIFI_RULES = frozenset({"wifi_weak", "wifi_unstable"})
MAX_DEVICES_IN_EVIDENCE = 100


@dataclass(slots=True)
class _AccessPoint:
    school: str
    bssid_hash: str
    seen: int = 0
    degraded: list[str] = field(default_factory=list)
    rssi_dbm: list[float] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        return len(self.degraded) / self.seen if self.seen else 0.0


@dataclass(frozen=True, slots=True)
class NetworkResult:
    findings: list[Finding]
    covered: frozenset[tuple[str, str]]  # (school, device): Wi-Fi findings to suppress
    active_keys: frozenset[str]  # pass back as `previously_active` next sweep


def is_degraded(wifi: WifiState, config: RulesConfig) -> bool:
    weak = wifi.rssi_dbm is not None and wifi.rssi_dbm < config.wifi_weak.rssi_below_dbm
    unstable = (
        wifi.disconnects is not None
        and wifi.disconnects >= config.wifi_unstable.disconnects_at_or_above
    )
    return weak or unstable


def _group(
    states: Iterable[DeviceState], now: datetime, config: RulesConfig
) -> dict[str, list[_AccessPoint]]:
    aps: dict[tuple[str, str], _AccessPoint] = {}
    for state in states:
        wifi = state.wifi
        if (
            wifi is None
            or not wifi.connected
            or wifi.on_school_network is not True
            or wifi.bssid_hash is None
            or (now - wifi.ts).total_seconds() > config.network.window_s
        ):
            continue
        ap = aps.get((state.school, wifi.bssid_hash))
        if ap is None:
            ap = aps[(state.school, wifi.bssid_hash)] = _AccessPoint(state.school, wifi.bssid_hash)
        ap.seen += 1
        if wifi.rssi_dbm is not None:
            ap.rssi_dbm.append(wifi.rssi_dbm)
        if is_degraded(wifi, config):
            ap.degraded.append(state.device)
    by_school: dict[str, list[_AccessPoint]] = defaultdict(list)
    for ap in aps.values():
        by_school[ap.school].append(ap)
    return by_school


def correlate_network(
    states: Iterable[DeviceState],
    now: datetime,
    config: RulesConfig,
    previously_active: Collection[str] = (),
) -> NetworkResult:
    """One sweep: access-point and school-wide findings, and the devices they cover."""
    findings: list[Finding] = []
    covered: set[tuple[str, str]] = set()
    for school, aps in _group(states, now, config).items():
        if config.is_enabled(SCHOOL_RULE) and _school_fault(aps, config, previously_active):
            findings.append(_school_finding(school, aps, now, True, config))
            covered.update((school, d) for ap in aps for d in ap.degraded)
        elif config.is_enabled(AP_RULE):
            findings += _ap_findings(aps, now, config, previously_active, covered)
    # Keys judged in this sweep, active or not; the other previously active ones vanished.
    reported = {f.key for f in findings}
    findings += _vanished(previously_active, reported, now, config)
    active = frozenset(f.key for f in findings if f.active)
    return NetworkResult(findings, frozenset(covered), active)


def _ap_findings(
    aps: list[_AccessPoint],
    now: datetime,
    config: RulesConfig,
    previously_active: Collection[str],
    covered: set[tuple[str, str]],
) -> list[Finding]:
    """Findings for the access points of one school; adds the devices they cover."""
    cfg = config.network
    findings: list[Finding] = []
    for ap in aps:
        was = ap_key(ap.school, ap.bssid_hash, AP_RULE) in previously_active
        min_devices = cfg.ap_clear_devices if was else cfg.ap_min_devices
        min_fraction = cfg.ap_clear_fraction if was else cfg.ap_min_fraction
        if len(ap.degraded) >= min_devices and ap.fraction >= min_fraction:
            findings.append(_ap_finding(ap, now, True, config))
            covered.update((ap.school, d) for d in ap.degraded)
        elif was:
            findings.append(_ap_finding(ap, now, False, config))
    return findings


def _school_fault(
    aps: list[_AccessPoint], config: RulesConfig, previously_active: Collection[str]
) -> bool:
    cfg = config.network
    counted = [ap for ap in aps if ap.seen >= cfg.school_ap_min_seen]
    if not counted or len(counted) < cfg.school_min_access_points:
        return False
    bad = sum(1 for ap in counted if ap.fraction >= cfg.ap_min_fraction)
    was = school_key(counted[0].school, SCHOOL_RULE) in previously_active
    return bad / len(counted) >= (cfg.school_clear_fraction if was else cfg.school_min_fraction)


def _ap_finding(ap: _AccessPoint, now: datetime, holds: bool, config: RulesConfig) -> Finding:
    short = ap.bssid_hash[:8]
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
        "bssid_hash": ap.bssid_hash,
        "devices_seen": ap.seen,
        "devices_degraded": len(ap.degraded),
        "degraded_fraction": round(ap.fraction, 3),
        "devices": sorted(ap.degraded)[:MAX_DEVICES_IN_EVIDENCE],
        "median_rssi_dbm": median(ap.rssi_dbm) if ap.rssi_dbm else None,
        "window_s": config.network.window_s,
    }
    key = ap_key(ap.school, ap.bssid_hash, AP_RULE)
    return _network_finding(key, "access_point", ap.school, now, holds, summary, action, evidence)


def _school_finding(
    school: str, aps: list[_AccessPoint], now: datetime, holds: bool, config: RulesConfig
) -> Finding:
    degraded = sorted(d for ap in aps for d in ap.degraded)
    bad_aps = sorted(ap.bssid_hash for ap in aps if ap.fraction >= config.network.ap_min_fraction)
    summary = (
        f"Wi-Fi de l'établissement en défaut : {len(bad_aps)} bornes sur {len(aps)}, "
        f"{len(degraded)} ordinateurs dégradés"
        if holds
        else "Wi-Fi de l'établissement de nouveau normal"
    )
    action = (
        "Escalader au prestataire réseau : panne probable du contrôleur Wi-Fi ou "
        "du lien de l'établissement"
    )
    evidence = {
        "access_points_seen": len(aps),
        "access_points_degraded": bad_aps[:MAX_DEVICES_IN_EVIDENCE],
        "devices_degraded": len(degraded),
        "devices": degraded[:MAX_DEVICES_IN_EVIDENCE],
    }
    key = school_key(school, SCHOOL_RULE)
    return _network_finding(key, "school", school, now, holds, summary, action, evidence)


def _network_finding(  # noqa: PLR0917 - one call shape for both network findings
    key: str,
    subject: Subject,
    school: str,
    now: datetime,
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
        at=now,
        summary=summary,
        action=action if holds else "",
        evidence=evidence | {"ts": now.isoformat()},
    )


def _vanished(
    previously_active: Collection[str], reported: set[str], now: datetime, config: RulesConfig
) -> list[Finding]:
    """Inactive findings for keys active last sweep and not judged in this one: no
    device seen there any more, or (for access points) now covered by the school."""
    out: list[Finding] = []
    for key in previously_active:
        if key in reported:
            continue
        parts = key.split("/")
        school = parts[0]
        if len(parts) == 4 and parts[1] == "ap":
            ap = _AccessPoint(school, parts[2])
            out.append(_ap_finding(ap, now, False, config))
        elif len(parts) == 2 and parts[1] == SCHOOL_RULE:
            out.append(_school_finding(school, [], now, False, config))
    return out


def suppress_covered(
    findings: Iterable[Finding], covered: Collection[tuple[str, str]]
) -> list[Finding]:
    """Drop the active per-device Wi-Fi findings of devices a network finding covers
    (inactive ones pass: they close alerts opened before the network fault showed)."""
    return [
        f
        for f in findings
        if not (f.active and f.rule in DEVICE_WIFI_RULES and (f.school, f.device) in covered)
    ]
