"""A school's rollout as the region's IT would run it, with real processes: one
school configuration copied onto several laptops, `lordi enrol serve` running, the
agents (`lordi-agent run`, replaying a real laptop's capture) enrolling
themselves and reporting over TLS, then one laptop revoked while it runs."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lordi.cli import main as lordi_main
from tests.enrol.conftest import ADMIN_PW, SCHOOL, broker_env
from tests.secure_broker import Fleet, eventually

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CAPTURE = REPO / "tests" / "replay" / "linux" / "thinkpad_42T4977_energy_cycle0_degraded"
LAPTOPS = 3


def spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Fleet, Path, Path]]:
    root = tmp_path_factory.mktemp("rollout")
    with broker_env(root) as (fleet, config):
        service_log = root / "enrol-service.log"
        service = spawn([str(BIN / "lordi"), "enrol", "serve", "--config", str(config)],
                        service_log)
        try:
            assert eventually(lambda: "listening on" in service_log.read_text(), 30), (
                service_log.read_text()
            )
            yield fleet, config, service_log
        finally:
            stop(service)


def test_a_school_configuration_deployed_to_laptops(
    env: tuple[Fleet, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    fleet, config, service_log = env
    root = config.parent
    assert lordi_main(["enrol", "secret", "create", "--config", str(config),
                       "--school", SCHOOL, "--note", "master image 2027"]) == 0
    secret = capsys.readouterr().out.splitlines()[1]
    school_cfg = root / "school-agent.toml"
    assert lordi_main([
        "enrol", "school-config", "--config", str(config), "--school", SCHOOL,
        "--secret", secret, "--host", "127.0.0.1", "--port", str(fleet.broker.tls_port),
        "--ca-file", str(fleet.broker.ca_file), "--out", str(school_cfg),
    ]) == 0
    admin = fleet.connected("lordi-admin", ADMIN_PW)
    assert admin.subscribe(f"lordi/v1/{SCHOOL}/#")[0].value < 0x80

    agents, folders = [], []
    env_vars = {**os.environ, "LORDI_AGENT_CADENCE__REPORT_INTERVAL_S": "30"}
    for _ in range(LAPTOPS):
        folder = root / f"laptop-{uuid.uuid4().hex[:6]}"
        folder.mkdir()
        (folder / "agent.toml").write_bytes(school_cfg.read_bytes())
        folders.append(folder)
        with (folder / "agent.log").open("ab") as out:
            agents.append(subprocess.Popen(
                [str(BIN / "lordi-agent"), "--config", str(folder / "agent.toml"), "run",
                 "--replay", str(CAPTURE)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env_vars,
                start_new_session=True,
            ))
    try:
        identities = [folder / "lordi-identity.toml" for folder in folders]
        assert eventually(lambda: all(p.exists() for p in identities), 60), [
            (f / "agent.log").read_text() for f in folders
        ]
        devices = [
            next(ln.split('"')[1] for ln in p.read_text().splitlines()
                 if ln.startswith("device ="))
            for p in identities
        ]
        assert len(set(devices)) == LAPTOPS

        def reported(device: str) -> bool:
            return any(t == f"lordi/v1/{SCHOOL}/{device}/telemetry" for t, _ in admin.messages)

        assert eventually(lambda: all(reported(d) for d in devices), 60)
        log = service_log.read_text()
        assert all(f"enrolled device {d}: school {SCHOOL}" in log for d in devices)

        capsys.readouterr()
        assert lordi_main(["enrol", "list", "--config", str(config), "--school", SCHOOL]) == 0
        listed = capsys.readouterr().out
        assert all(d in listed for d in devices)

        saved = identities[0].read_text()
        # Revoke the first laptop while it runs: the broker drops it and refuses it.
        assert lordi_main(["enrol", "revoke-device", "--config", str(config),
                           "--device", devices[0]]) == 0
        agent_log = folders[0] / "agent.log"
        assert eventually(lambda: "not authorized" in agent_log.read_text().lower(), 60), (
            agent_log.read_text()
        )
        # It keeps its identity (never enrols again by itself); the others still report.
        assert identities[0].read_text() == saved
        assert not (folders[0] / "lordi-identity.toml.pending").exists()
        admin.messages.clear()
        assert eventually(lambda: all(reported(d) for d in devices[1:]), 60)
        assert not reported(devices[0])
    finally:
        for proc in agents:
            stop(proc)
