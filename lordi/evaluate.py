"""`lordi eval rules`: the rules against a simulated fleet with known faults.

A school week of the simulated fleet (the real agent code builds every sample) with
injected faults: worn batteries, broken chargers, laptops that fall silent, packs
that lie about their capacity, and one failing access point. Every sample goes
through the collector's validation and then `collector.alerting.Alerting` (rules,
device state, lifecycle engine, alert store) exactly as in the collector; MQTT and
the time-series store are left out to keep the run short. At the end, the open
alerts are compared with the ground truth.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.sample import build_envelope, encode
from collector.alerting import Alerting
from collector.alerts.store import AlertStore
from collector.rules import RulesConfig
from collector.samples import Sample
from collector.validate import check_message
from lordi.sim.faults import Faults, ground_truth, inject, reporting
from lordi.sim.fleet import Fleet, build_fleet, last_school_week, school_days

DEVICE_RULES = ("battery_replace", "battery_watch", "charging_fault", "device_silent")
BATTERY_RULES = ("battery_replace", "battery_watch", "battery_hot")


def run_week(
    fleet: Fleet, start: datetime, alerting: Alerting, restart_at: datetime | None = None
) -> tuple[int, Alerting]:
    """Feed the week; with `restart_at`, the collector stops then and a new one
    restores the saved state and goes on (the figures must not change)."""
    samples = 0
    for t in school_days(start, days=7):
        if restart_at is not None and t >= restart_at:
            restart_at = None
            alerting.stop()
            alerting = Alerting(alerting.config, alerting.store)
            alerting.restore()
        fleet.clock.now = t
        accepted: list[tuple[str, str, Sample]] = []
        for v in fleet.laptops:
            if not reporting(v, t):
                continue
            sample = v.agent.take_sample()
            v.agent.spool.ack([i for i, _ in v.agent.spool.batch(0, 500, 1 << 30)])
            school, device = v.school, v.hardware.device
            payload = encode(build_envelope(school, device, [sample]))
            checked = check_message(f"lordi/v1/{school}/{device}/telemetry", payload)
            accepted.extend((school, device, s) for s in checked.samples)
            samples += len(checked.samples)
        alerting.on_samples(accepted, t)
    # Friday evening and the following Monday evening: the silent sweep counts school days.
    friday = fleet.clock.now
    alerting.sweep(friday + timedelta(hours=1))
    alerting.sweep(friday + timedelta(days=3))
    return samples, alerting


def _ratio(num: int, den: int) -> float:
    return round(num / den, 4) if den else 1.0


def score(fleet: Fleet, alerting: Alerting) -> dict[str, Any]:
    truth = ground_truth(fleet)
    open_alerts = [a for a in alerting.store.list_alerts() if a.status != "resolved"]
    flagged = {(a.device, a.rule) for a in open_alerts if a.device and a.rule in DEVICE_RULES}
    expected = {p for p in truth.device_alerts if p[1] in DEVICE_RULES}
    network = [a for a in open_alerts if a.category == "network" and a.device is None]
    hashes = {(s, fleet.policy.bssid_hash(b)) for s, b in truth.access_points}
    network_keys = {(a.school, a.key.split("/")[2]) for a in network if "/ap/" in a.key}
    # Alerts the lies would cause: any battery alert of a pack that always lies, and a
    # "replace" for a pack whose only bad reading was a one-off collapse.
    health = {v.hardware.device: v.hardware.health_pct for v in fleet.laptops}
    untrusted_alerts = [
        a
        for a in open_alerts
        if (a.device in truth.untrusted and a.rule in BATTERY_RULES)
        or (a.device in truth.collapse and a.rule == "battery_replace" and health[a.device] >= 60)
    ]
    hit = flagged & expected
    return {
        "devices": len(fleet.laptops),
        "expected_device_alerts": len(expected),
        "flagged_device_alerts": len(flagged),
        "true_positives": len(hit),
        "precision": _ratio(len(hit), len(flagged)),
        "recall": _ratio(len(hit), len(expected)),
        "missed": sorted(f"{d}:{r}" for d, r in expected - flagged)[:20],
        "wrong": sorted(f"{d}:{r}" for d, r in flagged - expected)[:20],
        "network_alerts": len(network),
        "network_alerts_on_the_failing_ap": len(network_keys & hashes),
        "per_device_wifi_alerts_on_failing_ap": sum(
            1
            for a in open_alerts
            if a.rule.startswith("wifi_")
            and a.device
            and (a.school, fleet.policy.bssid_hash(_ap_of(fleet, a.device))) in hashes
        ),
        "untrusted_devices": len(truth.untrusted),
        "one_off_collapse_devices": len(truth.collapse),
        "alerts_from_untrusted_readings": len(untrusted_alerts),
        "by_rule": _count_by_rule(open_alerts),
        "alerts_digest": _digest(alerting.store.list_alerts()),
    }


def _digest(alerts: list[Any]) -> str:
    """A fingerprint of every alert (open or not), to compare two stores' results."""
    rows = sorted(
        f"{a.key}|{a.rule}|{a.status}|{a.severity}|{a.opened_at.isoformat()}|{a.summary}"
        for a in alerts
    )
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


def _ap_of(fleet: Fleet, device: str) -> str:
    return next(v.hardware.ap.bssid for v in fleet.laptops if v.hardware.device == device)


def _count_by_rule(alerts: list[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in alerts:
        out[a.rule] = out.get(a.rule, 0) + 1
    return dict(sorted(out.items()))


def run(
    per_school: int = 40,
    store_url: str | None = None,
    seed: int = 7,
    restart_after_days: float | None = None,
) -> dict[str, Any]:
    """Score the rules; `restart_after_days`: restart the collector that far into the
    week (state saved, then restored by a new one)."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lordi-eval-") as tmp:
        url = store_url or f"sqlite:///{Path(tmp) / 'alerts.sqlite3'}"
        store = AlertStore(url)
        store.create_tables()
        start = last_school_week(datetime.now(UTC))
        fleet = build_fleet(per_school, start, seed)
        inject(fleet, start, Faults(), seed=seed + 4)
        alerting = Alerting(RulesConfig(), store)
        restart_at = (
            None if restart_after_days is None else start + timedelta(days=restart_after_days)
        )
        samples, alerting = run_week(fleet, start, alerting, restart_at)
        result = score(fleet, alerting)
    result.update(
        {
            "samples": samples,
            "store": url.split(":", 1)[0],
            "seed": seed,
            "seconds": round(time.monotonic() - t0, 1),
            "restarted_after_days": restart_after_days,
        }
    )
    targets = {
        "precision": result["precision"] >= 0.95,
        "recall": result["recall"] >= 0.95,
        "one_network_alert": result["network_alerts"] == 1
        and result["network_alerts_on_the_failing_ap"] == 1,
        "no_alert_from_untrusted": result["alerts_from_untrusted_readings"] == 0,
    }
    result["meets_targets"] = targets
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
