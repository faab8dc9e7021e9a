"""Associated but cut off: the school's network, not its Wi-Fi, keeps laptops offline.

Pure, like network.py, and judged on the same completed windows right after it. The
agent says, for the time since its previous report, how long it was associated with
a school network with and without a broker connection (`connectivity`
school_online_s / school_unreachable_s), and why the last attempt failed. Those
reports are spooled while the laptop is cut off and arrive later (after the repair,
or from home in the evening): the window waits for them (the bounded lateness).

A laptop is cut off in a window, on one access point, when it spent there at least
`network.unreachable_min_s` associated without reaching the broker, and longer than
it spent reaching it (`Tally.cut_off`). With the radio rules' counts and fractions
(`ap_min_devices`, `ap_min_fraction` of the laptops that reported their reachability
there; hysteresis with the clear counts):

- `ap_unreachable`: ONE network alert for an access point whose laptops are cut off
  (a wrong VLAN, a captive portal, a port filtered on one switch);
- `school_unreachable`: ONE alert for the school when most of its access points are
  (DNS, proxy, firewall or uplink of the school), instead of one per access point.

The broker's own outages are not the school's: in a window during which the
collector lost the broker (`ConnectedClock.outages`, or `network.outage_margin_s`
after it, the laptops' reconnection backoff), only the laptops whose cause a broker
outage cannot produce (`dns`, `tls`) count as cut off.

The radio comes first: an access point at fault for its Wi-Fi (wifi_ap_fault), or a
school whose whole Wi-Fi is (wifi_school_fault), explains its laptops' trouble and
is not judged here. A laptop cut off on its own is not a network fault: no alert.
The evidence names the laptops, the time cut off, and the causes the agents saw
(dns, connect, timeout, tls, refused, closed), which tell DNS from a portal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from collector.alerts.model import Finding
from collector.rules.base import ap_key, school_key
from collector.rules.config import RulesConfig
from collector.rules.netstate import (
    MAX_DEVICES_IN_EVIDENCE,
    AccessPointWindow,
    NetworkState,
    Reach,
    network_finding,
    window_span,
)
from collector.rules.tally import Tally

AP_CUT_RULE = "ap_unreachable"
SCHOOL_CUT_RULE = "school_unreachable"
# Causes a broker outage cannot produce: the school's resolver, a TLS interception.
LOCAL_CAUSES = frozenset({"dns", "tls"})

FAILURE_FR = {
    "dns": "nom du serveur non résolu (DNS)",
    "connect": "connexion refusée ou sans route",
    "timeout": "pas de réponse à temps",
    "tls": "échange TLS refusé (portail captif ou proxy)",
    "refused": "connexion refusée par le serveur",
    "closed": "connexion coupée par le réseau",
}


def add_laptop(ap: AccessPointWindow, device: str, tally: Tally, config: RulesConfig) -> None:
    """A laptop's window on the access point joins its reachability."""
    if not tally.reach_readings:
        return
    reach = ap.reach
    if reach is None:
        reach = ap.reach = Reach()
    reach.seen += 1
    reach.online_s += round(tally.online_s)
    reach.cut_s += round(tally.cut_s)
    if not tally.cut_off(config.network.unreachable_min_s):
        return
    reach.cut_off.append(device)
    reach.dns_failed += tally.dns_failed > 0
    reach.gateway_down += tally.gateway_down > 0
    if tally.failure:
        reach.failures[tally.failure] = reach.failures.get(tally.failure, 0) + 1
    if tally.failure not in LOCAL_CAUSES:
        reach.central.append(device)


def _without_central(ap: Reach) -> Reach:
    """The access point's reachability had the broker been there: the laptops a
    broker outage explains are not cut off by the school."""
    gone = set(ap.central)
    failures = dict(ap.failures)
    for cause in list(failures):
        if cause not in LOCAL_CAUSES:
            del failures[cause]
    return replace(
        ap, cut_off=[d for d in ap.cut_off if d not in gone], failures=failures, central=[]
    )


def judge_reach(
    school: str,
    start: datetime,
    aps: dict[str, AccessPointWindow],
    state: NetworkState,
    config: RulesConfig,
    *,
    broker_down: bool = False,
) -> list[Finding]:
    """Reachability findings of one completed window (after the radio's verdict,
    whose faults `state` holds already); updates `state`. `broker_down`: the
    collector lost the broker during the window (or just before)."""
    reach = {
        bssid: _without_central(ap.reach) if broker_down else ap.reach
        for bssid, ap in aps.items()
        if ap.reach is not None and bssid not in state.faulty_aps
    }
    findings: list[Finding] = []
    verdict = None
    if config.is_enabled(SCHOOL_CUT_RULE) and not state.school_fault:
        verdict = _school_verdict(reach, state, config)
    if verdict is None and state.school_cut:
        return findings  # too few access points to tell (or the radio speaks): it stands
    if verdict:
        findings.append(_school_finding(school, start, reach, True, config))
        for bssid in sorted(state.cut_aps):  # the school's alert speaks for them
            findings.append(_ap_finding(school, bssid, Reach(), start, False, config))
        state.cut_aps.clear()
        state.school_cut = True
        return findings
    if state.school_cut:
        findings.append(_school_finding(school, start, reach, False, config))
        state.school_cut = False
    if not config.is_enabled(AP_CUT_RULE):
        return findings
    cfg = config.network
    for bssid in sorted(reach):
        ap = reach[bssid]
        was = bssid in state.cut_aps
        min_devices = cfg.ap_clear_devices if was else cfg.ap_min_devices
        if ap.seen < min_devices:
            continue  # too few laptops to tell: an open alert stays open
        min_fraction = cfg.ap_clear_fraction if was else cfg.ap_min_fraction
        if len(ap.cut_off) >= min_devices and ap.fraction >= min_fraction:
            findings.append(_ap_finding(school, bssid, ap, start, True, config))
            state.cut_aps.add(bssid)
        elif was:
            findings.append(_ap_finding(school, bssid, ap, start, False, config))
            state.cut_aps.discard(bssid)
    return findings


