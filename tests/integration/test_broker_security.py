"""Broker security against a real Mosquitto 2.0 running the committed production
config (provisioning/mosquitto/mosquitto.conf, paths and port rewritten) with the
committed ACL template, TLS from a throwaway CA, and devices enrolled through
`lordi provision` while the broker runs."""

from __future__ import annotations

import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import load_config
from agent.mqtt import Publisher
from collector.notify.registry import load_registry
from lordi import provision
from tests.secure_broker import REPO, Client, Fleet, SecureBroker, eventually, lordi_provision

SCHOOL_A, SCHOOL_B = "0340001A", "0340002B"
NOT_AUTHORIZED = 0x87
ADMIN_PW, COLLECTOR_PW = "admin-" + uuid.uuid4().hex, "coll-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    broker = SecureBroker()
    broker.start()
    f = Fleet(broker, tmp_path_factory.mktemp("fleet"))
    try:
        provision.set_password(broker.broker_dir, "collector-1", COLLECTOR_PW)
        provision.set_password(broker.broker_dir, "lordi-admin", ADMIN_PW)
        provision.reload_broker(broker.pid, None)
        yield f
    finally:
        for c in f.clients:
            c.close()
        broker.stop()


def admin_watching(fleet: Fleet, topic: str = "lordi/#") -> Client:
    admin = fleet.connected("lordi-admin", ADMIN_PW)
    assert admin.subscribe(topic)[0].value < 0x80
    return admin


def collector(fleet: Fleet) -> Client:
    c = fleet.connected("collector-1", COLLECTOR_PW, client_id=f"c-{uuid.uuid4().hex[:8]}")
    # A group of its own: earlier tests' collectors must not share the messages.
    assert c.subscribe(f"$share/g{uuid.uuid4().hex}/lordi/v1/+/+/telemetry")[0].value == 1
    return c


def test_anonymous_is_refused(fleet: Fleet) -> None:
    rc = fleet.connect(None).wait_connack()
    assert rc is not None and rc.is_failure, rc


def test_wrong_password_is_refused(fleet: Fleet) -> None:
    rc = fleet.connect("collector-1", "not-the-password").wait_connack()
    assert rc is not None and rc.is_failure, rc


def test_plain_tcp_on_the_tls_port_gets_no_session(fleet: Fleet) -> None:
    client = fleet.connect("collector-1", COLLECTOR_PW, tls=False)
    assert client.wait_connack(5) is None  # the TLS listener never answers a plain CONNECT
    assert not client.connected.is_set()


def test_only_the_tls_listener_is_open(fleet: Fleet) -> None:
    conf = (fleet.broker.root / "mosquitto.conf").read_text()
    listeners = [ln for ln in conf.splitlines() if ln.startswith("listener ")]
    assert listeners == [f"listener {fleet.broker.tls_port} 127.0.0.1"]


def test_device_publishes_its_own_topics_only(fleet: Fleet) -> None:
    dev_a, pw_a, _ = fleet.enrol(SCHOOL_A)
    dev_b, _, _ = fleet.enrol(SCHOOL_A)
    coll, admin = collector(fleet), admin_watching(fleet)
    a = fleet.connected(f"{SCHOOL_A}/{dev_a}", pw_a, client_id=f"agent-{dev_a}")
    own = f"lordi/v1/{SCHOOL_A}/{dev_a}/telemetry"
    assert a.publish(own, b"mine").value == 0
    assert a.publish(f"lordi/v1/{SCHOOL_A}/{dev_a}/status", b"online", retain=True).value == 0
    forged = [
        f"lordi/v1/{SCHOOL_A}/{dev_b}/telemetry",  # as device B
        f"lordi/v1/{SCHOOL_A}/{dev_b}/status",
        f"lordi/v1/{SCHOOL_B}/{dev_a}/telemetry",  # itself, in another school
        f"lordi/v1/{SCHOOL_A}/alerts",
        "lordi/deadletter/v1",
    ]
    for topic in forged:
        assert a.publish(topic, b"forged").value == NOT_AUTHORIZED, topic
    assert eventually(lambda: (own, b"mine") in coll.messages)
    assert eventually(lambda: any(t.endswith(f"{dev_a}/status") for t, _ in admin.messages))
    time.sleep(0.5)
    assert [m for m in coll.messages + admin.messages if m[1] == b"forged"] == []


