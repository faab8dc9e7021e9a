"""A school's alerting state as a JSON document, and back (format version 1).

Saved with the device state (collector.rules.persist) so that a restarted collector
completes the same windows and days with the same telemetry: the windows and days
not complete yet, the completed days (activity, for silence), the access-point
verdicts in force, the laptops' returns after a gap, the whole-school silence
count, and how far the school is complete. The laptops' readings of their current
window are in their own device state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from collector.alerting.clock import Outage
from collector.alerting.school import (
    DayRecord,
    DayResult,
    Gap,
    SchoolSilence,
    SchoolState,
    WindowRecord,
    gap_chain,
    gap_list,
)
from collector.rules.network import AccessPointWindow, NetworkState, Reach
from collector.rules.persist import tally_document, tally_from

VERSION = 1


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def to_document(
    school: SchoolState, clock_s: float, outages: Sequence[Outage] = ()
) -> dict[str, Any]:
    """`clock_s`: the connected clock when saved, `outages` its broker outages
    (collector.alerting.clock; every school's document carries both)."""
    extra: dict[str, Any] = {"outages": [list(o) for o in outages]} if outages else {}
    return extra | {
        "v": VERSION,
        "clock_s": clock_s,
        "final_until": _iso(school.final_until),
        "windows": {str(start): _window_doc(w) for start, w in school.windows.items()},
        "days": {
            d.isoformat(): [
                r.reported,
                _iso(r.first_ts),
                sorted(r.aps),
                _iso(r.last_ts),
                r.touched_s,
            ]
            for d, r in school.days.items()
        },
        "history": {
            d.isoformat(): [r.reported, r.active, _iso(r.first_ts), _iso(r.last_ts), r.touched_s]
            for d, r in school.history.items()
        },
        "network": {
            "faulty_aps": sorted(school.network.faulty_aps),
            "school_fault": school.network.school_fault,
            "cut_aps": sorted(school.network.cut_aps),
            "school_cut": school.network.school_cut,
        },
        "gaps": {
            device: [[g.last.isoformat(), g.back.isoformat()] for g in gap_list(latest)]
            for device, latest in school.gaps.items()
        },
        "silence": {
            "days": school.silence.days,
            "last_reported": (
                None
                if school.silence.last_reported is None
                else school.silence.last_reported.isoformat()
            ),
        },
        "judged_day": None if school.judged_day is None else school.judged_day.isoformat(),
        "late": school.late,
    }


def _window_doc(window: WindowRecord) -> dict[str, Any]:
    return {
        "touched_s": window.touched_s,
        "aps": {
            bssid: [ap.seen, ap.degraded, ap.rssi_tenths, ap.rssi_laptops]
            + ([] if ap.reach is None else [_reach_doc(ap.reach)])
            for bssid, ap in window.aps.items()
        },
        "devices": [[device, tally_document(t)] for device, t in window.devices],
    }


def _reach_doc(reach: Reach) -> dict[str, Any]:
    return {
        "seen": reach.seen,
        "cut_off": reach.cut_off,
        "online_s": reach.online_s,
        "cut_s": reach.cut_s,
        "dns_failed": reach.dns_failed,
        "gateway_down": reach.gateway_down,
        "failures": reach.failures,
        "central": reach.central,
    }


def _reach_from(doc: dict[str, Any]) -> Reach:
    return Reach(
        int(doc.get("seen", 0)),
        list(doc.get("cut_off", [])),
        int(doc.get("online_s", 0)),
        int(doc.get("cut_s", 0)),
        int(doc.get("dns_failed", 0)),
        int(doc.get("gateway_down", 0)),
        {str(k): int(v) for k, v in doc.get("failures", {}).items()},
        list(doc.get("central", [])),
    )


def from_document(name: str, doc: dict[str, Any]) -> SchoolState:
    school = SchoolState(name)
    school.final_until = _time(doc.get("final_until"))
    for start, window in doc.get("windows", {}).items():
        record = WindowRecord(float(window.get("touched_s", 0.0)))
        for bssid, (seen, degraded, tenths, laptops, *reach) in window.get("aps", {}).items():
            record.aps[bssid] = AccessPointWindow(
                seen, list(degraded), int(tenths), laptops, _reach_from(reach[0]) if reach else None
            )
        record.devices = [(device, tally_from(t)) for device, t in window.get("devices", [])]
        school.windows[int(start)] = record
    for day, (reported, first_ts, aps, last_ts, touched_s) in doc.get("days", {}).items():
        school.days[date.fromisoformat(day)] = DayRecord(
            float(touched_s), reported, _time(first_ts), set(aps), _time(last_ts)
        )
    for day, (reported, active, first_ts, last_ts, touched) in doc.get("history", {}).items():
        school.history[date.fromisoformat(day)] = DayResult(
            reported, active, _time(first_ts), _time(last_ts), touched
        )
    network = doc.get("network", {})
    school.network = NetworkState(
        set(network.get("faulty_aps", [])),
        bool(network.get("school_fault", False)),
        set(network.get("cut_aps", [])),
        bool(network.get("school_cut", False)),
    )
    for device, gaps in doc.get("gaps", {}).items():
        latest = gap_chain(
            Gap(datetime.fromisoformat(last), datetime.fromisoformat(back)) for last, back in gaps
        )
        if latest is not None:
            school.gaps[device] = latest
    silence = doc.get("silence", {})
    last = silence.get("last_reported")
    school.silence = SchoolSilence(
        int(silence.get("days", 0)), None if last is None else date.fromisoformat(last)
    )
    judged = doc.get("judged_day")
    school.judged_day = None if judged is None else date.fromisoformat(judged)
    school.late = int(doc.get("late", 0))
    return school
