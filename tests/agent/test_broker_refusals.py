"""`lordi-agent run` refused by the real TLS broker (production config and ACL, a
private CA, a laptop enrolled with `lordi provision device`): a wrong password, a CA
that did not sign the broker's certificate. One line naming the broker, the
laptop's user (`<UAI>/<device>`) and the fix; no traceback; the agent keeps running
(its spool keeps the samples) and stops cleanly."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.collector.secure_users import clean_env, other_ca, running, secure_fleet, wait_for_text
from tests.secure_broker import Fleet

SCHOOL = "0340001A"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with secure_fleet(tmp_path_factory.mktemp("fleet"), {}) as f:
        yield f


def _run_agent(config: Path, tmp_path: Path, expected: str, **env: str) -> str:
    log = tmp_path / "agent.log"
    argv = [sys.executable, "-m", "agent.cli", "--config", str(config), "run"]
    spool = str(tmp_path / "spool.sqlite3")
    with running(argv, clean_env("LORDI_AGENT_", LORDI_AGENT_SPOOL__PATH=spool, **env), log) as p:
        assert wait_for_text(log, expected), log.read_text()
        time.sleep(1.0)
        assert p.poll() is None, log.read_text()  # still running, trying again later
    assert p.returncode == 0, log.read_text()  # SIGTERM: a clean stop
    text = log.read_text()
    assert "Traceback" not in text
    return text


def test_a_wrong_password_is_one_line_naming_the_laptop_user(
    fleet: Fleet, tmp_path: Path
) -> None:
    device, password, config = fleet.enrol(SCHOOL)
    expected = (
        f"WARNING agent.mqtt: broker 127.0.0.1:{fleet.broker.tls_port} refused user "
        f"'{SCHOOL}/{device}': Not authorized: check mqtt.username and mqtt.password in the "
        "agent's configuration against the agent.toml written by `lordi provision device` (a "
        "revoked laptop needs to be enrolled again; one that enrolled itself does so when its "
        "enrol.identity_file is deleted)"
    )
    wrong = "not-" + password
    text = _run_agent(config, tmp_path, expected, LORDI_AGENT_MQTT__PASSWORD=wrong)
    assert wrong not in text and password not in text
    assert "disconnected from broker" not in text


def test_a_certificate_from_another_ca_names_the_ca_file(fleet: Fleet, tmp_path: Path) -> None:
    _, _, config = fleet.enrol(SCHOOL)
    wrong = other_ca(tmp_path / "other-ca")
    start = (
        f"WARNING agent.mqtt: broker 127.0.0.1:{fleet.broker.tls_port}: TLS certificate "
        f"verification failed against the CA file {wrong} (mqtt.ca_file): "
    )
    text = _run_agent(config, tmp_path, start, LORDI_AGENT_MQTT__CA_FILE=str(wrong))
    [line, *_] = [ln for ln in text.splitlines() if start in ln]
    # OpenSSL's words in between, then the fix and the backoff
    assert ": set mqtt.ca_file to the CA certificate that signed the broker's certificate; " \
        "next try in " in line, line


def test_the_enrolled_credentials_connect(fleet: Fleet, tmp_path: Path) -> None:
    """The control: the agent.toml as enrolment wrote it is accepted."""
    _, _, config = fleet.enrol(SCHOOL)
    text = _run_agent(config, tmp_path, f"connected to 127.0.0.1:{fleet.broker.tls_port}")
    assert "refused" not in text
