"""From an empty folder to a laptop's samples on the dashboards' queries and an alert
e-mail, following docs/server-stack.md's Debian block (issue 16).

Every `lordi` command of the documented block runs as written, with its paths moved
under a temporary root and this run's ports; the documented `systemctl` lines are
done by hand, since no systemd runs here: each service's command line, user and
environment are read from its unit (Debian's for Mosquitto and VictoriaMetrics,
the ones `lordi server init` wrote for the collector, the repository's for the agent)
and run as that unit's user. A capture of a worn laptop battery is replayed by the
agent over TLS with the credentials enrolment made.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lordi import vm
from lordi.smtp import running_smtp
from lordi.stack import free_port
from tests.walkthrough import debian

VENV_BIN = Path(sys.executable).parent
LORDI = str(VENV_BIN / "lordi")
CAPTURE = debian.REPO / "tests" / "replay" / "linux" / "thinkpad_42T4977_energy_cycle0_degraded"
SCHOOL_LINE = re.compile(r"^(\S+)\s")


def rooted(argv: list[str], root: Path, overrides: dict[str, str] | None = None) -> list[str]:
    """A documented command with its absolute server paths under `root` and some
    option values replaced or added (ports, the laptop-side CA path, the broker's name)."""
    overrides = overrides or {}
    out: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in overrides and i + 1 < len(argv):
            out += [arg, overrides[arg]]
            skip = True
        elif arg.startswith(("/etc/", "/run/", "/var/")):
            out.append(str(root / arg.lstrip("/")))
        else:
            out.append(arg)
    out += [item for flag, value in overrides.items() if flag not in argv
            for item in (flag, value)]
    return [LORDI if out[0] == "lordi" else out[0], *out[1:]]


def lordi(argv: list[str], expect: int = 0) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == expect, f"{argv}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def wait(check: Any, what: str, timeout_s: float, logs: list[Path]) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    tails = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}"
                      for p in logs if p.exists())
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback test URL
            return int(resp.status) == 200
    except OSError:
        return False


