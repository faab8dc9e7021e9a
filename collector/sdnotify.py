"""systemd's readiness and watchdog protocol (sd_notify), without a dependency.

Under `Type=notify` with `WatchdogSec=`, systemd passes `NOTIFY_SOCKET` and
`WATCHDOG_USEC`; the collector says READY=1 once its loops are started (the broker
connection is made in the background and retried), then WATCHDOG=1 at
half the watchdog period only while every loop runs (`Collector.stalled()` is
None), so a stuck collector is restarted by systemd. Outside systemd (no
`NOTIFY_SOCKET`) every call does nothing.
"""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send one state line ("READY=1", "WATCHDOG=1", "STOPPING=1"); False when not
    under systemd or when the socket refuses it."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True


def watchdog_period_s() -> float | None:
    """Half the watchdog timeout systemd asked for (None: no watchdog)."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000
