"""The alert topic over TLS with a private CA, against the real broker of
tests/secure_broker.py (production config and ACL): with no alert-topic
credentials configured, it takes the `[mqtt]` connection's host, port, TLS
settings and user (`collector-1`, whose ACL block grants `topic write
lordi/v1/+/alerts`), and an alert goes through the collector's outbox to the
retained topic. Failures name the broker, the user or the CA file."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.cli import build_alerting
from collector.config import CollectorSettings, load_settings
from collector.contract import Sample
from collector.notify import channels
from collector.notify.settings import AlertTopicSettings
from collector.preflight import check_files
from lordi.stack import free_port
from tests.collector.secure_users import other_ca, secure_fleet
from tests.helpers import minimal_sample
from tests.notify.factories import SAMPLE_REGISTRY
from tests.secure_broker import Client, Fleet, eventually

SCHOOL, DEVICE = "0340001A", "dev-0340001A-tls"
TOPIC = f"lordi/v1/{SCHOOL}/alerts"
COLLECTOR_PW, ADMIN_PW = "coll-" + uuid.uuid4().hex, "admin-" + uuid.uuid4().hex
ACL = Path(__file__).resolve().parents[2] / "provisioning" / "mosquitto" / "acl"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    users = {"collector-1": COLLECTOR_PW, "lordi-admin": ADMIN_PW}
    with secure_fleet(tmp_path_factory.mktemp("fleet"), users) as f:
        yield f


def _config(fleet: Fleet, tmp_path: Path, alert_topic: str = "") -> Path:
    """A collector.toml as an operator writes it: the broker's TLS and user in [mqtt]
    only; alerts on, e-mails to a closed port, a registry without webhooks."""
    registry = tmp_path / "schools.toml"
    lines = SAMPLE_REGISTRY.read_text(encoding="utf-8").splitlines(keepends=True)
    registry.write_text("".join(ln for ln in lines if "webhook_url =" not in ln))
    path = tmp_path / "collector.toml"
    path.write_text(
        f"""[mqtt]
host = "127.0.0.1"
port = {fleet.broker.tls_port}
tls = true
ca_file = "{fleet.broker.ca_file}"
username = "collector-1"
password = "{COLLECTOR_PW}"

[alerts]
enabled = true
store_url = "sqlite:///{tmp_path / "alerts.sqlite3"}"
registry = "{registry}"

[alerts.notify.smtp]
host = "127.0.0.1"
port = {free_port()}
timeout_s = 2
{alert_topic}""",
        encoding="utf-8",
    )
    return path


def _retained(fleet: Fleet) -> list[dict[str, object]]:
    """The topic's retained list, as a subscriber arriving now receives it."""
    admin = fleet.connected("lordi-admin", ADMIN_PW)
    try:
        assert admin.subscribe(TOPIC)[0].value < 0x80
        assert eventually(lambda: bool(admin.messages), 5), "nothing retained"
        [(topic, payload)] = admin.messages
        assert topic == TOPIC
        state: list[dict[str, object]] = json.loads(payload)
        return state
    finally:
        admin.close()


def test_the_acl_lets_the_collector_user_write_the_alert_topics() -> None:
    block = ACL.read_text(encoding="utf-8").split("user collector-1\n", 1)[1].split("\n\n")[0]
    assert "topic write lordi/v1/+/alerts" in block.splitlines()


def test_without_its_own_settings_the_alert_topic_takes_the_mqtt_connection(
    fleet: Fleet, tmp_path: Path
) -> None:
    settings = load_settings(_config(fleet, tmp_path))
    topic, mqtt = settings.alerts.notify.alert_topic, settings.mqtt
    assert (topic.host, topic.port, topic.tls, topic.ca_file, topic.username) == (
        "127.0.0.1", fleet.broker.tls_port, True, fleet.broker.ca_file, "collector-1"
    )  # fmt: skip
    assert topic.password is not None and mqtt.password is not None
    assert topic.password.get_secret_value() == COLLECTOR_PW
    assert topic.timeout_s == AlertTopicSettings().timeout_s  # its own key, its own default


def test_keys_set_in_its_own_section_win_key_by_key(fleet: Fleet, tmp_path: Path) -> None:
    own = '\n[alerts.notify.alert_topic]\nusername = "alerts-only"\npassword = "pw-2"\n'
    topic = load_settings(_config(fleet, tmp_path, own)).alerts.notify.alert_topic
    assert (topic.username, topic.password and topic.password.get_secret_value()) == (
        "alerts-only", "pw-2"
    )  # fmt: skip
    assert (topic.host, topic.port, topic.ca_file) == (
        "127.0.0.1", fleet.broker.tls_port, fleet.broker.ca_file
    )  # fmt: skip
    empty = CollectorSettings.model_validate(
        {"mqtt": {"username": "c"}, "alerts": {"notify": {"alert_topic": {"username": ""}}}}
    )
    assert empty.alerts.notify.alert_topic.username == ""  # "": no user name at all


