"""The commented sample configurations under provisioning/ load with the real loaders,
cover every key, and configuration errors name the key and the value (never a secret's)."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from agent.config import (
    AgentConfig,
    CadenceConfig,
    SpoolConfig,
    load_config,
)
from agent.config import ConfigError as AgentConfigError
from agent.config import _show as show_agent_value
from collector.config import (
    CollectorSettings,
    IngestSettings,
    MetricsSettings,
    MqttSettings,
    StoreSettings,
    load_settings,
)
from collector.config import ConfigError as CollectorConfigError

ROOT = Path(__file__).resolve().parent.parent
AGENT_SAMPLE = ROOT / "provisioning" / "agent" / "agent.toml"
COLLECTOR_SAMPLE = ROOT / "provisioning" / "collector" / "collector.toml"


@pytest.fixture(autouse=True)
def _no_lordi_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test process's own LORDI_* variables must not leak into the loaders."""
    for name in list(os.environ):
        if name.upper().startswith("LORDI_"):
            monkeypatch.delenv(name)


def _write(tmp_path: Path, text: str, name: str = "conf.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _documented(text: str, section: str | None, key: str) -> bool:
    """`key = ...` (possibly commented out) appears in `[section]` of the sample."""
    if section is None:
        body = text.split("\n[", 1)[0]
    else:
        start = text.index(f"\n[{section}]\n")
        body = text[start:].split("\n[", 2)[1]
    return re.search(rf"^(?:# )?{re.escape(key)} = ", body, re.MULTILINE) is not None


# -- agent sample ---------------------------------------------------------------


def test_agent_sample_loads_with_the_real_loader() -> None:
    cfg = load_config(AGENT_SAMPLE, env={})
    assert cfg.school == "0341234A"
    assert cfg.device == "ENROLMENT-ID-CHANGE-ME"
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.tls) == ("mqtt.lordi.example", 8883, True)
    assert cfg.mqtt.ca_file == ""
    assert cfg.mqtt.username == "lordi-agent"
    assert cfg.mqtt.password == "CHANGE-ME"
    assert cfg.mqtt.keepalive_s == 120
    assert cfg.privacy.school_ssids == ["LORDI-ELEVES", "LORDI-PEDAGO"]
    assert "CHANGE-ME" in cfg.privacy.bssid_key
    # spool.path is left to its default: next to the configuration file.
    assert cfg.spool.path == str(AGENT_SAMPLE.parent / "lordi-spool.sqlite3")


def test_agent_sample_shows_the_defaults_it_claims() -> None:
    cfg = load_config(AGENT_SAMPLE, env={})
    assert cfg.cadence == CadenceConfig()
    assert cfg.spool == SpoolConfig(path=cfg.spool.path)


def test_agent_sample_documents_every_key() -> None:
    text = AGENT_SAMPLE.read_text(encoding="utf-8")
    missing = []
    for top in fields(AgentConfig):
        section = getattr(AgentConfig(), top.name)
        if hasattr(section, "__dataclass_fields__"):
            missing += [
                f"{top.name}.{f.name}"
                for f in fields(section)
                if not _documented(text, top.name, f.name)
            ]
        elif not _documented(text, None, top.name):
            missing.append(top.name)
    assert missing == []


def test_agent_environment_overrides_the_sample() -> None:
    env = {
        "LORDI_AGENT_MQTT__PORT": "1883",
        "LORDI_AGENT_MQTT__TLS": "no",
        "LORDI_AGENT_mqtt__password": "from-the-environment",
        "LORDI_AGENT_PRIVACY__SCHOOL_SSIDS": "Lycée Joffre, LORDI-ELEVES ,",
        "LORDI_AGENT_DEVICE": "enrol-42",
        "OTHER_VARIABLE": "ignored",
    }
    cfg = load_config(AGENT_SAMPLE, env=env)
    assert (cfg.mqtt.port, cfg.mqtt.tls) == (1883, False)
    assert cfg.mqtt.password == "from-the-environment"
    assert cfg.privacy.school_ssids == ["Lycée Joffre", "LORDI-ELEVES"]
    assert cfg.device == "enrol-42"
    assert cfg.school == "0341234A"  # from the file


