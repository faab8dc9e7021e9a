"""`lordi bench web --json`: the web worklist's pages at region size, over real HTTP
(issue 14: a school's worklist and the region overview in <= 200 ms at p95).

The region is built in a fresh PostgreSQL schema (dropped afterwards), as the
collector would have left it after a school year: 250,000 laptops in ~500 schools
(500 each; UAI codes of `lordi.sim.population.school_list`), each with its saved
rule state (`lordi.web.seed.device_document`: 20 weekly capacity points and the
fade line, health consistent with its alerts); 20,000 unresolved alerts (8 % of
the laptops: battery_replace critical 25 %, battery_watch warning 55 %,
charging_fault 15 %, access-point 5 %, spread unevenly over the schools, 30 % taken
by a technician); 40,000 resolved alerts of the past year with their transitions
(opened, taken, resolved with a reason); a forecast per school and term. The rows
are the ones `AlertStore.try_open_alert` / `transition` write (the seed's findings,
the same columns), bulk-loaded with COPY; then VACUUM ANALYZE, as autovacuum does
after a bulk load (PostgreSQL >= 13 vacuums insert-only tables too).

The real `lordi-web` process serves it (its own configuration files, the schools'
registry, uvicorn with its access log, as deployed); the bench is an HTTP client
with keep-alive connections, logged in through the log-in form as school
technicians (10 schools each) and as a region account. Requests are sent one at a
time; each page gets a warm-up, then `requests` timed requests (send to last byte):
- worklist: GET /etablissements/<uai>, the school varying over every technician's
  schools;
- alert: GET /alertes/<id>, unresolved alerts of those schools (a laptop's alert
  also loads the laptop's saved state for its charts);
- csv: GET /etablissements/<uai>/alertes.csv;
- region: GET /region, every school's counts and forecast.
"""

from __future__ import annotations

import http.client
import math
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa

from collector.alerts.model import Finding
from collector.alerts.schema import to_json
from collector.alerts.store import AlertStore
from collector.worklist import RESOLVE_REASONS
from lordi.pgschema import fresh_schema
from lordi.sim.population import school_list
from lordi.stack import free_port
from lordi.web.accounts import Accounts
from lordi.web.seed import (
    ap_finding,
    battery_finding,
    charger_finding,
    device_document,
    now_utc,
)

