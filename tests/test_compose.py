"""docker-compose.yml, checked without a Docker engine (none runs on this machine).

What is checked here: every file it mounts from the repository exists, the broker's
mounts are where the committed mosquitto.conf looks, ports and host names agree
between services, the collector's environment is accepted by the collector's own
settings loader, health checks exist where `depends_on` waits for them, every named
volume is declared, and no secret is written inline. The web worklist's service reads
the collector's store and registry, its web.toml loads with lordi-web's own loader,
and its health check (Python's urllib, run here) tells a live /healthz from a failing
one. What is not: pulling the images, starting the containers, the other health-check
commands inside the images (docs/server-stack.md).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.config import load_settings
from lordi.web.config import load_web_settings

ROOT = Path(__file__).resolve().parents[1]
ETC = "${LORDI_ETC:-/etc/lordi}"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return doc


def binds(service: dict[str, Any]) -> dict[str, str]:
    """container path -> host source of a service's bind mounts (short syntax)."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.replace(ETC, "@ETC").split(":")[:2]
        out[target] = source.replace("@ETC", ETC)
    return out


def test_services(compose: dict[str, Any]) -> None:
    assert sorted(compose["services"]) == ["collector", "grafana", "influxdb", "mosquitto", "web"]


def test_repository_files_exist_and_operator_files_are_documented(compose: dict[str, Any]) -> None:
    # The operator's files: the server stack's guide, and the web worklist's for its own.
    docs = "".join(
        (ROOT / "docs" / name).read_text(encoding="utf-8")
        for name in ("server-stack.md", "web-operations.md")
    )
    header = (ROOT / "docker-compose.yml").read_text(encoding="utf-8").split("services:")[0]
    for name, service in compose["services"].items():
        for target, source in binds(service).items():
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} is not in the repository"
            elif source.startswith(ETC):
                rel = source.removeprefix(ETC + "/")
                top = rel.split("/")[0]
                assert f"$LORDI_ETC/{top}" in header, (name, source)
                assert f"$LORDI_ETC/{top}" in docs, f"docs/server-stack.md: {source}"
            else:
                assert source in compose["volumes"], f"{name}: volume {source} not declared"
                assert target.startswith("/"), target
        for env_file in service.get("env_file", []):
            assert env_file.startswith(ETC + "/") and env_file.endswith(".env"), env_file
            assert f"$LORDI_ETC/{env_file.removeprefix(ETC + '/')}" in docs, env_file
    used = {s for svc in compose["services"].values() for s in binds(svc).values()}
    assert set(compose["volumes"]) <= used  # no forgotten volume


