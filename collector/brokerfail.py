"""One line for an MQTT broker that refuses the collector or cannot be reached:
which broker, which user, why, and what to do about it.

Used for the collector's own connection (`[mqtt]`, collector/service.py) and for
the alert topic's publishes (collector/notify/mqtt_publish.py). Never a secret:
the password is not known here.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from paho.mqtt.reasoncodes import ReasonCode

# CONNACK reason codes of a refused login: 134 "Bad user name or password",
# 135 "Not authorized" (what Mosquitto 2.0 answers to a wrong password).
LOGIN_REFUSED = frozenset({134, 135})
# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH: the certificate is valid, for another name.
_HOSTNAME_MISMATCH = 62


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A broker connection as configured; `section` names where it is set."""

    host: str
    port: int
    user: str | None
    tls: bool
    ca_file: Path | None
    section: str  # e.g. "[mqtt]"

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def refused(ep: Endpoint, reason: ReasonCode) -> str:
    """The broker answered the CONNECT with a failure reason code."""
    if reason.value in LOGIN_REFUSED:
        if not ep.user:
            return (
                f"MQTT broker {ep.where} refused a connection without a user name: {reason}: "
                f"set username and password in {ep.section} (the broker takes no anonymous "
                "client)"
            )
        return (
            f"MQTT broker {ep.where} refused user {ep.user!r}: {reason}: check username and "
            f"password in {ep.section} against the broker's password file "
            f"(mosquitto_passwd <passwd file> {ep.user}, then reload the broker)"
        )
    who = f"user {ep.user!r}" if ep.user else "a connection without a user name"
    return f"MQTT broker {ep.where} refused {who}: {reason}"


def unreachable(ep: Endpoint, exc: BaseException | None) -> str:
    """The TCP connection or the TLS handshake failed (`exc` from paho's connect)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or str(exc)
        if ep.ca_file is not None:
            against = f"the CA file {ep.ca_file} (ca_file in {ep.section})"
        else:
            against = f"the system's trust store (no ca_file in {ep.section})"
        if exc.verify_code == _HOSTNAME_MISMATCH:
            fix = f"set host in {ep.section} to a name the broker's certificate carries"
        else:
            fix = (
                f"set ca_file in {ep.section} to the CA certificate that signed the broker's "
                "certificate"
            )
        return (
            f"MQTT broker {ep.where}: TLS certificate verification failed against {against}: "
            f"{why}: {fix}"
        )
    if isinstance(exc, ssl.SSLError):
        return (
            f"MQTT broker {ep.where}: TLS handshake failed ({exc.reason or exc}): is port "
            f"{ep.port} the broker's TLS listener? (tls = {str(ep.tls).lower()} in {ep.section})"
        )
    if isinstance(exc, OSError) and exc.strerror:
        return f"MQTT broker {ep.where} unreachable ({exc.strerror})"
    detail = f"{type(exc).__name__}: {exc}" if exc is not None else "no reason given"
    return f"MQTT broker {ep.where} unreachable ({detail})"


class Repeats:
    """Whether to log a connection problem again: a new one at once, the same one
    every `every_s` seconds (the collector retries every few seconds)."""

    def __init__(self, every_s: float = 300.0) -> None:
        self.every_s = every_s
        self.last: str | None = None
        self._at = 0.0
        self.count = 0  # consecutive failed attempts

    def worth_logging(self, text: str) -> bool:
        self.count += 1
        now = time.monotonic()
        if text != self.last or now - self._at >= self.every_s:
            self.last, self._at = text, now
            return True
        return False

    def clear(self) -> int:
        """Connected: forget the problem; the number of failed attempts before."""
        count, self.count, self.last = self.count, 0, None
        return count
