"""`lordi alerts`: the level-1 technician's worklist, acknowledgements, comments,
escalation to level 2, and a CSV export.

The alert store is named by `--store URL`, or read from the collector's
configuration (`--config collector.toml`, section `[alerts]`).
"""

from __future__ import annotations

import argparse
import io
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from collector.alerts.model import Alert
from collector.alerts.outbox import is_digest
from collector.alerts.store import AlertStore
from collector.worklist import RESOLVE_REASONS, Worklist

if TYPE_CHECKING:
    from collector.rules.calendar import Calendar

PARIS = ZoneInfo("Europe/Paris")

# The command line is run by the region's operators on the server: every school.
REGION = None


def open_worklist(store_url: str | None, config: Path | None) -> Worklist:
    """The worklist service over the store named by `store_url`, or by the collector
    configuration's `[alerts]` (which also gives the registry and the notification
    settings: escalation needs them)."""
    from collector.config import load_settings  # noqa: PLC0415 - pydantic only here
    from collector.notify.deliver import Notifier  # noqa: PLC0415
    from collector.notify.registry import load_registry  # noqa: PLC0415

    if store_url is not None and config is None:
        return Worklist(AlertStore(store_url))
    cfg = load_settings(config).alerts
    store = AlertStore(store_url or cfg.store_url)
    store.create_tables()
    notifier = Notifier(
        load_registry(cfg.registry),
        cfg.notify,
        open_alerts=lambda uai: store.list_alerts(school=uai, unresolved=True),
        asset_tags=lambda uai, device: _enrolled_tag(store, uai, device),
    )
    return Worklist(store, notifier)


def _enrolled_tag(store: AlertStore, school: str, device: str) -> str | None:
    record = store.get_device(school, device)
    return None if record is None else record.asset_tag


def _worklist(args: argparse.Namespace) -> Worklist:
    return open_worklist(args.store, Path(args.config) if args.config else None)


def _store(args: argparse.Namespace) -> AlertStore:
    return _worklist(args).store


def _since(alert: Alert, now: datetime) -> str:
    hours = (now - (alert.since or alert.opened_at)).total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} j"


def render(alerts: list[Alert], now: datetime) -> str:
    """The worklist as a technician reads it: what, which device, since when, what to do."""
    if not alerts:
        return "Aucune alerte ouverte.\n"
    out = io.StringIO()
    for a in alerts:
        ack = f" — prise en charge par {a.acknowledged_by}" if a.acknowledged_by else ""
        esc = f" — escaladée vers {a.escalated_to}" if a.escalated_to else ""
        out.write(f"#{a.id} [{a.severity}] {a.school} {a.device or '(réseau)'} — {a.summary}\n")
        since = a.since or a.opened_at
        out.write(f"    depuis {_since(a, now)} ({since:%d/%m %H:%M} UTC){ack}{esc}\n")
        out.write(f"    à faire : {a.action}\n")
    return out.getvalue()


def cmd_list(args: argparse.Namespace) -> int:
    worklist = _worklist(args)
    if args.school:
        alerts = worklist.alerts(REGION, args.school, include_resolved=args.all)
    else:
        alerts = worklist.store.list_alerts(unresolved=not args.all)
    if args.csv:
        text = worklist.csv(alerts)
        if args.csv == "-":
            sys.stdout.write(text)
        else:
            Path(args.csv).write_text(text, encoding="utf-8")
            print(f"{len(alerts)} alerte(s) exportée(s) dans {args.csv}")
        return 0
    sys.stdout.write(render(alerts, datetime.now(UTC)))
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    alert = _worklist(args).take(args.id, args.by, REGION, comment=args.comment or "")
    print(f"#{alert.id} pris en charge par {args.by} ({alert.status})")
    return 0


def cmd_comment(args: argparse.Namespace) -> int:
    alert = _worklist(args).comment(args.id, args.by, args.text, REGION)
    print(f"#{alert.id} commentaire ajouté")
    return 0


def cmd_resolve(args: argparse.Namespace) -> int:
    alert = _worklist(args).resolve(args.id, args.by, args.reason, REGION, note=args.note or "")
    print(f"#{alert.id} résolue ({RESOLVE_REASONS[args.reason]})")
    return 0


def cmd_escalate(args: argparse.Namespace) -> int:
    """Escalate to the level-2 party of the alert's category and send the evidence."""
    if args.config is None:
        print("escalate: --config collector.toml is required (registry and mail settings)")
        return 2
    done = _worklist(args).escalate(args.id, args.by, REGION, note=args.note or "")
    d = done.delivery
    ok = d.retrying == d.failed == 0
    state = (
        "envoi par le collecteur à son prochain passage"
        if not d.attempted
        else "envoyé" if ok else "échec d'envoi, nouvel essai par le collecteur"
    )
    print(f"#{done.alert.id} escaladée vers {done.party}: {state}")
    return 0 if ok else 1


