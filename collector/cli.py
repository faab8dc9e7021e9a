"""`lordi-collector`: run the collector, validate a message file, export the schema."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from collector.alerting import Alerting
    from collector.notify.live import LiveRegistry, RegistryWatch
    from collector.partition import Partition
    from collector.partition_lock import PartitionLock
    from collector.service import Collector

from collector import BUILD
from collector.config import CollectorSettings, ConfigError, load_settings
from collector.contract import Envelope
from collector.validate import MessageRejected, check_message

log = logging.getLogger(__name__)

# With partitions, the registry's schools are followed (subscriptions) this often.
REFRESH_S = 5.0
SCHEMA_FILE = Path(__file__).resolve().parent / "schema" / "telemetry-v1.schema.json"


def json_schema() -> str:
    schema = Envelope.model_json_schema(by_alias=True)
    schema["$id"] = "https://lordi.example/schema/telemetry-v1.schema.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        payload = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"{args.file}: cannot read ({exc.strerror})", file=sys.stderr)
        return 2
    try:
        checked = check_message(args.topic, payload)
    except MessageRejected as exc:
        print(f"rejected: {exc.reason}")
        return 1
    for rej in checked.rejected:
        print(f"rejected: {rej.reason}")
    print(f"accepted {len(checked.samples)} sample(s), rejected {len(checked.rejected)}")
    return 1 if checked.rejected else 0


def cmd_schema(args: argparse.Namespace) -> int:
    text = json_schema()
    if args.check:
        if SCHEMA_FILE.read_text(encoding="utf-8") != text:
            print(f"{SCHEMA_FILE.name} is out of date: run `lordi-collector schema --write`")
            return 1
        return 0
    if args.write:
        SCHEMA_FILE.write_text(text, encoding="utf-8")
        return 0
    sys.stdout.write(text)
    return 0


def cmd_compiled(args: argparse.Namespace) -> int:
    """Which code runs the hot modules; exit 1 when it is pure Python."""
    print(BUILD.describe())
    return 0 if BUILD.compiled else 1


def load_registry(settings: CollectorSettings) -> LiveRegistry | None:
    """The school registry, when alerts or partitions need it. Reloaded on SIGHUP or a
    change of the file (watch_registry): a school, contact or asset tag (`lordi
    provision device --asset-tag`) added after the start is seen."""
    if not (settings.alerts.enabled or settings.partition.enabled):
        return None
    from collector.notify.errors import RegistryError  # noqa: PLC0415
    from collector.notify.live import LiveRegistry  # noqa: PLC0415

    try:
        return LiveRegistry.load(settings.alerts.registry)  # `.current`: the one in force
    except RegistryError as exc:  # the file and the field or line are in the message
        raise ConfigError(
            f"alerts.registry: {exc}: fix the school registry (docs/alert-routing.md "
            "explains every key)"
        ) from None


def build_alerting(
    settings: CollectorSettings,
    live: LiveRegistry | None = None,
    owns: Callable[[str], bool] | None = None,
) -> Alerting | None:
    """The rules, alert store and notifier, when `[alerts] enabled = true`; with
    partitions (`owns`), the saved state of this collector's schools only."""
    cfg = settings.alerts
    if not cfg.enabled:
        return None
    from collector.alerting import Alerting  # noqa: PLC0415 - only with alerts on
    from collector.alerts.store import AlertStore  # noqa: PLC0415
    from collector.calendar import CalendarFileError, school_calendar  # noqa: PLC0415
    from collector.notify.deliver import Notifier  # noqa: PLC0415
    from collector.rules.silent import local_day  # noqa: PLC0415

    live = live or load_registry(settings)
    assert live is not None  # alerts are on
    # Each school's holidays from its zone in the registry in force; a school year the
    # data lacks for a zone in use is a WARNING here (and a gauge, collector/metrics.py).
    try:
        calendar = school_calendar(
            cfg.calendar_file, lambda: live.current, local_day(datetime.now(UTC))
        )
    except CalendarFileError as exc:  # the file, the key and the value are in it
        raise ConfigError(f"alerts.calendar_file: {exc}") from None
    store = AlertStore(cfg.store_url)
    store.create_tables()
    notifier = Notifier(
        live,
        cfg.notify,
        open_alerts=lambda uai: store.list_alerts(school=uai, unresolved=True),
    )
    alerting = Alerting(
        cfg.rules,
        store,
        notifier,
        cfg.sweep_interval_s,
        lateness_s=cfg.lateness_s,
        notify_max_age_s=cfg.notify_max_age_s,
        calendar=calendar,
        # None lets the engine decide: a single-writer store (SQLite), or a partition's
        # owner for its own schools' keys, can cache.
        engine_cache=None if cfg.engine_cache else False,
        deliver_in_background=True,
        owns=owns,
    )
    alerting.restore()
    return alerting


