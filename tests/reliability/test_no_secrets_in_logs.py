"""The collector, as a process with alerts and notifications on, never writes a secret
to its output: the MQTT password, the store token, the SMTP password and a webhook
token are set to known values, the paths that are most likely to leak them are
exercised (connecting, writing, an alert sent by e-mail, webhook and MQTT with the
e-mail and webhook deliveries failing and scheduled for retry, a configuration error on a
secret key), and every line the process wrote to stdout and stderr is scanned.
(The agent's own test is tests/integration/test_agent_service.py.)"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lordi.collectorproc import CollectorProcess, write_collector_config
from lordi.stack import LocalStack, free_port
from tests.helpers import Subscriber, publish
from tests.reliability.servers import (
    REPO,
    envelope,
    sample_at,
    wait_stored_total,
    wait_until,
)

MQTT_PASSWORD = "mqtt-Pw-7f3a9c1e5b"
STORE_TOKEN = "store-Tok-2d8e4b6a0c"
SMTP_PASSWORD = "smtp-Pw-9b1d3f5a7e"
WEBHOOK_TOKEN = "hook-Tok-4c6e8a0b2d"
SECRETS = (MQTT_PASSWORD, STORE_TOKEN, SMTP_PASSWORD, WEBHOOK_TOKEN)
SCHOOL, DEVICE = "0340001A", "dev-secret"  # a school of the sample registry


def _registry(path: Path, closed_port: int) -> Path:
    """The sample registry with every webhook pointed at a closed loopback port, the
    token in the URL (as helpdesks commonly take it)."""
    text = (REPO / "provisioning" / "schools.toml").read_text(encoding="utf-8")
    hook = f"http://127.0.0.1:{closed_port}/hook?token={WEBHOOK_TOKEN}"
    text = re.sub(r'(webhook_url\s*=\s*)"[^"]*"', rf'\1"{hook}"', text)
    path.write_text(text, encoding="utf-8")
    return path


def test_collector_output_holds_no_secret(private_stack: LocalStack, tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there: SMTP and webhooks fail and are retried
    config = write_collector_config(
        tmp_path / "collector.toml",
        more={
            "mqtt": {
                "port": private_stack.mqtt_port,
                "client_id": "secret-collector",
                "username": "lordi-collector",
                "password": MQTT_PASSWORD,
            },
            "store": {"url": private_stack.vm_url, "token": STORE_TOKEN},
            "ingest": {"linger_ms": 20, "retry_initial_s": 0.2},
            "alerts": {
                "enabled": True,
                "store_url": f"sqlite:///{tmp_path / 'alerts.sqlite3'}",
                "registry": str(_registry(tmp_path / "schools.toml", closed)),
                "sweep_interval_s": 1.0,
            },
            "alerts.notify.smtp": {
                "host": "127.0.0.1",
                "port": closed,
                "user": "lordi",
                "password": SMTP_PASSWORD,
                "timeout_s": 2.0,
            },
            "alerts.notify.alert_topic": {
                "port": private_stack.mqtt_port,
                "username": "lordi-collector",
                "password": MQTT_PASSWORD,
            },
        },
    )
    collector = CollectorProcess(config, tmp_path / "collector.log")
    alerts = Subscriber(private_stack, f"lordi/v1/{SCHOOL}/alerts")
    topic = f"lordi/v1/{SCHOOL}/{DEVICE}/telemetry"
    t0 = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)
    try:
        collector.spawn()
        assert collector.wait_subscribed(), collector.this_run()[-3000:]
        publish(private_stack, topic, [envelope(SCHOOL, DEVICE, [sample_at(t0, 61.0)])])
        publish(
            private_stack,
            topic,
            [envelope(SCHOOL, DEVICE, [sample_at(t0 + timedelta(minutes=5), 59.0)])],
        )
        assert wait_stored_total(private_stack.vm_url, SCHOOL, 2, timeout_s=60) == 2
        # the alert went out on MQTT (with the password) and failed on e-mail and webhook
        assert alerts.wait_for(lambda m: any(b"battery_replace" in p for _, p, _ in m), 30)
        assert wait_until(lambda: b"delivery failed" in collector.this_run(), 60), (
            collector.this_run()[-3000:]
        )
        time.sleep(3.0)  # a few more stats lines and sweeps
    finally:
        alerts.close()
        collector.stop()
    output = collector.log.read_bytes().decode("utf-8", errors="replace")
    # A configuration error on a secret key names the key, never the value.
    bad = tmp_path / "bad.toml"
    bad.write_text(
        f'[mqtt]\npassword = ["{MQTT_PASSWORD}"]\n[store]\ntoken = 42\n', encoding="utf-8"
    )
    refused = subprocess.run(
        [sys.executable, "-m", "collector.cli", "run", "--config", str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2 and "mqtt.password" in refused.stderr, refused.stderr
    lines = output.splitlines() + refused.stdout.splitlines() + refused.stderr.splitlines()
    assert len(lines) > 5 and "delivery failed" in output
    leaks = [(secret, line) for line in lines for secret in SECRETS if secret in line]
    assert leaks == []
    print(f"collector output: {len(lines)} lines scanned, 0 of 4 secrets found")
