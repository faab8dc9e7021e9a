"""Delivery settings: the SMTP relay, the MQTT broker for the alert topics, links.

One typed model, meant to become the `[notify]` section of the collector's
configuration. Secrets are `SecretStr`: they print as `**********` and reach the
wire only through `get_secret_value()` at the moment a channel is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from collector.alerts.model import Severity, Subject
from collector.notify.registry import DigestTime, Email, Name

Port = Annotated[int, Field(ge=1, le=65535)]
# none: plain SMTP (a relay on the same host or LAN); starttls: upgrade on 587;
# ssl: implicit TLS on 465. Mapped to apprise's mode=insecure|starttls|ssl.
SmtpTls = Literal["none", "starttls", "ssl"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmtpSettings(_Section):
    host: Annotated[str, Field(min_length=1, max_length=253)] = "127.0.0.1"
    port: Port = 25
    tls: SmtpTls = "none"
    user: str | None = None
    password: SecretStr | None = None
    from_address: Email = "lordi-alertes@example.org"
    from_name: Name = "Lordi télémétrie"
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    # The CA certificate (PEM) the relay's certificate is checked against (tls
    # starttls or ssl); not set: the system's trust store.
    ca_file: Path | None = None


class AlertTopicSettings(_Section):
    """The broker that holds the retained `lordi/v1/<UAI>/alerts` topics.

    In the collector's configuration, each connection key not set here (host, port,
    tls, ca_file, username, password) is the `[mqtt]` one: the same broker, TLS and
    user as the telemetry subscription (collector/config.py). `username = ""`
    connects without a user name."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 1883
    tls: bool = False
    # The CA certificate (PEM) the broker's certificate is checked against (tls
    # true); not set: the system's trust store.
    ca_file: Path | None = None
    username: str | None = None
    password: SecretStr | None = None
    # A publish counts only once the broker acknowledged it (QoS 1 PUBACK).
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0


class OutboxSettings(_Section):
    """Retries of the delivery outbox (collector.alerts.outbox): a notification that
    failed on some channels is tried again on those only, after `retry_initial_s`,
    doubling up to `retry_max_s`, at most `max_attempts` times in all (the defaults
    keep trying for about a day). Retries run at the collector's sweeps."""

    retry_initial_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    retry_max_s: Annotated[float, Field(gt=0, le=86_400)] = 3600.0
    max_attempts: Annotated[int, Field(ge=1, le=1000)] = 30
    # A claimed row is this collector's for that long (then another may take it):
    # longer than a whole delivery (every channel's timeout) takes.
    lease_s: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    batch: Annotated[int, Field(ge=1, le=10_000)] = 100  # rows claimed at a time


class DigestSettings(_Section):
    """Level-1 e-mail as one digest per school (collector/notify/digest.py): an alert
    event whose level-1 e-mail would go out at once waits for the school's next
    digest time instead, unless the alert's severity is in `immediate`. Webhooks,
    the MQTT alert topic and level-2 e-mails are never held. A school's own
    `digest_times` in the registry replaces `times`; [] (the default): no digest."""

    times: list[DigestTime] = []
    immediate: frozenset[Severity] = frozenset({"critical"})


class NotifySettings(_Section):
    smtp: SmtpSettings = SmtpSettings()
    alert_topic: AlertTopicSettings = AlertTopicSettings()
    outbox: OutboxSettings = OutboxSettings()
    digest: DigestSettings = DigestSettings()
    webhook_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    # Link printed in e-mails; `{device}` and `{school}` are replaced. Points to the
    # Grafana device dashboard of the deployment.
    dashboard_url: str = (
        "https://grafana.example.org/d/lordi-device?var-school={school}&var-device={device}"
    )
    # The alert's page in the web worklist (`lordi-web`), `{id}` replaced, e.g.
    # "https://lordi.example.org/alertes/{id}". Opening the link changes nothing
    # (mail scanners open links): taking, commenting, escalating are buttons on the
    # page. Empty: the e-mail names the `lordi alerts` command instead.
    web_url: str = ""
    # Alerts whose subject a level-1 technician cannot fix alone (an access point,
    # a whole school network) are escalated to the level-2 contractor when they
    # open, in the same call; others are escalated on request (kind "escalated").
    escalate_on_open: frozenset[Subject] = frozenset({"access_point", "school"})
