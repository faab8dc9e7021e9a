"""`lordi-web` configuration: one TOML file (provisioning/web/web.toml explains each
setting). The alert store, the school registry and the mail settings are read from
the collector's own configuration (`collector_config`), so both see the same data."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SsoSettings(_Section):
    """Single sign-on behind the region's reverse proxy: the proxy authenticates the
    person and passes their account name in `user_header`. Trusted only from the
    proxy's own addresses; never on by default."""

    enabled: bool = False
    user_header: str = "X-Remote-User"
    # The reverse proxy's addresses or networks (e.g. "10.0.0.0/8"). From them only,
    # X-Forwarded-For gives the person's address (audit, log-in limits), SSO on or
    # off; with SSO on, `user_header` too.
    trusted_proxies: list[str] = ["127.0.0.1", "::1"]


class SeriesSettings(_Section):
    """Where the charts read the telemetry: the collector's time-series store.
    `none`: pages show the capacity history kept in the alert store only."""

    kind: Literal["none", "victoriametrics", "influxql"] = "none"
    url: str = "http://127.0.0.1:8428"
    database: str = "lordi"  # InfluxQL database (InfluxDB 1.x, or a DBRP mapping in 2.x)
    token: SecretStr = SecretStr("")  # InfluxDB 2.x token (read-only), sent as a header
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    days: Annotated[int, Field(ge=1, le=90)] = 14  # how far back the charts go


class LoginLimits(_Section):
    """Failed log-ins tolerated per account and per client address in `window_s`;
    past them, log-in is refused (even with the right password) until the window
    has passed. Kept in memory: a restart forgets them."""

    per_user: Annotated[int, Field(ge=1, le=1000)] = 5
    per_client: Annotated[int, Field(ge=1, le=10_000)] = 30
    window_s: Annotated[float, Field(gt=0, le=86_400)] = 900.0


class WebSettings(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    collector_config: Path = Path("/etc/lordi/collector.toml")
    # Cookies are sent over HTTPS only (browsers also accept them on http://localhost).
    secure_cookies: bool = True
    session_ttl_s: Annotated[float, Field(ge=300, le=30 * 86_400)] = 12 * 3600.0
    login: LoginLimits = LoginLimits()
    sso: SsoSettings = SsoSettings()
    # Serve /metrics (requests by route, durations, the process's figures) on this
    # address and port. Off by default: the reverse proxy must never pass it on.
    metrics: bool = False
    series: SeriesSettings = SeriesSettings()


class WebConfigError(ValueError):
    pass


def load_web_settings(path: Path) -> WebSettings:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WebConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise WebConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        return WebSettings.model_validate(doc.get("web", {}))
    except ValidationError as exc:
        problems = "; ".join(_problem(e["loc"], e["msg"], e.get("input")) for e in exc.errors())
        raise WebConfigError(f"{path}: {problems}") from None


SECRET_NAMES = ("token", "password")


def _problem(loc: tuple[int | str, ...], message: str, value: object) -> str:
    """`web.<field>: <what is wrong> (got <value>)`, a secret's value never shown."""
    where = ".".join(str(p) for p in loc)
    shown = "<hidden>" if any(n in where for n in SECRET_NAMES) else repr(value)
    return f"web.{where}: {message} (got {shown})"
