"""Does the default gateway answer? The `gateway_ok` of the `connectivity` block.

When a laptop on the school's Wi-Fi cannot reach the broker, this tells the network
contractor where to look: a gateway that answers puts the fault beyond it (school
firewall, uplink, DNS, the broker), one that does not puts it on the Wi-Fi / LAN.
The service asks only while the broker is unreachable on a school network, once per
report at most (`agent.service`), so a connected laptop never runs it.

How, per system (thin readers, pure parsers):
- the default gateway: Linux reads `/proc/net/route` (no process); macOS runs
  `route -n get default`; Windows runs `route print 0.0.0.0`, whose table is read
  by its shape (columns of addresses and a metric), so the display language
  (English, French, ...) does not matter;
- the check: one ICMP echo with a 1 s timeout, through the system's `ping` (no
  privilege needed on any of the three). A router must answer echo requests
  (RFC 1812, 4.3.3.6), whereas the TCP ports a gateway listens on vary from one
  school's equipment to the next, and a firewall that drops a SYN on a closed port
  would read as "does not answer". "Answered" means an echo reply (a line with
  `ttl=`): Windows' `ping` exits 0 on "Destination host unreachable" too.

Privacy: the gateway's address is used here and forgotten: never logged, stored or
sent, and never written to a capture folder (this module does not go through
`agent.sources`). Only the boolean leaves the laptop.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

# (argv) -> (exit code, output text), or None when the command could not run.
Runner = Callable[[list[str]], tuple[int, str] | None]

COMMAND_TIMEOUT_S = 5.0
RTF_UP, RTF_GATEWAY = 0x1, 0x2  # linux/route.h
DEFAULT_ROUTE = "0.0.0.0"  # noqa: S104 - a route's destination and mask, not a bind


def _ipv4(text: str) -> str | None:
    """`text` as a usable unicast IPv4 address, else None (also keeps anything but an
    address away from the `ping` command line)."""
    try:
        addr = ipaddress.IPv4Address(text)
    except ValueError:
        return None
    if addr.is_unspecified or addr.is_multicast or addr.is_loopback:
        return None
    return str(addr)


def parse_proc_net_route(text: str) -> str | None:
    """Linux `/proc/net/route`: the default route's gateway with the lowest metric.
    Addresses are hexadecimal in the host's byte order (little-endian on x86/ARM):
    `0101A8C0` is 192.168.1.1."""
    best: tuple[int, str] | None = None
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8 or cols[1] != "00000000" or cols[7] != "00000000":
            continue
        try:
            flags, metric = int(cols[3], 16), int(cols[6])
            raw = int(cols[2], 16).to_bytes(4, sys.byteorder)
        except (ValueError, OverflowError):
            continue
        gateway = _ipv4(str(ipaddress.IPv4Address(raw)))
        usable = flags & (RTF_UP | RTF_GATEWAY) == RTF_UP | RTF_GATEWAY
        if usable and gateway and (best is None or metric < best[0]):
            best = (metric, gateway)
    return best[1] if best else None


def parse_route_get_default(text: str) -> str | None:
    """macOS `route -n get default`: the `gateway:` line (a VPN may show an
    interface, e.g. `utun3` or `link#14`, instead of an address: no gateway then)."""
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "gateway":
            return _ipv4(value.strip())
    return None


def parse_route_print(text: str) -> str | None:
    """Windows `route print`: among the active IPv4 routes, the default one (lines of
    five columns `0.0.0.0 0.0.0.0 <gateway> <interface> <metric>`) with the lowest
    metric. Headings are translated; the columns are not. Persistent routes (four
    columns) and on-link routes (no gateway address) do not qualify."""
    best: tuple[int, str] | None = None
    for line in text.splitlines():
        cols = line.split()
        if len(cols) != 5 or cols[0] != DEFAULT_ROUTE or cols[1] != DEFAULT_ROUTE:
            continue
        gateway = _ipv4(cols[2])
        if gateway is None or _ipv4(cols[3]) is None or not cols[4].isdigit():
            continue
        metric = int(cols[4])
        if best is None or metric < best[0]:
            best = (metric, gateway)
    return best[1] if best else None


# The exit code of a `ping` that sent its echo and got no reply; any other failure
# (no permission, bad option) means "could not tell".
NO_REPLY_EXIT = {"linux": 1, "darwin": 2, "win32": 1}


def parse_ping(platform: str, returncode: int, text: str) -> bool | None:
    """True: an echo reply came back; False: none did; None: `ping` itself failed.
    `ttl=` is on a reply line in every language (`64 bytes from ...: icmp_seq=1
    ttl=64`, `Réponse de ... : octets=32 temps<1ms TTL=64`) and on no other line;
    Windows exits 0 on "Destination host unreachable", so the code is not enough."""
    if "ttl=" in text.lower() and returncode == 0:
        return True
    if returncode == NO_REPLY_EXIT.get(platform, 1) or (platform == "win32" and returncode == 0):
        return False
    return None


def _system_tool(name: str) -> str:
    root = os.environ.get("SYSTEMROOT", r"C:\Windows")  # os.environ: upper case on Windows
    return str(Path(root) / "System32" / name)


def ping_argv(platform: str, address: str) -> list[str]:
    """One echo, numeric output (no reverse lookup on a network whose DNS may be
    down), 1 s to answer."""
    if platform == "win32":
        return [_system_tool("PING.EXE"), "-n", "1", "-w", "1000", address]
    if platform == "darwin":
        return ["/sbin/ping", "-n", "-c", "1", "-t", "1", address]
    return ["ping", "-n", "-c", "1", "-W", "1", address]


def run_command(argv: list[str]) -> tuple[int, str] | None:
    """The live runner: no console window on Windows, bounded time, text output."""
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("%s unavailable: %s", argv[0], exc)
        return None
    return done.returncode, done.stdout.decode("utf-8", errors="replace")


class GatewayCheck:
    """`check()`: True (answered), False (did not), None (could not tell: no default
    route, no `ping`). `root` and `runner` are injectable for tests."""

    def __init__(
        self, platform: str = sys.platform, runner: Runner = run_command, root: Path = Path("/")
    ) -> None:
        self.platform, self.runner, self.root = platform, runner, root

    def read_default_gateway(self) -> str | None:
        if self.platform == "win32":
            out = self.runner([_system_tool("ROUTE.EXE"), "print", DEFAULT_ROUTE])
            return parse_route_print(out[1]) if out else None
        if self.platform == "darwin":
            out = self.runner(["/sbin/route", "-n", "get", "default"])
            return parse_route_get_default(out[1]) if out and out[0] == 0 else None
        try:
            text = (self.root / "proc" / "net" / "route").read_text(encoding="ascii")
        except (OSError, UnicodeError):
            return None
        return parse_proc_net_route(text)

    def check(self) -> bool | None:
        gateway = self.read_default_gateway()
        if gateway is None:
            return None
        out = self.runner(ping_argv(self.platform, gateway))
        if out is None:
            return None
        ok = parse_ping(self.platform, *out)
        log.debug("default gateway answered: %s", ok)  # never its address
        return ok
