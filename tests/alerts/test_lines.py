"""Alert status changes and forecast counts as line protocol for Grafana
(`Alerting.take_lines`), on SQLite and the real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.alerting import Alerting
from collector.alerts.feed import StatusChange
from collector.alerts.series import alert_line, forecast_lines
from collector.rules import DeviceState, RulesConfig
from collector.rules.rollup import devices_by_term
from tests.alerts.helpers import Database
from tests.calendars import TERMS_2026_27, every_school_in
from tests.rules.factory import T0, battery, sample, step

SCHOOL, DEVICE = "0341234A", "dev-1"


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def test_open_and_resolve_become_points_once(db: Database) -> None:
    alerting = Alerting(RulesConfig(), db())
    alerting.on_samples([(SCHOOL, DEVICE, sample(T0, [battery(50.0)]))], T0)
    later = T0 + timedelta(minutes=5)
    alerting.on_samples([(SCHOOL, DEVICE, sample(later, [battery(85.0)]))], later)
    alerting.sweep(later + timedelta(hours=2))  # the collector's clock alone: no change
    assert [a.status for a in alerting.store.list_alerts()] == ["open"]
    # The laptop's next sample is past the due time (clear for an hour, sample time):
    # resolved at the due time, not at that sample's time.
    again = later + timedelta(hours=3)
    alerting.on_samples([(SCHOOL, DEVICE, sample(again, [battery(85.0)]))], again)
    key = f"{SCHOOL}/{DEVICE}/BAT0/battery_replace"
    tags = f"alert_key={key},category=hardware,device={DEVICE},rule=battery_replace,school={SCHOOL}"
    assert alerting.take_lines() == [
        f"alert,{tags},severity=warning open=1i,alert_id=1i,since_ms={_ms(T0)}i {_ms(T0)}",
        f"alert,{tags},severity=warning open=0i,alert_id=1i {_ms(later + timedelta(hours=1))}",
    ]
    assert alerting.take_lines() == []  # drained


def test_changes_made_by_people_count_and_comments_do_not(db: Database) -> None:
    alerting = Alerting(RulesConfig(), db())
    alerting.on_samples([(SCHOOL, DEVICE, sample(T0, [battery(50.0)]))], T0)
    assert len(alerting.take_lines()) == 1
    store = alerting.store
    store.acknowledge(1, "Mme Martin", at=T0 + timedelta(minutes=1))
    store.comment(1, "Mme Martin", "batterie commandée", at=T0 + timedelta(minutes=2))
    assert alerting.take_lines() == []
    store.resolve(1, "Mme Martin", at=T0 + timedelta(days=2))  # from the worklist
    [line] = alerting.take_lines()
    assert line.endswith(f" open=0i,alert_id=1i {_ms(T0 + timedelta(days=2))}")


def test_network_alerts_have_no_device_tag_and_tags_are_escaped() -> None:
    change = StatusChange(
        transition_id=7, alert_id=3, at=T0, opened=True, school="0341234A", device=None,
        rule="wifi_ap_fault", category="network", severity="critical",
        key="0341234A/ap/00000000000000aa/wifi_ap_fault",
    )  # fmt: skip
    assert alert_line(change) == (
        "alert,alert_key=0341234A/ap/00000000000000aa/wifi_ap_fault,category=network,"
        "rule=wifi_ap_fault,school=0341234A,severity=critical "
        f"open=1i,alert_id=3i {_ms(T0)}"
    )
    lines = forecast_lines({"03 41,=A": {"2026-27 T2": [3, 1]}}, T0)
    assert lines == [
        rf"forecast,school=03\ 41\,\=A,term=2026-27\ T2 devices_below_80=3i,devices_below_60=1i {_ms(T0)}"
    ]


def _fading(device: str, school: str, start_pct: float, slope_per_day: float) -> DeviceState:
    st = DeviceState(device=device, school=school)
    for day in range(35):
        step(st, sample(T0 + timedelta(days=day), [battery(start_pct + slope_per_day * day)]))
    return st


def test_devices_counted_in_the_term_of_their_first_crossing() -> None:
    states = [
        # 80 % on day 50 (22 Dec, Christmas holiday: counts with the term after it);
        # 60 % on day 250 (July 2027, after the last term: not counted).
        _fading("dev-a", "0341234A", 85.0, -0.1),
        # 80 % on day -50 (13 Sep, term 1); 60 % on day 150 (1 Apr 2027, term 4).
        _fading("dev-b", "0341234A", 75.0, -0.1),
        _fading("dev-c", "0340001A", 90.0, 0.0),  # a flat estimate: listed, no crossing
        DeviceState(device="dev-d", school="0310003C"),  # no estimate: school not listed
    ]
    counts = devices_by_term(states, TERMS_2026_27)
    assert counts == {
        "0341234A": {
            "2026-27 T1": [1, 0], "2026-27 T2": [0, 0], "2026-27 T3": [1, 0],
            "2026-27 T4": [0, 1], "2026-27 T5": [0, 0],
        },
        "0340001A": {"2026-27 T1": [0, 0], "2026-27 T2": [0, 0], "2026-27 T3": [0, 0],
                     "2026-27 T4": [0, 0], "2026-27 T5": [0, 0]},
    }  # fmt: skip


ESCAPED_SPACE = "\\ "  # a space in a line-protocol tag value


def test_forecast_points_at_most_once_per_forecast_interval(db: Database) -> None:
    store = db()
    alerting = Alerting(
        RulesConfig(), store, sweep_interval_s=60, forecast_interval_s=3600,
        calendar=every_school_in("C"),
    )  # fmt: skip
    for day in range(35):
        ts = T0 + timedelta(days=day)
        alerting.on_samples([(SCHOOL, DEVICE, sample(ts, [battery(85.0 - 0.1 * day)]))], ts)
    alerting.take_lines()
    now = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
    alerting.sweep(now)
    alerting.sweep(now + timedelta(minutes=5))  # a sweep, but within the hour
    lines = alerting.take_lines()
    # The terms of zone C from this school year on (the bundled data holds 2027-28):
    # 80 % on 22 Dec 2026 (Noël: counts in T3), 60 % in July 2027 (the summer: 2027-28 T1).
    expected = [
        (f"{year} T{n}", int((year, n) == ("2026-27", 3)), int((year, n) == ("2027-28", 1)))
        for year in ("2026-27", "2027-28")
        for n in (1, 2, 3, 4, 5)
    ]
    assert lines == [
        f"forecast,school={SCHOOL},term={term.replace(' ', ESCAPED_SPACE)} "
        f"devices_below_80={below_80}i,devices_below_60={below_60}i {_ms(now)}"
        for term, below_80, below_60 in expected
    ]
    # The same counts are kept in the store for the web worklist and region overview.
    kept = store.forecasts.of()[SCHOOL]
    assert [(f.term, f.devices_below_80, f.devices_below_60) for f in kept] == expected
    assert {f.computed_at for f in kept} == {now}
    alerting.sweep(now + timedelta(hours=1))
    assert len(alerting.take_lines()) == len(expected)


def test_tick_sweeps_only_when_the_interval_has_passed(db: Database) -> None:
    alerting = Alerting(RulesConfig(), db(), sweep_interval_s=300)
    assert alerting.tick(T0)  # never swept yet
    assert not alerting.tick(T0 + timedelta(seconds=299))
    assert alerting.tick(T0 + timedelta(seconds=300))


def test_a_restart_resumes_where_the_time_series_got_to(db: Database) -> None:
    """Changes made while no collector ran (a resolve from the worklist) are written
    at the next start; changes already written are not written again."""
    store = db()
    first = Alerting(RulesConfig(), store)
    first.on_samples([(SCHOOL, DEVICE, sample(T0, [battery(50.0)]))], T0)
    assert len(first.take_lines()) == 1
    first.lines_written()
    store.resolve(1, "Mme Martin", at=T0 + timedelta(days=1))  # collector stopped
    second = Alerting(RulesConfig(), store)  # the next start
    [line] = second.take_lines()
    assert line.endswith(f" open=0i,alert_id=1i {_ms(T0 + timedelta(days=1))}")


def test_lines_taken_but_not_written_are_taken_again_after_a_restart(db: Database) -> None:
    store = db()
    first = Alerting(RulesConfig(), store)
    first.on_samples([(SCHOOL, DEVICE, sample(T0, [battery(50.0)]))], T0)
    taken = first.take_lines()  # then the store write fails and the collector dies
    assert len(taken) == 1
    assert Alerting(RulesConfig(), store).take_lines() == taken
    assert store.feed.saved_cursor() is None
    store.feed.save_cursor(5)
    store.feed.save_cursor(3)  # never backwards (another collector was behind)
    assert store.feed.saved_cursor() == 5
