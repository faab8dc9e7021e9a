"""What a running process costs, read from /proc (Linux): memory, CPU, wake-ups."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcSample:
    rss_kb: int
    hwm_kb: int
    cpu_s: float  # user + system, from schedstat (nanoseconds), all threads
    switches: int  # voluntary context switches of all threads


def _status(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _kb(value: str) -> int:
    return int(value.split(maxsplit=1)[0]) if value else 0


def read(pid: int) -> ProcSample:
    """A snapshot of `pid` and its threads. Children (e.g. `iw`) are not included
    while they run; their CPU is added to cutime/cstime once reaped."""
    base = Path(f"/proc/{pid}")
    status = _status(base / "status")
    fields = (base / "stat").read_text().rsplit(")", 1)[1].split()
    # cutime, cstime (fields 16-17 of stat): CPU of reaped children such as `iw`.
    children_s = sum(int(f) for f in fields[13:15]) / TICKS_PER_S
    switches = 0
    cpu_ns = 0
    for task in (base / "task").iterdir():
        try:
            st = _status(task / "status")
            # schedstat: time on CPU in ns (tick-based utime is too coarse for ~1 ms reports)
            cpu_ns += int((task / "schedstat").read_text().split()[0])
        except OSError:
            continue  # thread ended meanwhile
        switches += int(st.get("voluntary_ctxt_switches", 0))
    return ProcSample(
        rss_kb=_kb(status.get("VmRSS", "")),
        hwm_kb=_kb(status.get("VmHWM", "")),
        cpu_s=cpu_ns / 1e9 + children_s,
        switches=switches,
    )


class WakeCounter:
    """Counts wake-ups of `pid`: 50 ms windows in which its threads ran (their
    voluntary context switches increased). A report's bursts (the timer, the
    broker's PUBACK, a disk write) a few ms apart are one wake-up, as for the
    laptop's power state; a thread ticking every second is 60 a minute."""

    def __init__(self, pid: int, window_s: float = 0.05) -> None:
        self.pid, self.window_s = pid, window_s
        self.wakeups = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = read(self.pid).switches
        while not self._stop.wait(self.window_s):
            try:
                now = read(self.pid).switches
            except OSError:
                return
            if now != last:
                self.wakeups += 1
                last = now

    def __enter__(self) -> WakeCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
