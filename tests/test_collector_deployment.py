"""The collector's systemd unit (provisioning/collector/lordi-collector.service),
checked with the real tools: `systemd-analyze verify` and `security --offline`, its
command line through the collector's own argument parser, and the collector run
through a message, its metrics and health endpoints under MemoryDenyWriteExecute's
seccomp rule (the wrapper of tests/test_web_deployment.py).

Not checked here: starting the unit under a real systemd (none runs on this
machine: PID 1 is not systemd)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from lordi.stack import LocalStack, free_port
from tests.helpers import envelope, minimal_sample, publish, recent, unique_school, wait_stored
from tests.metrics.helpers import eventually, forget_session, get
from tests.test_web_deployment import mdwe_wrapper
from tests.units import analyze_unit, unit_settings

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "provisioning" / "collector" / "lordi-collector.service"
WEB_UNIT = ROOT / "provisioning" / "web" / "lordi-web.service"
EXEC = "/opt/lordi/venv/bin/lordi-collector"



def test_unit_runs_the_collector_with_its_state_directory() -> None:
    s = {k: v[-1] for k, v in unit_settings(UNIT)["Service"].items()}
    argv = shlex.split(s["ExecStart"])
    assert argv == [EXEC, "run", "--config", "/etc/lordi/collector.toml"]
    from collector.cli import main  # noqa: PLC0415

    with pytest.raises(SystemExit) as info:  # the collector's own parser accepts them
        main([*argv[1:], "--help"])
    assert info.value.code == 0
    assert (s["User"], s["Group"]) == ("lordi-collector", "lordi-collector")
    assert s["StateDirectory"] == "lordi-collector"  # /var/lib/lordi-collector
    assert s["WorkingDirectory"] == "/var/lib/lordi-collector"
    # lordi-web writes into the same directory (its unit's only writable path).
    web = {k: v[-1] for k, v in unit_settings(WEB_UNIT)["Service"].items()}
    assert web["ReadWritePaths"] == "-/var/lib/lordi-collector"
    assert s["EnvironmentFile"] == "-/etc/lordi/collector.env"
    assert s["Restart"] == "on-failure"
    # The health check systemd can act on: the collector's watchdog (sdnotify.py).
    assert (s["Type"], s["NotifyAccess"], s["WatchdogSec"]) == ("notify", "main", "90s")
    # `systemctl reload`: SIGHUP re-reads the school registry (collector/notify/live.py,
    # tested on a running collector in tests/notify/test_registry_reload_running.py).
    assert s["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert unit_settings(UNIT)["Install"]["WantedBy"] == ["multi-user.target"]


def test_unit_hardening_matches_the_webs() -> None:
    own = unit_settings(UNIT)["Service"]
    web = unit_settings(WEB_UNIT)["Service"]
    for key in (
        "NoNewPrivileges", "CapabilityBoundingSet", "AmbientCapabilities", "ProtectSystem",
        "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateIPC", "ProtectKernelTunables",
        "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock",
        "ProtectProc", "RestrictAddressFamilies", "RestrictNamespaces", "RestrictSUIDSGID",
        "LockPersonality", "MemoryDenyWriteExecute", "SystemCallFilter",
        "SystemCallArchitectures", "UMask",
    ):  # fmt: skip
        assert own[key] == web[key], key
    assert "ReadWritePaths" not in own  # only its StateDirectory is writable


def test_unit_systemd_analyze_verify_and_security(tmp_path: Path) -> None:
    analyze_unit(UNIT, EXEC, tmp_path)  # 1.2 measured


def test_collector_works_under_memory_deny_write_execute(stack: LocalStack, tmp_path: Path) -> None:
    """`lordi-collector run` (metrics on) under the MDWE rule: a message stored, the
    metrics scraped, /healthz and /readyz 200."""
    port = free_port()
    client_id = "mdwe-collector"
    env = {
        **stack.env(),
        "LORDI_COLLECTOR_MQTT__CLIENT_ID": client_id,
        "LORDI_COLLECTOR_MQTT__SHARE_GROUP": client_id,
        "LORDI_COLLECTOR_METRICS__ENABLED": "true",
        "LORDI_COLLECTOR_METRICS__PORT": str(port),
    }
    script = Path(sys.executable).with_name("lordi-collector")  # the console script
    command = [str(script)] if script.exists() else [sys.executable, "-m", "collector.cli"]
    log = tmp_path / "collector.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*mdwe_wrapper(), *command, "run"],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        assert eventually(lambda: get(f"{base}/readyz") == (200, "ready\n"), 30), log.read_text()
        school = unique_school()
        publish(stack, f"lordi/v1/{school}/d1/telemetry",
                [envelope(school, "d1", [minimal_sample(recent(5))])])  # fmt: skip
        assert wait_stored(stack, school, 1) == 1
        status, metrics = get(f"{base}/metrics")
        assert status == 200 and "lordi_collector_samples_accepted_total 1.0" in metrics
        assert get(f"{base}/healthz") == (200, "live\n")
    finally:
        proc.terminate()
        proc.wait(20)
        forget_session(stack, client_id)
    text = log.read_text()
    assert "Traceback" not in text and "PermissionError" not in text, text[-3000:]
