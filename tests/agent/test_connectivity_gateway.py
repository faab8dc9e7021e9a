"""The default-gateway check: route parsers on realistic outputs of the three
systems (Windows in English and French), the ping verdict, and the address never
leaving the module."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from agent.gateway import (
    DEFAULT_ROUTE,
    GatewayCheck,
    parse_ping,
    parse_proc_net_route,
    parse_route_get_default,
    parse_route_print,
    ping_argv,
)

# A laptop with Wi-Fi and a docked Ethernet link (lower metric), and Docker.
# Addresses are in the host's byte order: 0100000A is 10.0.0.1 on x86 and ARM.
PROC_NET_ROUTE = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"
    "                                                       \n"
    "wlp0s20f3\t00000000\tFE01A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0"
    "                                                                             \n"
    "enp0s31f6\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0"
    "                                                                             \n"
    "docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0"
    "                                                                               \n"
    "wlp0s20f3\t0001A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0"
    "                                                                             \n"
)
PROC_NET_ROUTE_NO_DEFAULT = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "wlp0s20f3\t0001A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0\n"
    # A default route that is not up does not count.
    "wlp0s20f3\t00000000\tFE01A8C0\t0002\t0\t0\t600\t00000000\t0\t0\t0\n"
)

MACOS_ROUTE_GET_DEFAULT = """\
   route to: default
destination: default
       mask: default
    gateway: 10.34.12.1
  interface: en0
      flags: <UP,GATEWAY,DONE,STATIC,PRCLONING,GLOBAL>
 recvpipe  sendpipe  ssthresh  rtt,msec    rttvar  hopcount      mtu     expire
       0         0         0         0         0         0      1500         0
"""
MACOS_ROUTE_GET_DEFAULT_VPN = """\
   route to: default
destination: default
       mask: default
  interface: utun3
      flags: <UP,DONE,STATIC,PRCLONING,GLOBAL>
 recvpipe  sendpipe  ssthresh  rtt,msec    rttvar  hopcount      mtu     expire
       0         0         0         0         0         0      1380         0
"""

WINDOWS_ROUTE_PRINT_EN = """\
===========================================================================
Interface List
 17...d4 3b 04 a1 2c 5e ......Intel(R) Wi-Fi 6 AX201 160MHz
 12...00 ff 6c e5 1d 55 ......TAP-Windows Adapter V9
  1...........................Software Loopback Interface 1
===========================================================================

IPv4 Route Table
===========================================================================
Active Routes:
Network Destination        Netmask          Gateway       Interface  Metric
          0.0.0.0          0.0.0.0       10.34.12.1     10.34.13.87     35
===========================================================================
Persistent Routes:
  Network Address          Netmask  Gateway Address  Metric
          0.0.0.0          0.0.0.0      192.168.0.1  Default
===========================================================================

IPv6 Route Table
===========================================================================
Active Routes:
  None
Persistent Routes:
  None
"""
# French Windows 10, Ethernet and Wi-Fi both up (as printed by `route print 0.0.0.0`;
# the layout follows real outputs posted by French users).
WINDOWS_ROUTE_PRINT_FR = """\
===========================================================================
Liste d'Interfaces
 20...48 9e bd dc 02 8e ......Realtek PCIe GbE Family Controller
  5...00 e9 3a 7b ab c5 ......Realtek RTL8723DE 802.11b/g/n PCIe Adapter
  1...........................Software Loopback Interface 1
===========================================================================

IPv4 Table de routage
===========================================================================
Itinéraires actifs :
Destination réseau    Masque réseau  Adr. passerelle   Adr. interface Métrique
          0.0.0.0          0.0.0.0     10.33.79.254     10.33.76.229     50
          0.0.0.0          0.0.0.0       172.16.8.1      172.16.9.40     25
===========================================================================
Itinéraires persistants :
  Aucun

IPv6 Table de routage
===========================================================================
Itinéraires actifs :
  Aucun
