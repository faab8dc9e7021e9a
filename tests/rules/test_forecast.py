from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from collector.rules.calendar import Term
from collector.rules.forecast import (
    AFTER_LAST_TERM,
    BEFORE_FIRST_TERM,
    FadeEstimator,
    forecast_by_term,
)
from collector.rules.state import BatteryState
from tests.calendars import TERMS_2026_27
from tests.rules.factory import battery, feed

START = datetime(2026, 9, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def linear(
    days: int, start_pct: float = 98.0, slope: float = -0.05, per_day: int = 1
) -> FadeEstimator:
    est = FadeEstimator()
    for i in range(days * per_day):
        at = START + DAY * i / per_day
        est.add(at, start_pct + slope * i / per_day)
    return est


def test_exact_slope_and_dates_on_a_linear_fade() -> None:
    est = linear(60)
    assert est.slope_pct_per_day() == pytest.approx(-0.05, abs=1e-12)
    # 98 -> 80 at 0.05 points a day: 360 days; -> 60: 760 days
    assert est.predicted_date(80) == pytest.approx(START + 360 * DAY, abs=timedelta(seconds=1))
    assert est.predicted_date(60) == pytest.approx(START + 760 * DAY, abs=timedelta(seconds=1))
    assert est.fitted_health_pct(START + 100 * DAY) == pytest.approx(93.0, abs=1e-9)
    assert est.n == 60
    assert est.span_days == 59.0


def test_many_samples_a_day_same_line() -> None:
    est = linear(30, slope=-0.1, per_day=48)  # every 30 min
    assert est.slope_pct_per_day() == pytest.approx(-0.1, abs=1e-9)
    assert est.predicted_date(60) == pytest.approx(START + 380 * DAY, abs=timedelta(seconds=1))


def test_not_enough_span() -> None:
    est = linear(14)  # 13 days between first and last point
    assert est.span_days == 13.0
    assert est.slope_pct_per_day() is None
    assert est.predicted_date(80) is None
    assert linear(15).slope_pct_per_day() == pytest.approx(-0.05)
    assert FadeEstimator().predicted_date(80) is None


def test_no_date_when_health_is_not_falling() -> None:
    assert linear(60, slope=0.0).predicted_date(80) is None
    assert linear(60, slope=0.02).predicted_date(80) is None


def test_crossed_threshold_gives_a_past_date() -> None:
    est = linear(60, start_pct=70.0, slope=-0.1)
    when = est.predicted_date(80)
    assert when == pytest.approx(START - 100 * DAY, abs=timedelta(seconds=1))


def test_out_of_order_points_keep_the_fit() -> None:
    est = FadeEstimator()
    for i in [30, 0, 10, 59, 45, 20]:
        est.add(START + i * DAY, 98.0 - 0.05 * i)
    assert est.slope_pct_per_day() == pytest.approx(-0.05, abs=1e-12)
    assert est.span_days == 59.0


def test_untrusted_points_are_ignored_by_the_battery_state() -> None:
    st = BatteryState()
    for i in range(60):
        feed(st, battery(98.0 - 0.05 * i), START + i * DAY)
        if i == 30:  # implausible readings in between
            feed(st, battery(health=None, full_capacity_mwh=80_000.0), START + i * DAY)
            feed(st, battery(health=None, full_capacity_mwh=3_000.0), START + i * DAY)
    assert st.fade.n == 60
    assert st.untrusted_samples == 2
    assert st.fade.slope_pct_per_day() == pytest.approx(-0.05, abs=1e-12)


def crossing_60_on(day: date) -> FadeEstimator:
    """A battery falling 0.1 point a day from 1 Sept 2026 that reaches 60 % on `day`."""
    days = (datetime(day.year, day.month, day.day, 12, tzinfo=UTC) - START).days
    return linear(30, start_pct=60.0 + 0.1 * days, slope=-0.1)


def test_forecast_by_term_per_school() -> None:
    estimates = [
        ("0341234A", crossing_60_on(date(2026, 11, 20))),  # in P2
        ("0341234A", crossing_60_on(date(2026, 12, 28))),  # Noël holiday -> P3
        ("0341234A", crossing_60_on(date(2027, 1, 15))),  # P3
        ("0341234A", crossing_60_on(date(2026, 8, 15))),  # before the first term
        ("0341234A", crossing_60_on(date(2027, 9, 15))),  # after the last term
        ("0341234A", linear(60, slope=0.0)),  # no prediction: not counted
        ("0311111B", crossing_60_on(date(2026, 11, 20))),
    ]
    counts = forecast_by_term(estimates, TERMS_2026_27)
    assert counts == {
        "0341234A": {
            "2026-2027 P2 (Toussaint-Noël)": 1,
            "2026-2027 P3 (Noël-Hiver)": 2,
            BEFORE_FIRST_TERM: 1,
            AFTER_LAST_TERM: 1,
        },
        "0311111B": {"2026-2027 P2 (Toussaint-Noël)": 1},
    }


def test_forecast_by_term_with_caller_terms_and_threshold() -> None:
    terms = [
        Term("S2", date(2027, 1, 1), date(2027, 6, 30)),
        Term("S1", date(2026, 9, 1), date(2026, 12, 31)),
    ]
    est = linear(60)  # 80 % on 27 Aug 2027, 60 % in 2028
    assert forecast_by_term([("X", est)], terms, threshold_pct=80) == {"X": {AFTER_LAST_TERM: 1}}
    early = linear(60, start_pct=85.0)  # 80 % after 100 days: 10 Dec 2026
    assert forecast_by_term([("X", early)], terms, threshold_pct=80) == {"X": {"S1": 1}}
