"""Real servers for the delivery tests, each on a free loopback port and stopped
after: an aiosmtpd SMTP server process writing to a Maildir, and an HTTP server
(http.server in a thread) recording webhook requests. Mosquitto is the session
`stack` fixture from tests/conftest.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from lordi.smtp import SmtpServer, running_smtp
from lordi.stack import free_port

__all__ = ["SmtpServer", "running_smtp"]


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