POSTGRES_URL = os.environ.get(
    "LORDI_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TARGET_P95_MS = 200.0
DEVICES_PER_SCHOOL = 500
OPEN_PER_DEVICE = 0.08  # 20,000 unresolved alerts for 250,000 laptops
RESOLVED_PER_OPEN = 2.0  # 40,000 resolved ones: the past year
# Unresolved alerts by rule (battery_replace is critical, the others warnings).
OPEN_MIX = {"battery_replace": 0.25, "battery_watch": 0.55, "charging_fault": 0.15, "ap": 0.05}
RESOLVED_MIX = {"battery_replace": 0.3, "battery_watch": 0.2, "charging_fault": 0.35, "ap": 0.15}
SCHOOLS_PER_TECHNICIAN = 10
TECHNICIANS = 50  # at most; each logs in once
TAKEN_SHARE = 0.3
TERMS = ("2026-27 T2", "2026-27 T3", "2026-27 T4")
WEEKS = 20


# --- the region in PostgreSQL --------------------------------------------------------

ALERT_COLUMNS = (
    "id", "key", "rule", "subject", "school", "device", "category", "severity", "status",
    "opened_at", "updated_at", "since", "resolved_at", "summary", "action", "evidence",
    "acknowledged_by", "escalated_to",
)  # fmt: skip
TRANSITION_COLUMNS = ("alert_id", "at", "from_status", "to_status", "by", "note", "evidence")
DEVICE_COLUMNS = ("school", "device", "asset_tag", "battery_model", "last_seen", "derived")


@dataclass
class Region:
    schools: list[tuple[str, str]]  # (UAI, name)
    devices: int = 0
    open_alerts: int = 0
    resolved_alerts: int = 0
    transitions: int = 0
    open_by_school: dict[str, list[int]] = field(default_factory=dict)  # unresolved ids


@dataclass(frozen=True, slots=True)
class Episode:
    """One alert to write: the seed's finding, when it opened, when it was resolved."""

    finding: Finding
    opened: datetime
    resolved: datetime | None = None


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _copy(conn: Any, table: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> int:
    """COPY rows into `table` through psycopg (the driver connection). Row count."""
    names = ", ".join(f'"{c}"' for c in columns)
    n = 0
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


class RegionBuilder:
    """The rows of a region: laptops whose health agrees with their alerts, alerts
    unresolved and past with their transitions, forecasts."""

    def __init__(self, devices: int, now: datetime, seed: int = 14) -> None:
        self.rng = random.Random(seed)
        self.now = now
        n_schools = max(1, round(devices / DEVICES_PER_SCHOOL))
        self.region = Region(school_list(n_schools, random.Random(1)))
        self.uais = [uai for uai, _ in self.region.schools]
        self.sizes = dict(zip(self.uais, _split(devices, n_schools), strict=True))
        # Alerts are uneven: some schools have an old fleet or a bad network.
        self.weights = [self.rng.lognormvariate(0.0, 0.5) for _ in self.uais]
        self.counts = {u: dict.fromkeys(OPEN_MIX, 0) for u in self.uais}
        n_open = round(devices * OPEN_PER_DEVICE)
        for uai, rule in zip(self._schools(n_open), self._rules(OPEN_MIX, n_open), strict=True):
            self.counts[uai][rule] += 1
        self.health = {u: self._healths(u) for u in self.uais}
        self.alerts: list[tuple[Any, ...]] = []
        self.transitions: list[tuple[Any, ...]] = []
        self.technicians = [f"Technicien {i:02d}" for i in range(TECHNICIANS)]

    def _schools(self, n: int) -> list[str]:
        return self.rng.choices(self.uais, weights=self.weights, k=n)

    def _rules(self, mix: dict[str, float], n: int) -> list[str]:
        return self.rng.choices(list(mix), weights=list(mix.values()), k=n)

    def _healths(self, uai: str) -> list[int]:
        """Each laptop's battery health: packs to replace first, then to watch."""
        size, counts, rng = self.sizes[uai], self.counts[uai], self.rng
        replace_n = min(counts["battery_replace"], size)
        watch_n = min(counts["battery_watch"], size - replace_n)
        counts["battery_replace"], counts["battery_watch"] = replace_n, watch_n
        return (
            [rng.randint(50, 59) for _ in range(replace_n)]
            + [rng.randint(60, 79) for _ in range(watch_n)]
            + [rng.randint(80, 99) for _ in range(size - replace_n - watch_n)]
        )

    def device_rows(self) -> Iterator[tuple[Any, ...]]:
        docs = {h: to_json(device_document(float(h), WEEKS, self.now)) for h in range(50, 100)}
        for s, uai in enumerate(self.uais):
            for n, health in enumerate(self.health[uai]):
                seen = self.now - timedelta(minutes=self.rng.randint(5, 4 * 24 * 60))
                yield (
                    uai, f"pc-{uai}-{n:04d}", f"LRD-{s:03d}-{n:06d}", "5B10W13930", seen,
                    docs[health],
                )  # fmt: skip

    @staticmethod
    def finding(rule: str, uai: str, n: int, health: float, at: datetime) -> Finding:
        device = f"pc-{uai}-{n:04d}"
        if rule in ("battery_replace", "battery_watch"):
            return battery_finding(uai, device, health, at)
        if rule == "charging_fault":
            return charger_finding(uai, device, at)
        return ap_finding(uai, f"{n:04x}{uai[:7]}ap", at)

    def add(self, episode: Episode) -> int:
        """The alert's row and transitions, as the store writes them: opened by the
        engine, maybe taken (and escalated) by a technician, maybe resolved."""
        f, opened, resolved, rng = episode.finding, episode.opened, episode.resolved, self.rng
        alert_id = len(self.alerts) + 1
        taken = rng.random() < (0.8 if resolved else TAKEN_SHARE)
        by = rng.choice(self.technicians) if taken else None
        escalated = "occimat" if by and f.category == "hardware" and rng.random() < 0.2 else None
        status = "resolved" if resolved else "acknowledged" if by else "open"
        taken_at = opened + timedelta(hours=2)
        self.alerts.append((
            alert_id, f.key, f.rule, f.subject, f.school, f.device, f.category, f.severity,
            status, opened, resolved or (taken_at if by else opened), f.at, resolved, f.summary,
            f.action, to_json(f.evidence), by, escalated,
        ))  # fmt: skip
        rows = self.transitions
        rows.append((alert_id, opened, None, "open", "engine", "", to_json(f.evidence)))
        if by:
            rows.append((alert_id, taken_at, "open", "acknowledged", by, "", "{}"))
        if escalated:
            note = f"escaladée vers {escalated}"
            rows.append((alert_id, taken_at, "acknowledged", "acknowledged", by, note, "{}"))
        if resolved and by and f.device is not None:
            reason = rng.choice(list(RESOLVE_REASONS)[:-1])
            rows.append((
                alert_id, resolved, "acknowledged", "resolved", by, RESOLVE_REASONS[reason],
                to_json({"reason": reason}),
            ))  # fmt: skip
        elif resolved:  # the engine saw the condition clear
            before = "acknowledged" if by else "open"
            rows.append((alert_id, resolved, before, "resolved", "engine", "", "{}"))
        return alert_id

    def build(self) -> None:
        rng, now, region = self.rng, self.now, self.region
        for uai in self.uais:
            counts, ids = self.counts[uai], []
            replace_n, watch_n = counts["battery_replace"], counts["battery_watch"]
            for rule, targets in (
                ("battery_replace", range(replace_n)),
                ("battery_watch", range(replace_n, replace_n + watch_n)),
                ("charging_fault", rng.sample(range(self.sizes[uai]), counts["charging_fault"])),
                ("ap", range(counts["ap"])),
            ):
                for n in targets:
                    since = now - timedelta(hours=rng.uniform(1, 60 * 24))
                    f = self.finding(rule, uai, n, float(self.health[uai][n]), since)
                    ids.append(self.add(Episode(f, since + timedelta(hours=1))))
            region.open_by_school[uai] = ids
        region.open_alerts = len(self.alerts)
        past = round(region.open_alerts * RESOLVED_PER_OPEN)
        for uai, rule in zip(self._schools(past), self._rules(RESOLVED_MIX, past), strict=True):
            since = now - timedelta(days=rng.uniform(60, 365))
            health = rng.uniform(50, 59.9) if rule == "battery_replace" else rng.uniform(60, 79)
            f = self.finding(rule, uai, rng.randrange(self.sizes[uai]), health, since)
            resolved = since + timedelta(days=rng.uniform(1, 30))
            self.add(Episode(f, since + timedelta(hours=1), resolved))
        region.resolved_alerts = len(self.alerts) - region.open_alerts

    def forecast(self) -> dict[str, dict[str, list[int]]]:
        out = {}
        for uai in self.uais:
            below_60 = self.counts[uai]["battery_replace"]
            below_80 = below_60 + self.counts[uai]["battery_watch"]
            out[uai] = {
                term: [
                    below_80 + 3 * k + self.rng.randint(0, 4),
                    below_60 + k + self.rng.randint(0, 2),
                ]
                for k, term in enumerate(TERMS)
            }
        return out


def build_region(store: AlertStore, devices: int, now: datetime, seed: int = 14) -> Region:
    """Laptops, alerts (unresolved and past), transitions and forecasts, bulk-loaded
    with COPY, then VACUUM ANALYZE; the rows are counted back."""
    builder = RegionBuilder(devices, now, seed)
    builder.build()
    region = builder.region
    raw = store.engine.raw_connection()
    try:
        conn = raw.driver_connection
        if conn is None:
            raise RuntimeError("no psycopg connection under the engine")
        region.devices = _copy(conn, "devices", DEVICE_COLUMNS, builder.device_rows())
        _copy(conn, "alerts", ALERT_COLUMNS, builder.alerts)
        region.transitions = _copy(conn, "transitions", TRANSITION_COLUMNS, builder.transitions)
        with conn.cursor() as cur:  # the ids were given: the next alert continues after them
            last = len(builder.alerts)
            cur.execute(
                "SELECT setval(pg_get_serial_sequence('alerts', 'id'), %s, %s)",
                (max(last, 1), last > 0),
            )
        raw.commit()
    finally:
        raw.close()
    store.forecasts.put(builder.forecast(), now)
    autocommit = store.engine.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as c:  # what autovacuum does after a bulk load
        c.execute(sa.text("VACUUM ANALYZE devices, alerts, transitions, forecasts"))
        counted = c.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM devices), (SELECT count(*) FROM alerts "
                "WHERE status <> 'resolved'), (SELECT count(*) FROM alerts WHERE status = "
                "'resolved'), (SELECT count(*) FROM transitions)"
            )
        ).one()
    planned = (region.devices, region.open_alerts, region.resolved_alerts, region.transitions)
    if tuple(counted) != planned:
        raise RuntimeError(f"rows in the store {tuple(counted)}, {planned} written")
    return region


