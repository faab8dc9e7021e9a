"""Alert e-mail over one reused SMTP connection (collector/notify/smtp.py), against a
real SMTP server (aiosmtpd): plain and STARTTLS with a private CA, a relay restarted
between two e-mails, a relay that is not there."""

from __future__ import annotations

import smtplib
import ssl
from pathlib import Path
from typing import Any

import pytest

from collector.notify import channels
from collector.notify.settings import SmtpSettings
from collector.notify.smtp import SmtpSender
from lordi.pki import make_ca, make_server
from lordi.smtp import running_smtp
from lordi.stack import free_port

SUBJECT = "[Lordi 0340001A] Nouvelle alerte : batterie usée — ordinateur dev-1"


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many TCP connections smtplib opened and TLS contexts were built."""
    counts = {"connections": 0, "contexts": 0}
    connect, create = smtplib.SMTP.connect, ssl.create_default_context

    def counting_connect(self: smtplib.SMTP, *args: Any, **kwargs: Any) -> Any:
        counts["connections"] += 1
        return connect(self, *args, **kwargs)

    def counting_create(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        counts["contexts"] += 1
        return create(*args, **kwargs)

    monkeypatch.setattr(smtplib.SMTP, "connect", counting_connect)
    monkeypatch.setattr(ssl, "create_default_context", counting_create)
    return counts


def test_fifty_mails_one_connection(tmp_path: Path, counted: dict[str, int]) -> None:
    sender = SmtpSender()
    with running_smtp(tmp_path / "smtp") as server:
        counted["connections"] = 0  # the server's readiness check connected too
        smtp = SmtpSettings(port=server.port)
        for n in range(50):
            assert sender.send(smtp, [f"tech-{n}@lycee.example.org"], SUBJECT, f"mail {n}") is None
        mails = server.wait_for(50, 10)
        sender.close()
    assert len(mails) == 50
    assert counted["connections"] == 1 and sender.opened == 1
    assert {m["To"] for m in mails} == {f"tech-{n}@lycee.example.org" for n in range(50)}
    assert mails[0]["From"] is not None and "lordi-alertes@example.org" in mails[0]["From"]


def test_starttls_with_a_private_ca_builds_one_context(
    tmp_path: Path, counted: dict[str, int]
) -> None:
    ca_key, ca, key, cert = (tmp_path / n for n in ("ca.key", "ca.crt", "relay.key", "relay.crt"))
    make_ca(ca_key, ca, "Relay test CA")
    make_server(ca_key, ca, key, cert, ["127.0.0.1", "localhost"])
    sender = SmtpSender()
    with running_smtp(tmp_path / "smtp", tls=(cert, key)) as server:
        counted["connections"] = 0  # the server's readiness check connected too
        smtp = SmtpSettings(port=server.port, tls="starttls", ca_file=ca)
        for n in range(20):
            assert sender.send(smtp, ["tech@lycee.example.org"], SUBJECT, f"mail {n}") is None
        assert len(server.wait_for(20, 10)) == 20
        # Without the CA, the relay's certificate is not trusted: said in one line.
        untrusted = SmtpSender().send(
            SmtpSettings(port=server.port, tls="starttls"), ["t@x.example.org"], SUBJECT, "x"
        )
        sender.close()
    assert counted["contexts"] == 2  # one per sender here: the trusted one was reused
    assert sender.opened == 1 and counted["connections"] == 2
    assert untrusted is not None and "TLS certificate not trusted" in untrusted
    assert untrusted.startswith(f"SMTP 127.0.0.1:{server.port}: ")


def test_a_relay_restarted_between_two_mails_is_reconnected(
    tmp_path: Path, counted: dict[str, int]
) -> None:
    sender = SmtpSender()
    port = free_port()
    with running_smtp(tmp_path / "one", port=port) as first:
        smtp = SmtpSettings(port=first.port)
        assert sender.send(smtp, ["a@lycee.example.org"], SUBJECT, "before") is None
        assert len(first.wait_for(1, 5)) == 1
    with running_smtp(tmp_path / "two", port=port) as second:
        assert sender.send(smtp, ["a@lycee.example.org"], SUBJECT, "after") is None
        assert len(second.wait_for(1, 5)) == 1
        sender.close()
    assert sender.opened == 2  # the stale connection was dropped, the mail resent once


def test_an_idle_connection_is_replaced(tmp_path: Path) -> None:
    now = [0.0]
    sender = SmtpSender(idle_s=60, clock=lambda: now[0])
    with running_smtp(tmp_path / "smtp") as server:
        smtp = SmtpSettings(port=server.port)
        assert sender.send(smtp, ["a@lycee.example.org"], SUBJECT, "1") is None
        now[0] = 30.0
        assert sender.send(smtp, ["a@lycee.example.org"], SUBJECT, "2") is None
        assert sender.opened == 1
        now[0] = 100.0  # idle 70 s > 60
        assert sender.send(smtp, ["a@lycee.example.org"], SUBJECT, "3") is None
        assert len(server.wait_for(3, 5)) == 3
        sender.close()
    assert sender.opened == 2


def test_no_relay_is_one_line_naming_it_without_the_password() -> None:
    port = free_port()  # nothing listens there
    smtp = SmtpSettings(port=port, user="lordi", password="s3cret-relay-pw")  # type: ignore[arg-type]
    reason = channels.send_email(smtp, ["a@lycee.example.org"], SUBJECT, "x")
    assert reason is not None and reason.startswith(f"SMTP 127.0.0.1:{port}: ")
    assert "\n" not in reason and "s3cret-relay-pw" not in reason
    assert "refused" in reason.lower()


def test_the_benchmark_sends_through_both_paths(tmp_path: Path) -> None:
    from lordi.bench.smtp import measure  # noqa: PLC0415

    result = measure(5, tmp_path)
    reused, apprise = result["reused_plain"], result["apprise_plain"]
    assert isinstance(reused, dict) and isinstance(apprise, dict)
    assert reused["failed"] == apprise["failed"] == 0 and reused["connections"] == 1
    assert result["received_plain"] == 10 and result["received_starttls"] == 5
    assert reused["cpu_ms_per_mail"] > 0 and apprise["cpu_ms_per_mail"] > 0
