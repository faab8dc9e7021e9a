"""`lordi-agent`: run the service, show a sample, capture or replay a machine's inputs."""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from agent.config import AgentConfig, ConfigError, load_config
from agent.enrol import EnrolError, ensure_identity
from agent.providers import live_provider, replay_provider
from agent.runtime import Agent, OfflineLink
from agent.sample import build_envelope
from agent.service import policy_from, run
from agent.spool import Spool

log = logging.getLogger("agent")


def _config(args: argparse.Namespace, required: bool) -> AgentConfig:
    if args.config is None and not required:
        # Unenrolled preview: placeholder ids so the output has the real shape.
        return load_config(
            None, {"LORDI_AGENT_SCHOOL": "0000000X", "LORDI_AGENT_DEVICE": "preview"}
        )
    return load_config(Path(args.config) if args.config else None)


def cmd_sample(args: argparse.Namespace) -> int:
    cfg = _config(args, required=False)
    provider = replay_provider(Path(args.replay)) if args.replay else live_provider()
    # The service's own code path (Wi-Fi summary and spool state included), with
    # a link that never connects: this is exactly what would be sent.
    device = cfg.device or "unenrolled"  # a school configuration before enrolment
    agent = Agent(
        cfg.school,
        device,
        provider=provider,
        link=OfflineLink(),
        spool=Spool(None),
        policy=policy_from(cfg),
        clock=lambda: datetime.now(UTC),
    )
    envelope = build_envelope(cfg.school, device, [agent.take_sample()])
    print(json.dumps(envelope, indent=None if args.json else 2, ensure_ascii=False))
    return 0


def cmd_capture(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    reading = live_provider(capture_dir=folder).read()
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    print(f"captured {len(files)} file(s) into {folder}:")
    for f in files:
        print(f"  {f}")
    print(f"batteries: {len(reading.batteries)}, wifi: {'yes' if reading.wifi else 'no'}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = _config(args, required=True)
    device = cfg.device or "enrols at first start"
    print(
        f"ok: school {cfg.school}, device {device}, broker {cfg.mqtt.host}:{cfg.mqtt.port}"
        f" ({'TLS' if cfg.mqtt.tls else 'plain TCP'}), spool {cfg.spool.path or '(memory)'}"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _config(args, required=True)
    if args.log_file:
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            args.log_file, maxBytes=1_000_000, backupCount=3, encoding="utf-8"
        )
        logging.getLogger().handlers[:] = [handler]
    stop = threading.Event()

    def _interrupt(*_: object) -> None:
        # Raising interrupts the loop's select() at once (a flag alone would wait
        # for the next look, up to 30 s); the loop's `finally` stops cleanly.
        stop.set()
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupt)
    try:  # a school configuration: this laptop's own identity, enrolling once if needed
        cfg = ensure_identity(cfg, stop)
    except EnrolError as exc:
        raise ConfigError(str(exc)) from None
    log.info("agent starting: school %s, device %s", cfg.school, cfg.device)
    # --replay: a captured laptop instead of this machine (benchmarks, demos, bug repro).
    run(cfg, stop, replay_provider(Path(args.replay)) if args.replay else None)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lordi-agent", description=__doc__)
    parser.add_argument("--config", help="agent TOML file (LORDI_AGENT_* variables override)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the agent service")
    p.add_argument("--log-file", help="rotating log file (default: stderr)")
    p.add_argument("--replay", metavar="DIR", help="read a capture folder instead of this machine")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("sample", help="print the message the agent would publish now")
    p.add_argument("--replay", metavar="DIR", help="compute it from a capture folder instead")
    p.add_argument("--json", action="store_true", help="one line of JSON")
    p.set_defaults(func=cmd_sample)
    p = sub.add_parser("capture", help="save this machine's raw inputs into DIR")
    p.add_argument("dir")
    p.set_defaults(func=cmd_capture)
    p = sub.add_parser("check-config", help="validate the configuration and exit")
    p.set_defaults(func=cmd_check_config)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
