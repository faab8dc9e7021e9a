"""Fleet dashboard query time with 2,000 vs 20,000 laptops, on a private InfluxDB 1.6.7.

    python -m lordi.bench.dashboards     # prints JSON; `run()` returns the same dict

For each fleet size, one database is loaded with a week of what the collector would
write: the per-school summaries (`collector.summaries` layout: one `school_summary`
point per school and school hour, one `school_model_summary` point per school, model
and hour) and, for contrast, one raw `battery` point per laptop and day. The lines
are generated directly (no agents): healths are drawn at random, the summaries'
bands and percentiles are computed from them as `collector.summaries` does.

Every query of the generated Fleet dashboard (and its school variable) runs with
Grafana's macros substituted (`$__interval` = 1h; "All" schools, i.e. the variable's
allValue `.*`, and again with the 220 schools listed as `(A|B|...)`) and is
timed as the median of `repeats` runs; the dashboard's time is the sum of the
medians. The "raw" figure is the same health-band question asked of the per-device
series, which is what the summaries avoid.
"""

from __future__ import annotations

import json
import random
import statistics
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.summaries import MODEL_SUMMARY, SUMMARY, percentile
from dashboards.generate import generated
from dashboards.panels import queries
from lordi.stack import LocalStack

SCHOOLS = 220
MODELS = ("L19L3PD1", "L20M4PC1", "01AV490", "SB10K97644")
DAYS = 7
SCHOOL_HOURS = range(7, 17)  # UTC hours with reports
RAW_BANDS = (
    'SELECT count("h") AS "lt60" FROM (SELECT last("health_pct") AS "h" FROM "battery" '
    'WHERE $timeFilter AND "school" =~ /^$school$/ GROUP BY "school", "device") '
    'WHERE "h" < 60 GROUP BY "school"'
)


def _post(url: str, body: bytes) -> None:
    req = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 - loopback
    with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310 - loopback
        if resp.status not in (200, 204):
            raise RuntimeError(f"{url}: HTTP {resp.status}")


def _query(base: str, db: str, q: str) -> dict[str, Any]:
    params = urllib.parse.urlencode({"db": db, "q": q, "epoch": "ms"})
    with urllib.request.urlopen(f"{base}/query?{params}", timeout=120) as resp:  # noqa: S310
        result: dict[str, Any] = json.loads(resp.read())["results"][0]
    if "error" in result or not result.get("series"):
        raise RuntimeError(f"{q}: {result}")
    return result


def _bands(healths: list[float]) -> str:
    lt60 = sum(1 for h in healths if h < 60)
    ge80 = sum(1 for h in healths if h >= 80)
    return (
        f"devices_known={len(healths)}i,health_lt60={lt60}i,"
        f"health_60_80={len(healths) - lt60 - ge80}i,health_ge80={ge80}i"
    )


def fleet_lines(devices: int, end: datetime, seed: int = 7) -> tuple[list[str], list[str]]:
    """(summary lines, raw battery lines) for `devices` laptops over SCHOOLS schools."""
    rng = random.Random(seed)
    schools = [f"{34_00000 + i:07d}A" for i in range(SCHOOLS)]
    fleet = [
        (
            schools[i % SCHOOLS],
            f"dev-{i:06d}",
            MODELS[rng.randrange(len(MODELS))],
            rng.uniform(40, 101),
        )
        for i in range(devices)
    ]
    first_day = end.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=DAYS)
    summaries: list[str] = []
    raw: list[str] = []
    for day in range(DAYS):
        midnight = first_day + timedelta(days=day)
        for school, device, model, health in fleet:
            ts = int((midnight + timedelta(hours=9)).timestamp() * 1000)
            raw.append(
                f"battery,school={school},device={device},battery=BAT0,model={model} "
                f"health_pct={health!r},cycle_count={day + 100}i {ts}"
            )
        for school in schools:
            mine = [(m, h) for s, _d, m, h in fleet if s == school]
            hs = [h for _m, h in mine]
            for hour in SCHOOL_HOURS:
                ts = int((midnight + timedelta(hours=hour)).timestamp() * 1000)
                summaries.append(
                    f"{SUMMARY},school={school} devices_reporting={len(hs)}i,{_bands(hs)},"
                    f"health_p10={percentile(hs, 10)!r},health_p50={percentile(hs, 50)!r},"
                    f"rssi_school_mean_dbm={rng.uniform(-75, -55)!r},"
                    f"rssi_school_reports={len(hs) * 12}i,disconnects={rng.randrange(20)}i {ts}"
                )
                for model in MODELS:
                    mh = [h for m, h in mine if m == model]
                    if mh:
                        summaries.append(
                            f"{MODEL_SUMMARY},school={school},model={model} {_bands(mh)},"
                            f"health_p50={percentile(mh, 50)!r} {ts}"
                        )
    return summaries, raw