# -- agent errors -------------------------------------------------------------------


def _agent_error(env: dict[str, str], path: Path | None = AGENT_SAMPLE) -> str:
    with pytest.raises(AgentConfigError) as info:
        load_config(path, env=env)
    return str(info.value)


def test_agent_bad_integer_names_key_and_value() -> None:
    message = _agent_error({"LORDI_AGENT_MQTT__PORT": "abc"})
    assert "mqtt.port" in message
    assert "'abc'" in message


def test_agent_out_of_range_names_key_and_value() -> None:
    message = _agent_error({"LORDI_AGENT_CADENCE__REPORT_INTERVAL_S": "5"})
    assert message == "cadence.report_interval_s: must be between 30 and 86400 (got 5)"


def test_agent_bad_boolean_names_key_and_value() -> None:
    message = _agent_error({"LORDI_AGENT_MQTT__TLS": "maybe"})
    assert "mqtt.tls" in message
    assert "'maybe'" in message


def test_agent_unknown_key_is_refused() -> None:
    assert _agent_error({"LORDI_AGENT_MQTT__PROT": "8883"}) == "mqtt.prot: unknown setting"
    assert _agent_error({"LORDI_AGENT_HOSTNAME": "x"}) == "hostname: unknown setting"


def test_agent_unknown_key_in_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, 'school = "0341234A"\ndevice = "d1"\n[spool]\nmax_sampels = 10\n')
    assert _agent_error({}, path) == "spool.max_sampels: unknown setting"


def test_agent_section_must_be_a_table() -> None:
    message = _agent_error({"LORDI_AGENT_MQTT": "broker.example"})
    assert message == "mqtt: expected a [mqtt] table"


def test_agent_bad_school_code_names_school() -> None:
    message = _agent_error({"LORDI_AGENT_SCHOOL": "341234A"})
    assert message.startswith("school:")
    assert "'341234A'" in message


def test_agent_bad_device_id_names_device() -> None:
    message = _agent_error({"LORDI_AGENT_DEVICE": "PC de Jean"})
    assert message.startswith("device:")


def test_agent_school_and_device_are_required() -> None:
    assert _agent_error({}, None).startswith("school:")