def test_an_alert_reaches_the_topic_through_the_outbox_over_tls(
    fleet: Fleet, tmp_path: Path
) -> None:
    settings = load_settings(_config(fleet, tmp_path))
    check_files(settings)
    alerting = build_alerting(settings)  # the collector's own wiring: store, outbox, notifier
    assert alerting is not None
    now = datetime.now(UTC).replace(microsecond=0)
    worn = Sample.model_validate_json(
        json.dumps(minimal_sample(now - timedelta(minutes=1), health=52.0))
    )
    try:
        alerting.on_samples([(SCHOOL, DEVICE, worn)], now)
        # The collector's outbox worker sends it on its own thread: wait for its try.
        deadline = time.monotonic() + 30
        while True:
            [row] = alerting.store.outbox.rows()
            if row.channels is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        # The e-mails failed (nothing listens on the SMTP port); the topic did not.
        assert row.channels is not None and "mqtt_alerts" not in row.channels, row.last_error
        assert "email_level1" in row.channels
        [alert] = _retained(fleet)
        assert (alert["device"], alert["rule"], alert["status"]) == (
            DEVICE, "battery_replace", "open"
        )  # fmt: skip
    finally:
        alerting.stop()
        alerting.store.close()


def _topic(fleet: Fleet, **changes: object) -> AlertTopicSettings:
    base = {
        "host": "127.0.0.1",
        "port": fleet.broker.tls_port,
        "tls": True,
        "ca_file": fleet.broker.ca_file,
        "username": "collector-1",
        "password": COLLECTOR_PW,
        "timeout_s": 5,
    }
    return AlertTopicSettings.model_validate(base | changes)


SECTION = "[alerts.notify.alert_topic] (else [mqtt])"


def test_a_wrong_password_names_the_user(fleet: Fleet) -> None:
    error = channels.publish_retained(_topic(fleet, password="wrong-pw"), TOPIC, [])
    assert error == (
        f"MQTT broker 127.0.0.1:{fleet.broker.tls_port} refused user 'collector-1': Not "
        f"authorized: check username and password in {SECTION} against the broker's password "
        "file (mosquitto_passwd <passwd file> collector-1, then reload the broker)"
    )


def test_a_certificate_from_another_ca_names_the_ca_file(fleet: Fleet, tmp_path: Path) -> None:
    wrong = other_ca(tmp_path / "other-ca")
    error = channels.publish_retained(_topic(fleet, ca_file=wrong), TOPIC, [])
    assert error is not None
    assert error.startswith(
        f"MQTT broker 127.0.0.1:{fleet.broker.tls_port}: TLS certificate verification failed "
        f"against the CA file {wrong} (ca_file in {SECTION}): "
    ), error
    assert error.endswith(
        f": set ca_file in {SECTION} to the CA certificate that signed the broker's certificate"
    ), error


def test_a_user_without_the_write_grant_is_named_with_the_acl_line(fleet: Fleet) -> None:
    topic = _topic(fleet, username="lordi-admin", password=ADMIN_PW)  # reads, writes nothing
    error = channels.publish_retained(topic, TOPIC, [])
    assert error == (
        f"MQTT broker 127.0.0.1:{fleet.broker.tls_port} refused user 'lordi-admin' publishing "
        f"to {TOPIC}: Not authorized: the broker's ACL must grant that user `topic write "
        "lordi/v1/+/alerts` (provisioning/mosquitto/acl, role collector)"
    )


def test_an_unreadable_ca_file_is_named(fleet: Fleet, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.crt"
    error = channels.publish_retained(_topic(fleet, ca_file=missing), TOPIC, [])
    assert error is not None
    assert error.startswith(f"CA file {missing} (ca_file in {SECTION}): cannot load it as uid ")
    assert error.endswith("(No such file or directory)")


def test_the_publish_is_retained_at_qos_1(fleet: Fleet) -> None:
    """A subscriber that arrives later gets the list at once (retained), from the
    user of the alert topic; the publish is acknowledged (QoS 1 PUBACK)."""
    assert channels.publish_retained(_topic(fleet), "lordi/v1/0300004D/alerts", []) is None
    admin = Client(fleet.broker, "lordi-admin", ADMIN_PW)
    fleet.clients.append(admin)
    assert admin.wait_connack() is not None
    assert admin.subscribe("lordi/v1/0300004D/alerts")[0].value == 1  # granted QoS 1
    assert eventually(lambda: admin.messages == [("lordi/v1/0300004D/alerts", b"[]")], 5)
