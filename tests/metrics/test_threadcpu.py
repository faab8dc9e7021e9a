"""Each thread's CPU time (collector/threadcpu.py): a busy thread's grows, an idle
thread's does not, paho's network thread has one label whatever its client id."""

from __future__ import annotations

import threading
import time

from collector import threadcpu


def test_labels() -> None:
    assert threadcpu.label("paho-mqtt-client-lordi-collector-3") == "mqtt-network"
    assert threadcpu.label("paho-mqtt-client-") == "mqtt-network"
    assert threadcpu.label("writer-1") == "writer-1"
    assert threadcpu.label("ingest") == "ingest"


def test_a_busy_thread_uses_cpu_an_idle_one_does_not() -> None:
    assert threadcpu.supported()  # Linux: the collector's servers and CI
    stop = threading.Event()

    spun = threading.Event()

    def spin() -> None:  # 0.15 s of this thread's own CPU, however loaded the machine
        while time.thread_time() < 0.15:
            sum(range(1000))
        spun.set()
        stop.wait()

    busy = threading.Thread(target=spin, name="paho-mqtt-client-bench-7", daemon=True)
    idle = threading.Thread(target=stop.wait, name="idle-test", daemon=True)
    idle.start()
    busy.start()
    try:
        assert spun.wait(60)  # the spin is over: both threads wait on the event
        first = threadcpu.thread_cpu_seconds()
        time.sleep(0.2)
        second = threadcpu.thread_cpu_seconds()
    finally:
        stop.set()
        busy.join()
        idle.join()
    assert "paho-mqtt-client-bench-7" not in first
    assert first["mqtt-network"] >= 0.15, first
    assert first["idle-test"] < 0.05, first
    # Waiting uses nothing more; the main thread's time only grows.
    assert second["mqtt-network"] - first["mqtt-network"] < 0.02
    assert second["MainThread"] >= first["MainThread"] > 0
    # Ended threads are not listed.
    assert "idle-test" not in threadcpu.thread_cpu_seconds()


def test_two_threads_of_one_name_add_up() -> None:
    stop = threading.Event()

    def work() -> None:  # 0.15 s of this thread's own CPU, then wait
        while time.thread_time() < 0.15:
            sum(range(1000))
        stop.wait()

    threads = [threading.Thread(target=work, name="same-name", daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while threadcpu.thread_cpu_seconds().get("same-name", 0) < 0.3:
            assert time.monotonic() < deadline, threadcpu.thread_cpu_seconds()
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
