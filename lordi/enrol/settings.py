"""enrol.toml: the enrolment service's settings (sample: provisioning/enrol/enrol.toml)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class EnrolConfigError(Exception):
    """A setting is missing or wrong; the message names the file, the key and the value."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttSettings(_Model):
    host: str = "localhost"
    port: int = Field(default=8883, ge=1, le=65535)
    tls: bool = True
    ca_file: str = ""
    username: str = "lordi-enrol"
    password: str = ""


class BrokerSettings(_Model):
    # Folder of the broker's `passwd` file (and of the provisioning lock).
    dir: Path = Path("/etc/mosquitto/lordi")
    # Mosquitto's pid_file: SIGHUP makes it read the password file again.
    pid_file: Path = Path("/run/mosquitto/mosquitto.pid")


class Limits(_Model):
    # Per school: a burst of `burst` enrolments, then `per_minute` (token bucket).
    per_minute: float = Field(default=600.0, gt=0)
    burst: int = Field(default=2000, ge=1)


class EnrolSettings(_Model):
    store_url: str = "sqlite:////var/lib/lordi-enrol/enrol.sqlite3"
    registry: Path = Path("/etc/lordi/schools.toml")
    # Requests arriving within this window are enrolled together: one append to
    # the password file and one broker reload for the whole batch.
    batch_window_s: float = Field(default=0.5, ge=0.0, le=30.0)
    batch_max: int = Field(default=1000, ge=1, le=100_000)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    limits: Limits = Field(default_factory=Limits)


PASSWORD_ENV = "LORDI_ENROL_MQTT__PASSWORD"  # noqa: S105 - a variable's name


def load_settings(path: Path, env: dict[str, str] | None = None) -> EnrolSettings:
    """The file's settings; the broker password may come from LORDI_ENROL_MQTT__PASSWORD."""
    environ = dict(os.environ) if env is None else env
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EnrolConfigError(f"--config: {path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise EnrolConfigError(f"--config: {path} is not valid TOML: {exc}") from None
    if environ.get(PASSWORD_ENV):
        data.setdefault("mqtt", {})["password"] = environ[PASSWORD_ENV]
    try:
        return EnrolSettings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        shown = "<hidden>" if key.endswith("password") else repr(first.get("input"))
        raise EnrolConfigError(f"{path}: {key}: {first['msg']} (got {shown})") from None
