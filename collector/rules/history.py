"""A battery's capacity history: one point per ISO week, the last `HISTORY_WEEKS` weeks.

What an escalation packet shows a contractor ("the pack lost 8 points since
September"), kept in constant memory per battery: the points are packed in one
`bytes` value (18 bytes a point, 26 weeks under 500 bytes; an empty history is
the shared empty `bytes`), not in a list of dicts (about 400 bytes a point).

Only trusted capacity readings are added (the caller checks the trust rules). A
reading in the same ISO week as the last point replaces it (the week's latest
reading); a reading older than the last point's week is ignored (a spooled sample
cannot rewrite the past); a new week drops the oldest point once the history is
full. Unknown values are stored as NaN / -1 and come back as None. The alert store
keeps the packed points as base64 text (`to_text` / `from_text`).
"""

from __future__ import annotations

import base64
import math
import struct
from datetime import date, datetime
from typing import Any

HISTORY_WEEKS = 26  # half a year: the fade since the rentrée, in a packet that stays short
# day number (since 1970-01-01), full mWh, design mWh, health %, cycles (-1: unknown)
_POINT = struct.Struct("<Hfffi")
_DAY = struct.Struct("<H")  # a point's first field
_EPOCH = date(1970, 1, 1)
_EPOCH_ORDINAL = _EPOCH.toordinal()


def _day_of(day_number: int) -> date:
    return date.fromordinal(_EPOCH.toordinal() + day_number)


def _back(value: float, ndigits: int) -> float | None:
    return None if math.isnan(value) else round(value, ndigits)


def add_point(
    history: bytes,
    ts: datetime,
    *,
    full_capacity_mwh: float | None,
    design_capacity_mwh: float | None,
    health_pct: float | None,
    cycle_count: int | None,
    max_points: int = HISTORY_WEEKS,
) -> bytes:
    """The history with this reading folded in (see the module docstring)."""
    day_number = ts.toordinal() - _EPOCH_ORDINAL  # the day of ts.date()
    nan = math.nan
    point = _POINT.pack(
        day_number,
        nan if full_capacity_mwh is None else full_capacity_mwh,
        nan if design_capacity_mwh is None else design_capacity_mwh,
        nan if health_pct is None else health_pct,
        -1 if cycle_count is None else cycle_count,
    )
    if history:
        if history.endswith(point):  # the same reading the same day: nothing to change
            return history
        last_number = _DAY.unpack_from(history, len(history) - _POINT.size)[0]
        # Weeks since the Monday before the epoch (a Thursday): two days have the
        # same number exactly when they are in the same ISO week (Monday to Sunday).
        if (day_number + 3) // 7 == (last_number + 3) // 7:
            return history[: -_POINT.size] + point if day_number >= last_number else history
        if day_number < last_number:
            return history
    history += point
    excess = len(history) // _POINT.size - max_points
    return history[excess * _POINT.size :] if excess > 0 else history


def points(history: bytes) -> list[dict[str, Any]]:
    """The history as the packet shows it, oldest first."""
    out: list[dict[str, Any]] = []
    for day_number, full, design, health, cycles in _POINT.iter_unpack(history):
        out.append(
            {
                "date": _day_of(day_number).isoformat(),
                "full_capacity_mwh": _back(full, 0),
                "design_capacity_mwh": _back(design, 0),
                "health_pct": _back(health, 1),
                "cycle_count": None if cycles < 0 else cycles,
            }
        )
    return out


def to_text(history: bytes) -> str:
    """The packed points as base64 for the alert store: saving every device at every
    sweep must stay cheap (about 1 us here, against 100 us for rows of numbers)."""
    return base64.b64encode(history).decode("ascii")


def from_text(text: str, max_points: int = HISTORY_WEEKS) -> bytes:
    """What `to_text` wrote; a damaged value gives an empty history, not an error
    (the history is informative: it must never stop a collector from starting)."""
    try:
        history = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return b""
    if len(history) % _POINT.size:
        return b""
    return history[-max_points * _POINT.size :] if history else b""
