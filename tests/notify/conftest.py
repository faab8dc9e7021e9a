"""Real servers for the delivery tests, each on a free loopback port and stopped
after: an aiosmtpd SMTP server process writing to a Maildir, and an HTTP server
(http.server in a thread) recording webhook requests. Mosquitto is the session
`stack` fixture from tests/conftest.py."""

from __future__ import annotations

import json
import mailbox
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lordi.stack import free_port

START_TIMEOUT_S = 15.0


@dataclass
class SmtpServer:
    port: int
    maildir: Path
    proc: subprocess.Popen[bytes]

    def messages(self) -> list[Message]:
        return [mailbox.Maildir(self.maildir, create=False).get_message(k) for k in self._keys()]

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
def running_smtp(root: Path, port: int | None = None) -> Iterator[SmtpServer]:
    """`python -m aiosmtpd` with its Maildir handler: a real SMTP server process on
    `port` (a free one by default), stopped on exit."""
    root.mkdir(parents=True, exist_ok=True)
    maildir = root / "Maildir"
    port = port or free_port()
    log = (root / "aiosmtpd.log").open("ab")
    cmd = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}"]
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


@pytest.fixture(scope="session")
def smtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    with running_smtp(tmp_path_factory.mktemp("smtp")) as server:
        yield server


@dataclass
class WebhookServer:
    port: int
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200  # what the server answers; a test sets 500 to see a failure
    received: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _handler(server_state: WebhookServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            server_state.requests.append(
                {
                    "path": self.path,
                    "content_type": self.headers.get("Content-Type"),
                    "raw": raw,
                    "json": json.loads(raw),
                }
            )
            self.send_response(server_state.status)
            self.end_headers()
            server_state.received.set()

        def log_message(self, format: str, *args: Any) -> None:
            return  # keep pytest output quiet

    return Handler


@pytest.fixture
def webhook_server() -> Iterator[WebhookServer]:
    state = WebhookServer(port=free_port())
    httpd = ThreadingHTTPServer(("127.0.0.1", state.port), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