# --- the server ----------------------------------------------------------------------


def _toml(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(work: Path, store_url: str, schools: list[tuple[str, str]], port: int) -> Path:
    """web.toml, the collector.toml it names and the schools' registry."""
    lines = [
        'fallback_email = "registre-lordi@example.org"',
        "[contractors.occimat]", 'name = "OcciMat Services"', 'category = "hardware"',
        'emails = ["sav@occimat.example.org"]',
        "[contractors.sudreseaux]", 'name = "Sud Réseaux"', 'category = "network"',
        'emails = ["noc@sudreseaux.example.org"]',
    ]  # fmt: skip
    for i, (uai, name) in enumerate(schools):
        lines += [
            f"[schools.{uai}]", f"name = {_toml(name)}", f'town = "Commune {i + 1}"',
            f'level1 = [{{ name = "Technicien {i % TECHNICIANS:02d}", '
            f'email = "tech{i}@example.org" }}]',
            'ssids = ["LORDI-EDU"]', 'hardware_contractor = "occimat"',
            'network_contractor = "sudreseaux"',
        ]  # fmt: skip
    (work / "schools.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (work / "collector.toml").write_text(
        f"[alerts]\nstore_url = {_toml(store_url)}\n"
        f"registry = {_toml(str(work / 'schools.toml'))}\n"
        "[alerts.notify.alert_topic]\nenabled = false\n",
        encoding="utf-8",
    )
    web = work / "web.toml"
    web.write_text(
        f'[web]\nhost = "127.0.0.1"\nport = {port}\n'
        f"collector_config = {_toml(str(work / 'collector.toml'))}\n"
        "secure_cookies = false\n",  # plain HTTP on the loopback
        encoding="utf-8",
    )
    return web


def _lordi_web() -> list[str]:
    script = Path(sys.executable).parent / "lordi-web"
    if script.exists():
        return [str(script)]
    found = shutil.which("lordi-web")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from lordi.web.cli import main; sys.exit(main())"]


@contextmanager
def web_server(config: Path, port: int, log: Path) -> Iterator[float]:
    """`lordi-web --config ... --port ...` until it answers /healthz; yields the
    seconds it took to start."""
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*_lordi_web(), "--config", str(config), "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = started + 120
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"lordi-web exited with {proc.returncode}:\n{tail}")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            finally:
                conn.close()
            if time.monotonic() > deadline:
                raise RuntimeError("lordi-web did not answer /healthz within 120 s")
            time.sleep(0.1)
        yield time.monotonic() - started
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


