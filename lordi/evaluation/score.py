"""Alerts against the ground truth, and schedules against each other.

Every alert the collector raised during the run counts, open or resolved (a dead
charger's episode ends when the student unplugs): flagged = the (key, rule) pairs of
all alerts; expected = those the physical causes imply (world.py). An alert for a
laptop under the failing access point that is about its Wi-Fi is wrong (the network
alert speaks for it), as is any alert the noise causes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from collector.alerts.model import Alert
from lordi.evaluation.world import World

# What identifies an alert across schedules: its key, rule and sample times.
Signature = tuple[str, str, str, str, str, str]
# Network reachability (collector.rules.reach): reported per rule even when absent.
REACH_RULES = ("ap_unreachable", "school_unreachable")


def signature(alert: Alert) -> Signature:
    return (
        alert.key, alert.rule, alert.status, alert.opened_at.isoformat(),
        (alert.since or alert.opened_at).isoformat(),
        alert.resolved_at.isoformat() if alert.resolved_at else "",
    )  # fmt: skip


def _ratio(num: int, den: int) -> float:
    return round(num / den, 4) if den else 1.0


def score(world: World, alerts: Sequence[Alert]) -> dict[str, Any]:
    expected = world.expected()
    flagged = {(a.key, a.rule) for a in alerts}
    hit = flagged & expected
    network = [a for a in alerts if a.rule == "wifi_ap_fault"]
    school_dark = [a for a in alerts if a.rule == "school_silent"]
    causes = {c.device: c.name for c in world.causes if c.device}
    wrong = sorted(flagged - expected)
    return {
        "expected_alerts": len(expected),
        "raised_alerts": len(flagged),
        "true_positives": len(hit),
        "precision": _ratio(len(hit), len(flagged)),
        "recall": _ratio(len(hit), len(expected)),
        "missed": [f"{k} ({_cause(k, causes)})" for k, _ in sorted(expected - flagged)][:20],
        "wrong": [f"{k} ({_cause(k, causes)})" for k, _ in wrong][:20],
        "access_point_alerts": len(network),
        "school_alerts": len(school_dark),
        "reach_alerts": {rule: sum(1 for a in alerts if a.rule == rule) for rule in REACH_RULES},
        "by_rule": dict(sorted(Counter(a.rule for a in alerts).items())),
        "per_rule": per_rule(expected, flagged),
        "by_cause": _by_cause(world, flagged),
        "since": _since(world, alerts),
    }


def per_rule(
    expected: set[tuple[str, str]], flagged: set[tuple[str, str]]
) -> dict[str, dict[str, Any]]:
    """Precision and recall of each rule that was expected or raised (and of the
    reachability rules always)."""
    out: dict[str, dict[str, Any]] = {}
    for rule in sorted({r for _, r in expected | flagged} | set(REACH_RULES)):
        want = {pair for pair in expected if pair[1] == rule}
        got = {pair for pair in flagged if pair[1] == rule}
        out[rule] = {
            "expected": len(want),
            "raised": len(got),
            "true_positives": len(want & got),
            "precision": _ratio(len(want & got), len(got)),
            "recall": _ratio(len(want & got), len(want)),
        }
    return out


def _since(world: World, alerts: Sequence[Alert]) -> dict[str, Any]:
    """Does each expected alert's "since" say when its condition started?"""
    by_key: dict[str, Alert] = {}
    for alert in sorted(alerts, key=lambda a: a.opened_at):
        by_key.setdefault(alert.key, alert)  # the first episode
    checked, wrong = 0, []
    for cause in world.causes:
        if cause.since is None:
            continue
        for key, _rule in cause.expect:
            found = by_key.get(key)
            if found is None:
                continue
            checked += 1
            since = found.since or found.opened_at
            low, high = cause.since
            if not low <= since <= high:
                wrong.append(
                    f"{key}: {since.isoformat()} not in [{low.isoformat()}, {high.isoformat()}]"
                )
    return {"checked": checked, "wrong": wrong[:20]}


def _cause(key: str, causes: dict[str, str]) -> str:
    parts = key.split("/")
    return causes.get(parts[1], "no cause") if len(parts) > 2 and parts[1] != "ap" else "network"


def _by_cause(world: World, flagged: set[tuple[str, str]]) -> dict[str, str]:
    """Per cause: alerts expected and found ("3/3"), or for noise, alerts raised."""
    expected = world.expected()
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    noise: Counter[str] = Counter()
    for cause in world.causes:
        if cause.expect:
            total[cause.name] += len(cause.expect)
            found[cause.name] += sum(1 for pair in cause.expect if pair in flagged)
        elif cause.device is None:  # a school's network noise: its unexplained network alerts
            noise[cause.name] += sum(
                1
                for key, rule in flagged - expected
                if rule in REACH_RULES and key.startswith(f"{cause.school}/")
            )
        else:  # alerts nothing explains on a noisy laptop (it may have a real fault too)
            prefix = f"{cause.school}/{cause.device}/"
            noise[cause.name] += sum(1 for pair in flagged - expected if pair[0].startswith(prefix))
    out = {name: f"{found[name]}/{total[name]}" for name in sorted(total)}
    out.update({name: f"{noise[name]} alert(s)" for name in sorted(noise)})
    return out


def differences(outcomes: Mapping[str, Iterable[Alert]]) -> dict[str, Any]:
    """Alerts (key, rule and sample times) that differ between schedules."""
    sets = {name: {signature(a) for a in alerts} for name, alerts in outcomes.items()}
    names = sorted(sets)
    out: dict[str, Any] = {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            only_a, only_b = sorted(sets[a] - sets[b]), sorted(sets[b] - sets[a])
            out[f"{a}_vs_{b}"] = {
                "differ": len(only_a) + len(only_b),
                f"only_{a}": [list(s) for s in only_a[:10]],
                f"only_{b}": [list(s) for s in only_b[:10]],
            }
    return out


def cause_counts(world: World) -> dict[str, int]:
    return dict(sorted(Counter(c.name for c in world.causes).items()))


def routing(alerts: Sequence[Alert], mails: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Every alert mailed to its school's level-1 technicians (and, for a network
    alert, to the network contractor); no mail to anyone else."""
    from lordi.evaluation.runner import LEVEL1, NETWORK  # noqa: PLC0415 - no cycle

    got: dict[int, set[str]] = {}
    for mail in mails:
        if mail["alert_id"] is not None:
            got.setdefault(mail["alert_id"], set()).update(mail["to"])
    wrong: list[str] = []
    not_mailed: list[str] = []
    for alert in alerts:
        level1 = set(LEVEL1[alert.school])
        allowed = level1 | (set(NETWORK) if alert.category == "network" else set())
        must = level1 | (set(NETWORK) if alert.subject in ("access_point", "school") else set())
        to = got.get(alert.id, set())
        if to - allowed:
            wrong.append(f"{alert.id} {alert.key}: {sorted(to - allowed)}")
        if must - to:
            not_mailed.append(f"{alert.id} {alert.key}: missing {sorted(must - to)}")
    return {
        "mails": len(mails),
        "wrong_recipients": wrong[:20],
        "not_mailed": not_mailed[:20],
        "unattributed_mails": sum(1 for m in mails if m["alert_id"] is None),
    }
