"""lordi-web's /metrics (`[web] metrics = true`) and /readyz: on the seeded worklist
over SQLite and the real PostgreSQL server, a store that does not answer, and a
real `lordi-web` process scraped by a VictoriaMetrics of the test's own through
the shipped provisioning/metrics/scrape.yml."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from collector.alerts.store import AlertStore
from collector.worklist import Worklist
from lordi.demo import web_command
from lordi.stack import free_port
from lordi.web.accounts import Accounts
from lordi.web.app import WebApp
from lordi.web.config import WebSettings
from lordi.web.metrics import route_template
from tests.alerts.helpers import BACKENDS, database
from tests.metrics.helpers import ROOT, eventually, get, private_vm, scrape_config
from tests.web.site import SCHOOL_A, Site, site

Labels = tuple[tuple[str, str], ...]


def samples(text: str, name: str) -> dict[Labels, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


@pytest.fixture(params=BACKENDS)
def measured(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    with (
        database(request.param, str(tmp_path / "alerts.sqlite3")) as db,
        site(db(), None, tmp_path, metrics=True) as opened,
    ):
        yield opened


def test_requests_counted_by_route_template(measured: Site) -> None:
    client = measured.login("tech-a")
    alert_id = measured.ids[SCHOOL_A][0]
    for _ in range(2):
        assert client.get(f"/alertes/{alert_id}").status_code == 200
    assert client.get(f"/etablissements/{SCHOOL_A}").status_code == 200
    assert client.get("/alertes/999999").status_code == 404  # not in the store
    assert client.get("/no/such/page/123").status_code == 404  # no route
    assert client.get("/readyz").text == "ready\n"
    text = client.get("/metrics").text
    counted = samples(text, "lordi_web_requests_total")
    assert counted[(("route", "/alertes/{alert_id:int}"), ("status", "200"))] == 2
    assert counted[(("route", "/alertes/{alert_id:int}"), ("status", "404"))] == 1
    assert counted[(("route", "/etablissements/{uai}"), ("status", "200"))] == 1
    assert counted[(("route", "/connexion"), ("status", "303"))] == 1  # the log-in
    assert counted[(("route", "other"), ("status", "404"))] == 1
    assert counted[(("route", "/readyz"), ("status", "200"))] == 1
    routes = {dict(labels)["route"] for labels in counted}
    assert not any(str(alert_id) in r or "999999" in r or SCHOOL_A in r for r in routes)
    timed = samples(text, "lordi_web_request_seconds_count")
    assert timed[(("route", "/alertes/{alert_id:int}"),)] == 3
    assert samples(text, "process_resident_memory_bytes")[()] > 10_000_000
    # /metrics is served without a session (the proxy keeps it off the internet).
    assert measured.client().get("/metrics").status_code == 200


def test_metrics_off_by_default(tmp_path: Path) -> None:
    with (
        database("sqlite", str(tmp_path / "alerts.sqlite3")) as db,
        site(db(), None, tmp_path) as opened,
    ):
        assert opened.app.settings.metrics is False
        client = opened.client()
        assert client.get("/metrics").status_code == 404
        assert client.get("/healthz").text == "ok"
        assert client.get("/readyz").status_code == 200


def unreachable_app(tmp_path: Path, url: str) -> WebApp:
    """lordi-web over a store that does not answer (nothing is created in it)."""
    store = AlertStore(url)
    settings = WebSettings.model_validate({"collector_config": str(tmp_path / "unused.toml")})
    return WebApp(settings, Worklist(store), Accounts(store.engine))


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres@127.0.0.1:{port}/lordi",  # nothing listens there
        "sqlite:///{tmp}/no/such/folder/alerts.sqlite3",
    ],
)
def test_readyz_503_when_the_store_does_not_answer(tmp_path: Path, url: str) -> None:
    from starlette.testclient import TestClient  # noqa: PLC0415

    app = unreachable_app(tmp_path, url.format(port=free_port(), tmp=tmp_path))
    client = TestClient(app.asgi(), base_url="https://testserver")
    answer = client.get("/readyz")
    assert (answer.status_code, answer.text) == (503, "not ready: store unreachable\n")
    assert client.get("/healthz").status_code == 200  # the process itself is fine


def test_real_lordi_web_scraped_by_victoriametrics(tmp_path: Path) -> None:
    """`lordi-web` with `metrics = true`, its port scraped every second with the
    lordi-web job of provisioning/metrics/scrape.yml: requests by route arrive in
    VictoriaMetrics; /readyz answers 200 over its SQLite store."""
    collector_toml = tmp_path / "collector.toml"
    store_url = f"sqlite:///{tmp_path / 'alerts.sqlite3'}"
    registry = ROOT / "provisioning" / "schools.toml"
    collector_toml.write_text(
        f"[alerts]\nstore_url = {json.dumps(store_url)}\nregistry = {json.dumps(str(registry))}\n",
        encoding="utf-8",
    )
    port = free_port()
    web_toml = tmp_path / "web.toml"
    web_toml.write_text(
        f"[web]\nport = {port}\nmetrics = true\n"
        f"collector_config = {json.dumps(str(collector_toml))}\n",
        encoding="utf-8",
    )
    log = tmp_path / "lordi-web.log"
    with log.open("wb") as out:
        web = subprocess.Popen(
            [*web_command(), "--config", str(web_toml)], stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        assert eventually(lambda: get(f"{base}/healthz")[0] == 200, 30), log.read_text()
        assert get(f"{base}/readyz") == (200, "ready\n")
        for _ in range(3):
            assert httpx.get(f"{base}/connexion").status_code == 200
        config = scrape_config(tmp_path / "scrape.yml", "lordi-web", f"127.0.0.1:{port}")
        with private_vm(tmp_path / "scraper", f"-promscrape.config={config}") as scraper:
            query = 'lordi_web_requests_total{job="lordi-web",route="/connexion",status="200"}'
            assert eventually(lambda: scraper.value(query) == 3), scraper.value(query)
            ready = 'lordi_web_requests_total{job="lordi-web",route="/readyz",status="200"}'
            assert scraper.value(ready) == 1
            # Its own scrapes are counted too, by route.
            assert eventually(
                lambda: (scraper.value('lordi_web_requests_total{route="/metrics"}') or 0) >= 1
            )
            assert (scraper.value('process_cpu_seconds_total{job="lordi-web"}') or 0) > 0
    finally:
        web.terminate()
        web.wait(20)
    assert "Traceback" not in log.read_text()


def test_route_template_without_starlettes_scope_route(measured: Site) -> None:
    """Starlette releases that do not record the route in the scope: matched again."""
    routes = measured.app.asgi().routes
    scope = {"type": "http", "method": "GET", "path": "/alertes/42", "root_path": ""}
    assert route_template(scope, routes) == "/alertes/{alert_id:int}"
    assert route_template({**scope, "path": "/static/app.css"}, routes) == "/static"
    assert route_template({**scope, "path": "/x/y"}, routes) == "other"
