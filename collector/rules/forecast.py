"""Battery fade forecast: an online least-squares line through (days, health).

Per battery, constant memory: running means and co-moments (Welford's update), so a
battery with a year of samples costs the same as one with two. Only trusted
readings are added (the caller assesses trust first: collector.rules.trust). The slope is health
percentage points per day (negative while the battery wears); the predicted date is
where the fitted line crosses a threshold.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collector.rules.calendar import Term, term_for

SECONDS_PER_DAY = 86_400.0
MIN_SPAN_DAYS = 14.0  # below this, day-to-day gauge noise dominates the slope
BEFORE_FIRST_TERM = "before"  # predicted date earlier than the first term (already crossed)
AFTER_LAST_TERM = "after"


@dataclass(slots=True)
class FadeEstimator:
    t0_s: float | None = None  # epoch seconds of the first point: x is days since then
    n: int = 0
    mean_x_days: float = 0.0
    mean_health_pct: float = 0.0
    m2_x: float = 0.0  # sum of squared deviations of x from its mean
    c_xy: float = 0.0  # sum of co-deviations of x and health
    min_x_days: float = 0.0
    max_x_days: float = 0.0

    def add(self, ts: datetime, health_pct: float) -> None:
        epoch_s = ts.timestamp()
        if self.t0_s is None:
            self.t0_s = epoch_s
        x = (epoch_s - self.t0_s) / SECONDS_PER_DAY
        self.n += 1
        dx = x - self.mean_x_days
        self.mean_x_days += dx / self.n
        self.mean_health_pct += (health_pct - self.mean_health_pct) / self.n
        # Welford: one factor before the mean update, one after, stays exact.
        self.c_xy += dx * (health_pct - self.mean_health_pct)
        self.m2_x += dx * (x - self.mean_x_days)
        if x < self.min_x_days:
            self.min_x_days = x
        elif x > self.max_x_days:
            self.max_x_days = x

    @property
    def span_days(self) -> float:
        return self.max_x_days - self.min_x_days

    def slope_pct_per_day(self, min_span_days: float = MIN_SPAN_DAYS) -> float | None:
        """None until the points span `min_span_days`."""
        if self.n < 2 or self.span_days < min_span_days or self.m2_x <= 0:
            return None
        return self.c_xy / self.m2_x

    def predicted_date(
        self, threshold_pct: float, min_span_days: float = MIN_SPAN_DAYS
    ) -> datetime | None:
        """When the fitted line reaches `threshold_pct` (UTC); in the past when it
        already has. None when the span is too short or health is not falling."""
        slope = self.slope_pct_per_day(min_span_days)
        if slope is None or slope >= 0 or self.t0_s is None:
            return None
        x_days = self.mean_x_days + (threshold_pct - self.mean_health_pct) / slope
        # Clamp far-future predictions (a nearly flat line) to what datetime holds.
        x_days = min(x_days, 365.0 * 200)
        return datetime.fromtimestamp(self.t0_s, UTC) + timedelta(days=x_days)

    def fitted_health_pct(self, at: datetime) -> float | None:
        slope = self.slope_pct_per_day()
        if slope is None or self.t0_s is None:
            return None
        x = (at.timestamp() - self.t0_s) / SECONDS_PER_DAY
        return self.mean_health_pct + slope * (x - self.mean_x_days)


TermCounts = dict[str, dict[str, int]]  # school -> term name (or before/after) -> batteries


def forecast_by_term(
    estimates: Iterable[tuple[str, FadeEstimator]],
    terms: Sequence[Term] | Callable[[str], Sequence[Term]],
    threshold_pct: float = 60.0,
) -> TermCounts:
    """Per school, how many batteries are predicted to cross `threshold_pct` in each
    term (or in the holiday just before it: replace them during that holiday).
    `estimates` are (school UAI, estimator) pairs; `terms` the same for every school,
    or a school's terms (its holiday zone's). Batteries without a prediction, and
    schools without terms, are not counted."""
    terms_of = terms if callable(terms) else (lambda _school: terms)
    ordered_of: dict[str, list[Term]] = {}
    counts: TermCounts = defaultdict(lambda: defaultdict(int))
    for school, estimator in estimates:
        when = estimator.predicted_date(threshold_pct)
        if when is None:
            continue
        ordered = ordered_of.get(school)
        if ordered is None:
            ordered = ordered_of[school] = sorted(terms_of(school), key=lambda t: t.start)
        if not ordered:
            continue
        day = when.date()
        if ordered and day < ordered[0].start:
            bucket = BEFORE_FIRST_TERM
        else:
            term = term_for(day, ordered)
            bucket = term.name if term else AFTER_LAST_TERM
        counts[school][bucket] += 1
    return {school: dict(per_term) for school, per_term in counts.items()}
