"""One schedule through the real pipeline: a private Mosquitto and VictoriaMetrics,
a real SMTP server, a `lordi-collector run` process with alerts on (SQLite or
PostgreSQL store), and one MQTT connection publishing the plan's messages at their
time (one connection keeps the order: each laptop's messages arrive as sent).

Outages are real: the broker process is stopped and started again (its persistence
keeps the collector's session and plain subscription), the collector process is
stopped (SIGTERM: it saves its state) and started again with the same client id (the
broker queued what was published meanwhile).

The run ends when the time-series store holds every sample, the collector has judged
every window and the days up to Thursday (Friday waits for the next week's first
reports) and the collector has stopped; then the alerts are read from the store and the mails from
the SMTP server.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from email.message import Message as Mail
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from collector.alerts.model import Alert
from collector.alerts.store import AlertStore
from lordi import vm
from lordi.collectorproc import CollectorProcess
from lordi.evaluation.schedules import Message, Plan
from lordi.evaluation.world import SCHOOLS, World
from lordi.sim.calendar import SIM_ZONE
from lordi.smtp import running_smtp
from lordi.stack import LocalStack

# The evaluation's registry: the sample registry's four schools and contractors,
# without webhooks (nothing listens at example.org).
LEVEL1 = {
    "0340001A": ["camille.roux@jeanmoulin.example.org", "karim.benali@jeanmoulin.example.org"],
    "0340002B": ["sophie.martin@mariecurie.example.org"],
    "0310003C": ["julien.garcia@fermat.example.org", "nadia.ferrand@fermat.example.org"],
    "0300004D": ["thomas.blanc@daudet.example.org"],
}
NETWORK = ["noc@sudreseaux.example.org", "astreinte@sudreseaux.example.org"]
HARDWARE = ["sav-lordi@occimat.example.org"]


def registry_toml() -> str:
    lines = [
        'fallback_email = "registre-lordi@example.org"',
        f"calendar_zone = {json.dumps(SIM_ZONE)}",  # the simulated schools' (Occitanie)
        "[contractors.occimat]", 'name = "OcciMat Services (fictif)"', 'category = "hardware"',
        f"emails = {json.dumps(HARDWARE)}",
        "[contractors.sudreseaux]", 'name = "Sud Réseaux Éducation (fictif)"',
        'category = "network"', f"emails = {json.dumps(NETWORK)}",
    ]  # fmt: skip
    for uai in SCHOOLS:
        contacts = ", ".join(
            f'{{ name = "{e.split("@")[0]}", email = "{e}" }}' for e in LEVEL1[uai]
        )
        lines += [
            f"[schools.{uai}]", f'name = "Lycée {uai}"', 'town = "Occitanie"',
            f"level1 = [{contacts}]", 'ssids = ["LORDI-EDU"]',
            'hardware_contractor = "occimat"', 'network_contractor = "sudreseaux"',
        ]  # fmt: skip
    return "\n".join(lines) + "\n"


@dataclass
class Outcome:
    plan: str
    store: str
    alerts: list[Alert]
    mails: list[dict[str, Any]]
    seconds: float
    samples_stored: int
    late_samples: int
    notes: list[str] = field(default_factory=list)


class Publisher:
    """One MQTT v5 connection, QoS 1, messages sent in order; `wait_acked` waits for
    every PUBACK (before a broker outage: nothing in flight is lost)."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self._infos: list[mqtt.MQTTMessageInfo] = []
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, message: Message) -> None:
        self._infos.append(self.client.publish(message.topic, message.payload, qos=1))

    def wait_acked(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        for info in self._infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            if not info.is_published():
                raise RuntimeError("the broker did not acknowledge every message in time")
        self._infos = []

    def close(self) -> None:
        self.wait_acked()
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Setup:
    """How the collector runs: its alert store and the compressed time."""

    store_url: str
    lateness_s: float
    sweep_interval_s: float
    root: Path


def run(plan: Plan, world: World, setup: Setup) -> Outcome:
    t0 = time.monotonic()
    setup.root.mkdir(parents=True, exist_ok=True)
    registry = setup.root / "schools.toml"
    registry.write_text(registry_toml(), encoding="utf-8")
    stack = LocalStack(root=setup.root / "stack")
    stack.root.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    try:
        stack.start_mosquitto()
        stack.start_victoriametrics()
        with running_smtp(setup.root / "smtp") as smtp:
            env = _collector_env(stack, setup, registry, smtp.port)
            collector = CollectorProcess.start(stack, "lordi-eval", env=env, stats_interval_s=1)
            collector = _replay(plan, stack, collector, env, notes)
            stored = _wait_stored(stack, plan.samples)
            _wait_judged(setup.store_url, world, timeout_s=setup.lateness_s * 3 + 60)
            collector.stop()
            late = _late(setup.store_url)
            mails = [_mail(m) for m in smtp.messages()]
    finally:
        stack.stop()
    store = AlertStore(setup.store_url)
    try:
        alerts = store.list_alerts()
    finally:
        store.close()
    return Outcome(plan.name, setup.store_url.split(":", 1)[0], alerts, mails,
                   round(time.monotonic() - t0, 1), stored, late, notes)  # fmt: skip


def _collector_env(
    stack: LocalStack, setup: Setup, registry: Path, smtp_port: int
) -> dict[str, str]:
    return {
        "LORDI_COLLECTOR_MQTT__SHARE_GROUP": "",  # one collector, plain subscription
        "LORDI_COLLECTOR_ALERTS__ENABLED": "true",
        "LORDI_COLLECTOR_ALERTS__STORE_URL": setup.store_url,
        "LORDI_COLLECTOR_ALERTS__REGISTRY": str(registry),
        "LORDI_COLLECTOR_ALERTS__SWEEP_INTERVAL_S": str(setup.sweep_interval_s),
        "LORDI_COLLECTOR_ALERTS__LATENESS_S": str(setup.lateness_s),
        # Compressed time: every alert of the replayed week is "old" on the collector's
        # clock; mail them all at once (the old-episode policy has its own tests).
        "LORDI_COLLECTOR_ALERTS__NOTIFY_MAX_AGE_S": str(30 * 86_400),
        "LORDI_COLLECTOR_ALERTS__NOTIFY__SMTP__PORT": str(smtp_port),
        "LORDI_COLLECTOR_ALERTS__NOTIFY__ALERT_TOPIC__PORT": str(stack.mqtt_port),
    }


def _replay(
    plan: Plan, stack: LocalStack, collector: CollectorProcess, env: dict[str, str],
    notes: list[str],
) -> CollectorProcess:  # fmt: skip
    """Publish every message at its time; stop and start the broker and the collector
    when the plan says so."""
    events: list[tuple[float, int, str]] = []
    for start, end in plan.broker_down:
        events += [(start, 0, "broker down"), (end, 1, "broker up")]
    for start, end in plan.collector_down:
        events += [(start, 0, "collector down"), (end, 1, "collector up")]
    events.sort()
    publisher = Publisher(stack.mqtt_port)
    origin = time.monotonic()
    index = 0
    for at_s, _order, what in [*events, (float("inf"), 2, "end")]:
        while index < len(plan.messages) and plan.messages[index].at_s < at_s:
            _sleep_until(origin, plan.messages[index].at_s)
            publisher.publish(plan.messages[index])
            index += 1
        if what == "end":
            break
        _sleep_until(origin, at_s)
        if what == "broker down":
            publisher.close()  # every message sent so far is with the broker
            stack.stop_process("mosquitto")
        elif what == "broker up":
            stack.start_mosquitto()
            publisher = Publisher(stack.mqtt_port)
        elif what == "collector down":
            collector.stop()
        elif what == "collector up":
            collector = CollectorProcess.start(stack, "lordi-eval", env=env, stats_interval_s=1)
        notes.append(f"{what} at {at_s:.1f} s")
    publisher.close()
    return collector


def _sleep_until(origin: float, at_s: float) -> None:
    delay = origin + at_s - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _wait_stored(stack: LocalStack, expected: int, timeout_s: float = 300) -> int:
    deadline = time.monotonic() + timeout_s
    stored = 0
    while time.monotonic() < deadline:
        vm.force_flush(stack.vm_url)
        rows = vm.query(stack.vm_url, "sum(count_over_time(device_report[400d]))")
        stored = int(rows[0]["value"]) if rows else 0
        if stored >= expected:
            return stored
        time.sleep(0.5)
    raise RuntimeError(f"only {stored} of {expected} samples stored after {timeout_s:.0f} s")


def _wait_judged(store_url: str, world: World, timeout_s: float) -> None:
    """Until every school has judged all its windows and Thursday (its saved state
    says so): a day is judged once a later day has begun, so Friday waits for the
    next week."""
    thursday = world.week[-2].isoformat()
    deadline = time.monotonic() + timeout_s
    store = AlertStore(store_url)
    try:
        while time.monotonic() < deadline:
            docs = store.school_states.all()
            if len(docs) == len(SCHOOLS) and all(
                (d.get("judged_day") or "") >= thursday and not d.get("windows")
                for d in docs.values()
            ):
                return
            time.sleep(0.5)
    finally:
        store.close()
    raise RuntimeError(f"the collector had not judged the week after {timeout_s:.0f} s")


def _late(store_url: str) -> int:
    store = AlertStore(store_url)
    try:
        return sum(int(d.get("late", 0)) for d in store.school_states.all().values())
    finally:
        store.close()


_ALERT_ID = re.compile(r"alerte n° (\d+)|\"id\": (\d+)")


def _mail(message: Mail) -> dict[str, Any]:
    text = ""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            body = part.get_payload(decode=True)
            text += body.decode("utf-8", "replace") if isinstance(body, bytes) else ""
    found = _ALERT_ID.search(text)
    alert_id = int(next(g for g in found.groups() if g)) if found else None
    return {
        "to": sorted(a.strip() for a in str(message.get("To", "")).split(",") if a.strip()),
        "subject": str(message.get("Subject", "")),
        "alert_id": alert_id,
    }
