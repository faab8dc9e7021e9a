"""`lordi retention`: raw series kept 90 days, daily aggregates kept longer.

design.md, "Privacy by design": raw series are kept 90 days by default, daily
aggregates longer. What that means per store (operator guide: docs/retention.md):

- InfluxDB 1.x: a default retention policy `raw` (the collector and the dashboards
  use the default policy, so they follow it), a policy `daily` for the aggregates,
  and one continuous query per measurement that recomputes the last two days of
  daily aggregates every hour (late samples from a spool drain are counted).
- InfluxDB 2.x: a bucket for the raw series, one for the aggregates, and a Flux task
  doing what the continuous queries do, through influxdb-client's management APIs
  (the collector's store library: OrganizationsApi, BucketsApi, DBRPsService,
  TasksApi).
- VictoriaMetrics: one `-retentionPeriod` per instance; nothing to create here.

The aggregates are defined once (`DOWNSAMPLES`) and rendered as InfluxQL and Flux.

InfluxQL statements (CREATE RETENTION POLICY, CREATE CONTINUOUS QUERY, SHOW ...) go
to InfluxDB 1.x's `/query` through one small HTTP helper, `InfluxV1.query`:
influxdb-client has no InfluxQL call (its query API sends Flux to `/api/v2/query`).
"""

# ruff: noqa: S608 - InfluxQL/Flux text built from constants and checked names

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

RAW_DAYS = 90
AGGREGATE_DAYS = 5 * 365  # about the life of a laptop
RESAMPLE_FOR = "2d"  # recompute today and yesterday: late samples are counted
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class RetentionError(Exception):
    """A store refused a step or could not be reached; the message says which."""


@dataclass(frozen=True)
class Downsample:
    """Daily aggregates of one measurement: (function, source field, output field).
    The main aggregate keeps the field's name, so a query reads the same in both."""

    measurement: str
    aggregates: tuple[tuple[str, str, str], ...]


_BANDS = (
    ("last", "devices_known", "devices_known"),
    ("last", "health_lt60", "health_lt60"),
    ("last", "health_60_80", "health_60_80"),
    ("last", "health_ge80", "health_ge80"),
    ("last", "health_p50", "health_p50"),
)
DOWNSAMPLES = (
    Downsample(
        "battery",
        (
            ("mean", "health_pct", "health_pct"),
            ("min", "health_pct", "health_min_pct"),
            ("max", "cycle_count", "cycle_count"),
            ("mean", "percent", "percent"),
            ("max", "temperature_c", "temperature_max_c"),
            ("mean", "plugged", "plugged_ratio"),
        ),
    ),
    Downsample(
        "wifi",
        (
            ("mean", "rssi_dbm", "rssi_dbm"),
            ("min", "rssi_min_dbm", "rssi_min_dbm"),
            ("sum", "disconnects", "disconnects"),
            ("count", "rssi_dbm", "reports"),
        ),
    ),
    Downsample("device", (("sum", "report", "reports"),)),
    Downsample(
        "connectivity",
        (
            ("mean", "broker_rtt_ms", "broker_rtt_ms"),
            ("mean", "dns_ok", "dns_ok_ratio"),
            ("mean", "gateway_ok", "gateway_ok_ratio"),
            ("mean", "broker_ok", "broker_ok_ratio"),
            ("sum", "school_online_s", "school_online_s"),
            ("sum", "school_unreachable_s", "school_unreachable_s"),
            ("median", "connect_delay_s", "connect_delay_median_s"),
            ("max", "connect_delay_s", "connect_delay_max_s"),
            ("sum", "failed_attempts", "failed_attempts"),
        ),
    ),
    Downsample(
        "school_summary",
        (
            ("max", "devices_reporting", "devices_reporting_max"),
            *_BANDS,
            ("mean", "rssi_school_mean_dbm", "rssi_school_mean_dbm"),
            ("sum", "disconnects", "disconnects"),
        ),
    ),
    Downsample("school_model_summary", _BANDS),
)


def _check_name(what: str, value: str) -> str:
    if not _NAME.match(value):
        raise RetentionError(f"{what}: expected 1-64 of [A-Za-z0-9_-] (got {value!r})")
    return value


# --- InfluxDB 1.x ---------------------------------------------------------------------


def select_into(ds: Downsample, db: str, raw_rp: str, agg_rp: str, where: str = "") -> str:
    """The continuous query's SELECT; `where` (e.g. a time range) for a backfill."""
    fields = ", ".join(f'{fn}("{src}") AS "{out}"' for fn, src, out in ds.aggregates)
    cond = f" WHERE {where}" if where else ""
    return (
        f'SELECT {fields} INTO "{db}"."{agg_rp}"."{ds.measurement}" '
        f'FROM "{db}"."{raw_rp}"."{ds.measurement}"{cond} GROUP BY time(1d), *'
    )


