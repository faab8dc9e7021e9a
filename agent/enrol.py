"""Self-enrolment: a school's laptops share one configuration, each gets its own identity.

The school configuration (master image, MDM profile) holds the school's UAI, the
broker, the SSID allowlist and an enrolment secret `<id>.<random>`. At first start
the agent connects to the broker as `enrol/<UAI>/<id>` with that secret and asks for
an identity; the enrolment service (`lordi enrol serve`) creates the laptop's broker
user `<UAI>/<device>` and answers with the device id. The password is made HERE and
never leaves the laptop: the request carries only its hash, in the broker's own
password-file format, which the service appends as it is. Another laptop holding
the same school secret cannot read requests (the broker's ACL lets an enrolment
account publish requests and read its answers), and answers carry no secret.

The identity is saved before the agent reports (`identity_file`, mode 0600, owned by
the agent's account: root or SYSTEM), and a saved identity is never replaced: a
laptop enrols once. A re-imaged laptop has no identity file and enrols again under
a new id; the old one is revoked on the server (`lordi enrol revoke-device`). The
identity also records a hash of the machine's own id (/etc/machine-id, Windows'
MachineGuid, the Mac's IOPlatformUUID; kept on the laptop, never sent): an identity
found on another machine came with a cloned disk image, and that laptop enrols
under a new id instead of fighting the original for its broker session. The
pending request (its id and password) is saved before it is sent, so an agent that
stops before the answer asks again with the same request id and the service hands
back the same device instead of making a second one.

Topics (protocol v1):
    request  lordi/enrol/v1/req/enrol/<UAI>/<secret id>/<request id>   (agent -> service)
    answer   lordi/enrol/v1/resp/enrol/<UAI>/<secret id>/<request id>  (service -> agent)
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import secrets
import ssl
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.config import AgentConfig

log = logging.getLogger("agent.enrol")

PROTOCOL = 1
REQUEST_PREFIX = "lordi/enrol/v1/req/"
ANSWER_PREFIX = "lordi/enrol/v1/resp/"
SECRET = re.compile(r"^([a-z0-9]{4,16})\.([A-Za-z0-9_-]{32,128})$")
REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


HASH_ITERATIONS = 101  # mosquitto_passwd's default in Mosquitto 2.0
HASHED = re.compile(r"^\$7\$([0-9]{3,6})\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$")


def mosquitto_hash(password: str) -> str:
    """`$7$101$<salt>$<hash>`: what `mosquitto_passwd` writes after `user:`
    (PBKDF2-HMAC-SHA512, 12-byte salt, 64-byte hash)."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, HASH_ITERATIONS, 64)
    b64 = base64.b64encode
    return f"$7${HASH_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


class EnrolError(Exception):
    """Enrolment refused or impossible; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Identity:
    school: str
    device: str
    username: str
    password: str
    machine: str = ""  # machine_fingerprint() where it was made; "" when unknown


def _machine_id() -> str:
    """The operating system's id of this installation or board, "" when unreadable."""
    import sys  # noqa: PLC0415

    try:
        if sys.platform == "win32":
            import winreg  # noqa: PLC0415

            with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE,
                                r"SOFTWARE\Microsoft\Cryptography") as key:
                return str(winreg.QueryValueEx(key, "MachineGuid")[0])
        if sys.platform == "darwin":
            import subprocess  # noqa: PLC0415

            out = subprocess.run(["/usr/sbin/ioreg", "-rd1", "-c", "IOPlatformExpertDevice"],
                                 capture_output=True, text=True, timeout=10, check=False).stdout
            found = re.search(r'"IOPlatformUUID" = "([^"]+)"', out)
            return found[1] if found else ""
        return Path("/etc/machine-id").read_text(encoding="ascii").strip()
    except (OSError, ValueError, ImportError):
        return ""


def machine_fingerprint(machine_id: str | None = None) -> str:
    """A hash of the machine's id (the id itself is not kept), "" when unknown."""
    raw = _machine_id() if machine_id is None else machine_id
    return hashlib.sha256(b"lordi-identity:" + raw.encode()).hexdigest()[:32] if raw else ""


