"""Self-enrolment against a real Mosquitto 2.0 running the committed production
config and ACL (TLS, password file): school secrets made with `lordi enrol`, the
enrolment service answering over the broker, laptops enrolling through the agent's
own code with one school configuration, revocation of secrets and devices."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest

from agent.config import load_config
from agent.enrol import (
    EnrolError,
    ensure_identity,
    load_identity,
    machine_fingerprint,
    request_once,
)
from lordi import provision
from lordi.enrol.service import EnrolService
from lordi.enrol.store import EnrolStore
from tests.enrol.conftest import (
    ADMIN_PW,
    COLLECTOR_PW,
    NOT_AUTHORIZED,
    OTHER,
    SCHOOL,
    Setup,
)
from tests.secure_broker import eventually


def service(setup: Setup) -> EnrolService:
    assert setup.service is not None
    return setup.service


@pytest.fixture(autouse=True)
def fresh_limits(setup: Setup) -> None:
    service(setup).buckets.clear()


def enrolled(path: Path) -> tuple[str, str, str]:
    """(device, user, password) of the laptop whose configuration is `path`."""
    cfg = ensure_identity(load_config(path, env={}))
    return cfg.device, cfg.mqtt.username, cfg.mqtt.password


def test_laptops_with_one_school_configuration_get_their_own_identities(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    school_cfg = setup.school_config(SCHOOL, setup.secret(SCHOOL, capsys))
    a, b = setup.laptop(school_cfg), setup.laptop(school_cfg)
    assert a.read_bytes() == b.read_bytes()  # the same file on every laptop
    dev_a, user_a, pw_a = enrolled(a)
    dev_b, _, pw_b = enrolled(b)
    assert dev_a != dev_b and user_a == f"{SCHOOL}/{dev_a}" and pw_a != pw_b
    identity = a.parent / "lordi-identity.toml"
    assert stat.S_IMODE(identity.stat().st_mode) == 0o600
    assert not (a.parent / "lordi-identity.toml.pending").exists()
    # Never twice: a restart reads the saved identity, the service enrols nothing.
    before = service(setup).enrolled
    assert enrolled(a) == (dev_a, user_a, pw_a)
    assert service(setup).enrolled == before
    # Each publishes its own topics only; the other's identity is not theirs to take.
    coll = setup.fleet.connected("collector-1", COLLECTOR_PW, client_id=f"c-{uuid.uuid4().hex}")
    assert coll.subscribe("lordi/v1/+/+/telemetry")[0].value == 1
    la = setup.fleet.connected(user_a, pw_a, client_id=f"agent-{dev_a}")
    own = f"lordi/v1/{SCHOOL}/{dev_a}/telemetry"
    assert la.publish(own, b"mine").value == 0
    assert la.publish(f"lordi/v1/{SCHOOL}/{dev_b}/telemetry", b"forged").value == NOT_AUTHORIZED
    assert eventually(lambda: (own, b"mine") in coll.messages)
    stolen = setup.fleet.connect(user_a, pw_b).wait_connack()
    assert stolen is not None and stolen.is_failure
    # The school's enrolment account reaches no telemetry.
    secret = load_config(a, env={}).enrol.secret
    enrol_user = f"enrol/{SCHOOL}/{secret.split('.')[0]}"
    acct = setup.fleet.connected(enrol_user, secret)
    assert acct.publish(own, b"forged").value == NOT_AUTHORIZED


def test_the_password_never_crosses_the_wire(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = setup.fleet.connected("lordi-admin", ADMIN_PW)
    assert admin.subscribe("lordi/enrol/#")[0].value < 0x80
    laptop = setup.laptop(setup.school_config(SCHOOL, setup.secret(SCHOOL, capsys)))
    _, _, password = enrolled(laptop)
    assert eventually(lambda: any("/req/" in t for t, _ in admin.messages))
    wire = b"".join(p for _, p in admin.messages)
    assert b"password_hash" in wire and password.encode() not in wire


def test_a_device_takes_nothing_from_the_collector(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    """The collector's production subscription is a plain one (`lordi server init`
    writes share_group = ""): a laptop that subscribes to telemetry, shared or not,
    receives nothing and takes nothing from it."""
    laptop = setup.laptop(setup.school_config(SCHOOL, setup.secret(SCHOOL, capsys)))
    dev, user, pw = enrolled(laptop)
    coll = setup.fleet.connected("collector-1", COLLECTOR_PW, client_id=f"c-{uuid.uuid4().hex}")
    assert coll.subscribe("lordi/v1/+/+/telemetry")[0].value == 1
    thief = setup.fleet.connected(user, pw, client_id=f"agent-{dev}")
    for topic in ("$share/collectors/lordi/v1/+/+/telemetry", "lordi/v1/#", "lordi/enrol/#"):
        thief.subscribe(topic)
    sender = setup.fleet.connected(user, pw, client_id=f"agent-{dev}-2")
    own = f"lordi/v1/{SCHOOL}/{dev}/telemetry"
    for i in range(20):
        assert sender.publish(own, f"m{i}".encode()).value == 0
    assert eventually(lambda: sum(t == own for t, _ in coll.messages) == 20)
    assert thief.messages == []


def test_revoked_secret_and_revoked_device_are_refused(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = setup.secret(SCHOOL, capsys)
    school_cfg = setup.school_config(SCHOOL, secret)
    first = setup.laptop(school_cfg)
    dev, user, pw = enrolled(first)
    connected = setup.fleet.connected(user, pw, client_id=f"agent-{dev}")
    assert setup.lordi("enrol", "secret", "revoke", "--config", str(setup.config),
                       "--id", secret.split(".")[0]) == 0
    late = load_config(setup.laptop(school_cfg), env={})
    # Refused by the broker once it has reloaded, by the service in the meantime.
    with pytest.raises(EnrolError, match=r"refused the enrolment account|was revoked"):
        request_once(late, timeout_s=5)
    assert not Path(late.enrol.identity_file).exists()
    # Already enrolled laptops keep their identity when the school's secret changes.
    assert enrolled(first) == (dev, user, pw)
    assert connected.publish(f"lordi/v1/{SCHOOL}/{dev}/telemetry", b"x").value == 0
    assert setup.lordi("enrol", "revoke-device", "--config", str(setup.config),
                       "--device", dev) == 0
    assert connected.disconnected.wait(10), "the revoked laptop stayed connected"
    refused = setup.fleet.connect(user, pw).wait_connack()
    assert refused is not None and refused.is_failure


def test_requests_are_rate_limited_per_school(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    """burst = 8, 1 per minute in this fixture's enrol.toml: a ninth laptop is refused
    with a retry time, and the other school's laptops are not."""
    cfg_a = setup.school_config(SCHOOL, setup.secret(SCHOOL, capsys))
    results: list[object] = []
    for _ in range(9):
        try:
            results.append(request_once(load_config(setup.laptop(cfg_a), env={}), 10))
        except EnrolError as exc:
            results.append(exc)
    refused = [r for r in results if isinstance(r, EnrolError)]
    assert len(refused) == 1 and "too many enrolments" in str(refused[0])
    cfg_b = setup.school_config(OTHER, setup.secret(OTHER, capsys))
    assert request_once(load_config(setup.laptop(cfg_b), env={}), 10).school == OTHER


