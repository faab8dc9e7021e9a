"""`lordi alerts escalate`: the level-2 contractor of the alert's category gets the
evidence packet by e-mail (real SMTP server), and the alert records the escalation."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from collector.alerting import Alerting
from collector.alerts.store import AlertStore
from collector.contract import Sample
from collector.rules import RulesConfig
from lordi.stack import LocalStack
from tests.helpers import minimal_sample, recent
from tests.notify.conftest import SmtpServer

ROOT = Path(__file__).resolve().parents[2]


def _local_registry_file(tmp_path: Path) -> Path:
    """The sample registry without its example.org webhooks (tests stay on loopback)."""
    text = (ROOT / "provisioning" / "schools.toml").read_text(encoding="utf-8")
    kept = [
        line for line in text.splitlines() if not re.match(r"\s*(helpdesk_)?webhook_url\s*=", line)
    ]
    path = tmp_path / "schools.toml"
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    tomllib.loads(path.read_text(encoding="utf-8"))
    return path


def test_escalation_mails_the_hardware_contractor(
    stack: LocalStack, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.sqlite3'}"
    store = AlertStore(url)
    store.create_tables()
    sample = Sample.model_validate_json(json.dumps(minimal_sample(recent(20), health=51.0)))
    Alerting(RulesConfig(), store).on_samples(
        [("0340001A", "dev-0340001A-0001", sample)], datetime.now(UTC)
    )
    config = tmp_path / "collector.toml"
    config.write_text(
        f'[alerts]\nstore_url = "{url}"\nregistry = "{_local_registry_file(tmp_path)}"\n'
        f'[alerts.notify.smtp]\nhost = "127.0.0.1"\nport = {smtp_server.port}\n'
        f'[alerts.notify.alert_topic]\nhost = "127.0.0.1"\nport = {stack.mqtt_port}\n',
        encoding="utf-8",
    )
    smtp_server.clear()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lordi.cli",
            "alerts",
            "--config",
            str(config),
            "escalate",
            "1",
            "--by",
            "Jean Dupont",
            "--note",
            "batterie gonflée",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "escaladée vers occimat" in done.stdout
    mails = smtp_server.wait_for(1, timeout_s=5)
    to = {m["To"] for m in mails}
    assert any("sav-lordi@occimat.example.org" in t for t in to), to
    alert = store.get_alert(1)
    assert alert.escalated_to == "occimat"
    assert [t.note for t in store.transitions_of(1)][-1] == "batterie gonflée"
