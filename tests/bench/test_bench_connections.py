"""Smoke test of `lordi bench connections` at a tiny size: the production broker over
TLS, each laptop its own identity, connected, pinging, disconnected; the JSON's figures
are consistent with each other. No timing is asserted (BENCHMARKS.md has the figures)."""

from __future__ import annotations

import resource

import pytest

from lordi.bench import connections

LAPTOPS = 60


def test_every_laptop_connects_over_tls_and_pings() -> None:
    result = connections.run(laptops=LAPTOPS, client_procs=2, in_flight=10, hold_s=2.5,
                             keepalive_s=1, region=1000)  # fmt: skip
    assert result["mosquitto"].startswith("mosquitto version 2.")
    assert result["config"]["tls"].startswith("TLSv1.3 ")
    assert result["connections"] == {"up": LAPTOPS, "failed": 0, "errors": {}}
    hs = result["handshake"]
    assert hs["per_s"] > 0 and hs["broker_cpu_ms_per_connection"] > 0
    assert 0 < hs["latency_ms"]["p50"] <= hs["latency_ms"]["p99"]
    hold = result["hold"]
    assert hold["pings"] >= LAPTOPS  # each laptop pinged at least once in 2.5 s
    memory = result["memory"]
    assert memory["broker_rss_mb_connected"] >= memory["broker_rss_mb_idle"] > 0
    extra = result["extrapolated"]
    assert extra["laptops"] == 1000 and extra["open_files_needed"] > 1000


def test_more_laptops_than_one_process_may_hold_is_refused() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no open-file limit on this machine")
    with pytest.raises(ValueError, match=r"--laptops \d+: one broker process may hold"):
        connections.run(laptops=hard)
