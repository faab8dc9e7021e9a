"""The real TLS broker of tests/secure_broker.py (production config and ACL, a
private CA) with broker users, and a process run against it, for the tests of
refused connections (collector and agent) and of the alert topic over TLS."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lordi import provision
from tests.secure_broker import Fleet, SecureBroker, make_certs


@contextmanager
def secure_fleet(root: Path, users: dict[str, str]) -> Iterator[Fleet]:
    """A started broker whose password file holds `users` (already loaded)."""
    broker = SecureBroker()
    broker.start()
    fleet = Fleet(broker, root)
    try:
        for user, password in users.items():
            provision.set_password(broker.broker_dir, user, password)
        provision.reload_broker(broker.pid, None)
        for user, password in users.items():  # the SIGHUP reload is asynchronous
            fleet.connected(user, password).close()
        yield fleet
    finally:
        for client in fleet.clients:
            client.close()
        broker.stop()


def other_ca(folder: Path) -> Path:
    """A CA that did not sign the broker's certificate."""
    folder.mkdir(parents=True, exist_ok=True)
    make_certs(folder)
    return folder / "ca.crt"


def wait_for_text(log: Path, text: str, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(encoding="utf-8", errors="replace"):
            return True
        time.sleep(0.1)
    return False


@contextmanager
def running(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process writing stdout and stderr to `log`; SIGTERM at the end (by PID)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def clean_env(prefix: str, **extra: str) -> dict[str, str]:
    """This environment without any `prefix*` variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefix)}
    return env | extra
