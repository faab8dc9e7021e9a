"""What the templates show: French labels, Paris times, and the charts of a page."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any

from markupsafe import Markup

from collector.alerts.model import Alert
from collector.alerts.store import AlertNotFound
from collector.calendar import default_calendar
from collector.notify.render import PARIS, SEVERITY_FR, STATUS_FR, device_label
from collector.notify.routing import CATEGORY_FR
from collector.worklist import DeviceView, Scope, Worklist
from lordi.web.charts import Line, line_chart
from lordi.web.series import CHARGE, RSSI, SeriesReader, SeriesUnavailable


class _TermNames(Mapping[str, str]):
    """Term tag ("2026-27 T2") -> name ("2026-2027 P2 (Toussaint-Noël)"), from the
    bundled school calendar, loaded at the first page that shows a forecast. A tag of
    a zone or year it does not hold shows as itself."""

    @functools.cached_property
    def _names(self) -> dict[str, str]:
        calendar = default_calendar()
        names: dict[str, str] = {}
        for zone in calendar.zones.values():
            for term in zone.terms:
                names.setdefault(term.tag, term.name)
        return names

    def __getitem__(self, tag: str) -> str:
        return self._names[tag]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


TERM_NAMES = _TermNames()
SUBJECT_FR = {
    "battery": "batterie",
    "device": "ordinateur",
    "access_point": "point d'accès",
    "school": "établissement",
}


def fr_time(at: datetime | None) -> str:
    return "—" if at is None else at.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")


def fr_date(at: datetime | date | None) -> str:
    if at is None:
        return "—"
    if isinstance(at, datetime):
        at = at.astimezone(PARIS).date()
    return at.strftime("%d/%m/%Y")


def age(at: datetime | None, now: datetime | None = None) -> str:
    """"3 h", "5 j": how long ago, as a technician counts."""
    if at is None:
        return "—"
    hours = ((now or datetime.now(UTC)) - at).total_seconds() / 3600
    if hours < 1:
        return f"{max(hours * 60, 0):.0f} min"
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} j"


def forecast_date(at: datetime | None, now: datetime) -> str:
    """A predicted crossing: its date, or that it is already past."""
    if at is None:
        return "pas de prévision"
    return f"déjà atteint (vers le {fr_date(at)})" if at <= now else fr_date(at)


def subject_label(alert: Alert, asset_tag: str | None) -> str:
    return device_label(alert, asset_tag)


EVIDENCE_FR = {  # the readings' names as a technician reads them (others shown as named)
    "battery": "batterie",
    "health_pct": "santé (%)",
    "design_capacity_mwh": "capacité d'origine (mWh)",
    "full_capacity_mwh": "capacité à pleine charge (mWh)",
    "cycle_count": "cycles de charge",
    "plugged": "branché",
    "status": "état de charge",
    "percent": "niveau de charge (%)",
    "temperature_c": "température (°C)",
    "rssi_dbm": "signal Wi-Fi (dBm)",
    "disconnects": "déconnexions Wi-Fi",
    "bssid_hash": "point d'accès",
    "devices_degraded": "ordinateurs dégradés",
    "devices_seen": "ordinateurs vus",
    "devices_cut_off": "ordinateurs connectés au Wi-Fi sans accès au serveur",
    "cut_off_s": "temps sans accès au serveur (s)",
    "online_s": "temps avec accès au serveur (s)",
    "failures": "causes vues par les ordinateurs",
    "dns_failed_devices": "ordinateurs sans résolution DNS",
    "gateway_down_devices": "ordinateurs sans réponse de la passerelle",
    "access_points_cut_off": "bornes sans accès au serveur",
    "last_seen": "dernier relevé",
}
ACTION_FR = {
    "prendre": "prise en charge",
    "commenter": "commentaire",
    "resoudre": "résolution",
    "escalader": "escalade",
}

GLOBALS: dict[str, Any] = {
    "ACTION_FR": ACTION_FR,
    "EVIDENCE_FR": EVIDENCE_FR,
    "SEVERITY_FR": SEVERITY_FR,
    "STATUS_FR": STATUS_FR,
    "CATEGORY_FR": CATEGORY_FR,
    "SUBJECT_FR": SUBJECT_FR,
    "TERM_NAMES": TERM_NAMES,
    "subject_label": subject_label,
    "forecast_date": forecast_date,
    "age": age,
}
FILTERS: dict[str, Any] = {"fr_time": fr_time, "fr_date": fr_date}


def _unavailable(what: str, reason: str) -> Markup:
    return Markup('<p class="empty">{} : historique indisponible ({}).</p>').format(what, reason)


def capacity_chart(view: DeviceView) -> list[Markup]:
    charts = []
    for battery in view.batteries:
        points = [
            (datetime.fromisoformat(p["date"]).replace(tzinfo=UTC), float(p["health_pct"]))
            for p in battery.history
            if p.get("health_pct") is not None
        ]
        charts.append(
            line_chart(
                [Line(f"santé de la batterie {battery.name} (%)", points)],
                title=f"Santé de la batterie {battery.name}, relevé hebdomadaire",
                unit="%",
                y_range=(50.0, 100.0),
                marks=[(60.0, "remplacement 60 %"), (80.0, "surveillance 80 %")],
            )
        )
    return charts


def series_charts(series: SeriesReader, school: str, device: str) -> list[Markup]:
    if not series.enabled:
        return []
    days = series.settings.days
    out = []
    for field, title, unit, y_range in (
        (CHARGE, f"Niveau de charge, {days} derniers jours", "%", (0.0, 100.0)),
        (RSSI, f"Signal Wi-Fi, {days} derniers jours", "dBm", (-90.0, -40.0)),
    ):
        try:
            points = series.history(field, school, device)
        except SeriesUnavailable as exc:
            out.append(_unavailable(title, str(exc)))
            continue
        label = "charge (%)" if field is CHARGE else "signal (dBm)"
        marks = [(-75.0, "signal faible")] if field is RSSI else []
        out.append(line_chart([Line(label, points)], title=title, unit=unit, y_range=y_range,
                              marks=marks))  # fmt: skip
    return out


def device_charts(series: SeriesReader, view: DeviceView) -> list[Markup]:
    return capacity_chart(view) + series_charts(series, view.record.school, view.record.device)


def alert_charts(
    worklist: Worklist, series: SeriesReader, alert: Alert, scope: Scope
) -> list[Markup]:
    """The laptop's battery and charge history beside a laptop's alert."""
    if alert.device is None:
        return []
    try:
        view = worklist.device(scope, alert.school, alert.device)
    except AlertNotFound:  # no saved state for this laptop yet
        return series_charts(series, alert.school, alert.device)
    return device_charts(series, view)
