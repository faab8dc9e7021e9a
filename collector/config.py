"""Collector configuration: one typed model, from a TOML file plus environment.

Environment variables override the file: `LORDI_COLLECTOR_<SECTION>__<KEY>`, e.g.
`LORDI_COLLECTOR_MQTT__PORT=8883`. The commented sample is
`provisioning/collector/collector.toml`; a test loads it.

A file the configuration names that cannot be read (the file itself, a CA
certificate, the school registry) is a `ConfigError` naming the setting, the file,
the account of the process when it lacks the permission, and the fix.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from collector.notify.settings import NotifySettings
from collector.partition import PartitionSettings
from collector.rules import RulesConfig
from collector.validate import describe

Port = Annotated[int, Field(ge=1, le=65535)]
SECRET_KEYS = frozenset({"password", "token"})
# What `[alerts.notify.alert_topic]` takes from `[mqtt]` when it does not set it.
ALERT_TOPIC_FROM_MQTT = ("host", "port", "tls", "ca_file", "username", "password")
SAMPLE = "provisioning/collector/collector.toml"


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
    # String fields (OS release, agent version, status names, manufacturer, SSID...):
    # InfluxDB keeps them; VictoriaMetrics 1.79 stores each as a series of zeros,
    # costing it and the collector ~25 % of their work for nothing (BENCHMARKS.md).
    # Set false for VictoriaMetrics.
    string_fields: bool = True


class RateLimitSettings(_Section):
    """Per-device message rate limit (collector/ratelimit.py)."""

    enabled: bool = True
    # Messages a device may send at once. Must cover what the broker redelivers in
    # one go after a collector outage: up to mqtt.session_expiry_s (7 days) of
    # reports, 20,160 at the fastest interval (30 s); a spool drain is ~300.
    device_burst_messages: Annotated[int, Field(ge=1, le=1_000_000)] = 20_160
    # Sustained messages per second per device; a laptop reports at most every 30 s.
    device_messages_per_s: Annotated[float, Field(gt=0, le=10_000)] = 1.0
    # Buckets kept at most (idle devices are forgotten first): ~370 bytes each.
    max_tracked_devices: Annotated[int, Field(ge=1, le=10_000_000)] = 300_000


class IngestSettings(_Section):
    # A write batch closes at whichever comes first: this many messages (each holds
    # 1..500 samples), this many accepted samples (~1 KB of line protocol each), or
    # linger_ms after its first message. Several batches are in flight at once (one
    # being validated, others being written), so a batch should stay well under
    # mqtt.receive_maximum messages.
    max_batch_messages: Annotated[int, Field(ge=1, le=100_000)] = 1000
    max_batch_samples: Annotated[int, Field(ge=1, le=1_000_000)] = 5000
    linger_ms: Annotated[int, Field(ge=0, le=10_000)] = 50
    # Concurrent write requests to the store (one HTTP connection each), and as many
    # batches built and waiting for one. Batches are still acknowledged strictly in
    # the order they were received. 8: the store always has a batch to parse while the
    # collector commits another (BENCHMARKS.md, 2026-12-05: more samples/s than 2 and
    # 4 in every paired run, for a higher memory peak while a backlog drains: 374 MB
    # per partitioned bench collector instead of 244).
    store_connections: Annotated[int, Field(ge=1, le=16)] = 8
    retry_initial_s: Annotated[float, Field(gt=0)] = 0.5
    retry_max_s: Annotated[float, Field(gt=0)] = 30.0
    rate_limit: RateLimitSettings = RateLimitSettings()


class MetricsSettings(_Section):
    """The collector's own metrics and health checks over HTTP (collector/metrics.py)."""

    enabled: bool = False
    # Loopback by default: the endpoints have no authentication (docs/operations.md).
    host: str = "127.0.0.1"
    port: Port = 9108
    # Subscribe to Mosquitto's $SYS figures (clients, stored messages, subscriptions);
    # the broker's ACL must grant the collector `topic read $SYS/broker/#`.
    broker_sys: bool = True
    # Figures that need the alert database or the alerting's lock (outbox, open
    # alerts, devices held) are read this often, never on the ingest path.
    refresh_s: Annotated[float, Field(ge=1, le=3600)] = 15.0
    # The store is pinged when no write has succeeded for this long; /readyz fails
    # when the latest write or ping failed, or none succeeded in 3 x store_check_s.
    store_check_s: Annotated[float, Field(ge=0.2, le=600)] = 10.0


class AlertSettings(_Section):
    """Failing-device rules, alert store and notifications (off: time series only)."""

    enabled: bool = False
    # SQLite by default; postgresql+psycopg://... when several collectors share the work.
    store_url: str = "sqlite:///lordi-alerts.sqlite3"
    registry: Path = Path("provisioning/schools.toml")
    # The school calendar written by `lordi calendar import` (docs/alerts.md, "School
    # calendar"); None: the calendar bundled with the collector (zones A, B, C).
    calendar_file: Path | None = None
    # How often (the collector's clock) complete telemetry is judged (Wi-Fi windows,
    # silent laptops and schools), reminders and outbox retries run, state is saved.
    sweep_interval_s: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    # The bounded lateness (docs/alerts.md, "Time"): a school's telemetry window (or
    # day) is judged once this long (the collector's clock, while connected to the
    # broker) has passed since its first report arrived; later reports for it are too
    # late for the Wi-Fi and silence verdicts. Longer: more spooled telemetry in time,
    # later network and silence alerts (battery alerts never wait).
    lateness_s: Annotated[float, Field(gt=0, le=30 * 86_400)] = 12 * 3600.0
    # An alert that opens from telemetry older than this (sample time vs the
    # collector's clock) is recorded but mailed only if still open at the next sweep:
    # an old episode that started and ended before reaching the collector is never
    # mailed (docs/alerts.md, "Old episodes").
    notify_max_age_s: Annotated[float, Field(ge=0, le=365 * 86_400)] = 86_400.0
    # Keep the alert engine's per-key state in memory (with SQLite, and with PostgreSQL
    # for a partitioned collector, its own schools' keys; not for collectors sharing
    # PostgreSQL without partitions, whose keys others change). Measured: on_samples
    # 37 instead of 68 us per sample, for ~2 KB per device with an alert
    # (docs/alerts.md, BENCHMARKS.md).
    engine_cache: bool = True
    rules: RulesConfig = RulesConfig()
    notify: NotifySettings = NotifySettings()


class CollectorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LORDI_COLLECTOR_", env_nested_delimiter="__", extra="forbid"
    )

    mqtt: MqttSettings = MqttSettings()
    store: StoreSettings = StoreSettings()
    ingest: IngestSettings = IngestSettings()
    metrics: MetricsSettings = MetricsSettings()
    alerts: AlertSettings = AlertSettings()
    partition: PartitionSettings = PartitionSettings()

    @model_validator(mode="after")
    def _partition_lock_has_a_place(self) -> Self:
        """A PostgreSQL lock needs a database, a file lock a folder: say which key."""
        p = self.partition
        if not p.enabled or p.lock in ("none", "file"):
            return self
        on_pg = self.alerts.enabled and self.alerts.store_url.startswith("postgresql")
        if p.lock == "postgresql" and p.lock_url is None and not on_pg:
            raise ValueError(
                "partition.lock = \"postgresql\" needs partition.lock_url, or [alerts] "
                "enabled with a postgresql store_url"
            )
        return self

    @model_validator(mode="after")
    def _alert_topic_defaults_to_mqtt(self) -> Self:
        """The alert topic's connection keys not set in its own section are `[mqtt]`'s:
        the same broker, TLS settings and user (whose ACL grants lordi/v1/+/alerts)."""
        topic = self.alerts.notify.alert_topic
        taken = {
            key: getattr(self.mqtt, key)
            for key in ALERT_TOPIC_FROM_MQTT
            if key not in topic.model_fields_set
        }
        if taken:
            notify = self.alerts.notify.model_copy(
                update={"alert_topic": topic.model_copy(update=taken)}
            )
            self.alerts = self.alerts.model_copy(update={"notify": notify})
        return self

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


def account() -> str:
    """This process's account, for a permission problem: "uid 998 (lordi-collector)"."""
    import pwd  # noqa: PLC0415 - POSIX only, like the collector

    uid = os.geteuid()
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:  # a uid without a name (a container's)
        return f"uid {uid}"


def _group() -> str:
    import grp  # noqa: PLC0415

    try:
        return grp.getgrgid(os.getegid()).gr_name
    except KeyError:
        return str(os.getegid())


def _blocking_folder(path: Path) -> Path | None:
    """The first folder above `path` this process may not enter, if any."""
    for folder in reversed(path.parents):
        if folder.is_dir() and not os.access(folder, os.X_OK):
            return folder
    return None


# How a file that cannot be read should be opened up, by what it holds.
_READ_FIX = {
    "secret": "e.g. chgrp {group} {path} && chmod 0640 {path} (it holds secrets: not "
    "world-readable)",
    "private": "e.g. chgrp {group} {path} && chmod 0640 {path}",
    "public": "e.g. chmod 0644 {path} (a CA certificate is public)",
}


def read_file(
    setting: str, path: Path, missing_fix: str, holds: Literal["secret", "private", "public"]
) -> bytes:
    """The bytes of a file the configuration names, or one `ConfigError` line:
    the setting, the file, what is wrong, whose permission is missing, the fix."""
    where = path.absolute()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        relative = "" if path.is_absolute() else (
            f" (a relative path starts from the working directory {Path.cwd()})"
        )
        raise ConfigError(f"{setting}: {where} does not exist{relative}: {missing_fix}") from None
    except IsADirectoryError:
        raise ConfigError(f"{setting}: {where} is a folder, not a file: {missing_fix}") from None
    except PermissionError:
        folder = _blocking_folder(where)
        if folder is not None:
            raise ConfigError(
                f"{setting}: {where}: the folder {folder} is not searchable by {account()}: "
                f"let that account in, e.g. chgrp {_group()} {folder} && chmod g+x {folder}"
            ) from None
        fix = _READ_FIX[holds].format(group=_group(), path=where)
        raise ConfigError(
            f"{setting}: {where} is not readable by {account()}: let that account read it, {fix}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{setting}: {where}: cannot read ({exc.strerror})") from None


def load_settings(path: Path | None = None) -> CollectorSettings:
    data: dict[str, Any] = {}
    if path is not None:
        raw = read_file(
            "--config", path,
            f"give --config the collector's TOML file (every key is explained in {SAMPLE})",
            "secret",
        )  # fmt: skip
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"--config: {path.absolute()} is not UTF-8 text (byte {exc.start}): "
                "save it as UTF-8"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"--config: {path.absolute()} is not valid TOML: {exc}: fix that line "
                f"(every key is explained in {SAMPLE})"
            ) from None
    try:
        return CollectorSettings(**data)
    except ValidationError as exc:
        where = f"{path}: " if path else ""
        raise ConfigError(f"{where}{describe(exc, secrets=SECRET_KEYS)}") from None