def cq_name(ds: Downsample) -> str:
    return f"lordi_daily_{ds.measurement}"


def continuous_query(ds: Downsample, db: str, raw_rp: str, agg_rp: str) -> str:
    return (
        f'CREATE CONTINUOUS QUERY "{cq_name(ds)}" ON "{db}" '
        f"RESAMPLE EVERY 1h FOR {RESAMPLE_FOR} BEGIN "
        f"{select_into(ds, db, raw_rp, agg_rp)} END"
    )


@dataclass
class InfluxV1:
    """InfluxQL over the v1 HTTP API (`/query`); basic auth when a user is given."""

    url: str
    user: str = ""
    password: str = field(default="", repr=False)
    timeout_s: float = 30.0

    def query(self, q: str, db: str = "") -> list[dict[str, Any]]:
        params = {"q": q, **({"db": db} if db else {})}
        body = urllib.parse.urlencode(params).encode()
        req = urllib.request.Request(f"{self.url.rstrip('/')}/query", data=body, method="POST")  # noqa: S310
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
        if self.user:
            pair = f"{self.user}:{self.password}".encode()
            req.add_header("Authorization", "Basic " + base64.b64encode(pair).decode())
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310
                doc = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise RetentionError(f"InfluxDB /query: HTTP {exc.code}: {detail}") from None
        except OSError as exc:
            raise RetentionError(f"InfluxDB {self.url}: {exc}") from None
        results: list[dict[str, Any]] = doc.get("results", [])
        for result in results:
            if "error" in result:
                raise RetentionError(f"InfluxDB refused {q[:80]!r}: {result['error']}")
        return results


def apply_influxdb1(
    client: InfluxV1,
    db: str,
    *,
    raw_days: int = RAW_DAYS,
    aggregate_days: int = AGGREGATE_DAYS,
    raw_rp: str = "raw",
    agg_rp: str = "daily",
) -> list[str]:
    """Create or update the policies and continuous queries; returns what was done.
    Running it again with the same settings changes nothing."""
    for what, value in (("database", db), ("raw policy", raw_rp), ("aggregate policy", agg_rp)):
        _check_name(what, value)
    if raw_days < 1 or aggregate_days <= raw_days:
        raise RetentionError(
            f"aggregates must outlive raw series (raw {raw_days} d, aggregates {aggregate_days} d)"
        )
    done = []
    client.query(f'CREATE DATABASE "{db}"')
    existing = {row[0] for row in _rows(client.query(f'SHOW RETENTION POLICIES ON "{db}"'))}
    for name, days, default in ((raw_rp, raw_days, True), (agg_rp, aggregate_days, False)):
        verb = "ALTER" if name in existing else "CREATE"
        rest = " REPLICATION 1" if verb == "CREATE" else ""
        client.query(
            f'{verb} RETENTION POLICY "{name}" ON "{db}" DURATION {days}d{rest}'
            + (" DEFAULT" if default else "")
        )
        done.append(f"retention policy {name}: {days} days{' (default)' if default else ''}")
    cqs = {row[0] for row in _rows(client.query("SHOW CONTINUOUS QUERIES"), db)}
    for ds in DOWNSAMPLES:
        if cq_name(ds) in cqs:  # a continuous query cannot be altered
            client.query(f'DROP CONTINUOUS QUERY "{cq_name(ds)}" ON "{db}"')
        client.query(continuous_query(ds, db, raw_rp, agg_rp))
        done.append(f"continuous query {cq_name(ds)}: {ds.measurement} -> {agg_rp}")
    return done


def _rows(results: list[dict[str, Any]], series_name: str = "") -> list[list[Any]]:
    out: list[list[Any]] = []
    for series in results[0].get("series", []):
        if not series_name or series.get("name") == series_name:
            out += series.get("values") or []
    return out


# --- InfluxDB 2.x ----------------------------------------------------------------------