def _bad(ap: Reach, config: RulesConfig) -> bool:
    cfg = config.network
    return len(ap.cut_off) >= cfg.ap_clear_devices and ap.fraction >= cfg.ap_min_fraction


def _school_verdict(
    reach: dict[str, Reach], state: NetworkState, config: RulesConfig
) -> bool | None:
    cfg = config.network
    counted = [ap for ap in reach.values() if ap.seen >= cfg.school_ap_min_seen]
    if len(counted) < cfg.school_min_access_points:
        return None
    bad = sum(1 for ap in counted if _bad(ap, config))
    limit = cfg.school_clear_fraction if state.school_cut else cfg.school_min_fraction
    return bad / len(counted) >= limit


def vanished_reach(
    school: str, at: datetime, used: Iterable[str], state: NetworkState, config: RulesConfig
) -> list[Finding]:
    """Clear what no laptop used during an active school day can keep open."""
    seen = set(used)
    gone = sorted(state.cut_aps.difference(seen))
    state.cut_aps.difference_update(gone)
    out = [_ap_finding(school, b, Reach(), at, False, config) for b in gone]
    if state.school_cut and not seen:
        state.school_cut = False
        out.append(_school_finding(school, at, {}, False, config))
    return out


def _causes(aps: Iterable[Reach]) -> dict[str, int]:
    out: dict[str, int] = {}
    for ap in aps:
        for cause, n in ap.failures.items():
            out[cause] = out.get(cause, 0) + n
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def _causes_fr(causes: dict[str, int]) -> str:
    if not causes:
        return ""
    return " ; causes : " + ", ".join(f"{FAILURE_FR.get(c, c)} ({n})" for c, n in causes.items())


def _evidence(aps: list[Reach]) -> dict[str, object]:
    devices = sorted(d for ap in aps for d in ap.cut_off)
    return {
        "devices_seen": sum(ap.seen for ap in aps),
        "devices_cut_off": len(devices),
        "devices": devices[:MAX_DEVICES_IN_EVIDENCE],
        "cut_off_s": sum(ap.cut_s for ap in aps),
        "online_s": sum(ap.online_s for ap in aps),
        "failures": _causes(aps),
        "dns_failed_devices": sum(ap.dns_failed for ap in aps),
        "gateway_down_devices": sum(ap.gateway_down for ap in aps),
    }


def _ap_finding(  # noqa: PLR0917 - one access point of one window
    school: str, bssid: str, ap: Reach, start: datetime, holds: bool, config: RulesConfig
) -> Finding:
    short = bssid[:8]
    causes = _causes([ap])
    summary = (
        f"Réseau injoignable sur la borne {short} : {len(ap.cut_off)} ordinateurs sur "
        f"{ap.seen} connectés au Wi-Fi sans accès au serveur{_causes_fr(causes)}"
        if holds
        else f"Réseau de nouveau joignable sur la borne {short}"
    )
    action = (
        "Le Wi-Fi fonctionne mais le réseau derrière la borne bloque : vérifier le VLAN, "
        "le portail captif, le filtrage ; escalader au prestataire réseau avec la liste "
        "des ordinateurs touchés"
    )
    evidence = {"bssid_hash": bssid} | _evidence([ap]) | window_span(start, config)
    key = ap_key(school, bssid, AP_CUT_RULE)
    return network_finding(key, "access_point", school, start, holds, summary, action, evidence)


def _school_finding(
    school: str, start: datetime, reach: dict[str, Reach], holds: bool, config: RulesConfig
) -> Finding:
    aps = [reach[b] for b in sorted(reach)]
    bad = sorted(b for b, ap in reach.items() if _bad(ap, config))
    cut = sum(len(ap.cut_off) for ap in aps)
    summary = (
        f"Réseau de l'établissement injoignable : {cut} ordinateurs connectés au Wi-Fi "
        f"sans accès au serveur, sur {len(bad)} bornes sur {len(aps)}"
        f"{_causes_fr(_causes(aps))}"
        if holds
        else "Réseau de l'établissement de nouveau joignable"
    )
    action = (
        "Le Wi-Fi fonctionne mais l'accès au réseau est coupé : vérifier le DNS, le proxy, "
        "le pare-feu et le lien de l'établissement ; escalader au prestataire réseau"
    )
    evidence = (
        {"access_points_seen": len(aps), "access_points_cut_off": bad[:MAX_DEVICES_IN_EVIDENCE]}
        | _evidence(aps)
        | window_span(start, config)
    )
    key = school_key(school, SCHOOL_CUT_RULE)
    return network_finding(key, "school", school, start, holds, summary, action, evidence)