def secret_id(secret: str) -> str:
    """The public half of `<id>.<random>`; raises EnrolError on a malformed secret."""
    match = SECRET.match(secret)
    if not match:
        raise EnrolError(
            "enrol.secret: expected '<id>.<random>' as printed by `lordi enrol secret create`"
        )
    return match[1]


def enrol_account(school: str, secret_id: str) -> str:
    """The broker user of a school's enrolment secret (the ACL's %u in lordi/enrol/...)."""
    return f"enrol/{school}/{secret_id}"


def enrol_user(school: str, secret: str) -> str:
    return enrol_account(school, secret_id(secret))


def request_topic(user: str, request_id: str) -> str:
    return f"{REQUEST_PREFIX}{user}/{request_id}"


def answer_topic(user: str, request_id: str) -> str:
    return f"{ANSWER_PREFIX}{user}/{request_id}"


def _toml(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _write_private(path: Path, text: str) -> None:
    """Owner-only file, replaced atomically (a crash leaves the old one or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_identity(path: Path, school: str) -> Identity | None:
    """The saved identity, None when the laptop has not enrolled yet."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise EnrolError(
            f"enrol.identity_file: {path} cannot be read ({exc}); it is this laptop's "
            "identity: restore it, or delete it to enrol again under a new id"
        ) from None
    try:
        identity = Identity(
            str(data["school"]), str(data["device"]), str(data["username"]),
            str(data["password"]), str(data.get("machine", "")),
        )
    except KeyError as exc:
        raise EnrolError(f"enrol.identity_file: {path} lacks {exc.args[0]!r}") from None
    if identity.school != school:
        raise EnrolError(
            f"enrol.identity_file: {path} belongs to school {identity.school}, the "
            f"configuration says {school}: delete the file to enrol in the new school"
        )
    return identity


def save_identity(path: Path, identity: Identity) -> None:
    _write_private(path, "".join((
        "# This laptop's identity, made by enrolment. Do not copy it to another laptop.\n",
        f"school = {_toml(identity.school)}\ndevice = {_toml(identity.device)}\n",
        f"username = {_toml(identity.username)}\npassword = {_toml(identity.password)}\n",
        f"machine = {_toml(identity.machine)}\n",
    )))


