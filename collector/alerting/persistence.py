"""A school's alerting state as a JSON document, and back (format version 1).

Saved with the device state (collector.rules.persist) so that a restarted collector
completes the same windows and days with the same telemetry: the windows and days
not complete yet, the completed days (activity, for silence), the access-point
verdicts in force, the laptops' returns after a gap, the whole-school silence
count, and how far the school is complete. The laptops' readings of their current
window are in their own device state.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from collector.alerting.school import (
    DayRecord,
    DayResult,
    Gap,
    SchoolSilence,
    SchoolState,
    WindowRecord,
)
from collector.rules.network import AccessPointWindow, NetworkState
from collector.rules.persist import tally_document, tally_from

VERSION = 1


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def to_document(school: SchoolState, clock_s: float) -> dict[str, Any]:
    """`clock_s`: the connected clock when saved (collector.alerting.clock)."""
    return {
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
        },
        "gaps": {
            device: [[g.last.isoformat(), g.back.isoformat()] for g in gaps]
            for device, gaps in school.gaps.items()
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
            for bssid, ap in window.aps.items()
        },
        "devices": [[device, tally_document(t)] for device, t in window.devices],
    }


def from_document(name: str, doc: dict[str, Any]) -> SchoolState:
    school = SchoolState(name)
    school.final_until = _time(doc.get("final_until"))
    for start, window in doc.get("windows", {}).items():
        record = WindowRecord(float(window.get("touched_s", 0.0)))
        for bssid, (seen, degraded, tenths, laptops) in window.get("aps", {}).items():
            record.aps[bssid] = AccessPointWindow(seen, list(degraded), int(tenths), laptops)
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
        set(network.get("faulty_aps", [])), bool(network.get("school_fault", False))
    )
    for device, gaps in doc.get("gaps", {}).items():
        school.gaps[device] = [
            Gap(datetime.fromisoformat(last), datetime.fromisoformat(back)) for last, back in gaps
        ]
    silence = doc.get("silence", {})
    last = silence.get("last_reported")
    school.silence = SchoolSilence(
        int(silence.get("days", 0)), None if last is None else date.fromisoformat(last)
    )
    judged = doc.get("judged_day")
    school.judged_day = None if judged is None else date.fromisoformat(judged)
    school.late = int(doc.get("late", 0))
    return school
