"""`lordi-collector run` with a file it cannot use: its configuration file, the
broker's CA certificate, the school registry. Each is one line naming the setting,
the file, the account when a permission is missing, and the fix; exit code 2 and
no traceback. Missing and malformed files: the real process. Unreadable files:
`main()` in a child running as `nobody` (tests/collector/other_user.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import collector.preflight
import collector.service  # imported here: the child running as nobody imports nothing
from collector import cli
from tests.collector.other_user import Outcome, as_other_user, locked, open_folder

REPO = Path(__file__).resolve().parents[2]
SAMPLE = "provisioning/collector/collector.toml"
REGISTRY_FIX = (
    "set [alerts] registry to the school registry's path (commented sample: "
    "provisioning/schools.toml; docs/alert-routing.md)"
)
CA_FIX = (
    "set it to the CA certificate (PEM) that signed the broker's certificate, or remove it "
    "to use the system's trust store"
)
assert collector.preflight and collector.service


def _run(config: Path | None, cwd: Path, **env: str) -> str:
    """The real `lordi-collector run`: exit code 2, no traceback, its last line."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LORDI_COLLECTOR_")}
    # a port where nothing listens: the collector must fail before any connection
    clean |= {"LORDI_COLLECTOR_MQTT__PORT": "9", **env}
    argv = [sys.executable, "-m", "collector.cli", "run"]
    if config is not None:
        argv += ["--config", str(config)]
    done = subprocess.run(
        argv, env=clean, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr.strip().splitlines()[-1]


def _run_as_nobody(config: Path) -> tuple[str, Outcome]:
    """`main(["run", ...])` as another account: (its last line, the outcome)."""
    done = as_other_user(lambda: cli.main(["run", "--config", str(config)]))
    assert done.code == 2, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr.strip().splitlines()[-1], done


@pytest.fixture
def shared() -> Iterator[Path]:
    folder = open_folder()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o644)
    return path


# --- the configuration file ---------------------------------------------------------


def test_a_missing_config_file_is_named_with_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "collector.toml"
    assert _run(missing, tmp_path) == (
        f"config error: --config: {missing} does not exist: give --config the collector's "
        f"TOML file (every key is explained in {SAMPLE})"
    )


def test_invalid_toml_gives_the_line(tmp_path: Path) -> None:
    path = _toml(tmp_path / "collector.toml", '[mqtt]\nhost = "a"\nport = \n')
    line = _run(path, tmp_path)
    assert line.startswith(f"config error: --config: {path} is not valid TOML: ")
    assert "(at line 3, column 8)" in line
    assert line.endswith(f": fix that line (every key is explained in {SAMPLE})")


def test_a_config_file_the_account_cannot_read_names_the_account(shared: Path) -> None:
    path = locked(shared / "collector.toml", "[mqtt]\nport = 9\n")
    line, who = _run_as_nobody(path)
    assert line == (
        f"config error: --config: {path} is not readable by {who.account}: let that account "
        f"read it, e.g. chgrp {who.group} {path} && chmod 0640 {path} (it holds secrets: not "
        "world-readable)"
    )


def test_a_folder_the_account_cannot_enter_is_named(shared: Path) -> None:
    private = shared / "lordi"
    private.mkdir(mode=0o700)
    path = _toml(private / "collector.toml", "[mqtt]\nport = 9\n")
    if os.geteuid() != 0:  # the owner may enter: take the right away
        private.chmod(0o600)
    try:
        line, who = _run_as_nobody(path)
    finally:
        private.chmod(0o700)
    assert line == (
        f"config error: --config: {path}: the folder {private} is not searchable by "
        f"{who.account}: let that account in, e.g. chgrp {who.group} {private} && chmod g+x "
        f"{private}"
    )


# --- the broker's CA certificate ----------------------------------------------------


def test_a_missing_ca_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "ca.crt"
    line = _run(
        None, tmp_path, LORDI_COLLECTOR_MQTT__TLS="true", LORDI_COLLECTOR_MQTT__CA_FILE=str(missing)
    )
    assert line == f"config error: mqtt.ca_file: {missing} does not exist: {CA_FIX}"


