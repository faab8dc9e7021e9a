"""Agent configuration: one TOML file plus `LORDI_AGENT_<SECTION>__<KEY>` variables.

Plain dataclasses and stdlib `tomllib` (no pydantic on the laptop: ~10 MB of RSS).
Every value is checked at start-up; an error names the key and the value, never
the value of a secret. The commented sample is `provisioning/agent/agent.toml`.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

UAI = re.compile(r"^[0-9]{7}[A-Z]$")
DEVICE_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
SECRET_KEYS = {"password", "bssid_key", "secret"}


class ConfigError(Exception):
    """Invalid configuration; the message names the key and (unless secret) the value."""


@dataclass
class MqttConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    ca_file: str = ""
    username: str = ""
    password: str = ""
    # The broker drops a silent client after 1.5x this; pings ride on the agent's
    # own wake-ups, so a long keepalive costs nothing.
    keepalive_s: int = 120


@dataclass
class CadenceConfig:
    report_interval_s: int = 300
    wifi_interval_s: int = 30
    # On battery below this charge, look and report less often.
    low_battery_pct: int = 20
    low_battery_slowdown: int = 3
    # After a reconnect with a backlog, wait a random 0..drain_spread_s before
    # draining, so that thousands of laptops do not drain at the same second.
    drain_spread_s: int = 60


@dataclass
class SpoolConfig:
    path: str = ""  # default: next to the config file, "lordi-spool.sqlite3"
    max_samples: int = 50_000
    max_age_days: int = 60
    batch_max_samples: int = 200
    batch_max_bytes: int = 128 * 1024


@dataclass
class PrivacyConfig:
    school_ssids: list[str] = field(default_factory=list)
    bssid_key: str = ""


@dataclass
class EnrolConfig:
    # `<id>.<random>` from `lordi enrol secret create`: the same on every laptop of a
    # school. With it and no `device`, the agent enrols itself (agent/enrol.py).
    secret: str = ""
    identity_file: str = ""  # default: next to the config file, "lordi-identity.toml"


@dataclass
class AgentConfig:
    school: str = ""
    device: str = ""  # empty with [enrol] secret: this laptop's own id comes from enrolment
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    cadence: CadenceConfig = field(default_factory=CadenceConfig)
    spool: SpoolConfig = field(default_factory=SpoolConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    enrol: EnrolConfig = field(default_factory=EnrolConfig)


_RANGES: dict[str, tuple[int, int]] = {
    "mqtt.port": (1, 65535),
    "mqtt.keepalive_s": (5, 3600),
    "cadence.report_interval_s": (30, 86_400),
    "cadence.wifi_interval_s": (5, 3600),
    "cadence.low_battery_pct": (0, 100),
    "cadence.low_battery_slowdown": (1, 100),
    "cadence.drain_spread_s": (0, 3600),
    "spool.max_samples": (100, 10_000_000),
    "spool.max_age_days": (1, 3650),
    "spool.batch_max_samples": (1, 500),
    "spool.batch_max_bytes": (1024, 256 * 1024 - 1024),
}


def _show(key: str, value: Any) -> str:
    return "<hidden>" if key.rsplit(".", 1)[-1] in SECRET_KEYS else repr(value)


def _coerce(key: str, value: Any, default: Any) -> Any:
    """`value` (from TOML or an environment string) as the type of `default`."""
    from_env = isinstance(value, str) and not isinstance(default, str)
    if isinstance(default, bool):
        if from_env and value.lower() in {"1", "true", "yes", "0", "false", "no"}:
            return value.lower() in {"1", "true", "yes"}
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false (got {_show(key, value)})")
    if isinstance(default, int):
        try:
            number = int(value) if from_env else value
        except ValueError:
            number = None
        if not isinstance(number, int) or isinstance(number, bool):
            raise ConfigError(f"{key}: expected an integer (got {_show(key, value)})")
        low, high = _RANGES.get(key, (0, 2**31))
        if not low <= number <= high:
            raise ConfigError(f"{key}: must be between {low} and {high} (got {number})")
        return number
    if isinstance(default, list):
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"{key}: expected a list of strings (got {_show(key, value)})")
        return [i.strip() for i in items if i.strip()]
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string (got {_show(key, value)})")
    return value


def _apply(target: Any, data: dict[str, Any], prefix: str) -> None:
    known = {f.name for f in fields(target)}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in known:
            raise ConfigError(f"{dotted}: unknown setting")
        current = getattr(target, key)
        if hasattr(current, "__dataclass_fields__"):
            if not isinstance(value, dict):
                raise ConfigError(f"{dotted}: expected a [{dotted}] table")
            _apply(current, value, dotted + ".")
        else:
            setattr(target, key, _coerce(dotted, value, current))


def _from_env(env: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith("LORDI_AGENT_"):
            continue
        rest = name.removeprefix("LORDI_AGENT_").lower()
        section, _, key = rest.partition("__")
        if key:
            out.setdefault(section, {})[key] = value
        else:
            out[section] = value
    return out


def load_config(path: Path | None, env: dict[str, str] | None = None) -> AgentConfig:
    """The file's settings, overridden by `LORDI_AGENT_<SECTION>__<KEY>` variables."""
    cfg = AgentConfig()
    if path is not None:
        _apply(cfg, _read_toml(path), "")
        if not cfg.spool.path:
            cfg.spool.path = str(path.parent / "lordi-spool.sqlite3")
        if not cfg.enrol.identity_file:
            cfg.enrol.identity_file = str(path.parent / "lordi-identity.toml")
    _apply(cfg, _from_env(dict(os.environ) if env is None else env), "")
    if not UAI.match(cfg.school):
        raise ConfigError(f"school: expected a UAI code like 0341234A (got {cfg.school!r})")
    if cfg.enrol.secret and not cfg.device:
        from agent.enrol import EnrolError, secret_id  # noqa: PLC0415

        try:
            secret_id(cfg.enrol.secret)
        except EnrolError as exc:
            raise ConfigError(str(exc)) from None
        if not cfg.enrol.identity_file:
            raise ConfigError("enrol.identity_file: required without a configuration file")
    elif not DEVICE_ID.match(cfg.device):
        raise ConfigError(f"device: expected 1-64 of [0-9A-Za-z_-] (got {cfg.device!r})")
    if cfg.mqtt.tls and cfg.mqtt.ca_file:
        _check_readable("mqtt.ca_file", cfg.mqtt.ca_file)
    return cfg


