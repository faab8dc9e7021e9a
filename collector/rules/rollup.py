"""Devices predicted to cross 80 % and 60 % health, per school and term (the
`forecast` series of the dashboards).

A device counts once per threshold: in the term where its first battery crosses
(a holiday counts with the term after it, as in `forecast_by_term`: replace during
that holiday). Crossings before the first term (already past) or after the last
are not counted. A school is listed, with every term (zeros included, so panels
show them), as soon as one of its batteries has a fade estimate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date

from collector.rules.calendar import Term, term_for
from collector.rules.state import DeviceState

THRESHOLDS_PCT = (80.0, 60.0)
Counts = dict[str, dict[str, list[int]]]  # school -> term tag -> [to 80 %, to 60 %]


def _first_crossing(state: DeviceState, threshold_pct: float) -> date | None:
    days = [
        when.date()
        for b in state.batteries.values()
        if b.fade.n >= 2 and (when := b.fade.predicted_date(threshold_pct)) is not None
    ]
    return min(days, default=None)


def devices_by_term(
    states: Iterable[DeviceState], terms: Sequence[Term] | Callable[[str], Sequence[Term]]
) -> Counts:
    """`terms`: the same for every school, or a school's terms (its holiday zone's)."""
    terms_of = terms if callable(terms) else (lambda _school: terms)
    ordered_of: dict[str, list[Term]] = {}
    counts: Counts = {}
    for state in states:
        if not any(b.fade.slope_pct_per_day() is not None for b in state.batteries.values()):
            continue
        ordered = ordered_of.get(state.school)
        if ordered is None:
            ordered = ordered_of[state.school] = sorted(
                terms_of(state.school), key=lambda t: t.start
            )
        if not ordered:
            continue
        per_term = counts.get(state.school)
        if per_term is None:
            per_term = counts[state.school] = {t.tag: [0, 0] for t in ordered}
        for index, threshold in enumerate(THRESHOLDS_PCT):
            day = _first_crossing(state, threshold)
            if day is None or day < ordered[0].start:
                continue
            term = term_for(day, ordered)
            if term is not None:
                per_term[term.tag][index] += 1
    return counts
