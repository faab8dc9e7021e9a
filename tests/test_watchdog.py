"""systemd's notify protocol: a real collector process says READY=1, feeds the
watchdog while its loops run and says STOPPING=1 at SIGTERM; a stalled loop
starves the watchdog (so systemd restarts it). lordi-web feeds it while it answers
its own /healthz."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from collector.cli import supervise
from lordi.stack import LocalStack, free_port
from tests.metrics.helpers import forget_session
from tests.web.browser import write_configs


def _received(sock: socket.socket, until: str, timeout_s: float) -> list[str]:
    """Datagrams received until one equals `until` (or the time is up)."""
    got: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if got[-1] == until:
            break
    return got


def test_a_running_collector_feeds_the_watchdog(stack: LocalStack, tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    client_id = "watchdog-collector"
    env = {
        **stack.env(),
        "LORDI_COLLECTOR_MQTT__CLIENT_ID": client_id,
        "LORDI_COLLECTOR_MQTT__SHARE_GROUP": client_id,
        "NOTIFY_SOCKET": str(path),
        "WATCHDOG_USEC": "1000000",  # systemd's WatchdogSec=1s: fed every 0.5 s
    }
    log = tmp_path / "collector.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "collector.cli", "run", "--stats-interval", "30"],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        first = _received(sock, "READY=1", 30)
        assert first[-1:] == ["READY=1"], (first, log.read_text()[-2000:])
        fed = [m for m in _received(sock, "never", 2.2) if m == "WATCHDOG=1"]
        assert len(fed) >= 3, fed  # ~4 in 2.2 s at 0.5 s
        proc.terminate()
        assert _received(sock, "STOPPING=1", 20)[-1] == "STOPPING=1"
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
        forget_session(stack, client_id)


class _Stuck:
    """A collector whose ingest loop stopped (what Collector.stalled() reports)."""

    def stalled(self) -> str:
        return "the ingest thread has not looped for 60 s"

    def stop(self) -> None:
        return None

    def refresh_subscriptions(self) -> int:
        return 0


def test_a_stalled_collector_does_not_feed_the_watchdog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # fed every 0.1 s if healthy
    monkeypatch.setattr("collector.cli._figures", lambda _c: {})
    done = threading.Event()
    threading.Timer(0.6, done.set).start()
    with caplog.at_level(logging.ERROR, logger="collector"):
        supervise(_Stuck(), done, stats_interval_s=60)  # type: ignore[arg-type]
    got = _received(sock, "STOPPING=1", 1)
    sock.close()
    assert got[0] == "READY=1" and got[-1] == "STOPPING=1"
    assert "WATCHDOG=1" not in got
    assert "watchdog not fed: the ingest thread has not looped for 60 s" in caplog.text


def test_outside_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    from collector.sdnotify import notify, watchdog_period_s  # noqa: PLC0415

    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert notify("READY=1") is False
    assert watchdog_period_s() is None


def test_lordi_web_feeds_the_watchdog_while_it_answers(tmp_path: Path) -> None:
    """The real lordi-web under a notify socket: READY=1 once it answers /healthz,
    then WATCHDOG=1 every half period; stopped, it feeds nothing more."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    port = free_port()
    web_toml = write_configs(tmp_path, smtp_port=9, web_port=port)
    env = {**os.environ, "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"}
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("lordi-web")), "--config", str(web_toml),
             "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        first = _received(sock, "READY=1", 30)
        assert first[-1:] == ["READY=1"], (first, log.read_text()[-2000:])
        fed = [m for m in _received(sock, "never", 2.2) if m == "WATCHDOG=1"]
        assert len(fed) >= 3, fed
        proc.send_signal(signal.SIGSTOP)  # a frozen process answers nothing
        _received(sock, "never", 0.6)  # what was already on its way
        assert _received(sock, "never", 1.5) == []
    finally:
        proc.kill()
        proc.wait(10)
        sock.close()


def test_both_units_ask_systemd_for_the_watchdog() -> None:
    root = Path(__file__).resolve().parents[1]
    for unit, seconds in (("collector/lordi-collector.service", "90s"),
                          ("web/lordi-web.service", "60s")):  # fmt: skip
        lines = (root / "provisioning" / unit).read_text(encoding="utf-8").splitlines()
        assert {"Type=notify", "NotifyAccess=main", f"WatchdogSec={seconds}"} <= set(lines), unit