def _substitute(query: str, start_ms: int, end_ms: int, schools: str) -> str:
    return (
        query.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
        .replace("$__interval", "1h")
        .replace("$school", schools)
    )


def _time(base: str, db: str, q: str, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _query(base, db, q)
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs) * 1000


def measure(base: str, devices: int, end: datetime, repeats: int) -> dict[str, Any]:
    db = f"bench_{devices}"
    _post(f"{base}/query?q=CREATE%20DATABASE%20{db}", b"")
    summaries, raw = fleet_lines(devices, end)
    t0 = time.perf_counter()
    lines = summaries + raw
    for i in range(0, len(lines), 20_000):
        _post(f"{base}/write?db={db}&precision=ms", "\n".join(lines[i : i + 20_000]).encode())
    load_s = time.perf_counter() - t0
    start_ms = int((end - timedelta(days=DAYS + 1)).timestamp() * 1000)
    end_ms = int(end.timestamp() * 1000)
    every = "(" + "|".join(f"{34_00000 + i:07d}A" for i in range(SCHOOLS)) + ")"
    doc = generated()["fleet.json"]

    def dashboard_ms(schools: str) -> dict[str, float]:
        return {
            f"{title}/{ref}": round(
                _time(base, db, _substitute(q, start_ms, end_ms, schools), repeats), 2
            )
            for title, ref, q in queries(doc)
        }

    per_query = dashboard_ms(".*")  # "All" with the variable's allValue
    listed = dashboard_ms(every)  # all 220 schools ticked one by one
    variable = next(v for v in doc["templating"]["list"] if v["name"] == "school")["query"]
    per_query["variable school"] = round(_time(base, db, variable, repeats), 2)
    raw_ms = _time(base, db, _substitute(RAW_BANDS, start_ms, end_ms, ".*"), repeats)
    return {
        "devices": devices,
        "summary_points": len(summaries),
        "raw_battery_points": len(raw),
        "load_s": round(load_s, 2),
        "fleet_dashboard_ms": round(sum(per_query.values()), 2),
        "per_query_ms": per_query,
        "fleet_dashboard_all_schools_listed_ms": round(sum(listed.values()), 2),
        "raw_series_health_bands_ms": round(raw_ms, 2),
    }


def run(sizes: tuple[int, int] = (2_000, 20_000), repeats: int = 5) -> dict[str, Any]:
    stack = LocalStack()
    try:
        stack.start_influxdb()
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        small, large = (measure(stack.influx_url, n, end, repeats) for n in sizes)
    finally:
        stack.stop()
    return {
        "store": "InfluxDB 1.6.7 (Debian), private instance, loopback",
        "schools": SCHOOLS,
        "days": DAYS,
        "repeats": repeats,
        "small": small,
        "large": large,
        "fleet_dashboard_ratio": round(
            large["fleet_dashboard_ms"] / small["fleet_dashboard_ms"], 2
        ),
        "raw_series_ratio": round(
            large["raw_series_health_bands_ms"] / small["raw_series_health_bands_ms"], 2
        ),
        "target_ratio": 2.0,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
