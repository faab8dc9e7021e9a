"""The Operations dashboard: how the pipeline itself is doing.

Two data sources, each picked by its own variable:
- `metrics` (Prometheus type, provisioned as `lordi-metrics`: the VictoriaMetrics
  that scrapes the collectors' `/metrics`, docs/operations.md): ingest throughput,
  rejections and dead letters by reason, store write latency and outcomes, messages
  in flight, the alert outbox, Mosquitto's `$SYS` figures (bridged into the store by
  the collector's `lordi_broker_*` gauges), and the lag of each school's newest
  sample. PromQL; also valid MetricsQL.
- `datasource` (InfluxDB, `lordi-influxdb`, as on the other dashboards): the agents'
  own figures carried in the telemetry (`device` points, docs/contract.md): spool
  backlog and dropped samples by school, agent versions across the fleet. InfluxQL.
"""

# ruff: noqa: S608 - InfluxQL text built from constants at generation time, no input

from __future__ import annotations

from dashboards.panels import Json, dashboard, panel, target

METRICS = {"type": "prometheus", "uid": "${metrics}"}
METRICS_UID = "lordi-metrics"  # provisioning/grafana/datasources/metrics.yaml
METRICS_NAME = "Lordi metrics"
# A school whose newest sample is older than this shows in "Schools silent".
SILENT_AFTER_S = 7200


def prom(ref: str, expr: str, legend: str = "", instant: bool = False) -> Json:
    """A PromQL target (range query for time series; instant for tables and stats)."""
    doc: Json = {
        "datasource": METRICS,
        "editorMode": "code",
        "expr": expr,
        "instant": instant,
        "range": not instant,
        "refId": ref,
    }
    if legend:
        doc["legendFormat"] = legend
    if instant:
        doc["format"] = "table"
    return doc


def metrics_panel(
    kind: str,
    title: str,
    targets: list[Json],
    grid: tuple[int, int, int, int],
    *,
    unit: str = "",
    description: str = "",
    options: Json | None = None,
) -> Json:
    """A panel on the `metrics` data source (PromQL targets)."""
    doc = panel(kind, title, targets, grid, unit=unit, description=description, options=options)
    doc["datasource"] = METRICS
    return doc


def metrics_variable() -> Json:
    return {
        "current": {"text": METRICS_NAME, "value": METRICS_UID},
        "label": "Metrics",
        "name": "metrics",
        "query": "prometheus",
        "type": "datasource",
    }


# --- PromQL --------------------------------------------------------------------------

LAG = "time() - max by (school) (lordi_collector_last_sample_timestamp_seconds)"
LATENCY = "sum by (le) (rate(lordi_collector_store_write_seconds_bucket[$__rate_interval]))"


