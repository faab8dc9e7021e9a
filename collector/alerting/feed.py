"""What the alerting writes to the time series beside the telemetry: the alerts'
status changes (read back from the store's transitions, whoever made them) and, at
most once per `forecast_interval_s` of sweeps, the devices predicted to cross 80 % /
60 % per school and term, the terms of the school's holiday zone
(collector.alerts.series has the line formats).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from collector.alerts.series import alert_lines, forecast_lines
from collector.alerts.store import AlertStore
from collector.rules.calendar import Calendar
from collector.rules.rollup import devices_by_term
from collector.rules.silent import local_day
from collector.rules.state import DeviceState


class AlertLines:
    def __init__(
        self, store: AlertStore, forecast_interval_s: float, calendar: Calendar
    ) -> None:
        self.store = store
        self.forecast_interval = timedelta(seconds=forecast_interval_s)
        self.calendar = calendar  # each school's terms, from its holiday zone
        self._last_forecast: datetime | None = None
        self._lines: list[str] = []  # forecast points waiting for `take`
        # Status changes already written as lines: where the last run got to, else
        # from the first one (the same points if written before).
        self._cursor = store.feed.saved_cursor() or 0
        self._written = self._cursor

    def forecast(self, states: Iterable[DeviceState], now: datetime) -> None:
        """Queue the forecast counts, if the interval has passed since the last ones."""
        if self._last_forecast is not None and now - self._last_forecast < self.forecast_interval:
            return
        self._last_forecast = now
        today = local_day(now)  # this school year's terms and later ones
        counts = devices_by_term(states, lambda school: self.calendar.terms_for(school, today))
        self.store.forecasts.put(counts, now)  # for the worklist and the region overview
        self._lines += forecast_lines(counts, now)

    def take(self) -> list[str]:
        """Line protocol not yet taken: alert open/resolve changes, forecast counts."""
        changes, self._cursor = self.store.feed.after(self._cursor)
        lines, self._lines = [*alert_lines(changes), *self._lines], []
        return lines

    def written(self) -> None:
        """Everything `take` returned is in the time series: remember how far (a
        restart resumes there; before that, a crash writes them again, which gives
        the same points)."""
        if self._cursor != self._written:
            self.store.feed.save_cursor(self._cursor)
            self._written = self._cursor
