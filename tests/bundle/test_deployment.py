"""A school's package deployed to simulated laptops, on Linux.

The same build as `lordi bundle windows`, for this machine's platform and Python
(Windows cannot run here): a school configuration from `lordi enrol school-config`
against a real broker, the package built from it, then three "laptops", each a clean
virtual environment made without pip, into which the package's own pip installs the
agent with --no-index --find-links <package>/wheels, no pip configuration, no PIP_*
variable and a dead proxy for any network access: the steps of install.ps1. Their
agents (`python -I -m agent.cli run`, replaying a real laptop's capture) then enrol
themselves with `lordi enrol serve` (its own process) and report over TLS; then one
is revoked while it runs, as the region would for a lost laptop.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from lordi.bundle.build import Bundle, Request, build
from lordi.bundle.wheels import host_platforms
from lordi.cli import main as lordi_main
from tests.enrol.conftest import ADMIN_PW, SCHOOL, broker_env
from tests.secure_broker import Fleet, eventually

REPO = Path(__file__).resolve().parents[2]
CAPTURE = REPO / "tests" / "replay" / "linux" / "thinkpad_42T4977_energy_cycle0_degraded"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
LAPTOPS = 3
DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: any download attempt fails


@dataclass
class Laptop:
    root: Path
    python: Path  # the agent's environment's interpreter
    config: Path  # the installed school configuration

    def agent(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), "-I", "-m", "agent.cli", *argv], capture_output=True,
            text=True, cwd=self.root, env=clean_env(self.root), check=False, timeout=60,
        )


@dataclass
class Deployment:
    fleet: Fleet
    bundle: Bundle
    laptops: list[Laptop]
    enrol_config: Path
    service_log: Path


def clean_env(home: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin", "HOME": str(home), "PIP_CONFIG_FILE": os.devnull,
        "HTTP_PROXY": DEAD_PROXY, "HTTPS_PROXY": DEAD_PROXY, "ALL_PROXY": DEAD_PROXY,
        "http_proxy": DEAD_PROXY, "https_proxy": DEAD_PROXY,
    }


def lordi_out(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert lordi_main(list(argv)) == 0
    return out.getvalue()


def install(package: Path, root: Path) -> Laptop:
    """install.ps1's steps 3-5 on a laptop with a Python and nothing else."""
    manifest = json.loads((package / "bundle.json").read_text(encoding="utf-8"))
    root.mkdir()
    venv, data = root / "venv", root / "data"
    subprocess.run([sys.executable, "-I", "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip_main = package / manifest["pip_wheels"][PYTHON] / "pip"
    done = subprocess.run(
        [str(python), "-I", str(pip_main), "install", "--no-index", "--find-links",
         str(package / "wheels"), "--no-cache-dir", "--disable-pip-version-check",
         str(package / manifest["project_wheel"])],
        capture_output=True, text=True, cwd=root, env=clean_env(root), check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data.mkdir()
    shutil.copyfile(package / "agent.toml", data / "agent.toml")
    return Laptop(root, python, data / "agent.toml")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, project_wheel: Path) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("deploy")
    with broker_env(root) as (fleet, enrol_config):
        service_log = root / "enrol-service.log"
        with service_log.open("ab") as out:
            service = subprocess.Popen(
                [str(Path(sys.executable).parent / "lordi"), "enrol", "serve", "--config",
                 str(enrol_config)], stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        try:
            assert eventually(lambda: "listening on" in service_log.read_text(), 30), (
                service_log.read_text()
            )
            secret = lordi_out("enrol", "secret", "create", "--config", str(enrol_config),
                               "--school", SCHOOL).splitlines()[1]
            school = root / "school-agent.toml"
            lordi_out("enrol", "school-config", "--config", str(enrol_config), "--school", SCHOOL,
                      "--secret", secret, "--host", "127.0.0.1",
                      "--port", str(fleet.broker.tls_port),
                      "--ca-file", str(fleet.broker.ca_file), "--out", str(school))
            bundle = build(Request(config=school, out=root / "share" / "lordi",
                                   pythons=(PYTHON,), platforms=host_platforms(),
                                   wheel=project_wheel))
            with ThreadPoolExecutor(LAPTOPS) as pool:
                laptops = list(pool.map(lambda i: install(bundle.out, root / f"laptop-{i}"),
                                        range(LAPTOPS)))
            yield Deployment(fleet, bundle, laptops, enrol_config, service_log)
        finally:
            service.terminate()
            try:
                service.wait(15)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait(5)


def test_a_laptop_gets_the_package_wheels_and_nothing_else(deployment: Deployment) -> None:
    for laptop in deployment.laptops:
        done = subprocess.run(
            [str(laptop.python), "-I", "-c",
             "import importlib.metadata as m, agent, paho.mqtt.client, psutil; "
             "print(sorted(d.metadata['Name'] for d in m.distributions())); print(agent.__file__)"],
            capture_output=True, text=True, cwd=laptop.root, env=clean_env(laptop.root), check=True,
        )
        names, where = done.stdout.splitlines()
        assert names == "['lordi-telemetry', 'paho-mqtt', 'psutil']"  # no pip in it either
        assert Path(where).is_relative_to(laptop.root / "venv")  # not this checkout's agent


def test_the_installed_agent_runs(deployment: Deployment) -> None:
    laptop = deployment.laptops[0]
    assert laptop.agent("--help").returncode == 0
    checked = laptop.agent("--config", str(laptop.config), "check-config")
    assert checked.returncode == 0, checked.stderr
    assert f"school {SCHOOL}, device enrols at first start" in checked.stdout
    sample = laptop.agent("--config", str(laptop.config), "sample", "--replay", str(CAPTURE),
                          "--json")
    assert sample.returncode == 0, sample.stderr
    message = json.loads(sample.stdout)
    assert message["school"] == SCHOOL and message["device"] == "unenrolled"
    (battery,) = message["samples"][0]["batteries"]
    assert battery["model"] == "42T4977" and battery["health_pct"] == 65.52


def test_the_laptops_enrol_and_report(deployment: Deployment) -> None:
    admin = deployment.fleet.connected("lordi-admin", ADMIN_PW)
    assert admin.subscribe(f"lordi/v1/{SCHOOL}/#")[0].value < 0x80
    agents = []
    try:
        for laptop in deployment.laptops:
            with (laptop.root / "agent.log").open("ab") as log:
                agents.append(subprocess.Popen(
                    [str(laptop.python), "-I", "-m", "agent.cli", "--config", str(laptop.config),
                     "run", "--replay", str(CAPTURE)],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    cwd=laptop.root, env=clean_env(laptop.root), start_new_session=True,
                ))
        identities = [laptop.config.parent / "lordi-identity.toml" for laptop in deployment.laptops]
        assert eventually(lambda: all(p.exists() for p in identities), 60), [
            (laptop.root / "agent.log").read_text() for laptop in deployment.laptops
        ]
        devices = [next(line.split('"')[1] for line in p.read_text().splitlines()
                        if line.startswith("device =")) for p in identities]
        assert len(set(devices)) == LAPTOPS

        def reported(device: str) -> bool:
            return any(t == f"lordi/v1/{SCHOOL}/{device}/telemetry" for t, _ in admin.messages)

        assert eventually(lambda: all(reported(d) for d in devices), 60), devices
        served = deployment.service_log.read_text()
        assert all(f"enrolled device {d}: school {SCHOOL}" in served for d in devices), served
        assert all(d in lordi_out("enrol", "list", "--config", str(deployment.enrol_config),
                                  "--school", SCHOOL) for d in devices)

        # A lost laptop: revoked while it runs, the broker drops and refuses it; it keeps
        # its identity (never enrols again by itself); the others are not disturbed.
        saved = identities[0].read_text()
        lordi_out("enrol", "revoke-device", "--config", str(deployment.enrol_config),
                  "--device", devices[0])
        logs = [laptop.root / "agent.log" for laptop in deployment.laptops]
        assert eventually(lambda: "not authorized" in logs[0].read_text().lower(), 60), (
            logs[0].read_text()
        )
        assert identities[0].read_text() == saved
        assert deployment.service_log.read_text().count("enrolled device") == LAPTOPS
        assert all("not authorized" not in p.read_text().lower() for p in logs[1:])
        assert all(proc.poll() is None for proc in agents)
    finally:
        for proc in agents:
            proc.terminate()
        for proc in agents:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
