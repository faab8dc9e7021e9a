"""`lordi store status`: did samples arrive? Per school, from the time-series store
itself (no Grafana): laptops seen, samples, battery and Wi-Fi points, last report.

What is counted (the collector's series, docs/contract.md "What is stored"):
- samples: points of the `device` measurement (`report=1i`, one per sample);
- laptops: distinct `device` tags among them;
- battery / wifi: points of `battery` (one per battery per sample) and `wifi`;
- last report: the newest `device` point.
The window is (now - since, now + 1 h]: the collector accepts samples up to an hour
ahead of its clock (collector/contract.py, MAX_CLOCK_AHEAD), and those count too.

Stores: VictoriaMetrics (MetricsQL instant queries, series `<measurement>_<field>`)
and InfluxDB 1.x (InfluxQL over `/query`, basic auth from LORDI_INFLUX_USER and
LORDI_INFLUX_PASSWORD as `lordi retention influxdb1`). InfluxDB 2.x is not supported:
it cannot be tested here (not in Debian).

Exit codes: 0 some sample found, 1 the store answered but holds none in the window,
2 error (one line on stderr: the URL and what failed).
"""

# ruff: noqa: S608 - InfluxQL text built from checked UAIs and numbers

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.config import UAI  # stdlib only: cheap to import
from lordi import vm

CLOCK_AHEAD = timedelta(hours=1)  # collector.contract.MAX_CLOCK_AHEAD
KINDS = {"victoriametrics": "VictoriaMetrics", "influxdb1": "InfluxDB"}
_DURATION = re.compile(r"^([0-9]{1,6})([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


class StoreStatusError(Exception):
    """The store could not be reached or refused the query; the message says which."""


@dataclass
class SchoolStatus:
    school: str
    name: str | None = None
    laptops: int = 0
    samples: int = 0
    battery: int = 0
    wifi: int = 0
    last: datetime | None = None


@dataclass(frozen=True)
class Window:
    start: datetime  # excluded
    end: datetime  # included


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"expected e.g. 30m, 24h, 7d (got {text!r})")
    return timedelta(seconds=int(match[1]) * _UNIT_S[match[2]])


def _uai(text: str) -> str:
    if not UAI.match(text):
        raise argparse.ArgumentTypeError(f"a UAI is 7 digits and a capital letter (got {text!r})")
    return text


def _reason(exc: BaseException) -> str:
    """`connection refused`, `timed out`... rather than `<urlopen error [Errno 111] ...>`."""
    reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror[0].lower() + reason.strerror[1:]
    return str(reason) or type(reason).__name__


def _detail(exc: urllib.error.HTTPError) -> str:
    """The `error` of a JSON error body (both stores send one), else the text."""
    text = exc.read().decode(errors="replace")
    with contextlib.suppress(ValueError, AttributeError):
        text = str(json.loads(text).get("error", text))
    return text[:200].strip()


# --- VictoriaMetrics -------------------------------------------------------------------


def _vm_query(url: str, promql: str, time_s: float) -> list[dict[str, Any]]:
    where = f"VictoriaMetrics at {url}"
    try:
        return vm.query(url, promql, time_s)
    except urllib.error.HTTPError as exc:
        hint = " (is it VictoriaMetrics? see --kind)" if exc.code == 404 else ""
        raise StoreStatusError(f"{where}: HTTP {exc.code}: {_detail(exc)}{hint}") from None
    except OSError as exc:
        raise StoreStatusError(f"{where}: cannot connect: {_reason(exc)}") from None
    except (ValueError, KeyError, RuntimeError):
        raise StoreStatusError(f"{where}: not a Prometheus query API answer") from None


def victoriametrics(url: str, window: Window, schools: list[str]) -> dict[str, SchoolStatus]:
    sel = '{school=~"' + "|".join(schools) + '"}' if schools else ""
    span = f"[{int((window.end - window.start).total_seconds())}s]"
    at = window.end.timestamp()
    out: dict[str, SchoolStatus] = {}
    for attr, promql in (
        ("laptops", f"count(count_over_time(device_report{sel}{span})) by (school)"),
        ("samples", f"sum(count_over_time(device_report{sel}{span})) by (school)"),
        ("battery", f"sum(count_over_time(battery_present{sel}{span})) by (school)"),
        ("wifi", f"sum(count_over_time(wifi_connected{sel}{span})) by (school)"),
        ("last", f"max(tlast_over_time(device_report{sel}{span})) by (school)"),
    ):
        for row in _vm_query(url.rstrip("/"), promql, at):
            uai = str(row["metric"].get("school", ""))
            status = out.setdefault(uai, SchoolStatus(uai))
            value = float(row["value"])
            if attr == "last":
                status.last = datetime.fromtimestamp(round(value * 1000) / 1000, UTC)
            else:
                setattr(status, attr, int(value))
    return out