def who() -> str:
    """The agent's account, for a permission problem ("uid 61234"; Windows: the name)."""
    if hasattr(os, "geteuid"):
        return f"uid {os.geteuid()}"
    import getpass  # noqa: PLC0415 - Windows

    return getpass.getuser()


def _read_toml(path: Path) -> dict[str, Any]:
    """The configuration file's settings, or one line naming the file, what is wrong
    and the fix (a missing or unreadable file, not TOML: exit 2, no traceback)."""
    sample = "keys: provisioning/agent/agent.toml"
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"--config: {path.absolute()} does not exist: give --config the agent.toml "
            f"written by `lordi provision device` ({sample})"
        ) from None
    except PermissionError:
        raise ConfigError(
            f"--config: {path.absolute()} is not readable by the agent's user ({who()}): "
            "let that user read it and no other (it holds the broker password: owner that "
            "user, mode 0600), or run the installed service, which can (docs/install-agent.md)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"--config: {path.absolute()}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"--config: {path.absolute()} is not UTF-8 text (byte {exc.start}): save it as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"--config: {path.absolute()} is not valid TOML: {exc}: fix that line ({sample})"
        ) from None


def _check_readable(setting: str, path: str) -> None:
    """A file the agent must read: missing or unreadable by the agent's own user is a
    configuration error saying which, not a traceback at the first connection."""
    if not Path(path).is_file():
        raise ConfigError(f"{setting}: no such file (got {path!r})")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        who = f"uid {os.getuid()}" if hasattr(os, "getuid") else "this account"
        raise ConfigError(
            f"{setting}: not readable by the agent's user ({who}) (got {path!r}): make it "
            "readable by that user (a CA certificate is public: mode 0644 is fine)"
        ) from None
