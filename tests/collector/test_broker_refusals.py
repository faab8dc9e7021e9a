"""`lordi-collector run` refused by the real TLS broker (production config and ACL,
a private CA): a wrong password, a CA that did not sign the broker's certificate.
One line naming the broker, the user and the fix, logged once however often paho
retries (every few seconds); no traceback; the process keeps running and stops
cleanly."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lordi.stack import free_port
from tests.collector.secure_users import clean_env, other_ca, running, secure_fleet, wait_for_text
from tests.secure_broker import Fleet

COLLECTOR_PW = "coll-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with secure_fleet(tmp_path_factory.mktemp("fleet"), {"collector-1": COLLECTOR_PW}) as f:
        yield f


def _env(fleet: Fleet, **mqtt: str) -> dict[str, str]:
    settings = {
        "HOST": "127.0.0.1",
        "PORT": str(fleet.broker.tls_port),
        "TLS": "true",
        "CA_FILE": str(fleet.broker.ca_file),
        "USERNAME": "collector-1",
        "PASSWORD": COLLECTOR_PW,
        "CLIENT_ID": f"c-{uuid.uuid4().hex[:8]}",
        "SHARE_GROUP": f"g{uuid.uuid4().hex}",
        **mqtt,
    }
    return clean_env(
        "LORDI_COLLECTOR_",
        LORDI_COLLECTOR_STORE__URL=f"http://127.0.0.1:{free_port()}",  # never written to
        **{f"LORDI_COLLECTOR_MQTT__{key}": value for key, value in settings.items()},
    )


def _refused_run(env: dict[str, str], log: Path, expected: str) -> str:
    """Run the collector until `expected` is logged and a few retries more; the log."""
    argv = [sys.executable, "-m", "collector.cli", "run", "--stats-interval", "3600"]
    with running(argv, env, log) as proc:
        assert wait_for_text(log, expected), log.read_text()
        time.sleep(4.0)  # paho retries every 1..5 s: more refusals meanwhile
        assert proc.poll() is None, log.read_text()  # still running, still retrying
    assert proc.returncode == 0, log.read_text()  # SIGTERM: a clean stop
    text = log.read_text()
    assert "Traceback" not in text
    return text


def test_a_wrong_password_is_one_line_naming_the_user_and_the_fix(
    fleet: Fleet, tmp_path: Path
) -> None:
    port = fleet.broker.tls_port
    expected = (
        f"ERROR collector.service: MQTT broker 127.0.0.1:{port} refused user 'collector-1': "
        "Not authorized: check username and password in [mqtt] against the broker's password "
        "file (mosquitto_passwd <passwd file> collector-1, then reload the broker) (attempt 1; "
        "retrying)"
    )
    text = _refused_run(_env(fleet, PASSWORD="not-the-password"), tmp_path / "c.log", expected)
    assert text.count("refused user 'collector-1'") == 1  # not once per retry
    assert "not-the-password" not in text
    assert "disconnected from broker" not in text


def test_a_certificate_from_another_ca_names_the_ca_file(fleet: Fleet, tmp_path: Path) -> None:
    wrong = other_ca(tmp_path / "other-ca")
    port = fleet.broker.tls_port
    start = (
        f"ERROR collector.service: MQTT broker 127.0.0.1:{port}: TLS certificate verification "
        f"failed against the CA file {wrong} (ca_file in [mqtt]): "
    )
    text = _refused_run(_env(fleet, CA_FILE=str(wrong)), tmp_path / "c.log", start)
    [line] = [ln for ln in text.splitlines() if "TLS certificate verification failed" in ln]
    # OpenSSL's words in between, e.g. "self-signed certificate in certificate chain"
    assert line.endswith(
        ": set ca_file in [mqtt] to the CA certificate that signed the broker's certificate "
        "(attempt 1; retrying)"
    ), line


def test_the_right_credentials_connect(fleet: Fleet, tmp_path: Path) -> None:
    """The control: the same settings with the right password and CA are accepted."""
    log = tmp_path / "c.log"
    argv = [sys.executable, "-m", "collector.cli", "run", "--stats-interval", "3600"]
    with running(argv, _env(fleet), log):
        assert wait_for_text(log, "subscribed to $share/"), log.read_text()
    text = log.read_text()
    assert "refused" not in text and "Traceback" not in text