def test_device_reads_nothing(fleet: Fleet) -> None:
    dev_a, pw_a, _ = fleet.enrol(SCHOOL_A)
    dev_b, pw_b, _ = fleet.enrol(SCHOOL_A)
    a = fleet.connected(f"{SCHOOL_A}/{dev_a}", pw_a)
    # Mosquitto 2.0's acl_file does not check SUBSCRIBE (the SUBACK grants
    # anything); the read grant is checked when a message is delivered.
    for topic in ("#", "lordi/v1/+/+/telemetry", f"lordi/v1/{SCHOOL_A}/alerts",
                  f"lordi/v1/{SCHOOL_A}/{dev_a}/telemetry", "lordi/deadletter/v1", "$SYS/#"):
        assert a.subscribe(topic)[0].value == 1, topic
    coll = fleet.connected("collector-1", COLLECTOR_PW)
    assert coll.publish(f"lordi/v1/{SCHOOL_A}/alerts", b"[]", retain=True).value == 0
    assert coll.publish("lordi/deadletter/v1", b"dead").value == 0
    b = fleet.connected(f"{SCHOOL_A}/{dev_b}", pw_b)
    assert b.publish(f"lordi/v1/{SCHOOL_A}/{dev_b}/telemetry", b"b").value == 0
    assert b.publish(f"lordi/v1/{SCHOOL_A}/{dev_b}/status", b"on", retain=True).value == 0
    assert a.publish(f"lordi/v1/{SCHOOL_A}/{dev_a}/telemetry", b"x").value == 0
    time.sleep(1.5)  # $SYS is published every 10 s: at least the retained ones would show
    assert a.messages == []


def shared_split(fleet: Fleet, group: str) -> tuple[int, int]:
    """A laptop joins `$share/<group>/...`; (messages the collector got, out of 20)."""
    thief_id, thief_pw, _ = fleet.enrol(SCHOOL_A)
    dev, pw, _ = fleet.enrol(SCHOOL_A)
    coll = fleet.connected("collector-1", COLLECTOR_PW, client_id=f"c-{uuid.uuid4().hex[:8]}")
    assert coll.subscribe(f"$share/{group}/lordi/v1/+/+/telemetry")[0].value == 1
    thief = fleet.connected(f"{SCHOOL_A}/{thief_id}", thief_pw)
    assert thief.subscribe("$share/collectors/lordi/v1/+/+/telemetry")[0].value == 1
    d = fleet.connected(f"{SCHOOL_A}/{dev}", pw)
    for i in range(20):
        assert d.publish(f"lordi/v1/{SCHOOL_A}/{dev}/telemetry", str(i).encode()).value == 0
    time.sleep(1)
    assert thief.messages == []
    coll.close()
    thief.close()
    return len(coll.messages), 20


def test_a_laptop_in_the_public_share_group_swallows_telemetry(fleet: Fleet) -> None:
    """KNOWN WEAKNESS of Mosquitto 2.0 acl_file, kept visible: SUBSCRIBE is not
    checked, and a shared-subscription message given to a member without read
    access is dropped, not handed to another member. A laptop that joins
    `$share/collectors/...` silently eats its share of everyone's telemetry
    (read still denied: it sees nothing). If this starts failing, Mosquitto
    fixed it; update docs/broker.md."""
    got, sent = shared_split(fleet, "collectors")
    assert got < sent


def test_a_secret_share_group_keeps_every_message(fleet: Fleet) -> None:
    """The mitigation in docs/broker.md: collectors use an unguessable share_group."""
    got, sent = shared_split(fleet, "collectors-" + uuid.uuid4().hex)
    assert got == sent


