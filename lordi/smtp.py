"""A real SMTP server for tests and the evaluation: `python -m aiosmtpd` with its
Maildir handler, on a free loopback port (aiosmtpd is a development dependency)."""

from __future__ import annotations

import mailbox
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from lordi.stack import free_port

START_TIMEOUT_S = 15.0


@dataclass
class SmtpServer:
    port: int
    maildir: Path
    proc: subprocess.Popen[bytes]

    def messages(self) -> list[Message]:
        box = mailbox.Maildir(self.maildir, create=False)
        return [box.get_message(k) for k in box.keys()]  # noqa: SIM118 - Maildir has no iterkeys view

    def _keys(self) -> list[str]:
        return list(mailbox.Maildir(self.maildir, create=False).keys())

    def wait_for(self, count: int, timeout_s: float) -> list[Message]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(self._keys()) >= count:
                return self.messages()
            time.sleep(0.02)
        return self.messages()

    def clear(self) -> None:
        mailbox.Maildir(self.maildir, create=False).clear()


def _smtp_ready(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=1) as client:
            return client.noop()[0] == 250
    except OSError:
        return False


@contextmanager
def running_smtp(
    root: Path, port: int | None = None, tls: tuple[Path, Path] | None = None
) -> Iterator[SmtpServer]:
    """A real SMTP server process on `port` (a free one by default), stopped on exit;
    `tls` (certificate, key): it offers and requires STARTTLS."""
    root.mkdir(parents=True, exist_ok=True)
    maildir = root / "Maildir"
    port = port or free_port()
    log = (root / "aiosmtpd.log").open("ab")
    cmd = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}"]
    if tls is not None:
        cmd += ["--tlscert", str(tls[0]), "--tlskey", str(tls[1])]
    cmd += ["-c", "aiosmtpd.handlers.Mailbox", str(maildir)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _smtp_ready(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"aiosmtpd did not start: {(root / 'aiosmtpd.log').read_text()}")
            time.sleep(0.05)
        yield SmtpServer(port, maildir, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
