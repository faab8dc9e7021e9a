"""`lordi simulate`: deterministic output, labels that match the injected faults,
reports only on school days and in school hours."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from lordi.cli import main
from lordi.sim.calendar import PARIS, SchoolCalendar
from lordi.sim.faults import Faults
from lordi.simulate import Options, parse_faults, parse_reach, run

HOLIDAY_RUN = Options(  # Thu 15 Oct 2026 .. Thu 12 Nov 2026: Toussaint and 11 November
    schools=2,
    per_school=6,
    start=date(2026, 10, 15),
    days=29,
    seed=3,
    faults=Faults(charger_share=0, silent_share=0, lie_share=0, failing_aps=0),
    interval_min=60,
)
FAULTY = Options(
    schools=2,
    per_school=30,
    start=date(2026, 11, 16),
    days=5,
    seed=5,
    faults=Faults(charger_share=0.15, silent_share=0.1, lie_share=0.15, failing_aps=1),
    interval_min=30,
)


def messages(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "messages.jsonl").open(encoding="utf-8")]


def samples(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    return [(m["payload"]["device"], s) for m in messages(folder) for s in m["payload"]["samples"]]


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.open(encoding="utf-8")]


def local(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(PARIS)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faulty")
    run(FAULTY, out, quiet=True)
    return out


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    opts = Options(
        schools=1, per_school=5, start=date(2026, 11, 16), days=2, seed=9, interval_min=60
    )
    run(opts, tmp_path / "a", quiet=True)
    run(opts, tmp_path / "b", quiet=True)
    for name in ("messages.jsonl", "labels.jsonl", "devices.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    run(Options(**{**opts.__dict__, "seed": 10}), tmp_path / "c", quiet=True)
    a = (tmp_path / "a" / "messages.jsonl").read_bytes()
    assert a != (tmp_path / "c" / "messages.jsonl").read_bytes()


def test_reports_only_on_school_days_in_school_hours(tmp_path: Path) -> None:
    summary = run(HOLIDAY_RUN, tmp_path, quiet=True)
    days = Counter(local(s["ts"]).date() for _, s in samples(tmp_path))
    # Toussaint 2026: Sat 17 Oct .. Sun 1 Nov; 11 November is a public holiday.
    assert sorted(days) == [
        date(2026, 10, 15),
        date(2026, 10, 16),
        date(2026, 11, 2),
        date(2026, 11, 3),
        date(2026, 11, 4),
        date(2026, 11, 5),
        date(2026, 11, 6),
        date(2026, 11, 9),
        date(2026, 11, 10),
        date(2026, 11, 12),
    ]
    assert summary["school_days"] == len(days)
    for _, s in samples(tmp_path):
        t = local(s["ts"])
        assert 8 <= t.hour < (12 if t.weekday() == 2 else 17)
    assert min(local(s["ts"]).time() for _, s in samples(tmp_path)).hour == 8


def test_calendar_matches_the_collectors() -> None:
    cal = SchoolCalendar()
    assert cal.report_times(date(2026, 11, 14)) == []  # a Saturday
    assert cal.report_times(date(2026, 10, 20)) == []  # Toussaint
    wednesday = cal.report_times(date(2026, 11, 18))
    assert wednesday[0] == datetime(2026, 11, 18, 7, 0, tzinfo=UTC)  # 8:00 in Paris
    assert wednesday[-1] == datetime(2026, 11, 18, 10, 55, tzinfo=UTC)
    assert len(cal.report_times(date(2026, 11, 19))) == 9 * 12


def test_labels_match_injected_faults(faulty: Path) -> None:
    labels = jsonl(faulty / "labels.jsonl")
    by_label: dict[str, set[str]] = {}
    for row in labels:
        by_label.setdefault(row["label"], set()).add(row.get("device") or row["bssid"])
    seen: dict[str, list[dict[str, Any]]] = {}
    for device, s in samples(faulty):
        seen.setdefault(device, []).append(s)
    # Silent laptops stop in the middle of the first school day, the others go on.
    last_day = {d: max(local(s["ts"]).date() for s in ss) for d, ss in seen.items()}
    assert by_label["device_silent"]
    assert {d for d, day in last_day.items() if day == date(2026, 11, 16)} == by_label[
        "device_silent"
    ]
    # A pack that always lies reports full > design in every sample.
    for device in by_label["untrusted_full_gt_design"]:
        assert all(
            b["full_capacity_mwh"] > b["design_capacity_mwh"]
            for s in seen[device]
            for b in s["batteries"]
        )
    # A one-off collapse shows exactly once (30 % of design).
    for device in by_label["one_off_collapse"]:
        low = [b for s in seen[device] for b in s["batteries"] if b["health_pct"] < 31]
        assert len(low) == 1
    # Broken chargers: plugged and "not_charging" at some point, never "charging".
    for device in by_label["charging_fault"]:
        statuses = {b["status"] for s in seen[device] for b in s["batteries"]}
        assert "charging" not in statuses
    # The failing access point: its laptops are often disconnected, listed by the label.
    (ap,) = [r for r in labels if r["label"] == "access_point_fault"]
    down = [s["wifi"]["connected"] for d in ap["devices"] for s in seen[d]]
    assert down.count(False) / len(down) > 0.2
    devices = {r["device"]: r for r in jsonl(faulty / "devices.jsonl")}
    for device in by_label.get("battery_replace", set()):
        assert devices[device]["health_pct"] < 60
    untrusted = by_label["untrusted_full_gt_design"]
    watch = {
        d
        for d, r in devices.items()
        if d not in untrusted
        and r["health_pct"] >= 60
        and (r["health_pct"] < 80 or r["cycles"] >= 1000)
    }
    assert watch == by_label["battery_watch"]
    assert all(
        r["since"].startswith("2026-11-16T") for r in labels if r["label"] == "device_silent"
    )


def test_faults_none_labels_only_worn_packs(tmp_path: Path) -> None:
    run(
        Options(**{**FAULTY.__dict__, "faults": parse_faults("none"), "days": 1}),
        tmp_path,
        quiet=True,
    )
    assert {r["label"] for r in jsonl(tmp_path / "labels.jsonl")} <= {
        "battery_replace",
        "battery_watch",
    }


def test_parse_faults() -> None:
    assert parse_faults("charger=0.1,aps=2") == Faults(charger_share=0.1, failing_aps=2)
    with pytest.raises(ValueError, match="'bogus=1'"):
        parse_faults("bogus=1")


def test_cli_needs_one_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--days", "1"]) == 2
    assert "--out" in capsys.readouterr().err


def test_start_on_a_holiday_has_no_samples(tmp_path: Path) -> None:
    opts = Options(**{**HOLIDAY_RUN.__dict__, "start": date(2026, 10, 19), "days": 7})
    summary = run(opts, tmp_path, quiet=True)
    assert summary["samples"] == 0 and messages(tmp_path) == []


REACH_RUN = Options(  # Mon 16 and Tue 17 Nov 2026: one school of each reach fault
    schools=3,
    per_school=8,
    start=date(2026, 11, 16),
    days=2,
    seed=5,
    faults=parse_faults("none"),
    interval_min=10,
    reach=parse_reach("dns=1,portal=1,slow=1"),
)


def test_reach_faults_cut_schools_off_with_good_radio(tmp_path: Path) -> None:
    summary = run(REACH_RUN, tmp_path, quiet=True)
    assert summary["laptops_not_drained"] == 0
    rows = {r["label"]: r for r in jsonl(tmp_path / "labels.jsonl") if "school" in r}
    dns, portal, slow = rows["school_unreachable"], rows["ap_unreachable"], rows["slow_morning"]
    assert len({dns["school"], portal["school"], slow["school"]}) == 3
    by_school: dict[str, list[dict[str, Any]]] = {}
    for m in messages(tmp_path):
        by_school.setdefault(m["payload"]["school"], []).extend(m["payload"]["samples"])
    # The DNS outage: the second day's first three hours, every laptop, DNS failed.
    cut = [s for s in by_school[dns["school"]] if dns["start"] < _iso(s["ts"]) < dns["end"]]
    assert len(cut) >= 5 * 17  # 10-minute reports, a student away now and then
    blocks = [s["connectivity"] for s in cut]
    assert all(c["school_online_s"] == 0 and not c["broker_ok"] for c in blocks)
    # Just after a Wi-Fi drop the agent was off the school network: nothing counted.
    failed = [
        c for c in blocks if (c["failure"], c["dns_ok"], c["gateway_ok"]) == ("dns", False, True)
    ]
    assert len(failed) >= 0.9 * len(blocks)
    assert all(0 < c["school_unreachable_s"] <= 600 for c in failed)
    # The captive portal: its access point's laptops fail TLS that afternoon.
    behind = [
        s for s in by_school[portal["school"]]
        if portal["start"] < _iso(s["ts"]) < portal["end"]
        and s["wifi"]["bssid_hash"] == portal["bssid_hash"]
    ]  # fmt: skip
    tls = [s for s in behind if s["connectivity"]["failure"] == "tls"]
    assert behind and len(tls) >= 0.9 * len(behind)
    # Slow mornings: 2-12 minutes to connect, every school day.
    delays = [
        s["connectivity"]["connect_delay_s"]
        for s in by_school[slow["school"]]
        if s["connectivity"]["connect_delay_s"] is not None
    ]
    assert 12 <= len(delays) <= 2 * 8 and all(d <= 720 for d in delays), delays  # some away
    assert sum(1 for d in delays if d >= 120) >= 0.8 * len(delays)  # a drop restarts the clock
    # Elsewhere, mornings take seconds and school time is online time.
    normal = [s["connectivity"] for s in by_school[portal["school"]] if s["ts"] < portal["start"]]
    assert all((c["connect_delay_s"] or 0) < 10 for c in normal)
    assert sum(c["school_online_s"] for c in normal) > 0


def _iso(ts: str) -> str:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).isoformat()


def test_no_reach_faults_by_default() -> None:
    assert not Options().reach
    assert parse_reach("none") == Options().reach
    assert parse_reach("dns=2,slow=1").dns_schools == 2
    with pytest.raises(ValueError, match="'portal=x'"):
        parse_reach("portal=x")