def test_collector_role(fleet: Fleet) -> None:
    dev, pw, _ = fleet.enrol(SCHOOL_B)
    coll, admin = collector(fleet), admin_watching(fleet, "lordi/deadletter/v1")
    assert coll.subscribe("lordi/v1/+/+/telemetry")[0].value == 1
    d = fleet.connected(f"{SCHOOL_B}/{dev}", pw)
    assert d.publish(f"lordi/v1/{SCHOOL_B}/{dev}/telemetry", b"batch").value == 0
    assert eventually(lambda: (f"lordi/v1/{SCHOOL_B}/{dev}/telemetry", b"batch") in coll.messages)
    assert coll.publish("lordi/deadletter/v1", b"dead").value == 0
    assert coll.publish(f"lordi/v1/{SCHOOL_B}/alerts", b"[]", retain=True).value == 0
    assert eventually(lambda: ("lordi/deadletter/v1", b"dead") in admin.messages)
    # A collector cannot speak for a laptop, nor read status or other topics.
    assert coll.publish(f"lordi/v1/{SCHOOL_B}/{dev}/telemetry", b"x").value == NOT_AUTHORIZED
    assert coll.publish(f"lordi/v1/{SCHOOL_B}/{dev}/status", b"x").value == NOT_AUTHORIZED
    admin.close()
    before = len(coll.messages)
    d.publish(f"lordi/v1/{SCHOOL_B}/{dev}/status", b"online", retain=True)
    coll.subscribe("lordi/#")  # granted (see test_device_reads_nothing), but:
    time.sleep(1)
    assert [t for t, _ in coll.messages[before:] if not t.endswith("/telemetry")] == []
    # It reads the broker's own figures ([metrics] broker_sys, docs/operations.md):
    # the retained $SYS/broker/... values arrive at once.
    before = len(coll.messages)
    for topic in ("$SYS/broker/clients/connected", "$SYS/broker/subscriptions/count"):
        assert coll.subscribe(topic)[0].value < 0x80
    assert eventually(
        lambda: {t for t, _ in coll.messages[before:]}
        >= {"$SYS/broker/clients/connected", "$SYS/broker/subscriptions/count"}
    )


def test_enrolment_while_running_then_revocation(fleet: Fleet) -> None:
    pid = fleet.broker.pid
    dev, pw, out = fleet.enrol(SCHOOL_A)
    assert out.stat().st_mode & 0o777 == 0o600
    cfg = tomllib.loads(out.read_text())
    assert cfg["school"] == SCHOOL_A and cfg["mqtt"]["username"] == f"{SCHOOL_A}/{dev}"
    assert cfg["privacy"]["school_ssids"] == ["LORDI-EDU"]  # from the registry
    coll = collector(fleet)
    d = fleet.connected(f"{SCHOOL_A}/{dev}", pw, client_id=f"agent-{dev}")
    assert d.publish(f"lordi/v1/{SCHOOL_A}/{dev}/telemetry", b"hello").value == 0
    assert eventually(lambda: (f"lordi/v1/{SCHOOL_A}/{dev}/telemetry", b"hello") in coll.messages)
    assert lordi_provision(
        "revoke", "--device", dev, "--broker-dir", str(fleet.broker.broker_dir),
        "--broker-pid", str(pid),
    ) == 0
    assert (fleet.broker.broker_dir / "acl").read_text() == (
        REPO / "provisioning" / "mosquitto" / "acl").read_text()  # enrolment never edits it
    assert dev not in (fleet.broker.broker_dir / "passwd").read_text()

    def refused() -> bool:
        c = fleet.connect(dev, pw)
        rc = c.wait_connack()
        return rc is not None and rc.is_failure

    assert eventually(refused)
    # Mosquitto 2.0 re-checks connected clients on reload: the revoked laptop's
    # open session is closed as well.
    assert eventually(d.disconnected.is_set)
    assert fleet.broker.proc is not None and fleet.broker.proc.poll() is None
    assert fleet.broker.pid == pid  # never restarted


