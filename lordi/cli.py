"""`lordi`: the administrator's command (demo, local stack; more subcommands come
with their issues: simulate, bench, provisioning, alerts)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any

from lordi.storestatus import add_parser as add_store


def cmd_demo(args: argparse.Namespace) -> int:
    from lordi.demo import main as demo  # noqa: PLC0415 - only this command needs it

    return demo(keep=args.keep, per_school=args.per_school)


def cmd_stack(args: argparse.Namespace) -> int:
    from lordi.stack import LocalStack  # noqa: PLC0415

    with LocalStack() as stack:
        print(f"mqtt://127.0.0.1:{stack.mqtt_port}  {stack.vm_url}  {stack.influx_url}")
        print("Ctrl-C or SIGTERM stops the stack.", flush=True)
        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        done.wait()
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import importlib  # noqa: PLC0415
    import json  # noqa: PLC0415

    if args.what == "dashboards":
        from lordi.bench import dashboards  # noqa: PLC0415

        print(json.dumps(dashboards.run(), indent=None if args.json else 2))
        return 0
    if args.what == "ingest":
        from lordi.bench import ingest  # noqa: PLC0415

        collectors = args.collectors or (1 if args.alerts != "off" else os.cpu_count() or 1)
        rounds = ingest.ROUNDS if args.rounds is None else args.rounds
        result = ingest.run(
            args.messages, args.per_message, collectors, args.devices, metrics=args.metrics,
            tls=args.tls, alerts=args.alerts, rounds=rounds,
        )  # fmt: skip
        result["pipeline"].pop("collector_stats", None)
    elif args.what == "agent":
        from lordi.bench import agent as bench_agent  # noqa: PLC0415

        result = bench_agent.run(
            args.seconds, args.warmup, with_glances=not args.no_glances, cut_off=args.cut_off
        )
    else:  # one module per bench, each with its from_args
        result = importlib.import_module(f"lordi.bench.{args.what}").from_args(args)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0 if all(result.get("meets_targets", {}).values()) else 1


def _add_bench(sub: Any) -> None:
    """`lordi bench <what>`: one sub-parser per benchmark, with its own options."""
    p = sub.add_parser("bench", help="benchmarks printing JSON figures")
    benches = p.add_subparsers(dest="what", required=True, metavar="BENCH")

    def bench(name: str, help_text: str) -> argparse.ArgumentParser:
        b: argparse.ArgumentParser = benches.add_parser(name, help=help_text)
        b.add_argument("--json", action="store_true", help="one line of JSON")
        b.set_defaults(func=cmd_bench)
        return b

    b = bench("agent", "the agent's footprint vs Glances")
    b.add_argument("--seconds", type=float, default=120, help="measurement window")
    b.add_argument("--warmup", type=float, default=15, help="seconds before measuring")
    b.add_argument("--no-glances", action="store_true", help="skip the Glances comparison")
    b.add_argument("--cut-off", action="store_true",
                   help="on a school network whose broker cannot be reached (port closed)")
    b = bench("ingest", "collector throughput beside the broker's and the store's limits")
    b.add_argument("--messages", type=int, default=4000, help="messages to send")
    b.add_argument("--per-message", type=int, default=50, help="samples per message")
    b.add_argument("--devices", type=int, default=200, help="laptops sending (0: one per message)")
    b.add_argument("--collectors", type=int, default=None,
                   help="collector processes (default: one per core, as docs/scaling.md "
                   "deploys; 1 with --alerts; with --alerts postgresql, N > 1 collectors "
                   "each own a partition of the schools)")
    b.add_argument("--metrics", action="store_true",
                   help="read every collector's /metrics every second (served in every run)")
    b.add_argument("--rounds", type=int,
                   help="pipeline rounds, each between two of the store's own writes (its "
                   "limit beside it; the ratio is the rounds' median; 2 unless given: ROUNDS in "
                   "lordi/bench/ingest.py)")
    _production_options(b)
    bench("dashboards", "fleet dashboard query cost")
    b = bench("storm", "reconnect storm: every laptop back with a spool")
    b.add_argument("--devices", type=int, help="laptops (default 5,000)")
    b.add_argument("--backlog", type=int, default=96, help="spooled samples per laptop")
    b.add_argument("--spread-s", type=float, default=0.0, help="random wait before drain")
    b.add_argument("--collectors", type=int, default=1,
                   help="collector processes (with --alerts postgresql: one partition of "
                   "the schools each)")
    _production_options(b)
    b = bench("state", "the rules' device state at region size")
    b.add_argument("--devices", type=int, help="laptops (default 250,000)")
    b.add_argument("--rounds", type=int, default=3, help="samples per laptop")
    b = bench("peer", "the same workload through other pipelines")
    b.add_argument("--messages", type=int, default=4000, help="messages to send")
    b.add_argument("--per-message", type=int, default=50, help="samples per message")
    b.add_argument("--peers", default="node-red", help="comma-separated peers to run")
    b = bench("web", "the web worklist's pages over HTTP at region size (PostgreSQL)")
    b.add_argument("--devices", type=int, help="laptops (default 250,000)")
    b = bench("enrol", "laptops enrolling at once, broker memory per identity")
    b.add_argument("--devices", type=int, help="laptops enrolling (default 2,000)")
    b.add_argument("--in-flight", type=int, default=200, help="laptops enrolling at a time")
    b.add_argument("--existing", type=int, default=250_000,
                   help="identities already in the broker's password file")
    b.add_argument("--dynsec", action="store_true",
                   help="also time Mosquitto's dynamic-security plugin with --existing clients")
    from lordi.bench import connections  # noqa: PLC0415 - its options only

    connections.add_arguments(
        bench("connections", "laptops' TLS connections held by the production broker")
    )


def _production_options(b: argparse.ArgumentParser) -> None:
    b.add_argument("--tls", action="store_true",
                   help="every MQTT connection over TLS (a private CA), as in production")
    b.add_argument("--alerts", choices=["off", "sqlite", "postgresql"], default="off",
                   help="the collector's rules, alert store and notifications on")


def cmd_eval(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from lordi import evaluation  # noqa: PLC0415

    result = evaluation.run(
        args.per_school,
        stores=args.stores.split(","),
        names=args.schedules.split(","),
        seed=args.seed,
        day_s=args.day_s,
        lateness_h=args.lateness_h,
        pg_url=args.pg_url,
        say=lambda text: print(text, file=sys.stderr, flush=True),
    )
    print(json.dumps(result, indent=None if args.json else 2, ensure_ascii=False))
    return 0 if all(result["meets_targets"].values()) else 1


def _add_eval(sub: Any) -> None:
    p = sub.add_parser(
        "eval",
        help="the rules' precision and recall on a simulated week with faults labelled by "
        "cause, through the real broker and collector, under several arrival schedules",
    )
    p.add_argument("what", choices=["rules"])
    p.add_argument("--json", action="store_true", help="one line of JSON")
    p.add_argument("--per-school", type=int, default=30, help="laptops per school (4 schools)")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--stores", default="sqlite,postgresql", help="alert stores to run on")
    p.add_argument("--schedules", default="live,late,bulk", help="arrival schedules")
    p.add_argument(
        "--day-s", type=float, default=40.0, help="seconds of the collector's clock per day"
    )
    p.add_argument("--lateness-h", type=float, default=12.0, help="the collector's lateness")
    p.add_argument(
        "--pg-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="PostgreSQL server for the postgresql store (a new schema per run)",
    )
    p.set_defaults(func=cmd_eval)


def _add_admin(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The operators' commands, each imported only here (their dependencies are heavy)."""
    from lordi.provision import add_parser as add_provision  # noqa: PLC0415
    from lordi.worklist import add_parser as add_alerts  # noqa: PLC0415

    add_alerts(sub)
    add_provision(sub)
    from lordi.grafana import add_parser as add_grafana  # noqa: PLC0415
    from lordi.retention import add_parser as add_retention  # noqa: PLC0415

    add_grafana(sub)
    add_retention(sub)
    add_store(sub)
    from lordi.simulate import add_parser as add_simulate  # noqa: PLC0415

    add_simulate(sub)
    from lordi.server import add_parser as add_server  # noqa: PLC0415

    add_server(sub)
    from lordi.enrol.cli import add_parser as add_enrol  # noqa: PLC0415

    add_enrol(sub)
    from lordi.web.cli import add_parser as add_web  # noqa: PLC0415

    add_web(sub)
    from lordi.school_calendar import add_parser as add_calendar  # noqa: PLC0415

    add_calendar(sub)
    from lordi.bundle.cli import add_parser as add_bundle  # noqa: PLC0415

    add_bundle(sub)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lordi", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="a simulated school week through the real pipeline")
    p.add_argument("--keep", action="store_true", help="leave the stack running afterwards")
    p.add_argument("--per-school", type=int, default=40, help="laptops per school (5 schools)")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser(
        "stack", help="run a private Mosquitto/VictoriaMetrics/InfluxDB until stopped"
    )
    p.set_defaults(func=cmd_stack)
    _add_bench(sub)
    _add_eval(sub)
    _add_admin(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    from collector.alerts.store import AlertNotFound, InvalidTransition  # noqa: PLC0415

    try:
        return int(args.func(args))
    except (AlertNotFound, InvalidTransition) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        print(f"error: alert store: {getattr(exc, 'orig', None) or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