Itinéraires persistants :
  Aucun
"""
WINDOWS_ROUTE_PRINT_FR_NO_DEFAULT = """\
IPv4 Table de routage
===========================================================================
Itinéraires actifs :
  Aucun
===========================================================================
Itinéraires persistants :
  Adresse réseau    Masque réseau  Adresse passerelle Métrique
          0.0.0.0          0.0.0.0      192.168.1.1  Par défaut
===========================================================================
"""

LINUX_PING_REPLY = """\
PING 10.0.0.1 (10.0.0.1) 56(84) bytes of data.
64 bytes from 10.0.0.1: icmp_seq=1 ttl=64 time=2.31 ms

--- 10.0.0.1 ping statistics ---
1 packets transmitted, 1 received, 0% packet loss, time 0ms
rtt min/avg/max/mdev = 2.310/2.310/2.310/0.000 ms
"""
LINUX_PING_LOST = """\
PING 10.0.0.1 (10.0.0.1) 56(84) bytes of data.

--- 10.0.0.1 ping statistics ---
1 packets transmitted, 0 received, 100% packet loss, time 0ms
"""
MACOS_PING_LOST = """\
PING 10.34.12.1 (10.34.12.1): 56 data bytes

--- 10.34.12.1 ping statistics ---
1 packets transmitted, 0 packets received, 100.0% packet loss
"""
WINDOWS_PING_REPLY_FR = """\

Envoi d'une requête 'Ping'  10.34.12.1 avec 32 octets de données :
Réponse de 10.34.12.1 : octets=32 temps=2 ms TTL=255

Statistiques Ping pour 10.34.12.1:
    Paquets : envoyés = 1, reçus = 1, perdus = 0 (perte 0%),
"""
WINDOWS_PING_UNREACHABLE_FR = """\

Envoi d'une requête 'Ping'  10.34.12.1 avec 32 octets de données :
Réponse de 10.34.13.87 : Impossible de joindre l'hôte de destination.

Statistiques Ping pour 10.34.12.1:
    Paquets : envoyés = 1, reçus = 1, perdus = 0 (perte 0%),
"""
WINDOWS_PING_TIMEOUT_EN = """\

Pinging 10.34.12.1 with 32 bytes of data:
Request timed out.

Ping statistics for 10.34.12.1:
    Packets: Sent = 1, Received = 0, Lost = 1 (100% loss),