@pytest.fixture
def root() -> Iterator[Path]:
    # Not under pytest's tmp_path: its parent is 0700 and the services' users must
    # reach their files, as they do under / on a server.
    folder = Path(tempfile.mkdtemp(prefix="lordi-walk-"))
    folder.chmod(0o755)
    # The virtualenv, the checkout (editable install) and the interpreter behind the
    # virtualenv (e.g. pyenv's, under /root).
    with debian.reachable_by_others(VENV_BIN.parent), debian.reachable_by_others(
        debian.REPO), debian.reachable_by_others(Path(sys.base_prefix)):
        yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_empty_debian_server_to_first_laptop(root: Path, capsys: pytest.CaptureFixture[str]
                                             ) -> None:
    started = time.monotonic()
    procs: list[subprocess.Popen[bytes]] = []
    logs = root / "logs"
    logs.mkdir()
    # The packages' own files, as `apt-get install mosquitto victoria-metrics` leaves them.
    (root / "etc" / "mosquitto").mkdir(parents=True)
    (root / "etc" / "mosquitto" / "mosquitto.conf").write_text(debian.DEBIAN_MOSQUITTO_CONF)
    (root / "etc" / "default").mkdir()
    (root / "etc" / "default" / "victoria-metrics").write_text(debian.DEBIAN_VM_DEFAULTS)
    tls_port, vm_port, metrics_port = free_port(), free_port(), free_port()
    commands = debian.documented("server-stack.md", "lordi")
    names = [c[1] + (" " + c[2] if len(c) > 2 else "") for c in commands]
    assert names[:1] == ["server init"], names
    try:
        with running_smtp(root / "smtp") as smtp:
            server = {
                "--tls-port": str(tls_port), "--smtp-port": str(smtp.port),
                "--store-url": f"http://127.0.0.1:{vm_port}", "--venv": str(VENV_BIN.parent),
                "--metrics-port": str(metrics_port), "--root": str(root),
                "--provisioning": str(debian.REPO / "provisioning"),
            }
            init = rooted(commands[0], root, server)
            # The laptop side: the broker's public name does not resolve here, and the
            # CA path is the laptop's.
            laptop = {
                "--host": "localhost", "--port": str(tls_port),
                "--ca-file": str(root / "etc/mosquitto/certs/ca.crt"),
                "--out": str(root / "laptop" / "agent.toml"),
            }
            first = lordi(init)
            assert "created" in first
            again = lordi(init)
            assert "nothing to change" in again, again

            # systemctl restart mosquitto victoria-metrics: Debian's units' commands.
            procs.append(debian.spawn(
                ["/usr/sbin/mosquitto", "-c", str(root / "etc/mosquitto/mosquitto.conf")],
                {"PATH": "/usr/bin:/bin"}, logs / "mosquitto.log"))
            args = re.search(r'^ARGS="([^"]*)"',
                             (root / "etc/default/victoria-metrics").read_text(), re.M)
            assert args is not None
            vm_argv = ["/usr/bin/victoria-metrics"]
            moved = {"-storageDataPath": str(root / "var/lib/victoria-metrics"),
                     "-httpListenAddr": f"127.0.0.1:{vm_port}"}
            for arg in args.group(1).split():
                flag = arg.split("=", 1)[0]
                vm_argv.append(f"{flag}={moved[flag]}" if flag in moved else arg)
            assert any(a == "-dedup.minScrapeInterval=1ms" for a in vm_argv), vm_argv
            procs.append(debian.spawn(vm_argv, {"PATH": "/usr/bin:/bin"}, logs / "vm.log"))
            wait(lambda: http_ok(f"http://127.0.0.1:{vm_port}/health"), "VictoriaMetrics", 30,
                 [logs / "vm.log"])

            # The registry, then the collector (`systemctl enable --now lordi-collector`).
            for argv in commands[1:]:
                if argv[1:3] == ["provision", "device"]:
                    break
                lordi(rooted(argv, root))
            unit = root / "etc/systemd/system/lordi-collector.service"
            argv, env, user, workdir = debian.unit_command(unit)
            assert user == "lordi-collector"
            procs.append(debian.spawn(debian.as_user(user, argv), env,
                                      logs / "collector.log", cwd=workdir))
            wait(lambda: http_ok(f"http://127.0.0.1:{metrics_port}/readyz"), "collector ready",
                 60, [logs / "collector.log", root / "var/log/mosquitto/mosquitto.log"])

            # A laptop: enrolment, then the agent's unit command replaying a capture.
            device_cmd = next(c for c in commands if c[1:3] == ["provision", "device"])
            (root / "laptop").mkdir()
            device_out = lordi(rooted(device_cmd, root, laptop))
            assert "reloaded" in device_out, device_out
            procs.append(start_agent(root, logs))
            school = next(c for c in commands if c[1:3] == ["provision", "school"])
            uai = school[school.index("--uai") + 1]
            base = f"http://127.0.0.1:{vm_port}"

            def stored() -> list[dict[str, Any]]:
                vm.force_flush(base)
                return vm.query(base, f'battery_health_pct{{school="{uai}"}}')

            rows = wait(stored, "the laptop's first sample in VictoriaMetrics", 90,
                        [logs / "agent.log", logs / "collector.log"])
            first_sample_s = time.monotonic() - started
            assert abs(rows[0]["value"] - 65.52) < 0.01, rows
            mails = wait(smtp.messages, "the alert e-mail", 60,
                         [logs / "collector.log"])
            to = [m["To"] for m in mails]
            assert any("ana.roig@example.org" in (t or "") for t in to), to
            body = mails[0].get_payload(decode=True) or b""
            assert b"LRD-34-001234" in body or "LRD-34-001234" in str(mails[0]), body[:2000]
            check_dashboards(base, uai)

            status_cmd = next(c for c in commands if c[1:3] == ["store", "status"])
            status = lordi(rooted(status_cmd, root, {"--url": f"http://127.0.0.1:{vm_port}"}))
            assert uai in status, status

            log = (logs / "collector.log").read_text(errors="replace")
            assert "Traceback" not in log, log[-3000:]
            with capsys.disabled():
                print(f"\n[walkthrough] empty folder to the first sample in the store: "
                      f"{first_sample_s:.1f} s; alert e-mail after "
                      f"{time.monotonic() - started:.1f} s")
    finally:
        for proc in reversed(procs):
            debian.stop(proc)


def start_agent(root: Path, logs: Path) -> subprocess.Popen[bytes]:
    """The Linux agent unit's command: DynamicUser, agent.toml as a credential, the spool
    in its state directory; `--replay` reads the capture instead of this machine."""
    unit = debian.REPO / "provisioning/agent/linux/lordi-agent.service"
    creds = root / "run/credentials/lordi-agent.service"
    state = root / "var/lib/lordi-agent"
    for folder in (creds, state):
        folder.mkdir(parents=True)
        shutil.chown(folder, "nobody", "nogroup")
        folder.chmod(0o700)
    shutil.copy(root / "laptop" / "agent.toml", creds / "agent.toml")
    shutil.chown(creds / "agent.toml", "nobody", "nogroup")
    argv, env, _user, _ = debian.unit_command(
        unit, {"CREDENTIALS_DIRECTORY": str(creds)})
    env["LORDI_AGENT_SPOOL__PATH"] = str(state / "spool.sqlite3")
    argv = [str(VENV_BIN / "lordi-agent"), *argv[1:], "--replay", str(CAPTURE)]
    # DynamicUser=yes: an unprivileged account of its own; `nobody` stands in for it.
    return debian.spawn(debian.as_user("nobody", argv), env, logs / "agent.log")


def check_dashboards(base: str, uai: str) -> None:
    """The VictoriaMetrics flavour of the School dashboard finds the laptop."""
    board = json.loads((debian.REPO / "dashboards/vm/school.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", []) if "expr" in t]
    assert exprs, "no MetricsQL query in dashboards/vm/school.json"
    found = 0
    for expr in exprs:
        promql = (expr.replace("$school", uai).replace("$__interval", "1h")
                  .replace("$__rate_interval", "1h").replace("$__range", "1d")
                  .replace("$device", ".*"))
        try:
            rows = vm.query(base, promql)
        except Exception as exc:  # the message names the failing query
            raise AssertionError(f"{expr}: {exc}") from None
        found += bool(rows)
    assert found, exprs