def cmd_outbox(args: argparse.Namespace) -> int:
    """Notifications not delivered yet (pending) or given up (failed)."""
    rows = [r for r in _store(args).outbox.rows() if r.status != "sent"]
    if not rows:
        print("Aucune notification en attente.")
    for r in rows:
        state = "en attente" if r.status == "pending" else "abandonnée"
        if r.status == "pending" and is_digest(r.kind) and r.attempts == 0:
            state = "attend le résumé de l'établissement"
        channels = ", ".join(r.channels) if r.channels else "tous les canaux"
        print(
            f"alerte #{r.alert_id} {r.kind} — {state} après {r.attempts} essai(s), "
            f"prochain essai {r.next_attempt_at:%d/%m %H:%M} UTC ({channels})"
        )
        if r.last_error:
            print(f"    dernière erreur : {r.last_error}")
    return 1 if any(r.status == "failed" for r in rows) else 0


def _forecast_calendar(args: argparse.Namespace) -> Calendar:
    """The schools' terms: their zones from `--zone`, else the registry of `--config`
    (and its `[alerts] calendar_file`); the bundled calendar otherwise."""
    from collector.calendar import default_calendar, load_calendar  # noqa: PLC0415
    from collector.config import load_settings  # noqa: PLC0415
    from collector.notify.registry import load_registry  # noqa: PLC0415

    if args.zone is not None:
        return default_calendar().bound(lambda _uai: args.zone, lambda: {args.zone})
    if args.config is None:
        return default_calendar()
    cfg = load_settings(Path(args.config)).alerts
    registry = load_registry(cfg.registry)
    return load_calendar(cfg.calendar_file).bound(registry.zone_of, registry.zones_in_use)


def cmd_forecast(args: argparse.Namespace) -> int:
    """Batteries predicted to cross the threshold, per school and per school term (of
    the school's holiday zone: this school year's and the later ones)."""
    from collector.rules.forecast import FadeEstimator, forecast_by_term  # noqa: PLC0415

    estimates = [
        (d.school, FadeEstimator(**b["fade"]))
        for d in _store(args).list_devices(args.school)
        for b in d.derived.get("batteries", {}).values()
        if "fade" in b
    ]
    calendar = _forecast_calendar(args)
    today = datetime.now(PARIS).date()
    counts = forecast_by_term(
        estimates, lambda school: calendar.terms_for(school, today), args.threshold
    )
    names = {"before": "déjà passée", "after": "après l'année scolaire"}
    print(
        f"Batteries passant sous {args.threshold:g} % par période "
        f"({len(estimates)} batterie(s) suivie(s)) :"
    )
    for school in sorted(counts):
        terms = [t.name for t in calendar.terms_for(school, today)]
        order = ["before", *terms, "after"]
        parts = [f"{names.get(n, n)}: {counts[school][n]}" for n in order if n in counts[school]]
        print(f"  {school}  " + " ; ".join(parts))
    unzoned = sorted({s for s, _ in estimates if not calendar.terms_for(s, today)})
    if unzoned:
        print(
            f"(sans calendrier scolaire : {', '.join(unzoned)} ; donner --zone, ou --config "
            "avec la zone de chaque établissement dans le registre)"
        )
    if not counts:
        print("(aucune prévision : il faut au moins 14 jours de mesures par batterie)")
    return 0


def _zone(text: str) -> str:
    from collector.calendar.zones import canonical_zone, known_zones  # noqa: PLC0415

    zone = canonical_zone(text)
    if zone is None:
        raise argparse.ArgumentTypeError(f"not a holiday zone: {text!r} (known: {known_zones()})")
    return zone


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("alerts", help="the technicians' worklist (list, ack, comment, escalate)")
    p.add_argument("--store", help="alert store URL (default: from --config)")
    p.add_argument("--config", help="collector TOML file holding [alerts] store_url")
    p.add_argument("--school", help="UAI code: this school only")
    p.add_argument("--all", action="store_true", help="include resolved alerts")
    p.add_argument("--csv", metavar="FILE", help="export as CSV to FILE ('-' for stdout)")
    p.set_defaults(func=cmd_list)
    acts = p.add_subparsers(dest="action")
    a = acts.add_parser("ack", help="acknowledge: a technician takes the alert")
    a.add_argument("id", type=int)
    a.add_argument("--by", required=True)
    a.add_argument("--comment")
    a.set_defaults(func=cmd_ack)
    c = acts.add_parser("comment", help="add a comment to the alert's history")
    c.add_argument("id", type=int)
    c.add_argument("--by", required=True)
    c.add_argument("--text", required=True)
    c.set_defaults(func=cmd_comment)
    r = acts.add_parser("resolve", help="close the alert, saying why")
    r.add_argument("id", type=int)
    r.add_argument("--by", required=True)
    r.add_argument("--reason", required=True, choices=sorted(RESOLVE_REASONS))
    r.add_argument("--note")
    r.set_defaults(func=cmd_resolve)
    e = acts.add_parser("escalate", help="send to the level-2 contractor with the evidence")
    e.add_argument("id", type=int)
    e.add_argument("--by", required=True)
    e.add_argument("--note")
    e.set_defaults(func=cmd_escalate)
    f = acts.add_parser("forecast", help="batteries to replace per school and school term")
    f.add_argument("--threshold", type=float, default=60.0, help="health %% to forecast")
    f.add_argument(
        "--zone", type=_zone, help="the schools' holiday zone (default: the registry's)"
    )
    f.set_defaults(func=cmd_forecast)
    o = acts.add_parser("outbox", help="notifications not delivered yet, or given up")
    o.set_defaults(func=cmd_outbox)