def test_an_agent_that_lost_the_answer_gets_the_same_device(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    laptop = setup.laptop(setup.school_config(SCHOOL, setup.secret(SCHOOL, capsys)))
    cfg = load_config(laptop, env={})
    identity_file = Path(cfg.enrol.identity_file)
    first = request_once(cfg)
    # As if it stopped before saving: the identity is gone, the pending request kept.
    pending = identity_file.with_name(identity_file.name + ".pending")
    identity_file.unlink()
    store = EnrolStore(service(setup).settings.store_url)
    row = store.device(first.device)
    assert row is not None
    pending.write_text(f'request_id = "{row.request_id}"\npassword = "{first.password}"\n'
                       f'machine = "{machine_fingerprint()}"\n')
    again = request_once(load_config(laptop, env={}))
    assert again == first
    assert load_identity(identity_file, SCHOOL) == first


def test_the_store_puts_back_what_the_password_file_lost(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    """As after a crash between the store's commit and the password file's write: the
    enrolled laptop's line is missing; the service's reconciliation (run at start and
    after a failed batch) puts it back and reloads the broker."""
    from lordi.enrol import passwd  # noqa: PLC0415

    laptop = setup.laptop(setup.school_config(SCHOOL, setup.secret(SCHOOL, capsys)))
    dev, user, pw = enrolled(laptop)
    file = setup.fleet.broker.broker_dir / "passwd"
    passwd.remove(file, {user})
    provision.reload_broker(setup.fleet.broker.pid, None)
    assert eventually(lambda: _refused(setup, user, pw))
    service(setup).reconcile()
    assert user in passwd.users(file)
    setup.fleet.connected(user, pw, client_id=f"agent-{dev}")


def _refused(setup: Setup, user: str, pw: str) -> bool:
    client = setup.fleet.connect(user, pw)
    rc = client.wait_connack()
    client.close()
    return rc is not None and rc.is_failure