def _pending(path: Path) -> tuple[str, str]:
    """(request id, password) of an enrolment not answered yet, made once per machine
    (a pending request that came with a cloned image is not this laptop's)."""
    pending = path.with_name(path.name + ".pending")
    here = machine_fingerprint()
    try:
        data = tomllib.loads(pending.read_text(encoding="utf-8"))
        request_id, password = str(data["request_id"]), str(data["password"])
        if REQUEST_ID.match(request_id) and str(data.get("machine", "")) == here:
            return request_id, password
    except (OSError, KeyError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        pass
    request_id, password = secrets.token_urlsafe(18), secrets.token_urlsafe(24)
    _write_private(pending, f"request_id = {_toml(request_id)}\npassword = {_toml(password)}\n"
                            f"machine = {_toml(here)}\n")
    return request_id, password


class _Exchange:
    """The MQTT side of one request: connect as the school's enrolment account,
    subscribe to the answer's topic, then publish the request."""

    def __init__(self, user: str, request_id: str, password: str) -> None:
        self.user, self.request_id, self.password = user, request_id, password
        self.connected = threading.Event()
        self.answered = threading.Event()
        self.connack: Any = None
        self.answer: dict[str, Any] = {}

    def on_connect(self, client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connack = reason
        self.connected.set()
        if not reason.is_failure:
            client.subscribe(answer_topic(self.user, self.request_id), qos=1)

    def on_subscribe(self, client: Any, _u: Any, _mid: Any, _codes: Any, _p: Any) -> None:
        body = {"v": PROTOCOL, "request_id": self.request_id,
                "password_hash": mosquitto_hash(self.password)}
        client.publish(request_topic(self.user, self.request_id), json.dumps(body), qos=1)

    def on_message(self, _c: Any, _u: Any, message: Any) -> None:
        try:
            answer = json.loads(message.payload)
        except ValueError:
            answer = None
        self.answer = answer if isinstance(answer, dict) else {"error": "malformed answer"}
        self.answered.set()


def request_once(cfg: AgentConfig, timeout_s: float = 30.0) -> Identity:
    """One enrolment exchange with the broker; raises EnrolError when refused."""
    import paho.mqtt.client as mqtt  # noqa: PLC0415
    from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

    path = Path(cfg.enrol.identity_file)
    user = enrol_user(cfg.school, cfg.enrol.secret)
    request_id, password = _pending(path)
    exchange = _Exchange(user, request_id, password)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"enrol-{request_id}", protocol=mqtt.MQTTv5
    )
    client.username_pw_set(user, cfg.enrol.secret)
    if cfg.mqtt.tls:
        client.tls_set_context(ssl.create_default_context(cafile=cfg.mqtt.ca_file or None))
    client.on_connect = exchange.on_connect
    client.on_subscribe = exchange.on_subscribe
    client.on_message = exchange.on_message
    broker = f"{cfg.mqtt.host}:{cfg.mqtt.port}"
    try:
        client.connect(cfg.mqtt.host, cfg.mqtt.port, keepalive=60)
    except (OSError, ssl.SSLError) as exc:
        raise EnrolError(f"cannot reach the broker {broker}: {exc}") from None
    client.loop_start()
    try:
        if not exchange.connected.wait(timeout_s):
            raise EnrolError(f"the broker {broker} did not answer the connection within "
                             f"{timeout_s:.0f} s")
        if exchange.connack is not None and exchange.connack.is_failure:
            raise EnrolError(
                f"the broker {broker} refused the enrolment account {user} "
                f"({exchange.connack}): the school's enrolment secret is wrong, rotated or "
                "revoked; install the school's current configuration"
            )
        if not exchange.answered.wait(timeout_s):
            raise EnrolError(f"no answer from the enrolment service within {timeout_s:.0f} s")
    finally:
        client.disconnect()
        client.loop_stop()
    if "error" in exchange.answer:
        raise EnrolError(f"enrolment refused: {exchange.answer['error']}")
    identity = Identity(
        cfg.school, str(exchange.answer["device"]), str(exchange.answer["username"]), password,
        machine_fingerprint(),
    )
    save_identity(path, identity)
    path.with_name(path.name + ".pending").unlink(missing_ok=True)
    log.info("enrolled as device %s (school %s)", identity.device, identity.school)
    return identity


def ensure_identity(cfg: AgentConfig, stop: threading.Event | None = None) -> AgentConfig:
    """`cfg` with the laptop's own device id and broker credentials: the saved
    identity, or a new one from the enrolment service (retried with backoff until it
    succeeds or `stop` is set). A configuration with its own `device` is returned as is."""
    if cfg.device or not cfg.enrol.secret:
        return cfg
    path = Path(cfg.enrol.identity_file)
    identity = load_identity(path, cfg.school)
    here = machine_fingerprint()
    if identity is not None and identity.machine and here and identity.machine != here:
        cloned = path.with_name(path.name + ".cloned")
        log.warning(
            "the identity in %s (device %s) was made on another machine: it came with a "
            "cloned disk image; this laptop enrols under its own id (the file is kept as %s; "
            "revoke %s on the server if no laptop should use it)",
            path, identity.device, cloned, identity.device,
        )
        os.replace(path, cloned)
        path.with_name(path.name + ".pending").unlink(missing_ok=True)
        identity = None
    delay = 5.0
    while identity is None:
        try:
            identity = request_once(cfg)
        except EnrolError as exc:
            if stop is None:
                raise
            log.warning("%s; retrying in %.0f s", exc, delay)
            if stop.wait(delay):
                raise
            delay = min(delay * 2, 900.0)
    cfg.device = identity.device
    cfg.mqtt.username = identity.username
    cfg.mqtt.password = identity.password
    return cfg