class Browser:
    """One person's keep-alive HTTP connection with their cookies. Uvicorn closes a
    connection idle for 5 s: after 4 s idle, the next request opens a new one (its
    connect timed with the request), as a browser finds its connection gone."""

    IDLE_S = 4.0

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}
        self.last = time.monotonic()

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, bytes, float]:
        """(status, body, milliseconds from sending to the last byte)."""
        headers = {"Connection": "keep-alive"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if time.monotonic() - self.last > self.IDLE_S:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        started = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        ms = (time.perf_counter() - started) * 1000
        self.last = time.monotonic()
        for header in response.headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel.value and morsel["max-age"] != "0":
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        return response.status, data, ms

    def login(self, name: str, password: str) -> None:
        status, page, _ = self.request("GET", "/connexion")
        found = re.search(rb'name="csrf" value="([^"]+)"', page)
        if status != 200 or not found:
            raise RuntimeError(f"log-in page: HTTP {status}, no CSRF field")
        form = {"utilisateur": name, "mot_de_passe": password, "csrf": found.group(1).decode()}
        status, _, _ = self.request("POST", "/connexion", urlencode(form))
        if status != 303 or "lordi_session" not in self.cookies:
            raise RuntimeError(f"log-in of {name}: HTTP {status}, no session")

    def get(self, path: str) -> tuple[bytes, float]:
        status, data, ms = self.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}")
        return data, ms

    def close(self) -> None:
        self.conn.close()


def figures(ms: list[float]) -> dict[str, float | int]:
    """p50 / p95 (nearest rank) / max in milliseconds, and the count."""
    ordered = sorted(ms)
    return {
        "p50_ms": round(ordered[math.ceil(0.50 * len(ordered)) - 1], 1),
        "p95_ms": round(ordered[math.ceil(0.95 * len(ordered)) - 1], 1),
        "max_ms": round(ordered[-1], 1),
        "n": len(ordered),
    }


# --- the run -------------------------------------------------------------------------


