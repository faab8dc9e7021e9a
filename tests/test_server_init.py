"""`lordi server init` and the registry commands it leads to, in a temporary root
(the end-to-end run on real servers: tests/walkthrough/)."""

from __future__ import annotations

import grp
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lordi import pki, serverfiles
from tests.walkthrough import debian

LORDI = str(Path(sys.executable).parent / "lordi")


def run(*argv: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([LORDI, *argv], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == expect, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture
def root() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="lordi-init-"))
    (folder / "etc" / "mosquitto").mkdir(parents=True)
    (folder / "etc" / "mosquitto" / "mosquitto.conf").write_text(debian.DEBIAN_MOSQUITTO_CONF)
    (folder / "etc" / "default").mkdir()
    (folder / "etc" / "default" / "victoria-metrics").write_text(debian.DEBIAN_VM_DEFAULTS)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def init(root: Path, *extra: str, expect: int = 0) -> str:
    return run("server", "init", "--root", str(root), "--host", "mqtt.lordi.example",
               "--fallback-email", "registre@example.org", "--tls-port", "18883",
               "--provisioning", str(debian.REPO / "provisioning"), *extra,
               expect=expect).stdout


def test_second_run_changes_nothing(root: Path) -> None:
    first = init(root)
    assert "created    system user" in first or "unchanged  system user" in first
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    again = init(root)
    assert "nothing to change" in again
    assert not [line for line in again.splitlines() if line.startswith(("created", "changed"))]
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert after == before  # secrets, certificates, configurations: the same bytes


def test_debian_broker_file_is_replaced_and_kept(root: Path) -> None:
    out = init(root)
    conf = root / "etc/mosquitto/mosquitto.conf"
    backup = root / "etc/mosquitto/mosquitto.conf.before-lordi"
    assert backup.read_text() == debian.DEBIAN_MOSQUITTO_CONF
    assert f"kept as {backup}" in out
    text = conf.read_text()
    assert "listener 18883\n" in text
    assert f"password_file {root}/etc/mosquitto/lordi/passwd\n" in text
    assert f"pid_file {root}/run/mosquitto/mosquitto.pid\n" in text
    assert "include_dir" not in text  # Debian's settings would be set twice


def test_owners_and_modes(root: Path) -> None:
    init(root)
    collector = grp.getgrnam("lordi-collector").gr_gid
    mosquitto = grp.getgrnam("mosquitto").gr_gid
    expected = {
        "etc/lordi": (0o750, collector), "etc/lordi/collector.toml": (0o640, collector),
        "etc/lordi/schools.toml": (0o640, collector), "etc/lordi/collector.env": (0o600, 0),
        "etc/lordi/bssid.key": (0o600, 0), "etc/lordi/ca/ca.key": (0o600, 0),
        "etc/mosquitto/certs/server.key": (0o640, mosquitto),
        "etc/mosquitto/lordi/passwd": (0o640, mosquitto),
        "var/lib/lordi-collector": (0o2770, collector),
        "etc/lordi/enrol.toml": (0o600, 0), "etc/lordi/enrol.env": (0o600, 0),
        "var/lib/lordi-enrol": (0o700, 0),
    }
    for rel, (mode, gid) in expected.items():
        st = (root / rel).stat()
        assert (st.st_mode & 0o7777, st.st_gid) == (mode, gid), rel
    assert "lordi-web" in grp.getgrnam("lordi-collector").gr_mem
    key = (root / "etc/lordi/bssid.key").read_text().strip()
    assert len(key) == 64 and int(key, 16) >= 0


def test_configuration_agrees_with_the_broker(root: Path) -> None:
    init(root)
    import tomllib  # noqa: PLC0415

    cfg = tomllib.loads((root / "etc/lordi/collector.toml").read_text())
    users = [line.split(":", 1)[0]
             for line in (root / "etc/mosquitto/lordi/passwd").read_text().splitlines()]
    assert cfg["mqtt"]["username"] in users and "lordi-admin" in users
    acl = (root / "etc/mosquitto/lordi/acl").read_text()
    assert f"user {cfg['mqtt']['username']}\n" in acl
    assert cfg["mqtt"]["port"] == 18883 and cfg["mqtt"]["tls"] is True
    assert cfg["mqtt"]["host"] in pki.cert_names(root / "etc/mosquitto/certs/server.crt")
    assert cfg["alerts"]["store_url"] == f"sqlite:///{root}/var/lib/lordi-collector/alerts.sqlite3"
    assert cfg["store"]["string_fields"] is False
    unit = (root / "etc/systemd/system/lordi-collector.service").read_text()
    assert f"--config {root}/etc/lordi/collector.toml" in unit
    assert "-dedup.minScrapeInterval=1ms" in (root / "etc/default/victoria-metrics").read_text()


