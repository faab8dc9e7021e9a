"""Alert e-mail over one reused SMTP connection (the standard library's smtplib).

Each e-mail used to open its own connection and build its own TLS context through
apprise; `SSLContext.load_default_certs` alone took 67 % of the collector's busy
time in an alert burst (issue 19). Here, per relay (host, port, TLS mode, user):
- one `ssl.SSLContext`, built once (the system's trust store, or `ca_file`);
- one SMTP connection, kept open between e-mails and reused; closed and opened
  again when it has been idle for `IDLE_S` (relays drop idle clients, Postfix after
  300 s) or when the relay closed it: a send on a connection that was reused and
  fails is tried once more on a fresh one.
Every recipient gets its own message (To: that address), as before. A failure is a
one-line reason naming the relay; the password never appears in it.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from email.charset import QP, Charset
from email.header import Header
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path

from collector.notify.settings import SmtpSettings

IDLE_S = 60.0  # a connection unused this long is closed before the next e-mail
# UTF-8 bodies in quoted-printable, not base64: the text stays readable in the raw
# message (ids, asset tags: what a technician or a mail filter searches for).
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP

_Key = tuple[str, int, str, str | None, str | None]


def _key(smtp: SmtpSettings) -> _Key:
    ca = str(smtp.ca_file) if smtp.ca_file else None
    return (smtp.host, smtp.port, smtp.tls, smtp.user, ca)


def message(smtp: SmtpSettings, to: str, subject: str, body: str) -> MIMEText:
    """text/plain UTF-8; Subject and the sender's name as RFC 2047 encoded words
    (`Header` keeps the spaces inside them: the modern folder put some between two
    encoded words, where mail readers drop them)."""
    msg = MIMEText(body, "plain", _UTF8_QP)  # type: ignore[arg-type]  # a Charset works
    msg["From"] = formataddr((smtp.from_name, smtp.from_address), charset="utf-8")
    msg["To"] = to
    msg["Subject"] = Header(subject, "utf-8").encode()
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=smtp.from_address.rsplit("@", 1)[-1])
    return msg


class SmtpSender:
    """Thread-safe; one connection and one TLS context per relay."""

    def __init__(self, idle_s: float = IDLE_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_s, self._clock = idle_s, clock
        self._lock = threading.Lock()
        self._connections: dict[_Key, tuple[smtplib.SMTP, float]] = {}
        self._contexts: dict[str | None, ssl.SSLContext] = {}
        self.opened = 0  # connections opened so far (figures, tests)

    def send(self, smtp: SmtpSettings, to: Sequence[str], subject: str, body: str) -> str | None:
        """One message per recipient; None once all were accepted, else the reason."""
        password = smtp.password.get_secret_value() if smtp.password else ""
        with self._lock:
            for address in to:
                try:
                    self._send(smtp, message(smtp, address, subject, body))
                except (smtplib.SMTPException, OSError, ValueError) as exc:
                    reason = f"SMTP {smtp.host}:{smtp.port}: {_reason(exc)}"
                    return reason.replace(password, "***") if password else reason
        return None

    def close(self) -> None:
        with self._lock:
            for key in list(self._connections):
                self._drop(key, polite=True)

    def _send(self, smtp: SmtpSettings, msg: MIMEText) -> None:
        key = _key(smtp)
        held = self._connections.get(key)
        if held is not None and self._clock() - held[1] > self.idle_s:
            self._drop(key, polite=True)
            held = None
        if held is not None:
            try:
                held[0].send_message(msg)
                self._connections[key] = (held[0], self._clock())
                return
            except (smtplib.SMTPServerDisconnected, smtplib.SMTPSenderRefused, OSError):
                self._drop(key)  # closed by the relay meanwhile: once more, fresh
        conn = self._open(smtp)
        try:
            conn.send_message(msg)
        except BaseException:
            _close(conn, polite=False)
            raise
        self._connections[key] = (conn, self._clock())

    def _open(self, smtp: SmtpSettings) -> smtplib.SMTP:
        if smtp.tls == "ssl":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout_s, context=self._context(smtp.ca_file)
            )
        else:
            conn = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s)
        try:
            if smtp.tls == "starttls":
                conn.starttls(context=self._context(smtp.ca_file))
            if smtp.user:
                password = smtp.password.get_secret_value() if smtp.password else ""
                conn.login(smtp.user, password)
        except BaseException:
            _close(conn, polite=False)
            raise
        self.opened += 1
        return conn

    def _context(self, ca_file: Path | None) -> ssl.SSLContext:
        name = str(ca_file) if ca_file else None
        context = self._contexts.get(name)
        if context is None:
            context = ssl.create_default_context(cafile=name)
            self._contexts[name] = context
        return context

    def _drop(self, key: _Key, polite: bool = False) -> None:
        held = self._connections.pop(key, None)
        if held is not None:
            _close(held[0], polite)


def _close(conn: smtplib.SMTP, polite: bool) -> None:
    try:
        if polite:
            conn.quit()
        else:
            conn.close()
    except (smtplib.SMTPException, OSError):
        conn.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = ", ".join(f"{a} ({c} {m.decode(errors='replace')})"
                            for a, (c, m) in exc.recipients.items())  # fmt: skip
        return f"recipient refused: {refused}"
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
        return f"{exc.smtp_code} {text}".strip()
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message}); set smtp.ca_file"
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())
