"""The agent service as installed: cadence on low battery, logs without secrets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agent.config import AgentConfig
from agent.model import BatteryReading, OsInfo, Reading
from agent.privacy import PrivacyPolicy
from agent.runtime import Agent, OfflineLink
from agent.service import _slowdown
from agent.spool import Spool
from lordi.stack import LocalStack
from tests.helpers import Subscriber, recent, unique_school
from tests.integration.test_pipeline import FixedProvider

SECRETS = ("S3cret-MQTT-pass", "bssid-K3y-very-secret")


def _agent_with(percent: float, plugged: bool) -> Agent:
    reading = Reading(OsInfo("linux"), [BatteryReading("BAT0", percent=percent, plugged=plugged)])
    agent = Agent(
        "0341234A",
        "d",
        provider=FixedProvider(reading),
        link=OfflineLink(),
        spool=Spool(None),
        policy=PrivacyPolicy(frozenset(), b""),
        clock=lambda: recent(1),
    )
    agent.take_sample()
    return agent


def test_sampling_slows_down_on_battery_at_low_charge() -> None:
    cfg = AgentConfig()
    assert _slowdown(_agent_with(15.0, plugged=False), cfg) == cfg.cadence.low_battery_slowdown == 3
    assert _slowdown(_agent_with(15.0, plugged=True), cfg) == 1
    assert _slowdown(_agent_with(60.0, plugged=False), cfg) == 1


def test_service_logs_rotate_to_a_file_and_never_hold_secrets(
    stack: LocalStack, tmp_path: Path
) -> None:
    school = unique_school()
    config = tmp_path / "agent.toml"
    config.write_text(
        f'school = "{school}"\ndevice = "dev-log"\n'
        f'[mqtt]\nport = {stack.mqtt_port}\nusername = "agent"\npassword = "{SECRETS[0]}"\n'
        f'[privacy]\nschool_ssids = ["LORDI-EDU"]\nbssid_key = "{SECRETS[1]}"\n'
        f'[spool]\npath = "{tmp_path / "spool.sqlite3"}"\n'
    )
    log = tmp_path / "agent.log"
    watcher = Subscriber(stack, f"lordi/v1/{school}/dev-log/#")
    cli = [sys.executable, "-m", "agent.cli", "--config", str(config)]
    checked = subprocess.run(
        [*cli, "check-config"], capture_output=True, text=True, timeout=60, check=False
    )
    proc = subprocess.Popen(
        [*cli, "run", "--log-file", str(log)],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.wait_for(lambda m: any(t.endswith("/telemetry") for t, _, _ in m))
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        watcher.close()
    time.sleep(0.1)
    assert proc.returncode == 0
    text = log.read_text()
    assert "agent starting" in text and "connected to" in text
    assert checked.returncode == 0 and f"school {school}" in checked.stdout
    for secret in SECRETS:
        for where in (text, out, err, checked.stdout, checked.stderr):
            assert secret not in where