def run(
    devices: int = 250_000, requests: int = 200, warmup: int = 20, pg_url: str = POSTGRES_URL
) -> dict[str, Any]:
    now = now_utc()
    started = time.monotonic()
    with fresh_schema(pg_url, "lordi_bench_web_") as url, \
            tempfile.TemporaryDirectory(prefix="lordi-bench-web-") as tmp:  # fmt: skip
        store = AlertStore(url)
        try:
            store.create_tables()
            accounts = Accounts(store.engine)
            accounts.create_tables()
            region = build_region(store, devices, now)
            setup_s = time.monotonic() - started
            uais = [u for u, _ in region.schools]
            password = secrets.token_urlsafe(18)
            staff: dict[str, list[str]] = {}
            for i in range(min(TECHNICIANS, len(uais))):
                schools = uais[i::TECHNICIANS][:SCHOOLS_PER_TECHNICIAN]
                staff[f"bench-tech-{i:02d}"] = schools
                accounts.add(f"bench-tech-{i:02d}", "school", schools, password)
            accounts.add("bench-region", "region", [], password)
            work, port = Path(tmp), free_port()
            config = write_config(work, url, region.schools, port)
            with web_server(config, port, work / "lordi-web.log") as start_s:
                pages = _measure(port, password, staff, region, requests=requests, warmup=warmup)
        finally:
            store.close()
    return {
        "devices": region.devices,
        "open_alerts": region.open_alerts,
        "resolved_alerts": region.resolved_alerts,
        "transitions": region.transitions,
        "schools": len(region.schools),
        "setup_s": round(setup_s, 1),
        "server_start_s": round(start_s, 1),
        "technicians": len(staff),
        "schools_visited": len({u for schools in staff.values() for u in schools}),
        "requests_per_page": requests,
        "warmup_per_page": warmup,
        "pages": pages,
        "targets_p95_ms": {"worklist": TARGET_P95_MS, "region": TARGET_P95_MS},
        "meets_targets": {
            "worklist_p95_le_200ms": pages["worklist"]["p95_ms"] <= TARGET_P95_MS,
            "region_p95_le_200ms": pages["region"]["p95_ms"] <= TARGET_P95_MS,
        },
    }


def _measure(
    port: int, password: str, staff: dict[str, list[str]], region: Region, *, requests: int,
    warmup: int,
) -> dict[str, dict[str, float | int]]:  # fmt: skip
    browsers = {name: Browser(port) for name in [*staff, "bench-region"]}
    try:
        for name, browser in browsers.items():
            browser.login(name, password)
        rng = random.Random(7)
        names = list(staff)
        # (technician, school): every technician's schools in turn.
        visits = [(n, staff[n][k]) for k in range(SCHOOLS_PER_TECHNICIAN) for n in names
                  if k < len(staff[n])]  # fmt: skip
        expected = {u: len(ids) for u, ids in region.open_by_school.items()}

        def worklist(i: int) -> float:
            name, uai = visits[i % len(visits)]
            data, ms = browsers[name].get(f"/etablissements/{uai}")
            if uai.encode() not in data:
                raise RuntimeError(f"worklist of {uai}: the page does not name the school")
            return ms

        with_alerts = [(n, u) for n, u in visits if region.open_by_school[u]]

        def alert(_i: int) -> float:
            name, uai = rng.choice(with_alerts)
            alert_id = rng.choice(region.open_by_school[uai])
            data, ms = browsers[name].get(f"/alertes/{alert_id}")
            if uai.encode() not in data:
                raise RuntimeError(f"alert {alert_id}: the page does not name its school")
            return ms

        def csv(i: int) -> float:
            name, uai = visits[(i * 7) % len(visits)]
            data, ms = browsers[name].get(f"/etablissements/{uai}/alertes.csv")
            rows = data.count(b"\n") - 1
            if rows != expected[uai]:
                raise RuntimeError(f"CSV of {uai}: {rows} rows, {expected[uai]} expected")
            return ms

        def region_page(_i: int) -> float:
            data, ms = browsers["bench-region"].get("/region")
            if data.count(b'<tr><th scope="row">') != len(region.schools):
                raise RuntimeError("region overview: not every school listed")
            return ms

        out = {}
        for page, fetch in (
            ("worklist", worklist),
            ("alert", alert),
            ("csv", csv),
            ("region", region_page),
        ):
            for i in range(warmup):
                fetch(i + requests)
            out[page] = figures([fetch(i) for i in range(requests)])
        return out
    finally:
        for browser in browsers.values():
            browser.close()


def from_args(args: Any) -> dict[str, Any]:
    """`lordi bench web`: --devices (250,000)."""
    return run(args.devices or 250_000)