def pipeline_panels() -> list[Json]:
    return [
        metrics_panel(
            "stat",
            "Collectors",
            [
                prom("A", 'sum(up{job="lordi-collector"})', "scraped"),
                prom("B", "sum(lordi_collector_broker_connected)", "connected to the broker"),
                prom("C", "sum(lordi_collector_store_reachable)", "store reachable"),
            ],
            (0, 0, 6, 8),
            description=(
                "Collector processes answering their scrape, connected and subscribed to "
                "the broker, and whose latest store write or ping succeeded lately. All "
                "three equal the number of collectors when all is well."
            ),
        ),
        metrics_panel(
            "timeseries",
            "Ingest throughput",
            [
                prom(
                    "A",
                    "sum(rate(lordi_collector_samples_accepted_total[$__rate_interval]))",
                    "samples accepted",
                ),
                prom(
                    "B",
                    "sum(rate(lordi_collector_messages_total[$__rate_interval]))",
                    "messages received",
                ),
            ],
            (6, 0, 9, 8),
            unit="cps",
            description="Per second, summed over the collectors.",
        ),
        metrics_panel(
            "timeseries",
            "Rejected samples by reason",
            [
                prom(
                    "A",
                    "sum by (reason) "
                    "(rate(lordi_collector_samples_rejected_total[$__rate_interval]))",
                    "{{reason}}",
                )
            ],
            (15, 0, 9, 8),
            unit="cps",
            description=(
                "Per second. invalid: the contract (or the store refused it); malformed: "
                "not JSON; topic: wrong topic or another school/device than the topic's; "
                "rate_limited: the per-device limit; collector_error: a collector bug. A "
                "message refused whole counts as one (docs/operations.md)."
            ),
        ),
        metrics_panel(
            "bargauge",
            "Dead letters by reason",
            [
                prom(
                    "A",
                    "sum by (reason) (increase(lordi_collector_dead_letters_total[$__range]))",
                    "{{reason}}",
                    instant=True,
                )
            ],
            (0, 8, 8, 8),
            description=(
                "Dead letters published to lordi/deadletter/v1 in the dashboard's time "
                "range, by reason (same reasons as the rejections; also the messages the "
                "store itself refused, as invalid)."
            ),
        ),
        metrics_panel(
            "timeseries",
            "Store write latency",
            [
                prom("A", f"histogram_quantile(0.5, {LATENCY})", "p50"),
                prom("B", f"histogram_quantile(0.95, {LATENCY})", "p95"),
            ],
            (8, 8, 8, 8),
            unit="s",
            description=(
                "Time of one write request of a telemetry batch to the store, every "
                "attempt, all collectors (histogram buckets 5 ms .. 30 s: a quantile is "
                "interpolated inside its bucket)."
            ),
        ),
        metrics_panel(
            "timeseries",
            "Store writes by outcome",
            [
                prom(
                    "A",
                    "sum by (outcome) (rate(lordi_collector_store_writes_total[$__rate_interval]))",
                    "{{outcome}}",
                )
            ],
            (16, 8, 8, 8),
            unit="wps",
            description=(
                "Write attempts per second. ok: confirmed; retry: the store was "
                "unavailable, the batch is retried; error: the store refused the batch "
                "(then written message by message) or a collector bug."
            ),
        ),
        metrics_panel(
            "table",
            "Lag of the newest sample per school",
            [prom("A", LAG, "{{school}}", instant=True)],
            (0, 16, 9, 9),
            unit="s",
            options={"sortBy": [{"desc": True, "displayName": "Value"}]},
            description=(
                "Now minus the sample time of each school's newest stored sample (the "
                "laptops' clocks; max over the collectors). High outside school hours "
                "and holidays; a laptop spool draining late shows as old values."
            ),
        ),
        metrics_panel(
            "table",
            "Schools silent for 2 hours",
            [prom("A", f"{LAG} > {SILENT_AFTER_S}", "{{school}}", instant=True)],
            (9, 16, 7, 9),
            unit="s",
            options={"sortBy": [{"desc": True, "displayName": "Value"}]},
            description=(
                "Schools whose newest sample is more than 2 hours old: meaningful in "
                "school hours only. The alerting's silent-school rule (docs/alerts.md) "
                "is the reference. A school no collector has heard of since it started "
                "is not listed."
            ),
        ),
        metrics_panel(
            "timeseries",
            "Messages in flight",
            [
                prom("A", "sum(lordi_collector_inflight_messages)", "in flight"),
                prom("B", "sum(lordi_collector_rate_limited_devices)", "rate-limited devices"),
            ],
            (16, 16, 8, 9),
            description=(
                "Messages received from the broker and not acknowledged yet (queued, "
                "validated or being written): grows while the store is away, bounded by "
                "[mqtt] receive_maximum per collector."
            ),
        ),
        metrics_panel(
            "timeseries",
            "Alert outbox",
            [
                prom(
                    "A",
                    "sum by (status) (lordi_collector_outbox_notifications)",
                    "{{status}}",
                )
            ],
            (0, 25, 8, 8),
            description=(
                "Notifications in the outbox: pending (to send or retry), failed (given "
                "up). Only collectors with [alerts] enabled report it; with one shared "
                "alert database, every collector reports the same rows (sum = n x)."
            ),
        ),
        metrics_panel(
            "timeseries",
            "Broker (Mosquitto $SYS)",
            [
                prom("A", "max(lordi_broker_clients_connected)", "clients connected"),
                prom("B", "max(lordi_broker_messages_stored)", "messages stored"),
                prom("C", "max(lordi_broker_subscriptions)", "subscriptions"),
            ],
            (8, 25, 8, 8),
            description=(
                "Mosquitto's $SYS/broker figures as the collectors receive them (every "
                "sys_interval): clients connected (laptops and collectors), messages "
                "held (retained and queued for persistent sessions), subscriptions. "
                "Absent while no collector is connected."
            ),
        ),
        metrics_panel(
            "timeseries",
            "Collector threads (CPU)",
            [
                prom(
                    "A",
                    "sum by (instance, thread) "
                    "(rate(lordi_collector_thread_cpu_seconds_total[$__rate_interval]))",
                    "{{instance}} {{thread}}",
                )
            ],
            (16, 25, 8, 8),
            unit="percentunit",
            description=(
                "CPU of each collector's threads (100 % = one core): mqtt-network "
                "(reading from the broker, TLS), ingest (decoding, validation), writer-N "
                "(writes to the store and the commit: rules, summaries), lordi-outbox "
                "(notifications). The threads share one Python interpreter lock: one "
                "thread near 100 %, or all together near it, is the collector's limit "
                "(add a collector or a partition, docs/scaling.md)."
            ),
        ),
    ]