def test_agent_missing_ca_file_names_key(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    message = _agent_error({"LORDI_AGENT_MQTT__CA_FILE": str(missing)})
    assert message.startswith("mqtt.ca_file: no such file")


def test_agent_unreadable_ca_file_says_whose_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent's unprivileged user cannot read the CA file: a configuration error
    (exit 2, a clear line) instead of a PermissionError traceback at each restart.
    The tests run as root, who reads everything: the refusal is simulated."""
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    real_open = open

    def refusing(file: object, *args: object, **kwargs: object) -> object:
        if str(file) == str(ca):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", refusing)
    message = _agent_error({"LORDI_AGENT_MQTT__CA_FILE": str(ca)})
    assert message.startswith(f"mqtt.ca_file: not readable by the agent's user (uid {os.getuid()})")
    assert repr(str(ca)) in message and "mode 0644" in message


@pytest.mark.parametrize(
    ("toml", "key", "secret"),
    [
        ("[mqtt]\npassword = 987654321\n", "mqtt.password", "987654321"),
        ('[privacy]\nbssid_key = ["s3cret-key-value"]\n', "privacy.bssid_key", "s3cret-key-value"),
    ],
)
def test_agent_secret_value_never_in_error(
    tmp_path: Path, toml: str, key: str, secret: str
) -> None:
    path = _write(tmp_path, 'school = "0341234A"\ndevice = "d1"\n' + toml)
    message = _agent_error({}, path)
    assert message.startswith(key)
    assert "<hidden>" in message
    assert secret not in message


def test_agent_show_hides_secrets_only() -> None:
    assert show_agent_value("mqtt.password", "hunter2") == "<hidden>"
    assert show_agent_value("privacy.bssid_key", "k") == "<hidden>"
    assert show_agent_value("mqtt.host", "broker") == "'broker'"


# -- collector sample -----------------------------------------------------------------


def test_collector_sample_loads_with_the_real_loader() -> None:
    settings = load_settings(COLLECTOR_SAMPLE)
    assert settings.mqtt.client_id == "lordi-collector-1"
    assert settings.mqtt.share_group.startswith("collectors-CHANGE-ME")
    assert settings.mqtt.topic == "lordi/v1/+/+/telemetry"
    assert settings.mqtt.username == "collector-1"  # the collector role of the ACL
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == "CHANGE-ME"
    assert settings.store.token.get_secret_value() == "CHANGE-ME"
    assert settings.store.url == "http://127.0.0.1:8428"
    assert settings.mqtt.session_expiry_s == 7 * 86_400


def test_collector_sample_shows_the_defaults_it_claims() -> None:
    settings = load_settings(COLLECTOR_SAMPLE)
    # The share group is a secret to choose (docs/broker.md), not the default.
    assert settings.mqtt == MqttSettings(
        username=settings.mqtt.username,
        password=settings.mqtt.password,
        share_group=settings.mqtt.share_group,
    )
    assert settings.store == StoreSettings(token=settings.store.token)
    assert settings.ingest == IngestSettings()
    assert settings.metrics == MetricsSettings()  # off: its keys are commented out


def test_collector_sample_documents_every_key() -> None:
    text = COLLECTOR_SAMPLE.read_text(encoding="utf-8")
    missing = [
        f"{section}.{key}"
        for section, model in CollectorSettings.model_fields.items()
        for key in (model.annotation.model_fields if model.annotation else {})
        if not _documented(text, section, key)
    ]
    assert missing == []


def test_collector_sample_is_plain_toml() -> None:
    data = tomllib.loads(COLLECTOR_SAMPLE.read_text(encoding="utf-8"))
    assert set(data) == {"mqtt", "store", "ingest", "metrics", "alerts", "partition"}


def test_collector_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORDI_COLLECTOR_MQTT__PORT", "8883")
    monkeypatch.setenv("LORDI_COLLECTOR_STORE__TOKEN", "from-the-environment")
    settings = load_settings(COLLECTOR_SAMPLE)
    assert settings.mqtt.port == 8883
    assert settings.store.token.get_secret_value() == "from-the-environment"
    assert settings.mqtt.host == "127.0.0.1"  # from the file


# -- collector errors -------------------------------------------------------------------


def _collector_error(path: Path | None) -> str:
    with pytest.raises(CollectorConfigError) as info:
        load_settings(path)
    return str(info.value)


@pytest.mark.parametrize(("value", "shown"), [('"abc"', "'abc'"), ("70000", "70000")])
def test_collector_bad_port_in_file_names_key_and_value(
    tmp_path: Path, value: str, shown: str
) -> None:
    message = _collector_error(_write(tmp_path, f"[mqtt]\nport = {value}\n"))
    assert "mqtt.port" in message
    assert shown in message


def test_collector_bad_port_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORDI_COLLECTOR_MQTT__PORT", "abc")
    message = _collector_error(COLLECTOR_SAMPLE)
    assert "mqtt.port" in message
    assert "'abc'" in message


def test_collector_unknown_key_names_it(tmp_path: Path) -> None:
    message = _collector_error(_write(tmp_path, "[ingest]\nlinger = 5\n"))
    assert "ingest.linger" in message


def test_collector_bad_client_id_names_it(tmp_path: Path) -> None:
    message = _collector_error(_write(tmp_path, '[mqtt]\nclient_id = "collector #1"\n'))
    assert "mqtt.client_id" in message


def test_collector_unreadable_toml_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[mqtt\n")
    assert "not valid TOML" in _collector_error(path)


def test_collector_secret_value_never_in_error(tmp_path: Path) -> None:
    message = _collector_error(_write(tmp_path, "[mqtt]\npassword = 987654321\n"))
    assert "mqtt.password" in message
    assert "987654321" not in message