def test_enrolment_refusals(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev, _, out = fleet.enrol(SCHOOL_A)
    common = ["--registry", str(fleet.registry), "--host", "h", "--out", str(out) + ".2",
              "--broker-dir", str(fleet.broker.broker_dir)]
    assert lordi_provision("device", "--school", SCHOOL_A, "--device", dev, *common) == 2
    assert f"device {dev} is already enrolled (school {SCHOOL_A})" in capsys.readouterr().err
    assert lordi_provision("device", "--school", "0999999Z", *common) == 2
    assert "0999999Z" in capsys.readouterr().err
    assert lordi_provision("revoke", "--device", "d-nobody",
                           "--broker-dir", str(fleet.broker.broker_dir)) == 2
    assert "'d-nobody' is not enrolled" in capsys.readouterr().err
    # Device ids are unique across schools (the agent's client id is agent-<device>).
    assert lordi_provision("device", "--school", SCHOOL_B, "--device", dev, *common) == 2
    assert f"device {dev} is already enrolled (school {SCHOOL_A})" in capsys.readouterr().err
    assert lordi_provision("device", "--school", SCHOOL_A, "--device", "a/b", *common) == 2
    assert "--device: expected 1-64 of [0-9A-Za-z_-] (got 'a/b')" in capsys.readouterr().err
    assert not Path(str(out) + ".2").exists()
    # The CA path is the laptop's, not this server's: it need not exist here.
    laptop = tmp_path / "laptop.toml"
    assert lordi_provision("device", "--school", SCHOOL_A, "--registry", str(fleet.registry),
                           "--host", "h", "--out", str(laptop), "--ca-file",
                           "C:\\ProgramData\\Lordi\\ca.crt",
                           "--broker-dir", str(fleet.broker.broker_dir)) == 0
    assert tomllib.loads(laptop.read_text())["mqtt"]["ca_file"] == "C:\\ProgramData\\Lordi\\ca.crt"
    assert "broker NOT reloaded" in capsys.readouterr().out


SCHOOL_ARGS = ["--name", "Lycée \"Test\" d'Oc", "--town", "Sète",
               "--level1", "Ana Roig <ana.roig@example.org>", "--ssid", "LORDI-EDU",
               "--hardware-contractor", "occimat", "--network-contractor", "sudreseaux"]


def test_provision_school_appends_a_valid_block(tmp_path: Path) -> None:
    registry = tmp_path / "schools.toml"
    registry.write_text((REPO / "provisioning" / "schools.toml").read_text(encoding="utf-8"))
    before = registry.read_text(encoding="utf-8")
    assert lordi_provision("school", "--registry", str(registry), "--uai", "0349999Z",
                           *SCHOOL_ARGS) == 0
    after = registry.read_text(encoding="utf-8")
    assert after.startswith(before.rstrip("\n"))  # comments and order kept
    school = load_registry(registry).school("0349999Z")
    assert school.name == "Lycée \"Test\" d'Oc" and school.level1[0].email == "ana.roig@example.org"


def test_provision_school_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = tmp_path / "schools.toml"
    registry.write_text((REPO / "provisioning" / "schools.toml").read_text(encoding="utf-8"))
    before = registry.read_text(encoding="utf-8")
    assert lordi_provision("school", "--registry", str(registry), "--uai", "0340001A",
                           *SCHOOL_ARGS) == 2
    assert "school 0340001A already exists ('Lycée Jean Moulin', 'Béziers')" in (
        capsys.readouterr().err)
    bad = [a if a != "occimat" else "nobody" for a in SCHOOL_ARGS]
    assert lordi_provision("school", "--registry", str(registry), "--uai", "0349999Z", *bad) == 2
    assert "schools.0349999Z.hardware_contractor: unknown contractor 'nobody'" in (
        capsys.readouterr().err)
    assert registry.read_text(encoding="utf-8") == before  # nothing written


def test_the_real_agent_runs_with_the_generated_config(fleet: Fleet) -> None:
    """agent.mqtt.Publisher (the laptop's own code) with the enrolled agent.toml."""
    dev, _, out = fleet.enrol(SCHOOL_B)
    cfg = load_config(out, env={})
    coll, admin = collector(fleet), admin_watching(fleet, f"lordi/v1/{SCHOOL_B}/{dev}/status")
    agent = Publisher(cfg.mqtt, cfg.school, cfg.device)
    agent.start()
    try:
        assert agent.connected.wait(10), "the agent did not connect"
        info = agent.publish(b'{"schema": 1}')
        assert info is not None
        info.wait_for_publish(10)
        topic = f"lordi/v1/{SCHOOL_B}/{dev}/telemetry"
        assert eventually(lambda: (topic, b'{"schema": 1}') in coll.messages)
        assert eventually(lambda: (f"lordi/v1/{SCHOOL_B}/{dev}/status", b"online")
                          in admin.messages)
    finally:
        agent.stop()