def test_broker_mounts_match_mosquitto_conf(compose: dict[str, Any]) -> None:
    conf = (ROOT / "provisioning" / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
    settings = dict(
        line.split(None, 1) for line in conf.splitlines() if line and not line.startswith("#")
    )
    mounts = binds(compose["services"]["mosquitto"])
    assert mounts["/etc/mosquitto/mosquitto.conf"] == "./provisioning/mosquitto/mosquitto.conf"
    assert mounts[settings["acl_file"]] == "./provisioning/mosquitto/acl"
    assert str(Path(settings["password_file"]).parent) in mounts  # a folder: see below
    for key in ("cafile", "certfile", "keyfile"):
        assert str(Path(settings[key]).parent) in mounts, key
    assert settings["persistence_location"].rstrip("/") in mounts
    assert str(Path(settings["log_dest"].split()[1]).parent) in mounts
    # The folder, not the file: the first enrolment creates `passwd` (a bind of a
    # missing file would create a directory) and keeps its lock file beside it.
    assert settings["password_file"] not in mounts
    entry = " ".join(compose["services"]["mosquitto"]["entrypoint"])
    assert "mosquitto -c /etc/mosquitto/mosquitto.conf" in entry
    listener = re.search(r"^listener (\d+)$", conf, re.M)
    assert listener is not None
    assert compose["services"]["mosquitto"]["ports"] == [f"{listener[1]}:{listener[1]}"]


def test_collector_reaches_broker_and_store(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = compose["services"]["collector"]
    env = collector["environment"]
    for name in [k for k in os.environ if k.startswith("LORDI_")]:
        monkeypatch.delenv(name)
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    # What collector.env holds in production (placeholders here).
    monkeypatch.setenv("LORDI_COLLECTOR_MQTT__PASSWORD", "CHANGE-ME")
    monkeypatch.setenv("LORDI_COLLECTOR_STORE__TOKEN", "CHANGE-ME")
    mounts = binds(collector)
    config = next(t for t, s in mounts.items() if s == "./provisioning/collector/collector.toml")
    assert collector["command"][-1] == config
    settings = load_settings(ROOT / "provisioning" / "collector" / "collector.toml")
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.tls) == ("mosquitto", 8883, True)
    assert settings.mqtt.ca_file is not None and str(settings.mqtt.ca_file) in mounts
    assert compose["services"]["mosquitto"]["ports"] == [f"{settings.mqtt.port}:8883"]
    assert settings.store.url == "http://influxdb:8086"
    assert compose["services"]["influxdb"]["ports"] == ["8086:8086"]
    assert str(settings.alerts.registry) in mounts
    store_path = settings.alerts.store_url.removeprefix("sqlite:///")
    assert mounts[str(Path(store_path).parent)] == "collector-state"
    acl = (ROOT / "provisioning" / "mosquitto" / "acl").read_text(encoding="utf-8")
    assert f"\nuser {settings.mqtt.username}\n" in acl  # a collector role exists for it
    influx_env = compose["services"]["influxdb"]["environment"]
    assert settings.store.org == influx_env["DOCKER_INFLUXDB_INIT_ORG"]
    assert settings.store.bucket == influx_env["DOCKER_INFLUXDB_INIT_BUCKET"]
    grafana_env = compose["services"]["grafana"]["environment"]
    assert grafana_env["LORDI_INFLUX_URL"] == settings.store.url
    assert grafana_env["LORDI_INFLUX_DB"] == settings.store.bucket  # the DBRP database


def test_healthchecks_and_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("mosquitto", "influxdb", "grafana", "collector", "web"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL") and check["retries"] >= 1, name
    for name, service in services.items():
        for dep, cond in service.get("depends_on", {}).items():
            assert cond == {"condition": "service_healthy"}, (name, dep)
            assert "healthcheck" in services[dep], f"{name} waits for {dep}, which has none"
        assert service["restart"] == "unless-stopped", name


def test_no_secret_inline(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key in service.get("environment", {}):
            assert not re.search(r"PASSWORD|TOKEN|SECRET|SHARE_GROUP", key), (name, key)
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert "CHANGE-ME" not in text


def test_grafana_mounts_provisioning_and_dashboards(compose: dict[str, Any]) -> None:
    mounts = binds(compose["services"]["grafana"])
    assert mounts["/etc/grafana/provisioning"] == "./provisioning/grafana"
    assert mounts["/var/lib/grafana/dashboards/lordi"] == "./dashboards"
    image = compose["services"]["grafana"]["image"]
    assert image.split(":")[1].startswith("11.")  # the dashboards' schema targets Grafana 11


def test_dockerfile_installs_the_collector_and_web_extras() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    # The wheel is built with the hot modules compiled, from every file it needs.
    assert "LORDI_COMPILE=1 pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ." in text
    for package in ("agent", "collector", "lordi", "dashboards", "build_backend"):
        assert f"COPY {package} ./{package}" in text
        assert (ROOT / package).is_dir()
    assert "COPY pyproject.toml setup.py MANIFEST.in README.md ./" in text
    assert 'pip install --no-cache-dir --find-links /wheels "lordi-telemetry[collector,web]"' in text
    assert "&& lordi-collector compiled" in text  # the build fails if it runs pure Python
    assert 'ENTRYPOINT ["lordi-collector"]' in text and "USER lordi" in text


# --- the web worklist ------------------------------------------------------------


def test_web_reads_the_collectors_store_and_registry(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    collector, web = compose["services"]["collector"], compose["services"]["web"]
    # The collector's image, built from the Dockerfile; lordi-web instead of the collector.
    assert (web["image"], web["build"]) == (collector["image"], collector["build"])
    assert web["entrypoint"] == ["lordi-web"]
    mounts = binds(web)
    config = web["command"][web["command"].index("--config") + 1]
    assert mounts[config] == "./provisioning/web/web-compose.toml"
    settings = load_web_settings(ROOT / "provisioning" / "web" / "web-compose.toml")
    # Published on the host's loopback only, to the port lordi-web listens on.
    assert settings.host == "0.0.0.0"  # noqa: S104 - inside the container; published on loopback
    assert web["ports"] == [f"127.0.0.1:{settings.port}:{settings.port}"]
    assert settings.secure_cookies and not settings.sso.enabled
    # The same collector.toml, store and registry as the collector.
    collector_mounts = binds(collector)
    target = str(settings.collector_config)
    assert mounts[target] == collector_mounts[target] == "./provisioning/collector/collector.toml"
    for key in ("LORDI_COLLECTOR_ALERTS__STORE_URL", "LORDI_COLLECTOR_ALERTS__REGISTRY"):
        assert web["environment"][key] == collector["environment"][key], key
    for name in [k for k in os.environ if k.startswith("LORDI_")]:
        monkeypatch.delenv(name)
    for key, value in web["environment"].items():
        monkeypatch.setenv(key, str(value))
    alerts = load_settings(ROOT / "provisioning" / "collector" / "collector.toml").alerts
    store_dir = str(Path(alerts.store_url.removeprefix("sqlite:///")).parent)
    assert mounts[store_dir] == collector_mounts[store_dir] == "collector-state"
    assert mounts[str(alerts.registry)] == collector_mounts[str(alerts.registry)]
    # Its secrets come from its own file, not the collector's (broker, store token).
    assert web["env_file"] == ["${LORDI_ETC:-/etc/lordi}/web.env"]


class Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[int, type[Health]]]:
    handler = type("H", (Health,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


def collector_settings(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The collector's settings as its container sees them (sample + environment)."""
    for name in [k for k in os.environ if k.startswith("LORDI_")]:
        monkeypatch.delenv(name)
    for key, value in compose["services"]["collector"]["environment"].items():
        monkeypatch.setenv(key, str(value))
    return load_settings(ROOT / "provisioning" / "collector" / "collector.toml")


def test_collector_serves_metrics_and_health_in_its_container(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics = collector_settings(compose, monkeypatch).metrics
    assert metrics.enabled
    assert metrics.host == "0.0.0.0"  # noqa: S104 - inside the container; published on loopback
    assert compose["services"]["collector"]["ports"] == [
        f"127.0.0.1:{metrics.port}:{metrics.port}"
    ]


@pytest.mark.parametrize("service", ["web", "collector"])
def test_healthcheck_runs_with_the_images_python(
    compose: dict[str, Any],
    health_server: tuple[int, type[Health]],
    monkeypatch: pytest.MonkeyPatch,
    service: str,
) -> None:
    """The health check's command, run with this Python against a server on a free
    port: exit 0 for 200 on /healthz, non-zero for a 500 or a 503 (no curl in slim
    images)."""
    test = compose["services"][service]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    code = test[3]
    if service == "web":
        port = load_web_settings(ROOT / "provisioning" / "web" / "web-compose.toml").port
    else:
        port = collector_settings(compose, monkeypatch).metrics.port
    assert f"http://127.0.0.1:{port}/healthz" in code
    live, handler = health_server
    code = code.replace(f"127.0.0.1:{port}", f"127.0.0.1:{live}")
    for status, healthy in ((200, True), (500, False), (503, False)):
        handler.status = status
        done = subprocess.run(
            [sys.executable, "-c", code], check=False, capture_output=True, timeout=30
        )
        assert (done.returncode == 0) is healthy, (status, done.stderr)
