"""The production configuration for the benchmarks (`--tls`, `--alerts`): what the
collector processes of `lordi bench ingest` and `lordi bench storm` need to run
with TLS to the broker and with their rules, alert store and notifications on.

- TLS: the stack's Mosquitto gets a second listener with a private CA's
  certificate (`LocalStack.enable_tls`); publishers, the counting subscriber and
  the collectors connect to it and check the certificate.
- Alerts: `[alerts] enabled` with a registry of the bench's schools, the real rules,
  level-1 e-mail to a real SMTP server (aiosmtpd) and the alert topic on the
  broker; the alert store is SQLite in the bench's folder or a fresh schema on the
  PostgreSQL server (dropped after). The bench's telemetry is weeks old: alerts are
  mailed at once (`notify_max_age_s` 60 days), as on a school's first day.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from collector import BUILD
from lordi.smtp import SmtpServer, running_smtp
from lordi.stack import LocalStack

AlertsKind = Literal["off", "sqlite", "postgresql"]
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def registry_toml(schools: list[str], partitions: int = 1) -> str:
    """The bench's registry; with `partitions`, school i is placed in partition
    i mod partitions (an even split, whatever the hash of the codes)."""
    lines = [
        'fallback_email = "registre@example.org"',
        "[contractors.repar]", 'name = "Répar"', 'category = "hardware"',
        'emails = ["sav@repar.example.org"]',
        "[contractors.reseau]", 'name = "Réseau"', 'category = "network"',
        'emails = ["noc@reseau.example.org"]',
    ]  # fmt: skip
    for i, uai in enumerate(schools):
        lines += [
            f"[schools.{uai}]", f'name = "Lycée {uai}"', 'town = "Montpellier"',
            *([f"partition = {i % partitions}"] if partitions > 1 else []),
            f'level1 = [{{ name = "Technicien", email = "tech-{uai.lower()}@lycee.example.org" }}]',
            'ssids = ["LORDI-EDU"]', 'hardware_contractor = "repar"',
            'network_contractor = "reseau"',
        ]  # fmt: skip
    return "\n".join(lines) + "\n"


@dataclass
class BenchConfig:
    """The collector environment for one configuration, and what to read after."""

    tls: bool
    alerts: AlertsKind
    partitions: int = 1  # collectors that own schools (several: PostgreSQL store)
    schools: int = 1  # how many schools the bench's devices are spread over
    env: dict[str, str] = field(default_factory=dict)
    store_url: str | None = None
    smtp: SmtpServer | None = None
    broker_port: int = 0
    ca_file: str = ""

    def figures(self) -> dict[str, Any]:
        # The collectors run this checkout's code, in this environment: the same build.
        out: dict[str, Any] = {
            "tls": self.tls, "alerts": self.alerts, "collector_code": BUILD.describe()
        }  # fmt: skip
        if self.store_url is None:
            return out
        from collector.alerts.store import AlertStore  # noqa: PLC0415

        store = AlertStore(self.store_url)
        try:
            alerts = store.list_alerts()
        finally:
            store.close()
        by_rule: dict[str, int] = {}
        for alert in alerts:
            by_rule[alert.rule] = by_rule.get(alert.rule, 0) + 1
        out["alerts_opened"] = len(alerts)
        out["alerts_by_rule"] = dict(sorted(by_rule.items()))
        out["mails_received"] = len(self.smtp.messages()) if self.smtp else 0
        return out


@contextmanager
def bench_config(
    stack: LocalStack, work: Path, *, tls: bool, alerts: AlertsKind, schools: list[str],
    pg_url: str = POSTGRES_URL, partitions: int = 1,
) -> Iterator[BenchConfig]:  # fmt: skip
    """Call before the stack's Mosquitto starts (TLS needs its listener)."""
    if partitions > 1 and alerts != "postgresql":
        raise ValueError("partitioned collectors share a PostgreSQL alert store")
    cfg = BenchConfig(tls, alerts, partitions, len(schools), broker_port=stack.mqtt_port)
    if tls:
        cfg.ca_file = str(stack.enable_tls())
        assert stack.tls_port is not None
        cfg.broker_port = stack.tls_port
        cfg.env |= {
            "LORDI_COLLECTOR_MQTT__PORT": str(stack.tls_port),
            "LORDI_COLLECTOR_MQTT__TLS": "true",
            "LORDI_COLLECTOR_MQTT__CA_FILE": cfg.ca_file,
        }
    with ExitStack() as cleanup:
        if alerts != "off":
            registry = work / "schools.toml"
            registry.write_text(registry_toml(schools, partitions), encoding="utf-8")
            cfg.smtp = cleanup.enter_context(running_smtp(work / "smtp"))
            if alerts == "sqlite":
                cfg.store_url = f"sqlite:///{work / 'alerts.sqlite3'}"
            else:
                # (sqlalchemy only here: the publishers import this module too)
                from lordi.pgschema import fresh_schema  # noqa: PLC0415

                cfg.store_url = cleanup.enter_context(fresh_schema(pg_url, "lordi_bench_"))
            cfg.env |= {
                "LORDI_COLLECTOR_ALERTS__ENABLED": "true",
                "LORDI_COLLECTOR_ALERTS__STORE_URL": cfg.store_url,
                "LORDI_COLLECTOR_ALERTS__REGISTRY": str(registry),
                "LORDI_COLLECTOR_ALERTS__NOTIFY_MAX_AGE_S": str(60 * 86_400),
                "LORDI_COLLECTOR_ALERTS__NOTIFY__SMTP__PORT": str(cfg.smtp.port),
            }
        yield cfg