"""


@pytest.mark.skipif(sys.byteorder != "little", reason="the sample is a little-endian host's")
def test_linux_default_gateway_is_the_lowest_metric_up_route() -> None:
    assert parse_proc_net_route(PROC_NET_ROUTE) == "10.0.0.1"
    assert parse_proc_net_route(PROC_NET_ROUTE.replace("\t100\t", "\t900\t")) == "192.168.1.254"
    assert parse_proc_net_route(PROC_NET_ROUTE_NO_DEFAULT) is None
    assert parse_proc_net_route("") is None


def test_macos_default_gateway() -> None:
    assert parse_route_get_default(MACOS_ROUTE_GET_DEFAULT) == "10.34.12.1"
    assert parse_route_get_default(MACOS_ROUTE_GET_DEFAULT_VPN) is None
    assert parse_route_get_default("route: writing to routing socket: not in table\n") is None


def test_windows_default_gateway_in_english_and_french() -> None:
    assert parse_route_print(WINDOWS_ROUTE_PRINT_EN) == "10.34.12.1"  # not the persistent one
    assert parse_route_print(WINDOWS_ROUTE_PRINT_FR) == "172.16.8.1"  # lowest metric
    assert parse_route_print(WINDOWS_ROUTE_PRINT_FR_NO_DEFAULT) is None
    # CRLF line ends and an OEM code page decoded with replacement characters.
    crlf = WINDOWS_ROUTE_PRINT_FR.replace("\n", "\r\n").replace("é", "\ufffd")
    assert parse_route_print(crlf) == "172.16.8.1"


@pytest.mark.parametrize(
    ("platform", "code", "text", "verdict"),
    [
        ("linux", 0, LINUX_PING_REPLY, True),
        ("linux", 1, LINUX_PING_LOST, False),
        ("linux", 2, "ping: socket: Operation not permitted\n", None),
        ("darwin", 0, LINUX_PING_REPLY.replace("icmp_seq=1", "icmp_seq=0"), True),
        ("darwin", 2, MACOS_PING_LOST, False),
        ("darwin", 68, "ping: cannot resolve x: Unknown host\n", None),
        ("win32", 0, WINDOWS_PING_REPLY_FR, True),
        ("win32", 0, WINDOWS_PING_UNREACHABLE_FR, False),  # exit 0, yet no answer
        ("win32", 1, WINDOWS_PING_TIMEOUT_EN, False),
    ],
)
def test_ping_verdict(platform: str, code: int, text: str, verdict: bool | None) -> None:
    assert parse_ping(platform, code, text) is verdict


def test_ping_asks_one_numeric_echo_with_a_one_second_timeout() -> None:
    assert ping_argv("linux", "10.0.0.1") == ["ping", "-n", "-c", "1", "-W", "1", "10.0.0.1"]
    assert ping_argv("darwin", "10.0.0.1")[1:] == ["-n", "-c", "1", "-t", "1", "10.0.0.1"]
    win = ping_argv("win32", "10.0.0.1")
    assert win[0].upper().endswith("PING.EXE") and win[1:] == ["-n", "1", "-w", "1000", "10.0.0.1"]


class Runner:
    def __init__(self, answers: dict[str, tuple[int, str] | None]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> tuple[int, str] | None:
        self.calls.append(argv)
        name = Path(argv[0].replace("\\", "/")).name.lower()
        return self.answers.get(name)


@pytest.mark.skipif(sys.byteorder != "little", reason="the sample is a little-endian host's")
def test_linux_check_reads_proc_and_pings_the_gateway(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "proc" / "net").mkdir(parents=True)
    (tmp_path / "proc" / "net" / "route").write_text(PROC_NET_ROUTE)
    runner = Runner({"ping": (0, LINUX_PING_REPLY)})
    with caplog.at_level(logging.DEBUG):
        assert GatewayCheck("linux", runner, tmp_path).check() is True
    assert runner.calls == [["ping", "-n", "-c", "1", "-W", "1", "10.0.0.1"]]
    assert "10.0.0.1" not in caplog.text  # the address is never logged
    assert GatewayCheck("linux", Runner({}), tmp_path).check() is None  # no ping here
    assert GatewayCheck("linux", runner, tmp_path / "nowhere").check() is None


def test_windows_and_macos_checks_run_route_then_ping() -> None:
    win = Runner(
        {"route.exe": (0, WINDOWS_ROUTE_PRINT_FR), "ping.exe": (1, WINDOWS_PING_TIMEOUT_EN)}
    )
    assert GatewayCheck("win32", win).check() is False
    assert win.calls[0][1:] == ["print", DEFAULT_ROUTE] and win.calls[1][-1] == "172.16.8.1"
    mac = Runner({"route": (0, MACOS_ROUTE_GET_DEFAULT), "ping": (0, LINUX_PING_REPLY)})
    assert GatewayCheck("darwin", mac).check() is True
    assert mac.calls[0] == ["/sbin/route", "-n", "get", "default"]
    assert mac.calls[1][0] == "/sbin/ping" and mac.calls[1][-1] == "10.34.12.1"
    no_route = Runner({"route": (1, "route: writing to routing socket: not in table\n")})
    assert GatewayCheck("darwin", no_route).check() is None
    assert len(no_route.calls) == 1  # nothing to ping


def test_the_live_check_answers_without_raising() -> None:
    """On this machine, for real: a verdict or "could not tell" (no `ping`)."""
    assert GatewayCheck().check() in (True, False, None)
