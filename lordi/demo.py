"""`lordi demo`: a simulated school week through the whole real pipeline.

Private Mosquitto + VictoriaMetrics + InfluxDB, a real collector process, 200
simulated laptops in 5 schools running the real agent code, then the list of
batteries to replace per school, read back from the time-series store.

With `--keep`, the collector also runs its alerts (a SQLite alert store in the
stack's folder, the sample school registry, e-mails to a local SMTP server that
keeps them in a Maildir), and a real `lordi-web` is left running over that store
with a `demo` account.
"""

from __future__ import annotations

import importlib.util
import json
import re
import secrets
import smtplib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lordi import vm
from lordi.collectorproc import CollectorProcess
from lordi.sim.faults import reporting
from lordi.sim.fleet import (
    SCHOOLS,
    Fleet,
    build_fleet,
    connect_fleet,
    disconnect_fleet,
    last_school_week,
    school_days,
)
from lordi.stack import LocalStack, free_port

REPLACE_BELOW_PCT = 60.0
SAMPLE_REGISTRY = Path(__file__).resolve().parents[1] / "provisioning" / "schools.toml"
START_TIMEOUT_S = 30.0


def run_week(fleet: Fleet, start: datetime, say: object = print) -> int:
    """Drive every agent through the school week; returns the number of samples taken."""
    taken = 0
    day = None
    for t in school_days(start, days=7):
        fleet.clock.now = t
        if t.date() != day and callable(say):
            day = t.date()
            say(f"  simulating {t:%A %d %B}: {len(fleet.laptops)} laptops reporting every 5 min")
        for v in fleet.laptops:
            if not reporting(v, t):
                continue
            v.agent.take_sample()
            v.agent.pump()
            taken += 1
        for v in fleet.laptops:
            v.agent.pump()
    for v in fleet.laptops:
        if not v.agent.drain(timeout_s=30):
            raise RuntimeError(f"{v.hardware.device}: spool not drained")
    return taken


def wait_stored(stack: LocalStack, expected: int, timeout_s: float = 120) -> int:
    deadline = time.monotonic() + timeout_s
    stored = 0
    while time.monotonic() < deadline:
        vm.force_flush(stack.vm_url)
        rows = vm.query(stack.vm_url, "sum(count_over_time(device_report[14d]))")
        stored = int(rows[0]["value"]) if rows else 0
        if stored >= expected:
            return stored
        time.sleep(0.5)
    return stored


def flagged_by_school(stack: LocalStack) -> dict[str, list[tuple[str, str, float]]]:
    rows = vm.query(stack.vm_url, f"last_over_time(battery_health_pct[14d]) < {REPLACE_BELOW_PCT}")
    out: dict[str, list[tuple[str, str, float]]] = {}
    for r in rows:
        m = r["metric"]
        out.setdefault(m["school"], []).append((m["device"], m.get("model", "?"), r["value"]))
    return {k: sorted(v) for k, v in out.items()}


def report(fleet: Fleet, flagged: dict[str, list[tuple[str, str, float]]]) -> tuple[int, int]:
    truth = fleet.ground_truth_worn(REPLACE_BELOW_PCT)
    found = {d for rows in flagged.values() for d, _, _ in rows}
    print("\nBatteries to replace (health below 60 %), per school:")
    for uai, name in SCHOOLS:
        rows = flagged.get(uai, [])
        total = sum(1 for v in fleet.laptops if v.school == uai)
        print(f"\n  {uai}  {name}: {len(rows)} of {total} laptops")
        for device, model, health in rows:
            print(f"    {device:<16} battery {model:<10} health {health:5.1f} %")
    print(
        f"\n  flagged {len(found)}; ground truth {len(truth)}; "
        f"correct {len(found & truth)}, missed {len(truth - found)}, wrong {len(found - truth)}"
    )
    return len(found & truth), len(found ^ truth)


# --- --keep: the collector's alerts and the web worklist ----------------------------

WEBHOOK_LINE = re.compile(r"^\s*(helpdesk_)?webhook_url\s*=")