# --- InfluxQL: the agents' figures in the telemetry -----------------------------------

DEVICE = 'FROM "device" WHERE $timeFilter'
PER_DEVICE = 'GROUP BY "school", "device"'


def agent_panels() -> list[Json]:
    backlog = f'SELECT last("spool_pending") AS "pending" {DEVICE} {PER_DEVICE}'
    dropped = f'SELECT sum("spool_dropped") AS "dropped" {DEVICE} {PER_DEVICE}'
    return [
        panel(
            "table",
            "Agents' spool backlog per school",
            [
                target(
                    "A",
                    'SELECT sum("pending") AS "spool_pending", count("pending") AS "laptops" '
                    f'FROM ({backlog}) WHERE "pending" > 0 GROUP BY "school"',
                    fmt="table",
                )
            ],
            (0, 33, 8, 10),
            description=(
                "Samples the agents still hold in their spool, from the latest report of "
                "each laptop in the time range (agent.spool_pending), summed per school; "
                "laptops: how many have a backlog. Schools without backlog are not listed."
            ),
            options={"sortBy": [{"desc": True, "displayName": "spool_pending"}]},
        ),
        panel(
            "table",
            "Samples dropped by agents per school",
            [
                target(
                    "A",
                    'SELECT sum("dropped") AS "dropped", count("dropped") AS "laptops" '
                    f'FROM ({dropped}) WHERE "dropped" > 0 GROUP BY "school"',
                    fmt="table",
                )
            ],
            (8, 33, 8, 10),
            description=(
                "Samples the agents had to drop (spool bounds, full disk) in the time "
                "range: each report carries the drops since the previous one "
                "(agent.spool_dropped), summed per school; laptops: how many dropped."
            ),
            options={"sortBy": [{"desc": True, "displayName": "dropped"}]},
        ),
        panel(
            "table",
            "Agent versions across the fleet",
            [
                target(
                    "A",
                    f'SELECT last("agent_version") AS "agent_version" {DEVICE} {PER_DEVICE}',
                    fmt="table",
                )
            ],
            (16, 33, 8, 10),
            description=(
                "Laptops per agent version, from each laptop's latest report in the time "
                "range. agent_version is a string field: stored by InfluxDB; a collector "
                "writing to VictoriaMetrics ([store] string_fields = false) does not "
                "store it, and this panel cannot show versions there."
            ),
            transformations=[
                {
                    "id": "groupBy",
                    "options": {
                        "fields": {
                            "agent_version": {"aggregations": [], "operation": "groupby"},
                            "device": {"aggregations": ["count"], "operation": "aggregate"},
                        }
                    },
                },
                {
                    "id": "organize",
                    "options": {"renameByName": {"device (count)": "laptops"}},
                },
            ],
        ),
    ]


def operations() -> Json:
    doc = dashboard(
        "lordi-operations",
        "Lordi - Operations",
        "The pipeline itself: collectors, store writes, dead letters, broker, lag per "
        "school (metrics), and the agents' spool and versions (telemetry).",
        [metrics_variable()],
        [*pipeline_panels(), *agent_panels()],
    )
    doc["time"] = {"from": "now-24h", "to": "now"}
    return doc
