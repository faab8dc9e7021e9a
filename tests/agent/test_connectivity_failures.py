"""Failed connection attempts named by their cause (`agent.refusal.failure_kind`),
from the exceptions real sockets raise: an unknown name, a closed port, a captive
portal answering the TLS port with its own certificate or with HTTP, silence."""

from __future__ import annotations

import contextlib
import errno
import socket
import ssl
import threading
from pathlib import Path
from typing import Literal

import pytest

from agent.refusal import failure_kind
from lordi.stack import free_port
from tests.secure_broker import make_certs

Mode = Literal["tls", "http", "silent"]


class TlsImpostor:
    """Something else answering the broker's port, as a captive portal or an
    intercepting proxy does: a TLS server whose certificate comes from its own CA
    (`tls`), a plain HTTP redirect (`http`), or a peer that accepts and says nothing
    (`silent`)."""

    def __init__(self, folder: Path, mode: Mode = "tls") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        make_certs(folder)  # a CA of its own: the agent's CA never signed it
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(folder / "server.crt", folder / "server.key")
        self.mode = mode
        self.port = free_port()
        self.sock = socket.create_server(("127.0.0.1", self.port))
        self.sock.settimeout(0.2)
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        if self.mode == "silent":
            self.held.append(conn)
            return
        with contextlib.suppress(OSError), conn:
            if self.mode == "http":
                conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: http://portal.example/\r\n\r\n")
                return
            conn.settimeout(5)
            with self.ctx.wrap_socket(conn, server_side=True):
                pass  # the client gives up during the handshake

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(5)
        for conn in self.held:
            conn.close()


def _error(call: object) -> BaseException:
    assert callable(call)
    try:
        call()
    except BaseException as exc:  # the exception is the result
        return exc
    raise AssertionError("no error")


def _tls_connect(port: int, ca: Path, timeout_s: float = 5.0) -> None:
    ctx = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1"),
    ):
        pass


@pytest.fixture(scope="module")
def our_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("our-ca")
    make_certs(folder)
    return folder / "ca.crt"


def test_an_unknown_name_is_dns() -> None:
    exc = _error(lambda: socket.getaddrinfo("lordi-broker.invalid", 8883))
    assert isinstance(exc, socket.gaierror) and failure_kind(exc) == "dns"


def test_a_closed_port_or_an_unreachable_network_is_connect() -> None:
    exc = _error(lambda: socket.create_connection(("127.0.0.1", free_port()), timeout=2))
    assert isinstance(exc, ConnectionRefusedError) and failure_kind(exc) == "connect"
    assert failure_kind(OSError(errno.ENETUNREACH, "Network is unreachable")) == "connect"
    assert failure_kind(OSError(errno.EHOSTUNREACH, "No route to host")) == "connect"
    assert failure_kind(None) == "connect"


def test_a_certificate_from_another_ca_is_tls(tmp_path: Path, our_ca: Path) -> None:
    portal = TlsImpostor(tmp_path / "portal", "tls")
    try:
        exc = _error(lambda: _tls_connect(portal.port, our_ca))
    finally:
        portal.close()
    assert isinstance(exc, ssl.SSLCertVerificationError) and failure_kind(exc) == "tls"


def test_http_on_the_tls_port_is_tls(tmp_path: Path, our_ca: Path) -> None:
    portal = TlsImpostor(tmp_path / "portal", "http")
    try:
        exc = _error(lambda: _tls_connect(portal.port, our_ca))
    finally:
        portal.close()
    assert isinstance(exc, ssl.SSLError) and failure_kind(exc) == "tls"


def test_silence_during_the_handshake_is_timeout(tmp_path: Path, our_ca: Path) -> None:
    portal = TlsImpostor(tmp_path / "portal", "silent")
    try:
        exc = _error(lambda: _tls_connect(portal.port, our_ca, timeout_s=0.3))
    finally:
        portal.close()
    assert isinstance(exc, TimeoutError) and failure_kind(exc) == "timeout"
