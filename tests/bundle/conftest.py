"""The offline Windows package, built once per test session (downloads from the
configured package index: the project's wheel's build backend, and the dependencies'
Windows wheels for each supported Python)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lordi.bundle.build import Bundle, Request, build
from lordi.bundle.wheels import build_project_wheel

SCHOOL_CONFIG = """\
# School configuration (test): copied as it is, never read by the bundler's tests
school = "0341234A"

[mqtt]
host = "mqtt.lordi.example"
port = 8883
tls = true
ca_file = 'C:\\ProgramData\\Lordi\\ca.crt'

[enrol]
secret = "mfrgg3dp.5qKtest-not-a-real-secret"

[privacy]
school_ssids = ["LYCEE-PEDAGO"]
"""
CA = "-----BEGIN CERTIFICATE-----\nMIIB (test)\n-----END CERTIFICATE-----\n"


def need_tool(name: str) -> None:
    """Fail without `name`: `make test` installs it (scripts/bootstrap.sh --test), as
    tests/units.py does for systemd-analyze; a skipped MSI test would prove nothing."""
    if shutil.which(name) is None:
        pytest.fail(f"{name} is not installed: run make bootstrap (scripts/bootstrap.sh --test)")


@pytest.fixture(scope="session")
def project_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_project_wheel(Path(__file__).resolve().parents[2], tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def school_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("school")
    (root / "school-agent.toml").write_text(SCHOOL_CONFIG, encoding="utf-8")
    (root / "ca.crt").write_text(CA, encoding="ascii")
    return root / "school-agent.toml", root / "ca.crt"


@pytest.fixture(scope="session")
def windows_bundle(
    tmp_path_factory: pytest.TempPathFactory, project_wheel: Path, school_files: tuple[Path, Path]
) -> Bundle:
    """The default package (win_amd64; Python 3.11, 3.12, 3.13), with an MSI when wixl
    is installed."""
    config, ca = school_files
    out = tmp_path_factory.mktemp("share") / "lordi"
    return build(
        Request(
            config=config,
            out=out,
            ca_file=ca,
            wheel=project_wheel,
            msi=shutil.which("wixl") is not None and shutil.which("msiinfo") is not None,
        )
    )