def alert_store_problem(url: str, exc: Exception) -> str | None:
    """One line for an alert store that cannot be opened (None: another error).
    SQLite names the file, its folder and what is wrong with it."""
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415 - only with alerts on

    if not isinstance(exc, SQLAlchemyError):
        return None
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    if not url.startswith("sqlite:///"):
        return f"alerts.store_url: cannot open the alert store ({reason})"
    path = Path(url.removeprefix("sqlite:///")).resolve()
    folder = path.parent
    if not folder.is_dir():
        why = f"its folder {folder} does not exist (create it for the collector's user)"
    elif not os.access(folder, os.W_OK):
        why = f"its folder {folder} is not writable by this user (uid {os.getuid()})"
    else:
        why = reason
    hint = " (an absolute path needs four slashes: sqlite:////var/...)" if not url.startswith(
        "sqlite:////"
    ) else ""
    return f"alerts.store_url: cannot open the SQLite file {path}: {why}{hint}"


def cmd_run(args: argparse.Namespace) -> int:
    from collector.preflight import check_files  # noqa: PLC0415 - keeps `validate` light
    from collector.service import Collector  # noqa: PLC0415

    try:
        settings = load_settings(Path(args.config) if args.config else None)
        check_files(settings)
        live = load_registry(settings)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    partition, lock, stopped = serve_partition(settings, live, done)
    if stopped:
        return 0  # asked to stop while standing by
    try:
        alerting = build_alerting(settings, live, partition.owns if partition else None)
    except ConfigError as exc:  # the school registry
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the alert store: say which file and what to do
        problem = alert_store_problem(settings.alerts.store_url, exc)
        if problem is None:
            raise
        print(f"config error: {problem}", file=sys.stderr)
        return 2
    collector = Collector(settings, alerting=alerting, partition=partition)
    log.info("collector code: %s", BUILD.describe())
    watch = watch_registry(live, alerting)  # before anything can send a SIGHUP
    try:
        collector.start()
    except OSError as exc:  # the metrics address ([metrics] host, port) is taken
        m = settings.metrics
        print(f"metrics: cannot listen on {m.host}:{m.port} ({exc.strerror})", file=sys.stderr)
        return 2
    code = supervise(collector, done, args.stats_interval, lock, settings.partition.lock_check_s)
    if watch is not None:
        watch.stop()
    if alerting is not None:  # the kept SMTP and alert-topic connections, politely
        from collector.notify import channels, mqtt_publish  # noqa: PLC0415

        channels.SENDER.close()
        mqtt_publish.close()
    if lock is not None:
        lock.release()
    return code


def serve_partition(
    settings: CollectorSettings, live: LiveRegistry | None, done: threading.Event
) -> tuple[Partition | None, PartitionLock | None, bool]:
    """With `[partition]`: this collector's schools, and its lock once held (standby
    until then; None with `lock = "none"`), and whether it was asked to stop while
    standing by. (None, None, False) without partitions."""
    if not settings.partition.enabled:
        return None, None, False
    from collector.partition import Partition, placements_of  # noqa: PLC0415
    from collector.partition_lock import make_lock, wait_for_lock  # noqa: PLC0415
    from collector.sdnotify import notify  # noqa: PLC0415

    assert live is not None  # loaded for the partition
    p, a = settings.partition, settings.alerts
    partition = Partition(p, settings.mqtt.topic, lambda: placements_of(live.current.schools))
    client_id = partition.client_id(settings.mqtt.client_id)
    lock = make_lock(p, client_id, a.enabled, a.store_url)
    if lock is None:
        return partition, None, False
    notify("READY=1")  # a standby is a healthy service: it waits, and feeds the watchdog
    notify(f"STATUS=standby for {partition.name}")
    beat = lambda: notify("WATCHDOG=1")  # noqa: E731
    if not wait_for_lock(lock, partition.name, done, p.standby_poll_s, beat):
        return partition, None, True
    notify(f"STATUS=serving {partition.name}")
    return partition, lock, False


