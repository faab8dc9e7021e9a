"""From a sample to an e-mail, through the real collector: Mosquitto, VictoriaMetrics,
the rules, the alert store, and a real SMTP server."""

from __future__ import annotations

import email.header
import time
from pathlib import Path

from collector.alerting import Alerting
from collector.alerts.store import AlertStore
from collector.notify.deliver import Notifier
from collector.rules import RulesConfig
from collector.service import Collector
from lordi import vm
from lordi.stack import LocalStack
from tests.helpers import envelope, minimal_sample, publish, recent, settings_for, wait_stored
from tests.notify.conftest import SmtpServer
from tests.notify.test_delivery import _local_registry, _settings

SCHOOL, DEVICE = "0340001A", "dev-0340001A-0001"


def _subject(msg: object) -> str:
    raw = msg["Subject"]  # type: ignore[index]
    return str(email.header.make_header(email.header.decode_header(raw)))


def test_a_worn_battery_reaches_the_technicians_mailbox_within_2_s(
    stack: LocalStack, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    smtp_server.clear()
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.sqlite3'}")
    store.create_tables()
    notifier = Notifier(_local_registry(), _settings(smtp_server.port, stack.mqtt_port))
    alerting = Alerting(RulesConfig(), store, notifier)
    # The suite's one collector id: a new id would leave a session in the share group.
    collector = Collector(settings_for(stack), alerting=alerting)
    collector.start()
    try:
        assert collector.connected.wait(10)
        healthy = minimal_sample(recent(10), health=61.0)  # worn, not yet to replace
        publish(
            stack, f"lordi/v1/{SCHOOL}/{DEVICE}/telemetry", [envelope(SCHOOL, DEVICE, [healthy])]
        )
        assert wait_stored(stack, SCHOOL, 1) >= 1
        smtp_server.wait_for(2, timeout_s=1.0)  # 61 %: a "watch" alert and its e-mail
        smtp_server.clear()
        worn = minimal_sample(recent(5), health=59.0)  # crosses the 60 % threshold
        sent_at = time.monotonic()
        publish(stack, f"lordi/v1/{SCHOOL}/{DEVICE}/telemetry", [envelope(SCHOOL, DEVICE, [worn])])
        mails = smtp_server.wait_for(1, timeout_s=2.0)
        elapsed = time.monotonic() - sent_at
    finally:
        collector.stop()
    assert len(mails) >= 1, f"no e-mail within 2 s ({elapsed:.2f} s)"
    assert elapsed <= 2.0
    print(f"battery_replace e-mail in the mailbox {elapsed:.2f} s after the publish")
    body = mails[0].get_payload(decode=True)
    text = body.decode() if isinstance(body, bytes) else str(mails[0])
    assert "59" in text and DEVICE in text and "LRD-34-000101" in text  # health, device, asset tag
    assert "remplacer" in _subject(mails[0]).lower()  # "Batterie à remplacer ..."
    [alert] = [a for a in store.list_alerts(school=SCHOOL) if a.rule == "battery_replace"]
    assert (alert.status, alert.device) == ("open", DEVICE)
    assert alert.evidence["health_pct"] == 59.0
    # The collector wrote the transitions for the dashboards' open-alerts panels (at its
    # stop). A new series can take a moment to be searchable in VictoriaMetrics: poll.
    def opened() -> set[tuple[str, int]]:
        vm.force_flush(stack.vm_url)
        return {
            (r["metric"]["rule"], v)
            for r in vm.export(stack.vm_url, f'alert_open{{school="{SCHOOL}",device="{DEVICE}"}}')
            for v in r["values"]
        }

    wanted = {("battery_replace", 1), ("battery_watch", 1)}
    deadline = time.monotonic() + 15
    while not wanted <= opened() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert wanted <= opened()