def test_a_ca_file_that_is_no_certificate_is_a_config_error(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.crt"
    garbage.write_text("this is not a certificate\n", encoding="utf-8")
    line = _run(
        None, tmp_path, LORDI_COLLECTOR_MQTT__TLS="true", LORDI_COLLECTOR_MQTT__CA_FILE=str(garbage)
    )
    assert line.startswith(
        f"config error: mqtt.ca_file: {garbage} holds no PEM certificate OpenSSL can load ("
    )
    assert line.endswith(
        "give the CA certificate (-----BEGIN CERTIFICATE-----) that signed the broker's "
        "certificate"
    )


def test_a_ca_file_the_account_cannot_read_names_the_account(shared: Path) -> None:
    ca = locked(shared / "ca.crt", "-----BEGIN CERTIFICATE-----\n")
    config = _toml(shared / "collector.toml", f'[mqtt]\nport = 9\ntls = true\nca_file = "{ca}"\n')
    line, who = _run_as_nobody(config)
    assert line == (
        f"config error: mqtt.ca_file: {ca} is not readable by {who.account}: let that account "
        f"read it, e.g. chmod 0644 {ca} (a CA certificate is public)"
    )


def test_the_alert_topic_own_ca_file_is_checked_under_its_name(tmp_path: Path) -> None:
    registry = tmp_path / "schools.toml"
    shutil.copy(REPO / "provisioning/schools.toml", registry)
    missing = tmp_path / "other-ca.crt"
    line = _run(
        None,
        tmp_path,
        LORDI_COLLECTOR_ALERTS__ENABLED="true",
        LORDI_COLLECTOR_ALERTS__REGISTRY=str(registry),
        LORDI_COLLECTOR_ALERTS__NOTIFY__ALERT_TOPIC__TLS="true",
        LORDI_COLLECTOR_ALERTS__NOTIFY__ALERT_TOPIC__CA_FILE=str(missing),
    )
    assert line == (
        f"config error: alerts.notify.alert_topic.ca_file: {missing} does not exist: {CA_FIX}"
    )


# --- the school registry --------------------------------------------------------------


def test_a_missing_registry_says_where_a_relative_path_starts(tmp_path: Path) -> None:
    line = _run(None, tmp_path, LORDI_COLLECTOR_ALERTS__ENABLED="true")  # the default path
    assert line == (
        f"config error: alerts.registry: {tmp_path / 'provisioning/schools.toml'} does not "
        f"exist (a relative path starts from the working directory {tmp_path}): {REGISTRY_FIX}"
    )


def test_an_invalid_registry_gives_the_file_and_the_line(tmp_path: Path) -> None:
    registry = tmp_path / "schools.toml"
    registry.write_text('fallback_email = "a@b.org"\n[schools.0340001A\n', encoding="utf-8")
    line = _run(
        None,
        tmp_path,
        LORDI_COLLECTOR_ALERTS__ENABLED="true",
        LORDI_COLLECTOR_ALERTS__REGISTRY=str(registry),
        LORDI_COLLECTOR_ALERTS__STORE_URL=f"sqlite:///{tmp_path / 'alerts.sqlite3'}",
    )
    assert line.startswith(f"config error: alerts.registry: {registry}: not valid TOML (")
    assert "(at line 2, column 18)" in line
    assert line.endswith(": fix the school registry (docs/alert-routing.md explains every key)")


def test_an_invalid_registry_entry_names_the_field(tmp_path: Path) -> None:
    registry = tmp_path / "schools.toml"
    text = (REPO / "provisioning/schools.toml").read_text(encoding="utf-8")
    registry.write_text(text.replace('category = "hardware"', 'category = "plumbing"', 1))
    line = _run(
        None,
        tmp_path,
        LORDI_COLLECTOR_ALERTS__ENABLED="true",
        LORDI_COLLECTOR_ALERTS__REGISTRY=str(registry),
        LORDI_COLLECTOR_ALERTS__STORE_URL=f"sqlite:///{tmp_path / 'alerts.sqlite3'}",
    )
    assert line.startswith(f"config error: alerts.registry: {registry}: contractors.")
    assert ".category: Input should be 'hardware' or 'network' (got 'plumbing')" in line


def test_a_registry_the_account_cannot_read_names_the_account(shared: Path) -> None:
    registry = locked(shared / "schools.toml", "")
    config = _toml(
        shared / "collector.toml",
        f'[mqtt]\nport = 9\n[alerts]\nenabled = true\nregistry = "{registry}"\n',
    )
    line, who = _run_as_nobody(config)
    assert line == (
        f"config error: alerts.registry: {registry} is not readable by {who.account}: let that "
        f"account read it, e.g. chgrp {who.group} {registry} && chmod 0640 {registry}"
    )