# --- InfluxDB 1.x ----------------------------------------------------------------------


def _influx_series(url: str, db: str, q: str) -> list[dict[str, Any]]:
    """The series of one InfluxQL statement's answer."""
    where = f"InfluxDB at {url}"
    body = urllib.parse.urlencode({"db": db, "q": q, "epoch": "ms"}).encode()
    req = urllib.request.Request(f"{url.rstrip('/')}/query", data=body, method="POST")  # noqa: S310
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    user = os.environ.get("LORDI_INFLUX_USER", "")
    if user:
        pair = f"{user}:{os.environ.get('LORDI_INFLUX_PASSWORD', '')}".encode()
        req.add_header("Authorization", "Basic " + base64.b64encode(pair).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - operator's URL
            doc = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        hint = ""
        if exc.code in (401, 403):
            who = f"user {user!r}" if user else "no user set"
            hint = f" (check LORDI_INFLUX_USER and LORDI_INFLUX_PASSWORD: {who})"
        elif exc.code == 404:
            hint = " (is it InfluxDB 1.x? see --kind)"
        raise StoreStatusError(f"{where}: HTTP {exc.code}: {_detail(exc)}{hint}") from None
    except OSError as exc:
        raise StoreStatusError(f"{where}: cannot connect: {_reason(exc)}") from None
    except ValueError:
        raise StoreStatusError(f"{where}: not an InfluxDB /query answer") from None
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, list):
        raise StoreStatusError(f"{where}: not an InfluxDB /query answer")
    for result in results:
        error = str(result.get("error", ""))
        if error.startswith("database not found"):
            raise StoreStatusError(f"{where}: database {db!r} not found (--db)")
        if error:
            raise StoreStatusError(f"{where}: {error}")
    series: list[dict[str, Any]] = results[0].get("series", []) if results else []
    return series


def influxdb1(url: str, db: str, window: Window, schools: list[str]) -> dict[str, SchoolStatus]:
    start_ms, end_ms = (round(ts.timestamp() * 1000) for ts in (window.start, window.end))
    cond = f"time > {start_ms}ms AND time <= {end_ms}ms"
    if schools:
        cond += ' AND "school" =~ /^(' + "|".join(schools) + ")$/"
    statements = (
        (
            ("laptops", "samples"),
            'SELECT count("c") AS "laptops", sum("c") AS "samples" FROM (SELECT count("report")'
            f' AS "c" FROM "device" WHERE {cond} GROUP BY "school", "device") GROUP BY "school"',
        ),
        (
            ("battery",),
            f'SELECT count("present") AS "battery" FROM "battery" WHERE {cond} GROUP BY "school"',
        ),
        (
            ("wifi",),
            f'SELECT count("connected") AS "wifi" FROM "wifi" WHERE {cond} GROUP BY "school"',
        ),
        (
            ("last",),
            f'SELECT last("report") AS "last" FROM "device" WHERE {cond} GROUP BY "school"',
        ),
    )
    out: dict[str, SchoolStatus] = {}
    # One request per statement: with several, a missing database is only
    # "not executed" (InfluxDB 1.6), not "database not found".
    for columns, statement in statements:
        for series in _influx_series(url, db, statement):
            if not {"time", *columns} <= set(series.get("columns") or []):
                # VictoriaMetrics answers any /query with its SHOW DATABASES stub
                raise StoreStatusError(
                    f"InfluxDB at {url}: unexpected answer (is it InfluxDB 1.x? see --kind)"
                )
            uai = str(series.get("tags", {}).get("school", ""))
            status = out.setdefault(uai, SchoolStatus(uai))
            for row in series.get("values") or []:
                values = dict(zip(series["columns"], row, strict=True))
                if columns == ("last",):
                    status.last = datetime.fromtimestamp(int(values["time"]) / 1000, UTC)
                    continue
                for attr in columns:
                    setattr(status, attr, int(values[attr] or 0))
    return out


# --- the report ------------------------------------------------------------------------


def merge(
    found: dict[str, SchoolStatus], schools: list[str], names: dict[str, str] | None
) -> list[SchoolStatus]:
    """Schools with data first, then the asked-for or registered ones without (by UAI)."""
    wanted = set(schools) if schools else set(names or {}) | set(found)
    rows = [found.get(uai) or SchoolStatus(uai) for uai in sorted(wanted)]
    for row in rows:
        if names is not None:
            row.name = names.get(row.school, "(not in registry)")
    return [r for r in rows if r.samples] + [r for r in rows if not r.samples]


def age(seconds: float) -> str:
    span = abs(int(seconds))
    if span < 60:
        text = f"{span} s"
    elif span < 3600:
        text = f"{span // 60} min"
    elif span < 48 * 3600:
        text = f"{span // 3600} h"
    else:
        text = f"{span // 86_400} d"
    return f"in {text}: clock ahead" if seconds < 0 else f"{text} ago"


