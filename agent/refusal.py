"""One log line for a broker that refuses the agent or cannot be reached: which
broker, which user (the laptop's `<UAI>/<device>`), why, and what to do.

A sibling of collector/brokerfail.py, kept apart: the agent imports nothing of the
collector (it runs on the laptops with paho-mqtt and psutil only).
"""

from __future__ import annotations

import socket
import ssl

from paho.mqtt.reasoncodes import ReasonCode

from agent.config import MqttConfig
from agent.reach import FailureKind

# CONNACK reason codes of a refused login: 134 "Bad user name or password",
# 135 "Not authorized" (what Mosquitto 2.0 answers to a wrong password).
LOGIN_REFUSED = frozenset({134, 135})
_HOSTNAME_MISMATCH = 62  # OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH


def refused(cfg: MqttConfig, reason: ReasonCode) -> str:
    """The broker answered the CONNECT with a failure reason code."""
    where = f"{cfg.host}:{cfg.port}"
    if reason.value not in LOGIN_REFUSED:
        return f"broker {where} refused user {cfg.username!r}: {reason}"
    if not cfg.username:
        return (
            f"broker {where} refused a connection without a user name: {reason}: set "
            "mqtt.username and mqtt.password (the agent.toml written by `lordi provision "
            "device` has them)"
        )
    return (
        f"broker {where} refused user {cfg.username!r}: {reason}: check mqtt.username "
        "and mqtt.password in the agent's configuration against the agent.toml written by "
        "`lordi provision device` (a revoked laptop needs to be enrolled again; one that "
        "enrolled itself does so when its enrol.identity_file is deleted)"
    )


def unreachable(cfg: MqttConfig, exc: BaseException | None) -> tuple[bool, str]:
    """(whether the configuration is at fault, the line) for a failed connect: a
    certificate that does not verify is, a network that is down is not."""
    where = f"{cfg.host}:{cfg.port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        against = (
            f"the CA file {cfg.ca_file} (mqtt.ca_file)"
            if cfg.ca_file
            else "the system's trust store (mqtt.ca_file is not set)"
        )
        fix = (
            "set mqtt.host to a name the broker's certificate carries"
            if exc.verify_code == _HOSTNAME_MISMATCH
            else "set mqtt.ca_file to the CA certificate that signed the broker's certificate"
        )
        why = exc.verify_message or str(exc)
        return True, (
            f"broker {where}: TLS certificate verification failed against {against}: {why}: {fix}"
        )
    if isinstance(exc, ssl.SSLError):
        return True, (
            f"broker {where}: TLS handshake failed ({exc.reason or exc}): is mqtt.port the "
            f"broker's TLS listener? (mqtt.tls = {str(cfg.tls).lower()})"
        )
    if isinstance(exc, OSError) and exc.strerror:
        return False, f"broker {where} unreachable ({exc.strerror})"
    return False, f"broker {where} unreachable ({exc})"


def failure_kind(exc: BaseException | None) -> FailureKind:
    """The cause of a failed connection attempt, as the `connectivity` block names it.

    `connect()` resolves the name, opens TCP, then does the TLS handshake (paho 2.x
    does it there, with the socket's connect timeout), so one exception says which
    step failed. A TLS failure on port 8883 is most often something else answering
    it (a captive portal, an intercepting proxy) with a certificate our CA did not
    sign; a reset or refusal before TLS is the network or the broker's host."""
    if isinstance(exc, socket.gaierror):
        return "dns"
    if isinstance(exc, ssl.SSLError):  # incl. certificate verification, EOF in handshake
        return "tls"
    if isinstance(exc, TimeoutError):  # TCP connect or TLS handshake timed out
        return "timeout"
    return "connect"  # refused, unreachable host or network, reset, anything else
