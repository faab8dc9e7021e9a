"""A device's whole rule state as a JSON document, and back (format version 3).

Everything `DeviceState` holds is saved, so a restarted collector judges the next
sample exactly as the stopped one would have: trust (last trusted health, a
collapse awaiting confirmation, the zero-cycle streak, the untrusted count), the
fade estimate, the weekly capacity history (its packed points, in base64), the
Wi-Fi readings of its current telemetry window (`window`) and the conditions in
progress with their start times (hysteresis and the "since" of evidence; the
engine's own timers are in its `engine_state` table).

Size is constant per device: a few numbers per battery, at most `HISTORY_WEEKS`
history points, one condition per rule and subject. Condition keys are saved without
their "<school>/<device>/" prefix. Version 1 and 2 documents still load (missing
fields take their defaults; version 2's last Wi-Fi reading is not used any more). The
`batteries.<name>.model` and `.fade` entries keep their version-1 shape because
`lordi alerts forecast` reads them.
"""

from __future__ import annotations

import sys
from dataclasses import fields
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from collector.rules.forecast import FadeEstimator
from collector.rules.history import from_text, points, to_text
from collector.rules.state import BatteryState, DeviceState
from collector.rules.tally import Near, Tally
from collector.rules.wifi import wifi_evidence

VERSION = 3
_BATTERY_SCALARS = tuple(
    f.name
    for f in fields(BatteryState)
    if f.name not in ("fade", "history", "last_ts", "last_trusted")  # last_trusted: not saved
)
_FADE_FIELDS = tuple(f.name for f in fields(FadeEstimator))
_TALLY_SCALARS = tuple(f.name for f in fields(Tally) if f.name not in ("bssid", "more", "near"))
_NEAR_SCALARS = tuple(f.name for f in fields(Near) if f.name not in ("last", "last_ts"))


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _battery_doc(b: BatteryState) -> dict[str, Any]:
    doc: dict[str, Any] = {name: getattr(b, name) for name in _BATTERY_SCALARS}
    doc["last_ts"] = _iso(b.last_ts)
    doc["fade"] = {name: getattr(b.fade, name) for name in _FADE_FIELDS}
    if b.history:
        doc["history"] = to_text(b.history)
    return doc


def to_document(state: DeviceState) -> dict[str, Any]:
    """The JSON document saved in the alert store's `devices.derived`."""
    prefix = f"{state.school}/{state.device}/"
    doc: dict[str, Any] = {
        "v": VERSION,
        "batteries": {name: _battery_doc(b) for name, b in state.batteries.items()},
    }
    if state.window_start is not None:
        tallies = state.tallies or {}
        doc["window"] = {
            "start": state.window_start,
            "tallies": {bssid: tally_document(t) for bssid, t in tallies.items()},
        }
    if state.watch_until:
        doc["watch_until"] = state.watch_until
    if state.conditions:
        doc["conditions"] = {
            key.removeprefix(prefix): since.isoformat() for key, since in state.conditions.items()
        }
    return doc


def _battery_from(state: DeviceState, name: str, doc: dict[str, Any]) -> None:
    battery = state.battery(name)
    for field_name in _BATTERY_SCALARS:
        if field_name in doc:
            setattr(battery, field_name, doc[field_name])
    if battery.model is not None:
        battery.model = sys.intern(battery.model)  # shared between devices, as when live
    battery.last_ts = _time(doc.get("last_ts"))
    if "fade" in doc:
        battery.fade = FadeEstimator(**doc["fade"])
    if isinstance(doc.get("history"), str):
        battery.history = from_text(doc["history"])


def from_document(
    school: str, device: str, last_seen: datetime | None, doc: dict[str, Any]
) -> DeviceState:
    """The state `to_document` saved (or a version-1 document: what it holds)."""
    state = DeviceState(device=device, school=school, last_seen=last_seen)
    for name, battery_doc in doc.get("batteries", {}).items():
        _battery_from(state, name, battery_doc)
    window = doc.get("window")
    if window is not None:
        state.window_start = int(window["start"])
        state.tallies = {
            sys.intern(bssid): tally_from(t) for bssid, t in window.get("tallies", {}).items()
        }
    state.watch_until = int(doc.get("watch_until", 0))
    conditions = doc.get("conditions")
    if conditions:
        prefix = f"{school}/{device}/"
        state.conditions = {
            prefix + key: datetime.fromisoformat(since) for key, since in conditions.items()
        }
    return state


def tally_document(tally: Tally) -> dict[str, Any]:
    """Flat: the counts, then (zeros without a reading past a clear level) the rest."""
    doc: dict[str, Any] = {name: getattr(tally, name) for name in _TALLY_SCALARS}
    doc.update({name: getattr(tally, name) for name in _NEAR_SCALARS})
    doc["last"] = None if tally.last is None else wifi_evidence(tally.last)
    doc["last_ts"] = _iso(tally.last_ts)
    return doc


def tally_from(doc: dict[str, Any]) -> Tally:
    tally = Tally(**{name: doc[name] for name in _TALLY_SCALARS if name in doc})
    if any(doc.get(name) for name in ("weak_hold", "unstable_hold")):
        last = doc.get("last")
        tally.near = Near(
            **{name: doc[name] for name in _NEAR_SCALARS if name in doc},
            # The evidence needs the reading's attributes only: a namespace has them.
            last=None if last is None else SimpleNamespace(**last),
            last_ts=_time(doc.get("last_ts")),
        )
    return tally


def battery_model(state: DeviceState) -> str | None:
    """The device's battery model for the `devices.battery_model` column."""
    return next((b.model for b in state.batteries.values() if b.model), None)


def saved_history(doc: dict[str, Any], battery: str) -> list[dict[str, Any]]:
    """A battery's capacity history from a saved document (empty when unknown)."""
    text = doc.get("batteries", {}).get(battery, {}).get("history")
    return points(from_text(text)) if isinstance(text, str) else []
