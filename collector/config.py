"""Collector configuration: one typed model, from a TOML file plus environment.

Environment variables override the file: `LORDI_COLLECTOR_<SECTION>__<KEY>`, e.g.
`LORDI_COLLECTOR_MQTT__PORT=8883`. The commented sample is
`provisioning/collector/collector.toml`; a test loads it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from collector.notify.settings import NotifySettings
from collector.rules import RulesConfig
from collector.validate import describe

Port = Annotated[int, Field(ge=1, le=65535)]
SECRET_KEYS = frozenset({"password", "token"})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttSettings(_Section):
    host: str = "127.0.0.1"
    port: Port = 1883
    tls: bool = False
    ca_file: Path | None = None
    username: str | None = None
    password: SecretStr | None = None
    # Stable per process: the broker keeps the persistent session (and the
    # unacknowledged messages) under this id across a crash.
    client_id: Annotated[str, Field(pattern=r"^[0-9A-Za-z_-]{1,64}$")] = "lordi-collector-1"
    # Several collectors: the same share_group, and the broker splits the messages.
    # Empty: a plain subscription, for one collector. Mosquitto 2.0 restores a plain
    # subscription from its persistence file after a restart and queues for it; it
    # does not restore a shared one (measured), so a broker restart can lose what
    # laptops publish before the collectors are back (docs/reliability.md).
    share_group: Annotated[str, Field(pattern=r"^[0-9A-Za-z_-]{0,64}$")] = "collectors"
    topic: str = "lordi/v1/+/+/telemetry"
    dead_letter_topic: str = "lordi/deadletter/v1"
    # How many unacknowledged messages the broker may push to us at once (MQTT v5
    # Receive Maximum): bounds memory and the work redone after a crash.
    receive_maximum: Annotated[int, Field(ge=1, le=65535)] = 4000
    session_expiry_s: Annotated[int, Field(ge=0)] = 7 * 86_400
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30


class StoreSettings(_Section):
    url: str = "http://127.0.0.1:8428"
    token: SecretStr = SecretStr("")
    org: str = "lordi"
    bucket: str = "lordi"
    timeout_ms: Annotated[int, Field(ge=100)] = 10_000


class IngestSettings(_Section):
    # Messages per write batch (each holds 1..500 samples); receive_maximum also bounds it.
    max_batch_messages: Annotated[int, Field(ge=1, le=100_000)] = 5000
    linger_ms: Annotated[int, Field(ge=0, le=10_000)] = 50
    retry_initial_s: Annotated[float, Field(gt=0)] = 0.5
    retry_max_s: Annotated[float, Field(gt=0)] = 30.0


class AlertSettings(_Section):
    """Failing-device rules, alert store and notifications (off: time series only)."""

    enabled: bool = False
    # SQLite by default; postgresql+psycopg://... when several collectors share the work.
    store_url: str = "sqlite:///lordi-alerts.sqlite3"
    registry: Path = Path("provisioning/schools.toml")
    sweep_interval_s: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    rules: RulesConfig = RulesConfig()
    notify: NotifySettings = NotifySettings()


class CollectorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LORDI_COLLECTOR_", env_nested_delimiter="__", extra="forbid"
    )

    mqtt: MqttSettings = MqttSettings()
    store: StoreSettings = StoreSettings()
    ingest: IngestSettings = IngestSettings()
    alerts: AlertSettings = AlertSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file arrives as init kwargs; the environment wins over it.
        return (env_settings, init_settings)


class ConfigError(Exception):
    """The configuration is invalid; the message names the key and the value."""


def load_settings(path: Path | None = None) -> CollectorSettings:
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        return CollectorSettings(**data)
    except ValidationError as exc:
        where = f"{path}: " if path else ""
        raise ConfigError(f"{where}{describe(exc, secrets=SECRET_KEYS)}") from None
