"""CPU time of each of the collector's threads, for `/metrics`.

The process's CPU (`process_cpu_seconds_total`) says that a collector is busy, not
which of its loops is: the MQTT network thread (paho: reading, TLS, PUBACKs), the
ingest thread (decoding, validation, batches), the writers (HTTP to the store), the
commit and its rules, the outbox worker. Each thread's own time on a CPU says it
(Linux: `/proc/self/task/<tid>/schedstat`, in nanoseconds); a thread using about one
second per second is the collector's bottleneck, whatever the process's total says.

Read at scrape time only: nothing on the ingest path.
"""

from __future__ import annotations

import threading
from pathlib import Path

# paho names its network thread after the client id (`paho-mqtt-client-<id>`): one
# label whatever the id, so that dashboards and the benches can name it.
MQTT_THREAD_PREFIX = "paho-mqtt-client-"
MQTT_THREAD = "mqtt-network"
TASKS = Path("/proc/self/task")


def label(name: str) -> str:
    """The `thread` label of a thread's name."""
    return MQTT_THREAD if name.startswith(MQTT_THREAD_PREFIX) else name


def supported() -> bool:
    """Threads' CPU times can be read here (Linux)."""
    return TASKS.is_dir()


def thread_cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by each live thread of this process, by label (two
    threads of one name are added up). Empty where threads' times cannot be read."""
    if not supported():
        return {}
    out: dict[str, float] = {}
    for thread in threading.enumerate():
        tid = thread.native_id
        if tid is None:  # not started yet
            continue
        try:
            ns = int((TASKS / str(tid) / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):  # ended between enumerate() and here
            continue
        name = label(thread.name)
        out[name] = out.get(name, 0.0) + ns / 1e9
    return out