def _toml(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's for paths and URLs)."""
    return json.dumps(value)


def _spawn(stack: LocalStack, name: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    """A process of the stack: `stack.stop()` ends it, `--keep` lists it to stop."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    stack.procs[name] = proc
    return proc


def _wait_for(
    check: Callable[[], bool], what: str, proc: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not check():
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} did not start (log {log}):\n{tail}")
        time.sleep(0.1)


def _smtp_ready(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=1) as client:
            return bool(client.noop()[0] == 250)
    except OSError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback URL we built
            return bool(resp.status == 200)
    except OSError:
        return False


@dataclass
class DemoWorklist:
    """What `--keep` adds to the stack: alerts in a SQLite store of the stack's
    folder, e-mails to a local SMTP server, and the web worklist over that store."""

    collector_config: Path
    web_port: int
    maildir: Path | None  # None: aiosmtpd is not installed, alert e-mails fail
    web_config: Path | None = None
    url: str = ""
    password: str = ""

    def mails(self) -> int:
        new = self.maildir / "new" if self.maildir else None
        return len(list(new.iterdir())) if new and new.is_dir() else 0


def mail_only_registry(dest: Path) -> Path:
    """The sample registry (the demo's five schools) without its webhooks, whose
    example.org hosts do not exist: the demo's notifications go by e-mail."""
    if not SAMPLE_REGISTRY.exists():
        raise RuntimeError(f"{SAMPLE_REGISTRY}: the sample registry (run from a checkout)")
    text = SAMPLE_REGISTRY.read_text(encoding="utf-8")
    kept = [line for line in text.splitlines() if not WEBHOOK_LINE.match(line)]
    dest.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return dest


def start_smtp(stack: LocalStack) -> tuple[int, Path] | None:
    """A real SMTP server (aiosmtpd, a development dependency) keeping every e-mail
    in a Maildir of the stack's folder; None when aiosmtpd is not installed."""
    if importlib.util.find_spec("aiosmtpd") is None:
        return None
    port = free_port()
    maildir = stack.root / "mail" / "Maildir"
    maildir.parent.mkdir(parents=True, exist_ok=True)
    log = stack.root / "smtp.log"
    argv = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}"]
    proc = _spawn(stack, "smtp", [*argv, "-c", "aiosmtpd.handlers.Mailbox", str(maildir)], log)
    _wait_for(lambda: _smtp_ready(port), "SMTP server", proc, log)
    return port, maildir


def prepare_alerts(stack: LocalStack) -> DemoWorklist:
    """Before the collector starts: its alert settings in `collector.toml` of the
    stack's folder (the web reads the same file), and the SMTP server."""
    web_port = free_port()
    smtp = start_smtp(stack)
    registry = mail_only_registry(stack.root / "schools.toml")
    store = stack.root / "alerts.sqlite3"
    config = stack.root / "collector.toml"
    web = f"http://127.0.0.1:{web_port}"
    config.write_text(
        "\n".join(
            [
                "# lordi demo --keep: the collector's alerts; the demo's lordi-web reads it too.",
                "[alerts]",
                "enabled = true",
                f"store_url = {_toml(f'sqlite:///{store}')}",
                f"registry = {_toml(str(registry))}",
                "sweep_interval_s = 5",
                "# The simulated week is in the past: mail its alerts as if it were live.",
                f"notify_max_age_s = {365 * 86_400}",
                "",
                "[alerts.notify]",
                f"web_url = {_toml(web + '/alertes/{id}')}",
                "# No Grafana in the demo: the e-mails' device link opens the web's device page.",
                f"dashboard_url = {_toml(web + '/etablissements/{school}/appareils/{device}')}",
                "",
                "[alerts.notify.smtp]",
                'host = "127.0.0.1"',
                # Without aiosmtpd: a free port, nothing listens; the e-mails fail and
                # wait in the outbox (the demo says so).
                f"port = {smtp[0] if smtp else free_port()}",
                "timeout_s = 5",
                "",
                "[alerts.notify.alert_topic]",
                'host = "127.0.0.1"',
                f"port = {stack.mqtt_port}",
                "",
            ]
        ),
        encoding="utf-8",
    )
    return DemoWorklist(config, web_port, smtp[1] if smtp else None)


def web_command() -> list[str]:
    """`lordi-web` of this environment (the console script beside the interpreter)."""
    script = Path(sys.executable).with_name("lordi-web")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from lordi.web.cli import main; sys.exit(main())"]


def add_account(web_config: Path, name: str, role: str) -> str:
    """`lordi web --config web.toml user add NAME --role ROLE` with a generated
    password (given on stdin); returns the password."""
    password = secrets.token_urlsafe(12)
    done = subprocess.run(
        [sys.executable, "-m", "lordi.cli", "web", "--config", str(web_config), "user", "add",
         name, "--role", role, "--password-stdin"],
        input=password + "\n", capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"lordi web user add {name}: {done.stderr.strip()}")
    return password


def start_worklist(
    stack: LocalStack, demo: DemoWorklist, wrapper: tuple[str, ...] = ()
) -> DemoWorklist:
    """After the week: `web.toml` in the stack's folder (secure cookies: browsers
    accept them on http://127.0.0.1), the `demo` region account, and a real
    `lordi-web` process, returned once it answers /healthz. `wrapper` runs
    before the command (the tests run it under a seccomp filter)."""
    web = stack.root / "web.toml"
    web.write_text(
        "\n".join(
            [
                "# lordi demo --keep: the web worklist over the demo collector's alert store.",
                "[web]",
                'host = "127.0.0.1"',
                f"port = {demo.web_port}",
                f"collector_config = {_toml(str(demo.collector_config))}",
                "# Browsers accept Secure cookies on http://127.0.0.1 as over HTTPS.",
                "secure_cookies = true",
                "",
                "[web.series]",
                'kind = "victoriametrics"',
                f"url = {_toml(stack.vm_url)}",
                "",
            ]
        ),
        encoding="utf-8",
    )
    password = add_account(web, "demo", "region")
    log = stack.root / "lordi-web.log"
    proc = _spawn(stack, "lordi-web", [*wrapper, *web_command(), "--config", str(web)], log)
    url = f"http://127.0.0.1:{demo.web_port}/"
    _wait_for(lambda: _http_ok(url + "healthz"), "lordi-web", proc, log)
    demo.web_config, demo.url, demo.password = web, url, password
    return demo


def main(keep: bool = False, per_school: int = 40) -> int:
    t0 = time.monotonic()
    stack = LocalStack(keep_files=keep)
    print(f"Starting private stack in {stack.root} ...")
    stack.start()
    collector = None
    fleet = None
    worklist = None
    try:
        print(f"  mosquitto        mqtt://127.0.0.1:{stack.mqtt_port}")
        print(f"  victoria-metrics {stack.vm_url}")
        print(f"  influxdb 1.x     {stack.influx_url}")
        if keep:
            worklist = prepare_alerts(stack)
        collector = CollectorProcess.start(
            stack, config=worklist.collector_config if worklist else None
        )
        print(f"  collector        pid {collector.pid}, log {collector.log}")
        start = last_school_week(datetime.now(UTC))
        fleet = build_fleet(per_school, start)
        connect_fleet(fleet, "127.0.0.1", stack.mqtt_port)
        deadline = time.monotonic() + 30
        while not all(v.link and v.link.connected.is_set() for v in fleet.laptops):
            if time.monotonic() > deadline:
                raise RuntimeError("simulated laptops could not connect to the broker")
            time.sleep(0.1)
        print(f"{len(fleet.laptops)} simulated laptops in {len(SCHOOLS)} schools connected.")
        taken = run_week(fleet, start)
        stored = wait_stored(stack, taken)
        print(f"Samples taken {taken}, stored {stored} ({time.monotonic() - t0:.0f} s so far).")
        _, errors = report(fleet, flagged_by_school(stack))
        ok = stored == taken and errors == 0
        if worklist is not None:
            start_worklist(stack, worklist)
    finally:
        if fleet is not None:
            disconnect_fleet(fleet)
        if collector is not None:
            collector.stop()
        if keep:
            pids = " ".join(str(p.pid) for p in stack.procs.values())
            print(
                f"\nStack kept running (files in {stack.root}). Explore VictoriaMetrics at "
                f"{stack.vm_url}/vmui"
            )
            if worklist is not None and worklist.url:
                print(f"Worklist: {worklist.url}  log-in: demo / {worklist.password}")
                if worklist.maildir is None:
                    print("Alert e-mails: not sent (no aiosmtpd); they wait in the outbox")
                else:
                    print(f"Alert e-mails: {worklist.mails()} so far, in {worklist.maildir}")
            print(f"Stop it with: kill {pids}")
        else:
            stack.stop()
    print(f"\nDemo {'finished' if ok else 'FAILED'} in {time.monotonic() - t0:.0f} s.")
    return 0 if ok else 1