def watch_registry(live: LiveRegistry | None, alerting: Alerting | None) -> RegistryWatch | None:
    """Reload the school registry on SIGHUP (`systemctl reload`) and when its file
    changes (docs/alert-routing.md); without alerts nor partitions, SIGHUP is only
    logged."""
    from collector.notify.live import RegistryWatch  # noqa: PLC0415

    notifier = alerting.notifier if alerting is not None else None
    live = notifier.live if notifier is not None else live
    if live is None:
        signal.signal(
            signal.SIGHUP, lambda *_: log.info("SIGHUP: nothing to reload ([alerts] is off)")
        )
        return None
    watch = RegistryWatch(live)
    signal.signal(signal.SIGHUP, lambda *_: watch.request())
    watch.start()
    return watch


def supervise(
    collector: Collector,
    done: threading.Event,
    stats_interval_s: float,
    lock: PartitionLock | None = None,
    lock_check_s: float = 5.0,
) -> int:
    """Log the counters every `stats_interval_s` until `done`; under systemd, say
    READY=1, then WATCHDOG=1 at half the watchdog period while no loop is stalled.
    With partitions, follow the registry's schools, and check the partition's lock:
    lost (its connection gone), another process may serve the partition, so this one
    stops at once and returns 3."""
    from collector.sdnotify import notify, watchdog_period_s  # noqa: PLC0415

    log = logging.getLogger("collector")
    notify("READY=1")
    watchdog = watchdog_period_s()
    tick = min(stats_interval_s, watchdog or stats_interval_s, REFRESH_S)
    next_stats = time.monotonic() + stats_interval_s
    next_check = time.monotonic() + lock_check_s
    code = 0
    while not done.wait(tick):
        if watchdog:
            stalled = collector.stalled()
            if stalled is None:
                notify("WATCHDOG=1")
            else:
                log.error("watchdog not fed: %s", stalled)
        collector.refresh_subscriptions()
        if lock is not None and time.monotonic() >= next_check:
            next_check = time.monotonic() + lock_check_s
            if not lock.held():
                log.error(
                    "lost %s: stopping, another collector may serve this partition "
                    "(exit code 3; restarted, this process stands by)", lock.what,
                )  # fmt: skip
                code = 3
                break
        if time.monotonic() >= next_stats:
            log.info("stats %s", json.dumps(_figures(collector)))
            next_stats += stats_interval_s
    notify("STOPPING=1")
    collector.stop()
    log.info("stopped; stats %s", json.dumps(_figures(collector)))
    return code


def _figures(collector: Collector) -> dict[str, int]:
    """The ingest counters, and the alerting's: samples too late for the window and
    day verdicts, resent samples the rules ignored, windows and days not complete."""
    figures = collector.stats.as_dict()
    if collector.alerting is not None:
        figures |= collector.alerting.figures()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lordi-collector", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="subscribe, validate, write, acknowledge")
    run.add_argument("--config", help="TOML file (environment LORDI_COLLECTOR_* overrides it)")
    run.add_argument("--stats-interval", type=float, default=60.0, metavar="S")
    run.set_defaults(func=cmd_run)
    val = sub.add_parser("validate", help="check a message file as the collector would")
    val.add_argument("--topic", required=True, help="e.g. lordi/v1/0341234A/dev-1/telemetry")
    val.add_argument("file")
    val.set_defaults(func=cmd_validate)
    sch = sub.add_parser("schema", help="print the v1 JSON Schema")
    sch.add_argument("--write", action="store_true", help="update the committed schema file")
    sch.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale")
    sch.set_defaults(func=cmd_schema)
    comp = sub.add_parser(
        "compiled", help="say whether the hot modules run compiled (exit 1: pure Python)"
    )
    comp.set_defaults(func=cmd_compiled)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