def flux_task(name: str, org: str, raw_bucket: str, agg_bucket: str) -> str:
    """A Flux task that does what the InfluxDB 1.x continuous queries do: every hour,
    the daily aggregates of today and yesterday (UTC days, window start as time)."""
    blocks = []
    for ds in DOWNSAMPLES:
        for fn, src, out in ds.aggregates:
            blocks.append(
                f'from(bucket: "{raw_bucket}")\n'
                "  |> range(start: start)\n"
                f'  |> filter(fn: (r) => r._measurement == "{ds.measurement}" '
                f'and r._field == "{src}")\n'
                f"  |> aggregateWindow(every: 1d, fn: {fn}, createEmpty: false, "
                'timeSrc: "_start")\n'
                f'  |> set(key: "_field", value: "{out}")\n'
                f'  |> to(bucket: "{agg_bucket}", org: "{org}")\n'
                # Several result streams in one script need distinct yield names.
                f'  |> yield(name: "{ds.measurement}_{out}")\n'
            )
    return (
        'import "date"\n\n'
        f'option task = {{name: "{name}", every: 1h}}\n\n'
        "start = date.truncate(t: -1d, unit: 1d)\n\n" + "\n".join(blocks)
    )


@dataclass
class InfluxV2:
    """influxdb-client's InfluxDBClient (token authentication); every failure becomes
    a RetentionError naming the request (method and path of the v2 API)."""

    url: str
    token: str = field(repr=False)
    timeout_s: float = 30.0
    _client: Any = field(default=None, init=False, repr=False)

    @property
    def client(self) -> Any:
        if self._client is None:
            from influxdb_client.client.influxdb_client import InfluxDBClient  # noqa: PLC0415

            self._client = InfluxDBClient(
                url=self.url, token=self.token, timeout=int(self.timeout_s * 1000)
            )
        return self._client

    def call(self, endpoint: str, request: Callable[[Any], T]) -> T:
        client = self.client
        from influxdb_client.client.exceptions import InfluxDBError  # noqa: PLC0415
        from influxdb_client.rest import ApiException  # noqa: PLC0415
        from urllib3.exceptions import HTTPError  # noqa: PLC0415 - influxdb-client's HTTP

        try:
            return request(client)
        except ApiException as exc:
            detail = str(exc.message or exc.reason or "")[:300]
            raise RetentionError(f"InfluxDB {endpoint}: HTTP {exc.status}: {detail}") from None
        except InfluxDBError as exc:  # raised by the client itself, without a response
            raise RetentionError(f"InfluxDB {endpoint}: {exc.message}") from None
        except (HTTPError, OSError) as exc:
            raise RetentionError(f"InfluxDB {endpoint}: {exc}") from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _bucket(api: InfluxV2, org_id: str, name: str, days: int) -> tuple[str, str]:
    from influxdb_client.domain.bucket_retention_rules import BucketRetentionRules  # noqa: PLC0415
    from influxdb_client.domain.post_bucket_request import PostBucketRequest  # noqa: PLC0415

    rules = [BucketRetentionRules(type="expire", every_seconds=days * 86_400)]
    found = api.call(
        "GET /api/v2/buckets",
        lambda c: c.buckets_api().find_buckets(org_id=org_id, name=name).buckets,
    )
    if found:
        bucket = found[0]
        bucket.retention_rules = rules
        api.call(
            f"PATCH /api/v2/buckets/{bucket.id}", lambda c: c.buckets_api().update_bucket(bucket)
        )
        return str(bucket.id), f"bucket {name}: {days} days (updated)"
    # A PostBucketRequest with the org's ID: create_bucket(org=...) would look the
    # organisation up again by name when the ID does not look like one.
    request = PostBucketRequest(org_id=org_id, name=name, retention_rules=rules)
    created = api.call(
        "POST /api/v2/buckets", lambda c: c.buckets_api().create_bucket(bucket=request)
    )
    return str(created.id), f"bucket {name}: {days} days (created)"


def _dbrp(api: InfluxV2, org_id: str, bucket_id: str, db: str, rp: str, *, default: bool) -> str:
    """The InfluxQL name (database/retention policy) of a bucket, for the dashboards."""
    from influxdb_client.domain.dbrp_create import DBRPCreate  # noqa: PLC0415
    from influxdb_client.service.dbr_ps_service import DBRPsService  # noqa: PLC0415

    found = api.call(
        "GET /api/v2/dbrps",
        lambda c: DBRPsService(c.api_client).get_dbr_ps(org_id=org_id, db=db, rp=rp).content,
    )
    if found:
        return f"DBRP {db}/{rp}: exists"
    mapping = DBRPCreate(
        org_id=org_id, bucket_id=bucket_id, database=db, retention_policy=rp, default=default
    )
    api.call("POST /api/v2/dbrps", lambda c: DBRPsService(c.api_client).post_dbrp(mapping))
    return f"DBRP {db}/{rp}: created"


