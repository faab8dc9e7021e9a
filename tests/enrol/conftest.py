"""A real Mosquitto with the production config, its service accounts and an enrol.toml
for the enrolment tests; the enrolment service runs in this process (`setup`)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from lordi import provision
from lordi.cli import main as lordi_main
from lordi.enrol.service import EnrolService
from lordi.enrol.settings import load_settings
from lordi.enrol.store import EnrolStore
from tests.secure_broker import Fleet, SecureBroker

SCHOOL, OTHER = "0340001A", "0340002B"
NOT_AUTHORIZED = 0x87
ENROL_PW, ADMIN_PW, COLLECTOR_PW = (f"{r}-{uuid.uuid4().hex}" for r in ("e", "a", "c"))


@dataclass
class Setup:
    fleet: Fleet
    config: Path  # enrol.toml
    service: EnrolService | None  # None: `lordi enrol serve` runs as its own process
    root: Path

    def lordi(self, *argv: str) -> int:
        return lordi_main(list(argv))

    def secret(self, school: str, capsys: pytest.CaptureFixture[str]) -> str:
        capsys.readouterr()
        assert self.lordi("enrol", "secret", "create", "--config", str(self.config),
                          "--school", school) == 0
        return capsys.readouterr().out.splitlines()[1]

    def school_config(self, school: str, secret: str) -> Path:
        out = self.root / f"school-{uuid.uuid4().hex[:8]}.toml"
        assert self.lordi(
            "enrol", "school-config", "--config", str(self.config), "--school", school,
            "--secret", secret, "--host", "127.0.0.1",
            "--port", str(self.fleet.broker.tls_port),
            "--ca-file", str(self.fleet.broker.ca_file), "--out", str(out),
        ) == 0
        return out

    def laptop(self, school_config: Path) -> Path:
        """A laptop imaged with the school configuration: its own folder, same file."""
        folder = self.root / f"laptop-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        target = folder / "agent.toml"
        target.write_bytes(school_config.read_bytes())
        return target


@contextmanager
def broker_env(root: Path) -> Iterator[tuple[Fleet, Path]]:
    """A broker with the service accounts, and an enrol.toml pointing at it."""
    broker = SecureBroker()
    broker.start()
    fleet = Fleet(broker, root)
    try:
        for user, pw in (("lordi-enrol", ENROL_PW), ("lordi-admin", ADMIN_PW),
                         ("collector-1", COLLECTOR_PW)):
            provision.set_password(broker.broker_dir, user, pw)
        pid_file = root / "mosquitto.pid"
        pid_file.write_text(str(broker.pid))
        provision.reload_broker(broker.pid, None)
        config = root / "enrol.toml"
        config.write_text(
            f'store_url = "sqlite:///{root / "enrol.sqlite3"}"\n'
            f'registry = "{fleet.registry}"\nbatch_window_s = 0.2\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.tls_port}\ntls = true\n'
            f'ca_file = "{broker.ca_file}"\nusername = "lordi-enrol"\n'
            f'password = "{ENROL_PW}"\n'
            f'[broker]\ndir = "{broker.broker_dir}"\npid_file = "{pid_file}"\n'
            f"[limits]\nper_minute = 1\nburst = 8\n"
        )
        yield fleet, config
    finally:
        for c in fleet.clients:
            c.close()
        broker.stop()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("enrol")
    with broker_env(root) as (fleet, config):
        settings = load_settings(config)
        service = EnrolService(settings, EnrolStore(settings.store_url))
        service.start()
        stop = threading.Event()
        worker = threading.Thread(target=service.run, args=(stop,), daemon=True)
        worker.start()
        try:
            yield Setup(fleet, config, service, root)
        finally:
            stop.set()
            worker.join(5)
            service.stop()
