"""One code path: the command line and the web act on the same store through the
same service, and each sees what the other did; accounts are managed by
`lordi web user ...`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from starlette.testclient import TestClient

from collector.alerts.store import AlertStore
from lordi.web.cli import build
from lordi.web.config import load_web_settings
from lordi.web.seed import now_utc, seed_school
from tests.notify.test_escalate_command import _local_registry_file
from tests.web.site import PASSWORD, SCHOOL_A, csrf_of

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lordi.cli", *args],
        input=stdin, capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip


def _configs(tmp_path: Path) -> tuple[Path, Path, str]:
    url = f"sqlite:///{tmp_path / 'alerts.sqlite3'}"
    collector = tmp_path / "collector.toml"
    collector.write_text(
        f'[alerts]\nstore_url = "{url}"\nregistry = "{_local_registry_file(tmp_path)}"\n'
        '[alerts.notify]\nweb_url = "https://lordi.example.org/alertes/{id}"\n'
        '[alerts.notify.smtp]\nport = 9\ntimeout_s = 1\n'
        "[alerts.notify.alert_topic]\nenabled = false\n",
        encoding="utf-8",
    )
    web = tmp_path / "web.toml"
    web.write_text(f'[web]\ncollector_config = "{collector}"\n', encoding="utf-8")
    return collector, web, url


def test_cli_and_web_see_each_others_actions(tmp_path: Path) -> None:
    collector, web_toml, url = _configs(tmp_path)
    store = AlertStore(url)
    store.create_tables()
    first, second = seed_school(store, SCHOOL_A, now_utc())[:2]

    added = _run("web", "--config", str(web_toml), "user", "add", "marie", "--schools", SCHOOL_A,
                 "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert f"compte marie créé (school {SCHOOL_A})" in added.stdout

    # The command line takes one alert...
    taken = _run("alerts", "--config", str(collector), "ack", str(first), "--by", "paul")
    assert taken.returncode == 0, taken.stderr
    # ...the web shows it taken by paul, and takes the other one.
    client = TestClient(build(load_web_settings(web_toml)), base_url="https://testserver")
    login = client.get("/connexion")
    client.post("/connexion", data={"utilisateur": "marie", "mot_de_passe": PASSWORD,
                                    "csrf": csrf_of(login.text)})  # fmt: skip
    page = client.get(f"/etablissements/{SCHOOL_A}").text
    assert "Prise en charge par paul" in page
    alert_page = client.get(f"/alertes/{second}").text
    client.post(f"/alertes/{second}/prendre", data={"csrf": csrf_of(alert_page)})
    listing = _run("alerts", "--config", str(collector), "--school", SCHOOL_A)
    assert f"#{second} " in listing.stdout
    assert "prise en charge par marie" in listing.stdout
    assert "prise en charge par paul" in listing.stdout

    # Resolving from the command line needs a reason, like the web.
    resolved = _run("alerts", "--config", str(collector), "resolve", str(first), "--by", "paul",
                    "--reason", "battery_replaced")  # fmt: skip
    assert resolved.returncode == 0, resolved.stderr
    assert "Batterie remplacée" in resolved.stdout
    assert store.get_alert(first).status == "resolved"
    history = client.get(f"/alertes/{first}").text
    assert "Batterie remplacée" in history and "<strong>paul</strong>" in history


def test_user_management_commands(tmp_path: Path) -> None:
    _collector, web_toml, _url = _configs(tmp_path)
    cfg = ["web", "--config", str(web_toml), "user"]
    short = _run(*cfg, "add", "x", "--schools", SCHOOL_A, "--password-stdin", stdin="court\n")
    assert short.returncode == 2 and "password: at least 12 characters" in short.stderr
    no_school = _run(*cfg, "add", "y", "--password-stdin", stdin=PASSWORD + "\n")
    assert no_school.returncode == 2
    assert "schools: a school account needs at least one UAI code" in no_school.stderr
    generated = _run(*cfg, "add", "reg", "--role", "region")  # no stdin: a generated password
    assert generated.returncode == 0
    assert "mot de passe (à transmettre, il ne sera plus affiché) : " in generated.stdout
    twice = _run(*cfg, "add", "reg", "--role", "region")
    assert twice.returncode == 2 and "name: a user 'reg' already exists" in twice.stderr
    assert _run(*cfg, "disable", "reg").returncode == 0
    listing = _run(*cfg, "list").stdout
    assert "reg\tregion\t*\tdésactivé\tmot de passe" in listing
    assert _run(*cfg, "disable", "nobody").returncode == 2
    reset = _run(*cfg, "reset", "reg", "--password-stdin", stdin="another good one\n")
    assert reset.returncode == 0 and "ses sessions sont fermées" in reset.stdout
