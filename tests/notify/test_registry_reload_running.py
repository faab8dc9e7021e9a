"""The school registry changed under a running collector: a real `lordi-collector
run` process (alerts and metrics on) on the session's Mosquitto and
VictoriaMetrics, a real SMTP server (aiosmtpd, Maildir). A school added to the file
takes effect on SIGHUP and, without a signal, through the file watch: a worn
battery of the new school reaches its technician, not the fallback address. An
invalid file is refused with one log line naming the file, the field and the value;
the collector keeps running and the previous registry still routes."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

from lordi.collectorproc import CollectorProcess
from lordi.smtp import SmtpServer, running_smtp
from lordi.stack import LocalStack, free_port
from tests.helpers import envelope, minimal_sample, publish, recent, unique_school
from tests.metrics.helpers import eventually, forget_session, get
from tests.notify.registries import FALLBACK, registry_toml, replace_file, technician

WATCH_S = 4.0  # documented: a change of the file is in force within 2 x POLL_S


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with running_smtp(tmp_path / "smtp") as server:
        yield server


class Running:
    """A collector process over `registry`, its log and its metrics address."""

    def __init__(
        self, stack: LocalStack, tmp_path: Path, smtp: SmtpServer, registry: Path, name: str
    ) -> None:
        self.name = name
        self.port = free_port()
        env = {
            "LORDI_COLLECTOR_MQTT__SHARE_GROUP": name,  # its own group, forgotten after
            "LORDI_COLLECTOR_METRICS__ENABLED": "true",
            "LORDI_COLLECTOR_METRICS__PORT": str(self.port),
            "LORDI_COLLECTOR_ALERTS__ENABLED": "true",
            "LORDI_COLLECTOR_ALERTS__STORE_URL": f"sqlite:///{tmp_path / 'alerts.sqlite3'}",
            "LORDI_COLLECTOR_ALERTS__REGISTRY": str(registry),
            "LORDI_COLLECTOR_ALERTS__NOTIFY__SMTP__PORT": str(smtp.port),
            "LORDI_COLLECTOR_ALERTS__NOTIFY__ALERT_TOPIC__ENABLED": "false",
        }
        self.proc = CollectorProcess.start(stack, name, env=env, log=tmp_path / "collector.log")

    def log(self) -> str:
        return self.proc.log.read_text(encoding="utf-8")

    def lines(self, pattern: str) -> list[str]:
        return [line for line in self.log().splitlines() if re.search(pattern, line)]

    def wait_line(self, pattern: str, timeout_s: float = 15) -> str:
        found = eventually(lambda: self.lines(pattern), timeout_s, every_s=0.05)
        assert found, f"no log line matching {pattern!r}:\n{self.log()[-3000:]}"
        return str(found[-1])

    def metric(self, name: str) -> float:
        status, text = get(f"http://127.0.0.1:{self.port}/metrics")
        assert status == 200
        [value] = [line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")]
        return float(value)

    def sighup(self) -> None:
        os.kill(self.proc.proc.pid, signal.SIGHUP)


@pytest.fixture
def running(
    stack: LocalStack, tmp_path: Path, smtp: SmtpServer, request: pytest.FixtureRequest
) -> Iterator[tuple[Running, Path, str, str]]:
    """(collector, registry file, school A in it, school B not yet)."""
    school_a, school_b = unique_school(), unique_school()
    registry = tmp_path / "schools.toml"
    registry.write_text(registry_toml({school_a: technician(school_a)}), encoding="utf-8")
    name = f"reload-{request.node.name[:40]}".replace("_", "-")
    collector = Running(stack, tmp_path, smtp, registry, name)
    try:
        yield collector, registry, school_a, school_b
    finally:
        collector.proc.stop()
        forget_session(stack, name)
    assert "Traceback" not in collector.log(), collector.log()[-3000:]


def _text(msg: Message) -> str:
    part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    raw = part.get_payload(decode=True)
    assert isinstance(raw, bytes)
    return raw.decode(part.get_content_charset() or "utf-8")


def _worn_battery(stack: LocalStack, smtp: SmtpServer, school: str, device: str) -> set[str]:
    """Publish a worn battery (55 %: an alert opens); the recipients of its e-mails."""
    sample = minimal_sample(recent(2), health=55.0)
    publish(stack, f"lordi/v1/{school}/{device}/telemetry", [envelope(school, device, [sample])])

    def recipients() -> set[str]:
        return {str(m["X-RcptTo"]) for m in smtp.messages() if device in _text(m)}

    assert eventually(recipients, 15, every_s=0.05), f"no e-mail about {school}/{device}"
    time.sleep(0.5)  # any other e-mail about it (none expected) has arrived too
    return recipients()


def _refused_line(collector: Running, registry: Path, field: str, value: str) -> None:
    """The refusal is one ERROR line naming the file, the field and the value."""
    line = collector.wait_line("registry reload .* refused")
    assert " ERROR " in line
    assert str(registry) in line and field in line and value in line, line
    assert "the previous registry stays in force (2 schools, 2 contractors" in line
    assert collector.proc.proc.poll() is None  # still running


def test_sighup_reloads_the_registry_and_an_invalid_file_keeps_the_previous(
    stack: LocalStack, smtp: SmtpServer, running: tuple[Running, Path, str, str]
) -> None:
    collector, registry, school_a, school_b = running
    assert collector.metric("lordi_collector_registry_schools") == 1
    assert collector.metric("lordi_collector_registry_valid") == 1
    loaded_at = collector.metric("lordi_collector_registry_loaded_timestamp_seconds")
    assert abs(loaded_at - time.time()) < 60

    # Not in the registry yet: the fallback address, flagged.
    assert _worn_battery(stack, smtp, school_b, "d1") == {FALLBACK}

    # B added with its technician; `systemctl reload` sends SIGHUP.
    registry.write_text(
        registry_toml({school_a: technician(school_a), school_b: technician(school_b)}),
        encoding="utf-8",
    )
    collector.sighup()
    line = collector.wait_line(r"registry .* reloaded \(SIGHUP\)")
    assert f"2 schools, 2 contractors; schools added: {school_b}" in line
    assert _worn_battery(stack, smtp, school_b, "d2") == {technician(school_b)}
    assert collector.metric("lordi_collector_registry_schools") == 2
    assert collector.metric("lordi_collector_registry_loaded_timestamp_seconds") > loaded_at

    # An invalid e-mail: refused, logged, counted; B's technician still receives.
    bad = "technicien at lycee.example.org"
    registry.write_text(
        registry_toml({school_a: technician(school_a), school_b: bad}), encoding="utf-8"
    )
    collector.sighup()
    _refused_line(collector, registry, f"schools.{school_b}.level1[0].email", f"'{bad}'")
    assert collector.metric("lordi_collector_registry_valid") == 0
    assert collector.metric("lordi_collector_registry_reload_failures_total") == 1
    assert collector.metric("lordi_collector_registry_schools") == 2
    status, ready = get(f"http://127.0.0.1:{collector.port}/readyz")
    assert status == 200 and ready.startswith("ready; registry refused, previous one in force")
    assert _worn_battery(stack, smtp, school_b, "d3") == {technician(school_b)}


def test_the_file_watch_reloads_without_a_signal_and_logs_a_refusal_once(
    stack: LocalStack, smtp: SmtpServer, running: tuple[Running, Path, str, str]
) -> None:
    collector, registry, school_a, school_b = running
    schools = {school_a: technician(school_a), school_b: technician(school_b)}
    written = time.monotonic()
    replace_file(registry, registry_toml(schools))  # as `lordi provision` writes it
    line = collector.wait_line(r"registry .* reloaded \(file changed\)", timeout_s=WATCH_S + 5)
    elapsed = time.monotonic() - written
    print(f"registry change in force {elapsed:.1f} s after the write")
    assert elapsed <= WATCH_S + 2  # slack for a busy machine
    assert f"schools added: {school_b}" in line
    assert _worn_battery(stack, smtp, school_b, "d1") == {technician(school_b)}

    # An unknown contractor for B: refused once, not again at every look.
    replace_file(registry, registry_toml(schools, hardware_of={school_b: "reparfix"}))
    _refused_line(
        collector, registry, f"schools.{school_b}.hardware_contractor",
        "unknown contractor 'reparfix'",
    )  # fmt: skip
    time.sleep(3 * WATCH_S)  # six more looks at the unchanged file
    assert len(collector.lines("registry reload .* refused")) == 1
    assert collector.metric("lordi_collector_registry_reload_failures_total") == 1
    assert _worn_battery(stack, smtp, school_b, "d2") == {technician(school_b)}

    # Fixed: in force again, without a signal.
    replace_file(registry, registry_toml(schools))
    line = collector.wait_line(r"reloaded \(file changed\): 2 schools, 2 contractors; no change")
    assert collector.metric("lordi_collector_registry_valid") == 1
