"""The lines for a refused or failed broker connection, in the cases the real-broker
tests (test_broker_refusals.py, tests/notify/test_alert_topic_tls.py) do not reach:
a host name the certificate does not carry, no CA file, no user name, a refusal
that is not about the login; and how often the same problem is logged again."""

from __future__ import annotations

import ssl
from pathlib import Path

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from collector.brokerfail import Endpoint, Repeats, refused, unreachable

EP = Endpoint("mqtt.lordi.example", 8883, "collector-1", True, Path("/etc/lordi/ca.crt"), "[mqtt]")


def _verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    exc.verify_code, exc.verify_message = code, message
    return exc


def test_a_host_name_the_certificate_does_not_carry() -> None:
    exc = _verify_error(62, "Hostname mismatch, certificate is not valid for 'mqtt.lordi.example'.")
    assert unreachable(EP, exc) == (
        "MQTT broker mqtt.lordi.example:8883: TLS certificate verification failed against the "
        "CA file /etc/lordi/ca.crt (ca_file in [mqtt]): Hostname mismatch, certificate is not "
        "valid for 'mqtt.lordi.example'.: set host in [mqtt] to a name the broker's certificate "
        "carries"
    )


def test_without_a_ca_file_the_system_trust_store_is_named() -> None:
    ep = Endpoint("mqtt.lordi.example", 8883, "collector-1", True, None, "[mqtt]")
    exc = _verify_error(20, "unable to get local issuer certificate")
    assert unreachable(ep, exc) == (
        "MQTT broker mqtt.lordi.example:8883: TLS certificate verification failed against the "
        "system's trust store (no ca_file in [mqtt]): unable to get local issuer certificate: "
        "set ca_file in [mqtt] to the CA certificate that signed the broker's certificate"
    )


def test_a_closed_port_is_unreachable() -> None:
    assert unreachable(EP, ConnectionRefusedError(111, "Connection refused")) == (
        "MQTT broker mqtt.lordi.example:8883 unreachable (Connection refused)"
    )


def test_no_user_name_says_to_set_one() -> None:
    ep = Endpoint("127.0.0.1", 1883, None, False, None, "[mqtt]")
    assert refused(ep, ReasonCode(PacketTypes.CONNACK, identifier=135)) == (
        "MQTT broker 127.0.0.1:1883 refused a connection without a user name: Not authorized: "
        "set username and password in [mqtt] (the broker takes no anonymous client)"
    )


def test_a_refusal_that_is_not_about_the_login_is_named_as_is() -> None:
    busy = ReasonCode(PacketTypes.CONNACK, identifier=137)
    assert refused(EP, busy) == (
        "MQTT broker mqtt.lordi.example:8883 refused user 'collector-1': Server busy"
    )


def test_the_same_problem_is_logged_again_only_after_the_interval() -> None:
    repeats = Repeats(every_s=3600)
    assert repeats.worth_logging("refused")
    assert not repeats.worth_logging("refused")
    assert repeats.worth_logging("unreachable")  # a new problem: at once
    assert repeats.clear() == 3  # connected: three failed attempts before
    assert repeats.worth_logging("refused")  # after a success: at once again
