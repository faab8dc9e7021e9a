"""`lordi eval rules`: the rules' precision and recall on a simulated school week
whose faults are labelled by physical cause, through the real broker and collector,
under several arrival schedules (live, late spools after outages, one bulk replay),
and how much the alerts differ between schedules (they must not).

world.py builds the week and its ground truth, schedules.py the arrival schedules,
runner.py runs one through a private Mosquitto, VictoriaMetrics, SMTP server and a
`lordi-collector run` process, score.py compares.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lordi.evaluation import runner, schedules, score, world
from lordi.pgschema import fresh_store_url

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGET = 0.98


def run(
    per_school: int = 30,
    *,
    stores: Sequence[str] = ("sqlite", "postgresql"),
    names: Sequence[str] = ("live", "late", "bulk"),
    seed: int = 13,
    day_s: float = 40.0,
    lateness_h: float = 12.0,
    pg_url: str = PG_URL,
    say: Callable[[str], None] = lambda _text: None,
) -> dict[str, Any]:
    """Run every schedule on every store; the figures and whether they meet the targets."""
    t0 = time.monotonic()
    week = world.build(datetime.now(UTC), per_school, seed)
    speed = 86_400 / day_s
    lateness_s = schedules.lateness_in_replay(lateness_h, speed)
    results: dict[str, Any] = {}
    outcomes: dict[str, dict[str, list[Any]]] = {}
    for store in stores:
        for plan in schedules.plans(week, speed, seed, names):
            say(f"{store} / {plan.name}: {len(plan.messages)} messages, {plan.samples} samples")
            with (
                tempfile.TemporaryDirectory(prefix="lordi-eval-") as tmp,
                fresh_store_url(store, Path(tmp) / "alerts.sqlite3", pg_url, "lordi_eval_") as url,
            ):
                setup = runner.Setup(url, lateness_s, min(0.25, lateness_s / 10), Path(tmp))
                outcome = runner.run(plan, week, setup)
            figures = score.score(week, outcome.alerts)
            figures.update(
                seconds=outcome.seconds,
                messages=len(plan.messages),
                samples=plan.samples,
                samples_stored=outcome.samples_stored,
                late_samples=outcome.late_samples,
                routing=score.routing(outcome.alerts, outcome.mails),
                outages=outcome.notes,
            )
            results[f"{store}/{plan.name}"] = figures
            outcomes.setdefault(store, {})[plan.name] = outcome.alerts
            say(f"  precision {figures['precision']}, recall {figures['recall']}")
    differences = {store: score.differences(o) for store, o in outcomes.items()}
    across = (
        score.differences({s: o[names[0]] for s, o in outcomes.items()})
        if len(outcomes) > 1
        else {}
    )
    return {
        "world": {
            "schools": len(world.SCHOOLS),
            "laptops": len(world.SCHOOLS) * per_school,
            "week": [d.isoformat() for d in week.week],
            "reports": len(week.reports),
            "expected_alerts": len(week.expected()),
            "seed": seed,
            "causes": score.cause_counts(week),
        },
        "time": {
            "simulated_day_s": day_s,
            "lateness_h": lateness_h,
            "collector_lateness_s": round(lateness_s, 2),
        },
        "results": results,
        "differences_between_schedules": differences,
        "differences_between_stores": across,
        "seconds": round(time.monotonic() - t0, 1),
        "meets_targets": _targets(results, differences, across),
    }


def _targets(
    results: dict[str, Any], differences: dict[str, Any], across: dict[str, Any]
) -> dict[str, bool]:
    return {
        "precision": all(r["precision"] >= TARGET for r in results.values()),
        "recall": all(r["recall"] >= TARGET for r in results.values()),
        "identical_across_schedules": all(
            pair["differ"] == 0 for store in differences.values() for pair in store.values()
        ),
        "identical_across_stores": all(pair["differ"] == 0 for pair in across.values()),
        "one_network_alert_per_failing_access_point": all(
            r["access_point_alerts"] == 1 for r in results.values()
        ),
        "one_school_alert_for_the_dark_school": all(
            r["school_alerts"] == 1 for r in results.values()
        ),
        # The captive portal's access point and the school without DNS: one network
        # alert each, none for the noise (slow morning, DNS blip, a laptop alone).
        "one_reachability_alert_per_cut_off_network": all(
            r["reach_alerts"] == {"ap_unreachable": 1, "school_unreachable": 1}
            for r in results.values()
        ),
        "every_sample_stored": all(r["samples_stored"] == r["samples"] for r in results.values()),
        "since_says_when_it_started": all(not r["since"]["wrong"] for r in results.values()),
        "no_late_sample": all(r["late_samples"] == 0 for r in results.values()),
        "routing": all(
            not r["routing"]["wrong_recipients"] and not r["routing"]["not_mailed"]
            for r in results.values()
        ),
    }