def render(rows: list[SchoolStatus], now: datetime, header: str) -> str:
    with_names = any(r.name is not None for r in rows)
    head = ["LAPTOPS", "SAMPLES", "BATTERY", "WIFI", "LAST REPORT (UTC)"]
    table = [["SCHOOL", *(["NAME"] if with_names else []), *head]]
    for r in rows:
        last = "no data"
        if r.last is not None:
            last = f"{r.last:%Y-%m-%d %H:%M:%S} ({age((now - r.last).total_seconds())})"
        counts = [str(r.laptops), str(r.samples), str(r.battery), str(r.wifi)]
        table.append([r.school, *([r.name or ""] if with_names else []), *counts, last])
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    first_count = 2 if with_names else 1
    lines = [header]
    for line in table:
        cells = [
            cell.rjust(w) if first_count <= i < len(line) - 1 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    seen = [r for r in rows if r.samples]
    lines.append(
        f"{len(seen)} school(s) with data, {len(rows) - len(seen)} without; "
        f"{sum(r.laptops for r in seen)} laptop(s), {sum(r.samples for r in seen)} sample(s)"
    )
    return "\n".join(lines) + "\n"


def _iso(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def as_json(rows: list[SchoolStatus], now: datetime, window: Window, store: dict[str, str]) -> str:
    schools = [
        {
            "school": r.school,
            "name": r.name,
            "laptops": r.laptops,
            "samples": r.samples,
            "battery_points": r.battery,
            "wifi_points": r.wifi,
            "last_report": None if r.last is None else _iso(r.last),
            "age_s": None if r.last is None else int((now - r.last).total_seconds()),
        }
        for r in rows
    ]
    doc = {
        "store": store,
        "now": _iso(now),
        "from": _iso(window.start),
        "to": _iso(window.end),
        "schools": schools,
        "no_data": [r.school for r in rows if not r.samples],
        "laptops": sum(r.laptops for r in rows),
        "samples": sum(r.samples for r in rows),
    }
    return json.dumps(doc, ensure_ascii=False)


def _names(registry: str | None) -> dict[str, str] | None:
    if registry is None:
        return None
    from collector.notify.errors import RegistryError  # noqa: PLC0415 - pydantic only here
    from collector.notify.registry import load_registry  # noqa: PLC0415

    try:
        return {uai: s.name for uai, s in load_registry(Path(registry)).schools.items()}
    except RegistryError as exc:
        raise StoreStatusError(f"registry: {exc}") from None


def cmd_status(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    window = Window(now - args.since, now + CLOCK_AHEAD)
    schools = sorted(set(args.school or []))
    try:
        names = _names(args.registry)
        if args.kind == "influxdb1":
            found = influxdb1(args.url, args.db, window, schools)
        else:
            found = victoriametrics(args.url, window, schools)
    except StoreStatusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = merge(found, schools, names)
    store = {"kind": args.kind, "url": args.url}
    if args.kind == "influxdb1":
        store["db"] = args.db
    if args.json:
        print(as_json(rows, now, window, store))
    else:
        where = f"{KINDS[args.kind]} {args.url}" + (f" (db {args.db})" if "db" in store else "")
        header = f"{where}: samples since {window.start:%Y-%m-%d %H:%M} UTC"
        print(render(rows, now, header), end="")
    return 0 if any(r.samples for r in rows) else 1


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("store", help="what the time-series store holds (without Grafana)")
    acts = p.add_subparsers(dest="action", required=True)
    s = acts.add_parser(
        "status",
        help="per school: laptops, samples and last report in a recent window",
        description="Did samples arrive? Per school: laptops seen, samples (device "
        "reports), battery and Wi-Fi points, last report. Exit code 0 when a sample is "
        "found, 1 when the store holds none in the window, 2 on errors. Stores: "
        "VictoriaMetrics and InfluxDB 1.x (InfluxDB 2.x is not supported).",
    )
    s.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8428")
    s.add_argument(
        "--kind",
        choices=list(KINDS),
        default="victoriametrics",
        help="the store (default victoriametrics); influxdb1: InfluxQL, basic auth from "
        "LORDI_INFLUX_USER and LORDI_INFLUX_PASSWORD when set",
    )
    s.add_argument("--db", default="lordi", help="influxdb1: the database (default lordi)")
    s.add_argument(
        "--school", action="append", type=_uai, metavar="UAI", help="only this school (repeatable)"
    )
    s.add_argument(
        "--registry", help="schools.toml: names, and its schools without data listed as such"
    )
    s.add_argument(
        "--since",
        type=parse_duration,
        default=parse_duration("24h"),
        metavar="DURATION",
        help="window, e.g. 30m, 24h, 7d (default 24h; samples up to 1 h ahead count too)",
    )
    s.add_argument("--json", action="store_true", help="one line of JSON")
    s.set_defaults(func=cmd_status)
