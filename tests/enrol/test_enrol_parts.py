"""Enrolment's parts without a broker: the school configuration's checks, the saved
identity, request parsing, the rate limit and the password-file format."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from agent.config import ConfigError, load_config
from agent.enrol import (
    EnrolError,
    Identity,
    ensure_identity,
    load_identity,
    machine_fingerprint,
    mosquitto_hash,
    save_identity,
)
from lordi.enrol import passwd
from lordi.enrol.service import Refused, TokenBucket, parse_request

SCHOOL = "0340001A"
SECRET = "abcd1234." + "x" * 43
REQ = f"lordi/enrol/v1/req/enrol/{SCHOOL}/abcd1234/" + "r" * 24


def school_config(tmp_path: Path, secret: str = SECRET) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(f'school = "{SCHOOL}"\n[mqtt]\nhost = "127.0.0.1"\n'
                    f'[enrol]\nsecret = "{secret}"\n')
    return path


def test_a_school_configuration_needs_no_device(tmp_path: Path) -> None:
    cfg = load_config(school_config(tmp_path), env={})
    assert cfg.device == "" and cfg.enrol.secret == SECRET
    assert cfg.enrol.identity_file == str(tmp_path / "lordi-identity.toml")


def test_a_malformed_secret_is_a_config_error_that_hides_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"enrol\.secret: expected '<id>\.<random>'") as err:
        load_config(school_config(tmp_path, "not-a-secret"), env={})
    assert "not-a-secret" not in str(err.value)


def test_without_device_nor_secret_the_device_is_named(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(f'school = "{SCHOOL}"\n')
    with pytest.raises(ConfigError, match="device: expected"):
        load_config(path, env={})


def test_a_saved_identity_is_used_and_never_replaced(tmp_path: Path) -> None:
    cfg = load_config(school_config(tmp_path), env={})
    identity = Identity(SCHOOL, "d-abc", f"{SCHOOL}/d-abc", "pw" * 12)
    save_identity(Path(cfg.enrol.identity_file), identity)
    assert stat.S_IMODE(Path(cfg.enrol.identity_file).stat().st_mode) == 0o600
    # No broker at 127.0.0.1:1883 is asked: the saved identity is enough.
    cfg = ensure_identity(cfg)
    assert (cfg.device, cfg.mqtt.username, cfg.mqtt.password) == (
        "d-abc", f"{SCHOOL}/d-abc", "pw" * 12)


def test_an_identity_of_another_school_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "id.toml"
    save_identity(path, Identity("0340002B", "d-x", "0340002B/d-x", "p" * 24))
    with pytest.raises(EnrolError, match="belongs to school 0340002B"):
        load_identity(path, SCHOOL)
    path.write_text("school = \n")
    with pytest.raises(EnrolError, match="cannot be read"):
        load_identity(path, SCHOOL)
    assert load_identity(tmp_path / "absent.toml", SCHOOL) is None


def body(**kw: object) -> bytes:
    return json.dumps({"v": 1, "request_id": "r" * 24,
                       "password_hash": mosquitto_hash("p" * 32), **kw}).encode()


def test_requests_are_parsed_and_refused_with_the_reason() -> None:
    request = parse_request(REQ, body())
    assert (request.school, request.secret_id) == (SCHOOL, "abcd1234")
    assert request.answer_topic == REQ.replace("/req/", "/resp/")
    cases = {
        (REQ, b"{"): "not JSON",
        (REQ, body(v=2)): "protocol",
        (REQ, body(password_hash="$7$101$short")): "password_hash",
        (REQ, body(request_id="s" * 24)): "differs",
        (REQ.replace(SCHOOL, "nope"), body()): "bad school",
        ("lordi/enrol/v1/req/0340001A/d-x/" + "r" * 24, body()): "not an enrolment",
    }
    for (topic, payload), reason in cases.items():
        with pytest.raises(Refused, match=reason):
            parse_request(topic, payload)


def test_token_bucket() -> None:
    bucket = TokenBucket(per_s=1.0, burst=2.0, at=0.0)
    assert [bucket.take(0.0), bucket.take(0.0)] == [0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(1.0)
    assert bucket.take(1.0) == 0.0


def test_our_lines_are_mosquitto_passwd_lines(tmp_path: Path) -> None:
    """A line made by `mosquitto_passwd` checks with our reader, and ours has its shape."""
    tool = shutil.which("mosquitto_passwd")
    assert tool is not None
    file = tmp_path / "passwd"
    subprocess.run([tool, "-c", "-b", str(file), "u1", "s3cret"], check=True)
    theirs = file.read_text().strip()
    assert passwd.check_line(theirs, "s3cret") and not passwd.check_line(theirs, "other")
    ours = passwd.hash_line("u2", "s3cret")
    assert passwd.check_line(ours, "s3cret")
    assert ours.split("$")[:3] == theirs.replace("u1", "u2").split("$")[:3]
    with pytest.raises(ValueError, match="not a password-file line"):
        passwd.line("a:b", mosquitto_hash("x"))


def test_append_and_remove_keep_the_other_lines(tmp_path: Path) -> None:
    file = tmp_path / "passwd"
    file.write_text("collector-1:$7$x")  # no final newline
    passwd.append(file, [passwd.hash_line("a/b", "p"), passwd.hash_line("a/c", "p")])
    assert passwd.users(file) == {"collector-1", "a/b", "a/c"}
    assert passwd.remove(file, {"a/b"}) == 1
    assert passwd.users(file) == {"collector-1", "a/c"}


def test_an_identity_from_a_cloned_image_is_set_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made on machine A, found on machine B: B enrols under its own id (here no broker
    answers, so the attempt fails) and A's identity is kept aside, not used."""
    cfg = load_config(school_config(tmp_path), env={})
    path = Path(cfg.enrol.identity_file)
    save_identity(path, Identity(SCHOOL, "d-a", f"{SCHOOL}/d-a", "p" * 24,
                                 machine_fingerprint("machine-A")))
    monkeypatch.setattr("agent.enrol._machine_id", lambda: "machine-A")
    assert ensure_identity(load_config(school_config(tmp_path), env={})).device == "d-a"
    monkeypatch.setattr("agent.enrol._machine_id", lambda: "machine-B")
    cfg = load_config(school_config(tmp_path), env={})
    cfg.mqtt.port = 9  # nothing listens: the new enrolment cannot happen here
    with pytest.raises(EnrolError, match="cannot reach the broker"):
        ensure_identity(cfg)
    assert not path.exists()
    assert load_identity(path.with_name(path.name + ".cloned"), SCHOOL) is not None
    assert machine_fingerprint("machine-A") != machine_fingerprint("machine-B")
    assert "machine-A" not in path.with_name(path.name + ".cloned").read_text()


def test_a_pending_request_from_another_machine_is_not_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.enrol import _pending  # noqa: PLC0415

    path = tmp_path / "id.toml"
    monkeypatch.setattr("agent.enrol._machine_id", lambda: "machine-A")
    first = _pending(path)
    assert _pending(path) == first  # same machine: the same request, asked again
    monkeypatch.setattr("agent.enrol._machine_id", lambda: "machine-B")
    assert _pending(path) != first
