"""The same scenario on SQLite and PostgreSQL, and collectors racing on PostgreSQL."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from collector.alerts.engine import AlertEngine
from collector.alerts.model import Finding
from collector.alerts.store import AlertStore
from collector.rules.config import RuleTiming
from tests.alerts.helpers import (
    KEY,
    SCOPE,
    TIMING,
    Database,
    at,
    clocks_of,
    database,
    finding,
    run,
    sweep,
)

FLAPPER = "0310001A/PC-0077/charging_fault"
AP = "0310001A/ap/9f2c4e/wifi_ap_fault"  # a window rule: the school's clock fires it
AP_TIMING = RuleTiming(min_duration_s=300, clear_duration_s=120, repeat_interval_s=3600)


def timing(rule: str) -> RuleTiming:
    return AP_TIMING if rule == "wifi_ap_fault" else TIMING


def ap_finding(active: bool, at_s: float) -> Finding:
    return finding(
        active, at_s, key=AP, rule="wifi_ap_fault", subject="access_point", device=None,
        category="network", severity="warning", summary="12 postes dégradés sur la borne",
        action="Signaler la borne au prestataire réseau",
        evidence={"devices_degraded": 12 if active else 1, "at": at(at_s)},
    )  # fmt: skip


def flapper(active: bool, at_s: float) -> Finding:
    return finding(active, at_s, key=FLAPPER, rule="charging_fault", severity="warning")


# (collector's clock in s, findings, clocks moved without a finding) — a battery to
# replace, a flapping charger, a failing access point; each step ends with a sweep.
SCENARIO: list[tuple[float, list[Finding], dict[str, float]]] = [
    (0, [finding(True, 0), flapper(True, 0), ap_finding(True, 0)], {}),
    (60, [finding(True, 60), flapper(True, 55), flapper(False, 58)], {}),  # 58 ends it
    (90, [flapper(True, 90), ap_finding(True, 90)], {}),
    (150, [flapper(True, 150)], {}),
    (300, [ap_finding(True, 300)], {}),
    (400, [flapper(False, 400)], {}),
    (520, [], {"d:0310001A/PC-0077": 520}),
    (600, [flapper(True, 600)], {}),
    (660, [flapper(True, 660)], {}),
    (700, [flapper(False, 700)], {}),
    (820, [], {"d:0310001A/PC-0077": 820}),
    (3660, [finding(True, 3660)], {}),
    (4000, [ap_finding(False, 4000)], {}),
    (4200, [finding(False, 4200)], {"s:0310001A": 4200}),
    (4320, [], {"d:0310001A/PC-0042": 4320}),
]


def play(store: AlertStore, *, cache: bool | None = None) -> dict[str, Any]:
    """Run the scenario, with a technician acting in the middle; dump everything."""
    engine = AlertEngine(store, timing, cache=cache)
    sent: list[tuple[float, str, int, str, dict[str, Any]]] = []
    for now_s, findings, more in SCENARIO:
        notes = engine.process(findings, clocks_of(findings, more), at(now_s))
        for note in notes + engine.sweep(at(now_s)):
            sent.append((now_s, note.kind, note.alert.id, note.alert.key, note.evidence))
        if now_s == 300:
            ap_alert = store.find_open(AP)
            assert ap_alert is not None
            store.acknowledge(ap_alert.id, "m.durand", comment="borne du CDI", at=at(310))
            store.escalate(ap_alert.id, "Prestataire réseau", "m.durand", at=at(320))
    engine.flush()
    alerts = store.list_alerts()
    keys = [KEY, FLAPPER, AP]
    return {
        "sent": sent,
        "alerts": [asdict(a) for a in alerts],
        "transitions": {a.id: [asdict(t) for t in store.transitions_of(a.id)] for a in alerts},
        "states": {k: asdict(s) for k, s in store.engine_states.get_many(keys).items()},
    }


def test_same_scenario_same_alerts_on_sqlite_and_postgresql(tmp_path: Path) -> None:
    with (
        database("sqlite", str(tmp_path / "state.sqlite3")) as lite,
        database("postgresql", "") as pg,
    ):
        on_sqlite, on_postgresql = play(lite()), play(pg())
    assert on_sqlite == on_postgresql
    sent = [(now_s, kind, alert_id, key) for now_s, kind, alert_id, key, _ in on_sqlite["sent"]]
    assert sent == [
        (60, "opened", 1, KEY),
        (150, "opened", 2, FLAPPER),  # pending since 90: the inactive at 58 ended it
        (300, "opened", 3, AP),  # per-rule minimum duration 300 s, pending since 0
        (520, "resolved", 2, FLAPPER),  # the device's clock reached 400 + 120
        # 660: the charger flapped back within 1 h: alert 2 re-opened, silently;
        # 820: resolved again, silently (the last news was already "resolved").
        (3660, "reminder", 1, KEY),  # the AP alert is acknowledged: never reminded
        (4200, "resolved", 3, AP),  # acknowledged, yet its resolution is news
        (4320, "resolved", 1, KEY),
    ]
    statuses = [
        (a["id"], a["status"], a["since"], a["opened_at"], a["resolved_at"])
        for a in on_sqlite["alerts"]
    ]
    assert statuses == [
        (1, "resolved", at(0), at(60), at(4320)),
        (2, "resolved", at(90), at(150), at(820)),  # since its first episode
        (3, "resolved", at(0), at(300), at(4120)),  # due time, before the school's clock
    ]
    assert on_sqlite["alerts"][2]["escalated_to"] == "Prestataire réseau"
    flaps = [(t["from_status"], t["to_status"], t["at"]) for t in on_sqlite["transitions"][2]]
    assert flaps == [
        (None, "open", at(150)),
        ("open", "resolved", at(520)),
        ("resolved", "open", at(660)),
        ("open", "resolved", at(820)),
    ]
    ap_history = [(t["to_status"], t["by"], t["evidence"]) for t in on_sqlite["transitions"][3]]
    assert ap_history == [
        ("open", "engine", {"devices_degraded": 12, "at": at(300).isoformat()}),
        ("acknowledged", "m.durand", {}),
        ("acknowledged", "m.durand", {}),  # the escalation
        ("resolved", "engine", {"devices_degraded": 1, "at": at(4000).isoformat()}),
    ]
    assert {k: s["scope"] for k, s in on_sqlite["states"].items()} == {
        KEY: "d:0310001A/PC-0042",
        FLAPPER: "d:0310001A/PC-0077",
        AP: "s:0310001A",
    }


def test_racing_collectors_open_one_alert_per_key(postgres: Database) -> None:
    """Two collectors on one PostgreSQL get the same findings at the same instant."""
    engines = [AlertEngine(postgres(), lambda _rule: RuleTiming()) for _ in range(2)]
    keys = [f"0310001A/PC-{n:04d}/BAT0/battery_replace" for n in range(30)]
    barrier = threading.Barrier(2)

    def collector(engine: AlertEngine) -> list[tuple[str, str]]:
        sent: list[tuple[str, str]] = []
        for key in keys:
            barrier.wait()
            found = [finding(True, 0, key=key)]
            sent += [(n.kind, n.alert.key) for n in engine.process(found, clocks_of(found), at(0))]
        return sent

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(collector, engines))
    store = postgres()
    assert sorted(a.key for a in store.list_alerts(status="open")) == sorted(keys)
    assert sorted(results[0] + results[1]) == sorted(("opened", key) for key in keys)


def test_insert_that_loses_the_race_returns_the_winner(postgres: Database) -> None:
    """The unique index, not the pre-check, decides: the winner commits while we insert."""
    winner_store, loser_store = postgres(), postgres()
    winner = sa.create_engine(postgres.url, connect_args=postgres.connect_args)
    first = winner_store.open_alert(finding(True, 0, key="0310001A/PC-0001/other"), at(0))
    with winner.connect() as conn:
        tx = conn.begin()
        conn.execute(
            sa.text(
                "INSERT INTO alerts (key, rule, subject, school, category, severity, status,"
                " opened_at, updated_at, summary, action, evidence) VALUES (:key, 'battery_replace',"
                " 'battery', '0310001A', 'hardware', 'critical', 'open', :at, :at, '', '', '{}')"
            ),
            {"key": KEY, "at": at(10)},
        )
        with ThreadPoolExecutor(1) as pool:
            racing = pool.submit(loser_store.try_open_alert, finding(True, 0), at(20))
            time.sleep(0.5)  # the loser is now blocked on the uncommitted unique key
            assert not racing.done()
            tx.commit()
            alert, created = racing.result(timeout=10)
    winner.dispose()
    assert (created, alert.key, alert.opened_at) == (False, KEY, at(10))
    assert alert.id == first.id + 1
    assert [a.key for a in winner_store.list_alerts(status="open")] == [
        "0310001A/PC-0001/other", KEY,
    ]  # fmt: skip
    assert loser_store.transitions_of(first.id)[0].to_status == "open"


def test_an_alert_another_collector_opened_first_is_not_notified_twice(
    postgres: Database,
) -> None:
    store = postgres()
    engine = AlertEngine(store, timing)
    assert run(engine, 0, finding(True, 0)) == []
    # Both collectors read this state; the other one's insert wins (and it notifies).
    other, created = postgres().try_open_alert(
        finding(True, 60), at(60), since=at(0), notify="opened"
    )
    assert created
    assert run(engine, 60, finding(True, 60)) == []  # created=False: told by the other
    state = store.engine_states.get(KEY)
    assert state is not None
    assert (state.alert_id, state.alert_open, state.last_notified_kind) == (
        other.id,
        True,
        "opened",
    )
    assert sweep(engine, 3659) == []
    assert sweep(engine, 3660) == [("reminder", other.id)]  # this collector goes on reminding


def test_an_alert_another_collector_opened_first_is_reminded(postgres: Database) -> None:
    store = postgres()
    engine = AlertEngine(store, timing)
    assert run(engine, 60, finding(True, 0), finding(True, 60)) == [("opened", 1)]
    assert run(engine, 220, finding(False, 100), clocks={SCOPE: 220}) == [("resolved", 1)]
    assert run(engine, 4000, finding(True, 4000)) == []  # a new episode, > 1 h later
    # Both collectors read this state; the other one's insert wins the race (and it
    # notifies); then this collector's state write is the one that stays.
    other, created = postgres().try_open_alert(
        finding(True, 4060), at(4060), since=at(4000), notify="opened"
    )
    assert (created, other.id) == (True, 2)
    assert run(engine, 4060, finding(True, 4060)) == []  # created=False: told by the other
    assert store.find_open(KEY) == other
    assert sweep(engine, 4060 + 3600) == [("reminder", 2)]
