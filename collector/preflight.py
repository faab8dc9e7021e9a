"""Files `lordi-collector run` must read, checked before it starts anything: each
problem is one `ConfigError` line (the setting, the file, whose permission is
missing, the fix) and exit code 2, rather than a traceback at the first
connection or the first alert."""

from __future__ import annotations

import ssl
from pathlib import Path

from collector.config import CollectorSettings, ConfigError, read_file

REGISTRY_FIX = (
    "set [alerts] registry to the school registry's path (commented sample: "
    "provisioning/schools.toml; docs/alert-routing.md)"
)

CALENDAR_FIX = (
    "write it with `lordi calendar import FILE --out PATH`, or remove the setting to "
    "use the bundled calendar (docs/alerts.md, \"School calendar\")"
)


def check_ca_file(setting: str, path: Path) -> None:
    """Readable by this process, and PEM certificates OpenSSL can load."""
    read_file(
        setting, path,
        "set it to the CA certificate (PEM) that signed the broker's certificate, or "
        "remove it to use the system's trust store",
        "public",
    )  # fmt: skip
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(path))
    except ssl.SSLError as exc:
        raise ConfigError(
            f"{setting}: {path.absolute()} holds no PEM certificate OpenSSL can load "
            f"({exc.reason or exc}): give the CA certificate (-----BEGIN CERTIFICATE-----) "
            "that signed the broker's certificate"
        ) from None


def check_files(settings: CollectorSettings) -> None:
    """The CA certificates of `[mqtt]` and of the alert topic (when TLS is on), the
    school registry and the imported school calendar (when alerts are on) exist and
    can be read by this process."""
    mqtt = settings.mqtt
    checked = mqtt.ca_file if mqtt.tls else None
    if checked is not None:
        check_ca_file("mqtt.ca_file", checked)
    alerts = settings.alerts
    if not alerts.enabled:
        return
    topic = alerts.notify.alert_topic
    ca_file = topic.ca_file if topic.enabled and topic.tls else None
    if ca_file is not None and ca_file != checked:
        # the same file as [mqtt]'s when the alert topic does not set its own
        own = ca_file != mqtt.ca_file
        check_ca_file("alerts.notify.alert_topic.ca_file" if own else "mqtt.ca_file", ca_file)
    read_file("alerts.registry", alerts.registry, REGISTRY_FIX, "private")
    if alerts.calendar_file is not None:
        read_file("alerts.calendar_file", alerts.calendar_file, CALENDAR_FIX, "public")