def _task(api: InfluxV2, org_id: str, name: str, flux: str) -> str:
    from influxdb_client.domain.task_create_request import TaskCreateRequest  # noqa: PLC0415
    from influxdb_client.domain.task_update_request import TaskUpdateRequest  # noqa: PLC0415

    tasks = api.call(
        "GET /api/v2/tasks", lambda c: c.tasks_api().find_tasks(org_id=org_id, name=name)
    )
    if tasks:
        task_id = tasks[0].id
        update = TaskUpdateRequest(flux=flux)
        api.call(
            f"PATCH /api/v2/tasks/{task_id}",
            lambda c: c.tasks_api().update_task_request(task_id, update),
        )
        return f"task {name}: updated"
    create = TaskCreateRequest(org_id=org_id, flux=flux, status="active")
    api.call("POST /api/v2/tasks", lambda c: c.tasks_api().create_task(task_create_request=create))
    return f"task {name}: created"


def apply_influxdb2(
    api: InfluxV2,
    org: str,
    bucket: str,
    *,
    raw_days: int = RAW_DAYS,
    aggregate_days: int = AGGREGATE_DAYS,
    agg_bucket: str = "",
) -> list[str]:
    """Buckets, DBRP mappings and the downsampling task; idempotent."""
    agg_bucket = agg_bucket or f"{bucket}_daily"
    for what, value in (("org", org), ("bucket", bucket), ("aggregate bucket", agg_bucket)):
        _check_name(what, value)
    orgs = api.call(
        "GET /api/v2/orgs", lambda c: c.organizations_api().find_organizations(org=org)
    )
    if not orgs:
        raise RetentionError(f"InfluxDB: no organisation named {org!r}")
    org_id = str(orgs[0].id)
    raw_id, raw_msg = _bucket(api, org_id, bucket, raw_days)
    agg_id, agg_msg = _bucket(api, org_id, agg_bucket, aggregate_days)
    done = [raw_msg, agg_msg]
    done.append(_dbrp(api, org_id, raw_id, bucket, "raw", default=True))
    done.append(_dbrp(api, org_id, agg_id, bucket, "daily", default=False))
    name = f"lordi-daily-{bucket}"
    done.append(_task(api, org_id, name, flux_task(name, org, bucket, agg_bucket)))
    return done


# --- command line ------------------------------------------------------------------------


def read_secret(env_name: str, file_name: str | None) -> str:
    """A secret from a file (first line) or the environment; never from argv."""
    if file_name:
        return Path(file_name).read_text(encoding="utf-8").strip()
    return os.environ.get(env_name, "")


def cmd_retention(args: argparse.Namespace) -> int:
    try:
        if args.store == "influxdb1":
            password = read_secret("LORDI_INFLUX_PASSWORD", args.password_file)
            client = InfluxV1(args.url, os.environ.get("LORDI_INFLUX_USER", ""), password)
            done = apply_influxdb1(
                client, args.db, raw_days=args.raw_days, aggregate_days=args.aggregate_days
            )
        else:
            token = read_secret("LORDI_INFLUX_TOKEN", args.token_file)
            if not token:
                raise RetentionError("no token: set LORDI_INFLUX_TOKEN or pass --token-file")
            api = InfluxV2(args.url, token)
            try:
                done = apply_influxdb2(
                    api,
                    args.org,
                    args.bucket,
                    raw_days=args.raw_days,
                    aggregate_days=args.aggregate_days,
                )
            finally:
                api.close()
    except (RetentionError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in done:
        print(line)
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("retention", help="raw series 90 days, daily aggregates longer")
    stores = p.add_subparsers(dest="store", required=True)
    for name, help_text in (
        ("influxdb1", "retention policies and continuous queries (InfluxQL)"),
        ("influxdb2", "buckets, DBRP mappings and a downsampling task (influxdb-client)"),
    ):
        s = stores.add_parser(name, help=help_text)
        s.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8086")
        s.add_argument("--raw-days", type=int, default=RAW_DAYS, help="raw series (default 90)")
        s.add_argument(
            "--aggregate-days", type=int, default=AGGREGATE_DAYS, help="daily aggregates"
        )
        s.set_defaults(func=cmd_retention)
        if name == "influxdb1":
            s.add_argument("--db", default="lordi")
            s.add_argument(
                "--password-file",
                help="password of LORDI_INFLUX_USER (default: LORDI_INFLUX_PASSWORD)",
            )
        else:
            s.add_argument("--org", default="lordi")
            s.add_argument("--bucket", default="lordi", help="raw bucket; aggregates: <b>_daily")
            s.add_argument("--token-file", help="all-access token (default: LORDI_INFLUX_TOKEN)")
