"""The agent loses nothing: a week without broker, and kill -9 in a loop (real servers)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.config import MqttConfig
from agent.mqtt import Publisher
from agent.privacy import PrivacyPolicy
from agent.runtime import Agent
from agent.spool import Spool
from lordi import vm
from lordi.sim.fleet import school_days
from lordi.stack import LocalStack
from tests.helpers import Subscriber, running_collector, unique_school, wait_stored
from tests.integration.test_pipeline import FixedProvider, full_reading


def _drive(agent: Agent, link: Publisher, until: float, done: object) -> bool:
    """The service's loop in miniature: pump and let the link work until `done()`."""
    while time.monotonic() < until:
        agent.pump()
        if callable(done) and done():
            return True
        link.service(0.05)
    return False


def test_a_week_offline_then_every_sample_arrives_in_order_once(
    stack: LocalStack, tmp_path: Path
) -> None:
    school = unique_school()
    monday = (datetime.now(UTC) - timedelta(days=14)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    clock = [monday]
    link = Publisher(
        MqttConfig(port=stack.mqtt_port), school, "dev-week", threaded=False, max_delay_s=1.0
    )
    agent = Agent(
        school,
        "dev-week",
        provider=FixedProvider(full_reading()),
        link=link,
        spool=Spool(tmp_path / "spool.sqlite3"),
        policy=PrivacyPolicy(frozenset(), b""),
        clock=lambda: clock[0],
    )
    with running_collector(stack) as collector:
        stack.stop_process("mosquitto")  # the school's broker is gone for the week
        link.start()
        taken = []
        for t in school_days(monday, days=7):
            clock[0] = t
            taken.append(agent.take_sample()["ts"])
            agent.pump()
            link.service(0)  # tries to connect now and then: refused
        assert len(taken) == 540 and agent.spool.pending() == 540
        assert not link.connected.is_set()
        stack.start_mosquitto()
        seen = Subscriber(stack, f"lordi/v1/{school}/+/telemetry")  # watches the drain
        assert collector.connected.wait(20), "collector did not resubscribe"
        assert _drive(agent, link, time.monotonic() + 60, agent.idle), "not drained"
        assert wait_stored(stack, school, 540, timeout_s=30) == 540
    link.stop()
    seen.wait_for(lambda m: sum(1 for t, _, _ in m if t.endswith("/telemetry")) >= 3)
    seen.close()
    # in order: oldest first, across and within messages
    arrived = [s["ts"] for _, p, _ in seen.messages for s in json.loads(p)["samples"]]
    assert arrived == taken
    # once: 540 distinct timestamps, each stored exactly once
    vm.force_flush(stack.vm_url)
    [series] = vm.export(stack.vm_url, f'device_report{{school="{school}"}}')
    stamps = series["timestamps"]
    assert len(stamps) == len(set(stamps)) == 540
    expected = [
        int(datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000) for t in taken
    ]
    assert sorted(stamps) == expected


DRIVER = textwrap.dedent("""
    import sqlite3, sys, time
    from datetime import datetime, timedelta, UTC
    from pathlib import Path
    from agent.config import MqttConfig
    from agent.mqtt import Publisher
    from agent.privacy import PrivacyPolicy
    from agent.runtime import Agent
    from agent.spool import Spool
    from tests.integration.test_pipeline import FixedProvider, full_reading

    port, school, spool_path, mode = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4]
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    spool = Spool(spool_path)

    def clock():
        # a distinct timestamp per spooled sample: the id the next insert will get
        row = spool._db.execute("SELECT seq FROM sqlite_sequence WHERE name='spool'").fetchone()
        return base + timedelta(seconds=(row[0] if row else 0) + 1)

    link = Publisher(MqttConfig(port=port), school, "dev-kill", threaded=False, max_delay_s=0.5)
    agent = Agent(school, "dev-kill", provider=FixedProvider(full_reading()), link=link,
                  spool=spool, policy=PrivacyPolicy(frozenset(), b""), clock=clock,
                  batch_max_samples=20)
    link.start()
    print("running", flush=True)  # imports done: the kill lands in the loop
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if mode == "sample":
            agent.take_sample()
        agent.pump()
        link.service(0.005)
        if mode == "drain" and link.connected.is_set() and agent.idle():
            break
    link.stop()
    print("idle" if agent.idle() else "busy", flush=True)
""")


def test_kill_9_in_a_loop_loses_nothing(stack: LocalStack, tmp_path: Path) -> None:
    school = unique_school()
    spool_path = tmp_path / "spool.sqlite3"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}

    def start(mode: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(stack.mqtt_port), school, str(spool_path), mode],
            env=env,
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    with running_collector(stack):
        for round_no in range(8):  # sample and publish, killed at a different moment each time
            proc = start("sample")
            # From the loop's start, not the process's: under load (CI) the imports
            # alone took longer than the delay, and no round took a sample.
            assert proc.stdout is not None and proc.stdout.readline().strip() == "running"
            time.sleep(0.1 + 0.17 * round_no)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        drain = start("drain")
        out, err = drain.communicate(timeout=60)
        assert out.split()[-1:] == ["idle"], err[-2000:]
        db = sqlite3.connect(spool_path)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        taken = db.execute("SELECT seq FROM sqlite_sequence WHERE name='spool'").fetchone()[0]
        assert db.execute("SELECT count(*) FROM spool").fetchone() == (0,)
        db.close()
        assert taken > 50, f"only {taken} samples taken: the loop did not run"
        print(f"kill -9 x8: {taken} samples taken, all stored once")
        assert wait_stored(stack, school, taken, timeout_s=30) == taken
        time.sleep(1)
        vm.force_flush(stack.vm_url)
        [series] = vm.export(stack.vm_url, f'device_report{{school="{school}"}}')
        assert len(series["timestamps"]) == len(set(series["timestamps"])) == taken
