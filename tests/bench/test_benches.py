"""Smoke tests of `lordi bench ingest / storm / state / peer` at tiny sizes: the code paths run
against the real servers and count right. No timing is asserted: the figures are
the benchmarks' business (BENCHMARKS.md), not the tests'."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lordi.bench import ingest, peer, state, storm
from lordi.sim.swarm import Backlog
from lordi.stack import LocalStack


def test_ingest_bench_counts_every_sample_once_with_two_collectors() -> None:
    result = ingest.run(messages=60, per_message=5, collectors=2, devices=12, metrics=True)
    pipeline = result["pipeline"]
    # Two rounds of the 300 samples (the second's later), the store's writes between
    # them not counted as the pipeline's.
    assert pipeline["sent"] == pipeline["stored"] == pipeline["acked_by_broker"] == 600
    assert result["lost"] == 0 and result["duplicated"] == 0
    # Both collectors of the shared subscription took part; they wrote each sample
    # once (the 12 untimed warm-up samples aside).
    written = pipeline["written_by_collector"]
    assert len(written) == 2 and sum(written) == 600 + 12 and min(written) > 0
    # --metrics: each collector's /metrics says what its stats line says.
    assert pipeline["metrics"]["samples_accepted"] == written
    assert set(pipeline["cpu_us_per_sample"]) == {
        "victoria-metrics", "mosquitto", "collector-0", "collector-1", "publisher"
    }
    # (CPU time is counted in 10 ms ticks: a tiny run may show 0 for a process)
    assert sum(pipeline["cpu_us_per_sample"].values()) > 0
    # Each collector's threads, from its /metrics (nanoseconds): the MQTT network
    # thread and the ingest thread took the messages; alerts off, no rules figure.
    threads = pipeline["collector_threads_cpu_us_per_sample"]
    assert set(threads) == {"collector-0", "collector-1"}
    for figures in threads.values():
        assert figures["mqtt-network"] > 0 and figures["ingest"] > 0, figures
        assert "(rules, in the commit)" not in figures
        assert list(figures.values()) == sorted(figures.values(), reverse=True)
    limit = min(result["broker_limit"]["samples_per_s"], result["store_limit"]["samples_per_s"])
    assert result["ratio_to_limit"] == round(result["samples_per_s"] / limit, 3)
    assert result["store_limit"]["lines_per_sample"] == 3.0
    # Two rounds (the default), the store's own write before each and after the last:
    # its figure the median of the three writes, each round compared with the mean
    # of the two writes beside it, the ratio the median (here: mean) of the rounds'.
    store = result["store_limit"]
    runs = store["runs_samples_per_s"]
    assert len(runs) == 3 and store["samples_per_s"] == sorted(runs)[1]
    rounds = [r["samples_per_s"] for r in pipeline["rounds"]]
    assert len(rounds) == 2
    assert store["beside_rounds_samples_per_s"] == [
        round((runs[0] + runs[1]) / 2), round((runs[1] + runs[2]) / 2)
    ]
    ratios = [rounds[0] * 2 / (runs[0] + runs[1]), rounds[1] * 2 / (runs[1] + runs[2])]
    assert store["rounds_ratio"] == [round(r, 3) for r in ratios]
    assert result["ratio_to_store_limit"] == round((ratios[0] + ratios[1]) / 2, 3)


def test_storm_drains_every_backlog_into_the_store(stack: LocalStack) -> None:
    result = storm.run(devices=30, backlog=250, stack=stack, timeout_s=120)
    # 250 samples: a batch of 200 and one of 50, as the agent drains.
    assert result["messages_per_device"] == 2
    assert result["samples_expected"] == 30 * 250
    assert result["samples_sent_acked"] == result["samples_stored"] == 30 * 250
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["disconnects"] == 0 and result["connect_errors"] == 0
    assert result["collector_stats"]["messages"] == 60
    # $SYS every 10 s here: 0 when no snapshot fell in the storm, else whatever count
    # the broker had then (the laptops connect and leave within seconds; seen: 2).
    assert 0 <= result["peak_clients_connected"] < 30 + 10
    assert result["meets_targets"] == {"lost": True, "drained": True}


def test_storm_backlog_restamps_the_pool() -> None:
    pool = ['{"ts":"2026-11-16T07:00:00Z","os":{"platform":"windows"}}']
    backlog = Backlog(pool, datetime(2026, 11, 14, 8, 0, tzinfo=UTC), 3)
    bodies = [json.loads(backlog.body(7, i)) for i in range(3)]
    assert [b["ts"] for b in bodies] == [
        "2026-11-14T08:00:00Z",
        "2026-11-14T08:05:00Z",
        "2026-11-14T08:10:00Z",
    ]
    assert all(b["os"] == {"platform": "windows"} for b in bodies)


def test_state_bench_runs_on_a_small_fleet() -> None:
    result = state.run(devices=300, rounds=2)
    assert result["devices"] == 300
    assert result["samples_timed"] == 300
    assert result["traced_mb_retained_after_first_round"] > 0
    assert result["engine_devices"] == 300
    # every save stores the schools' documents: timed apart from the devices' share
    assert result["save_schools_s_each_save"] >= 0
    assert result["save_devices_ms_per_device"] > 0


def test_history_probe_counts_the_return_from_silence_apart(tmp_path: Path) -> None:
    # Weekly reports: every laptop comes back from a silence each week and holds a
    # gap until a later day's reports judge its return day; the probe's next-day
    # round drops them all, so the full-history figure is that of a daily fleet.
    result = state.history_probe(state.sample_pool(20, 1), tmp_path, devices=200, weeks=3)
    assert result["history_probe_gaps"] == [200, 0]
    assert result["bytes_per_device_back_from_silence"] > 0
    assert result["bytes_per_device_full_history"] > result["bytes_per_device_first_week"]
    est = state.estimates(500.0, 100_000, result)  # figures rounded to 0.1 MB
    grown = result["bytes_per_device_full_history"] - result["bytes_per_device_first_week"]
    assert est["rss_mb_with_full_history_estimate"] == round(500 + 100_000 * grown / 2**20, 1)
    assert est["rss_mb_back_from_holidays_estimate"] > est["rss_mb_with_full_history_estimate"]


def test_state_feed_gives_each_device_its_own_id() -> None:
    pool = state.sample_pool(10, 1)
    feed = state.Feed(500, pool)
    ids = {feed.ids(i) for i in range(500)}
    assert len(ids) == 500
    accepted = feed.batch(0, 5, state.START)
    assert [s.ts for _, _, s in accepted] == [state.START] * 5


def test_peer_flow_is_wired_mqtt_to_function_to_influxdb() -> None:
    nodes: dict[str, dict[str, Any]] = {n["id"]: n for n in peer.flows(1883, 8428)}
    assert nodes["in"]["qos"] == "1" and nodes["in"]["wires"] == [["fn"]]
    assert nodes["fn"]["wires"] == [["out"]]
    assert nodes["out"]["influxdb"] == "influx"
    assert nodes["influx"]["port"] == "8428"
    json.dumps(list(nodes.values()))  # what Node-RED reads


def test_ingest_bench_with_tls_and_alerts_on() -> None:
    """The production configuration: every MQTT connection over TLS, the collector's
    rules, SQLite alert store and notifications (a real SMTP server) on."""
    result = ingest.run(messages=40, per_message=10, collectors=1, devices=20,
                        tls=True, alerts="sqlite", rounds=1)  # fmt: skip
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["pipeline"]["stored"] == 400
    config = result["configuration"]
    assert config["tls"] is True and config["alerts"] == "sqlite"
    assert config["collector_code"].startswith("compiled (9 modules)")  # make compile
    # The bench's laptops have 60-100 % health: the battery rules open alerts, which
    # are mailed through the real SMTP server.
    assert config["alerts_opened"] > 0 and config["mails_received"] > 0
    # The rules' time (in the commit, on the writer threads) beside the threads' CPU.
    threads = result["pipeline"]["collector_threads_cpu_us_per_sample"]["collector-0"]
    assert threads["(rules, in the commit)"] > 0 and threads["ingest"] > 0, threads
    assert any(name.startswith("writer-") for name in threads), threads
    # One round: against the mean of the store's writes before and after it.
    before, after = result["store_limit"]["runs_samples_per_s"]
    assert result["ratio_to_store_limit"] == round(
        result["samples_per_s"] * 2 / (before + after), 3
    )
    assert set(result["meets_targets"]) == {"samples_per_s", "ratio_to_limit", "lost",
                                            "duplicated"}  # fmt: skip


def _alerts_in_process(messages: int, per_message: int, devices: int, schools: int) -> Any:
    """The alerts the rules open on the bench's telemetry, evaluated in this process
    (the warm-up message of each device first, then the timed ones, in order)."""
    from collector.alerting import Alerting  # noqa: PLC0415
    from collector.alerts.store import AlertStore  # noqa: PLC0415
    from collector.contract import Envelope  # noqa: PLC0415
    from collector.rules import RulesConfig  # noqa: PLC0415

    store = AlertStore("sqlite://")
    store.create_tables()
    alerting = Alerting(RulesConfig(), store)
    messages_sent = [
        *ingest.payloads(devices, 1, 0, devices, -1, schools),
        *ingest.payloads(messages, per_message, 0, devices, 0, schools),
    ]
    for _, body in messages_sent:
        env = Envelope.model_validate_json(body, strict=False)
        alerting.on_samples([(env.school, env.device, s) for s in env.samples], datetime.now(UTC))
    alerting.stop()
    by_rule: dict[str, int] = {}
    for alert in store.list_alerts():
        by_rule[alert.rule] = by_rule.get(alert.rule, 0) + 1
    store.close()
    return by_rule


def test_ingest_bench_with_partitioned_collectors_on_postgresql() -> None:
    """Two collectors, each owning half of the bench's four schools (the registry
    places them), TLS, one PostgreSQL alert store: every sample stored once, both
    collectors at work, and the alerts those of the same telemetry judged in one
    process."""
    result = ingest.run(messages=40, per_message=10, collectors=2, devices=20,
                        tls=True, alerts="postgresql", rounds=1)  # fmt: skip
    assert (result["partitions"], result["schools"]) == (2, 4)
    assert result["lost"] == 0 and result["duplicated"] == 0
    written = result["pipeline"]["written_by_collector"]
    assert sum(written) == 400 + 20 and min(written) > 0
    config = result["configuration"]
    assert config["alerts"] == "postgresql" and config["alerts_opened"] > 0
    assert config["alerts_by_rule"] == _alerts_in_process(40, 10, 20, 4)
    assert config["mails_received"] == config["alerts_opened"]


def test_ingest_bench_refuses_alerts_on_several_collectors() -> None:
    with pytest.raises(ValueError, match="--alerts sqlite needs --collectors 1"):
        ingest.run(messages=1, per_message=1, collectors=2, alerts="sqlite")


def test_storm_with_tls_and_alerts_on_partitioned_collectors() -> None:
    """Two collectors owning two schools each, TLS, one PostgreSQL alert store."""
    result = storm.run(devices=20, backlog=30, timeout_s=120, tls=True, alerts="postgresql",
                       collectors=2)  # fmt: skip
    assert (result["collectors"], result["partitions"], result["schools"]) == (2, 2, 4)
    assert result["samples_sent_acked"] == result["samples_stored"] == 600
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["configuration"]["tls"] is True
    assert result["configuration"]["alerts_opened"] > 0
    written = [s["samples_written"] for s in result["collector_stats"]]
    assert sum(written) == 600 and min(written) > 0  # both partitions at work
    assert set(result["cpu_us_per_sample"]) == {"mosquitto", "victoria-metrics", "collector-0",
                                                "collector-1", "storm"}  # fmt: skip


def test_bench_sub_parsers_take_their_own_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from lordi.cli import main  # noqa: PLC0415

    seen: dict[str, object] = {}

    def fake_run(*args: object, **kwargs: object) -> dict[str, object]:
        seen.update(args=args, kwargs=kwargs)
        return {"pipeline": {}, "meets_targets": {"lost": True}}

    monkeypatch.setattr(ingest, "run", fake_run)
    assert main(["bench", "ingest", "--json", "--tls", "--alerts", "sqlite"]) == 0
    assert seen["args"] == (4000, 50, 1, 200)  # one collector with alerts
    assert seen["kwargs"] == {"metrics": False, "tls": True, "alerts": "sqlite", "rounds": 2}
    assert main(["bench", "ingest", "--json", "--rounds", "3"]) == 0
    assert seen["kwargs"] == {"metrics": False, "tls": False, "alerts": "off", "rounds": 3}
    with pytest.raises(SystemExit):  # an option of another bench
        main(["bench", "ingest", "--backlog", "3"])


def test_rules_bench_measures_the_production_call() -> None:
    from lordi.bench import rules  # noqa: PLC0415

    result = rules.run(devices=20, per_message=5, messages=60, profile=True)
    assert result["samples"] == 300 and result["rules_us_per_sample"] > 0
    assert result["alerts_opened"] > 0  # batteries between 60 and 80 %: battery_watch
    share = result["profile_share"]
    assert max(share.values()) == 1.0 and any("on_samples" in k for k in share)


def test_rules_bench_on_postgresql_as_a_partition_opens_the_same_alerts() -> None:
    from lordi.bench import rules  # noqa: PLC0415

    on_sqlite = rules.run(devices=20, per_message=5, messages=60)
    for partition in (False, True):  # engine cache off / on (a partition's own keys)
        result = rules.run(
            devices=20, per_message=5, messages=60, store="postgresql", partition=partition
        )
        assert (result["store"], result["partition"]) == ("postgresql", partition)
        assert result["rules_us_per_sample"] > 0
        assert result["alerts_opened"] == on_sqlite["alerts_opened"] > 0


def test_rules_bench_first_day_opens_the_same_burst_on_both_stores() -> None:
    from lordi.bench import rules  # noqa: PLC0415

    on_sqlite = rules.first_day(300)
    assert on_sqlite["alerts_opened"] > 50  # a worn fleet: many packs already worn
    for partition in (False, True):
        on_pg = rules.first_day(300, store="postgresql", partition=partition)
        assert on_pg["alerts_opened"] == on_sqlite["alerts_opened"]
        assert on_pg["cpu_ms_per_alert_opened"] > 0 and on_pg["wall_us_per_sample"] > 0


def test_stages_bench_times_each_stage_of_the_collectors_path() -> None:
    from lordi.bench import stages  # noqa: PLC0415

    result = stages.run(messages=60, per_message=5, devices=20, per_batch=7)
    assert result["samples"] == result["accepted"] == 300
    assert result["lines_per_sample"] == 3.0  # device, battery, wifi: the bench's samples
    assert result["alerts_opened"] > 0  # batteries between 60 and 80 %: battery_watch
    assert set(result["us_per_sample"]) == {
        "decode_and_check", "line_protocol", "batch_add", "join_encode", "summaries",
        "rules", "free",
    }  # fmt: skip
    assert all(us >= 0 for us in result["us_per_sample"].values())
    assert result["us_per_sample"]["batch_add"] > 0 and result["us_per_sample"]["rules"] > 0
    assert all(name.startswith("collector") for name in result["compiled"])