def test_the_calendar_zone_reaches_the_registry(root: Path) -> None:
    init(root, "--calendar-zone", "C")
    from collector.notify.registry import load_registry  # noqa: PLC0415

    registry = load_registry(root / "etc/lordi/schools.toml")
    assert registry.calendar_zone == "C"
    other = Path(tempfile.mkdtemp(prefix="lordi-init-"))
    try:
        (other / "etc" / "mosquitto").mkdir(parents=True)
        done = run("server", "init", "--root", str(other), "--host", "h.example",
                   "--fallback-email", "r@example.org", "--calendar-zone", "Z",
                   "--provisioning", str(debian.REPO / "provisioning"), expect=2)
        assert "nothing written" in done.stderr and "'Z'" in done.stderr, done.stderr
        assert "--calendar-zone" in done.stderr, done.stderr
        assert not (other / "etc" / "lordi").exists()
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_enrolment_configuration_agrees_with_the_broker(root: Path) -> None:
    """The enrolment service's account, ACL role and paths as init writes them, loaded
    with the service's own loader and its password from enrol.env."""
    init(root)
    from lordi.enrol.settings import load_settings  # noqa: PLC0415
    from lordi.server import read_env  # noqa: PLC0415

    env = read_env(root / "etc/lordi/enrol.env")
    settings = load_settings(root / "etc/lordi/enrol.toml", env=env)
    users = [line.split(":", 1)[0]
             for line in (root / "etc/mosquitto/lordi/passwd").read_text().splitlines()]
    assert settings.mqtt.username in users and settings.mqtt.password
    assert f"user {settings.mqtt.username}\n" in (root / "etc/mosquitto/lordi/acl").read_text()
    assert settings.broker.dir == root / "etc/mosquitto/lordi"
    assert settings.broker.pid_file == root / "run/mosquitto/mosquitto.pid"
    assert settings.registry == root / "etc/lordi/schools.toml"
    assert settings.mqtt.port == 18883 and settings.mqtt.tls
    assert settings.store_url == f"sqlite:///{root}/var/lib/lordi-enrol/enrol.sqlite3"
    unit = (root / "etc/systemd/system/lordi-enrol.service").read_text()
    assert f"--config {root}/etc/lordi/enrol.toml" in unit
    assert f"ReadWritePaths={root}/etc/mosquitto/lordi" in unit


def test_edited_file_is_kept_with_a_proposal(root: Path) -> None:
    init(root)
    conf = root / "etc/lordi/collector.toml"
    edited = conf.read_text().replace("port = 25", "port = 2525")
    conf.write_text(edited)
    out = init(root)
    assert conf.read_text() == edited
    proposal = root / "etc/lordi/collector.toml.lordi-init"
    assert f"kept       {conf} (edited; what init would write: {proposal})" in out
    assert "port = 25\n" in proposal.read_text()


def test_a_new_host_reissues_the_certificate(root: Path) -> None:
    init(root)
    crt = root / "etc/mosquitto/certs/server.crt"
    out = init(root, "--host", "mqtt2.lordi.example")
    assert "changed" in out and "was: names" in out
    assert {"mqtt.lordi.example", "mqtt2.lordi.example", "localhost", "127.0.0.1"} <= set(
        pki.cert_names(crt))
    assert pki.still_valid(crt, root / "etc/lordi/ca/ca.crt") is None


def test_an_unknown_option_value_names_it(root: Path) -> None:
    done = run("server", "init", "--root", str(root), "--host", "h", "--fallback-email",
               "not-an-address", "--provisioning", str(debian.REPO / "provisioning"),
               expect=2)
    assert "fallback_email (option --fallback-email)" in done.stderr, done.stderr
    assert "not-an-address" in done.stderr and "nothing written" in done.stderr
    assert not (root / "etc/lordi").exists()


def test_not_as_root(root: Path) -> None:
    runuser = shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin")
    assert runuser is not None
    venv = Path(sys.executable).parent.parent
    with debian.reachable_by_others(venv), debian.reachable_by_others(debian.REPO), \
            debian.reachable_by_others(Path(sys.base_prefix)):
        done = subprocess.run(
            [runuser, "-u", "nobody", "--", LORDI, "server", "init", "--root", str(root),
             "--host", "h", "--fallback-email", "a@example.org"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False,
        )
    assert done.returncode == 2 and "run as root" in done.stderr, done.stderr


def test_vm_flags_keep_the_operators_values() -> None:
    text = 'ARGS="-storageDataPath=/srv/vm -retentionPeriod=5y"\n'
    out = serverfiles.vm_args(text)
    assert "-retentionPeriod=5y" in out and "-retentionPeriod=90d" not in out
    assert "-storageDataPath=/srv/vm" in out and "-dedup.minScrapeInterval=1ms" in out
    assert serverfiles.vm_args(out) == out


def test_registry_commands_after_init(root: Path) -> None:
    init(root)
    registry = root / "etc/lordi/schools.toml"
    run("provision", "contractor", "--registry", str(registry), "--id", "occimat",
        "--name", "Occimat", "--category", "hardware", "--email", "sav@occimat.example.org")
    done = run("provision", "contractor", "--registry", str(registry), "--id", "occimat",
               "--name", "Other", "--category", "hardware", "--email", "x@example.org",
               expect=2)
    assert "already exists" in done.stderr
    done = run("provision", "contractor", "--registry", str(registry), "--id", "net",
               "--name", "Net", "--category", "network", "--email", "not-mail", expect=2)
    assert "not-mail" in done.stderr and "emails" in done.stderr
    run("provision", "contractor", "--registry", str(registry), "--id", "sudreseaux",
        "--name", "Sud Réseaux", "--category", "network", "--email", "s@example.org")
    run("provision", "school", "--registry", str(registry), "--uai", "0341234A",
        "--name", "Lycée Exemple", "--town", "Sète", "--level1", "Ana <ana@example.org>",
        "--ssid", "LORDI-EDU", "--hardware-contractor", "occimat",
        "--network-contractor", "sudreseaux")
    # Rewritten by root, still readable by the collector through its group.
    st = registry.stat()
    assert (st.st_mode & 0o777, st.st_gid) == (0o640, grp.getgrnam("lordi-collector").gr_gid)
    done = run("provision", "device", "--registry", str(registry), "--school", "0341234A",
               "--host", "h", "--broker-dir", str(root / "etc/mosquitto/lordi"),
               "--bssid-key-file", str(root / "etc/lordi/missing.key"),
               "--out", str(root / "agent.toml"), expect=2)
    assert f"--bssid-key-file: {root}/etc/lordi/missing.key does not exist" in done.stderr
