"""The enrolment service: answers laptops' enrolment requests in batches.

One MQTT client (broker user `lordi-enrol`: it reads requests and writes answers,
nothing else) subscribes to every school's requests. Requests that arrive within
`batch_window_s` are enrolled together: the store records them in one
transaction, their lines are appended to the broker's password file in one write,
the broker is reloaded once (SIGHUP) and the service waits until the broker
accepts a probe account whose password changed in the same write, so no laptop is
answered before the broker knows its identity.

A request is refused, with a reason the agent logs, when its secret is unknown or
revoked, when its school's rate is exceeded (token bucket per school,
`[limits]`), or when it is malformed; every enrolment and every refusal is logged.
The answer's topic is derived from the request's topic, never taken from the
message, so an answer can only reach the account that asked.
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.exc import SQLAlchemyError

from agent.config import UAI
from agent.enrol import (
    HASHED,
    PROTOCOL,
    REQUEST_ID,
    REQUEST_PREFIX,
    answer_topic,
    enrol_account,
)
from lordi.enrol import passwd
from lordi.enrol.settings import EnrolSettings, MqttSettings
from lordi.enrol.store import EnrolStore
from lordi.provision import PASSWD_FILE, device_user, locked, new_device_id, reload_broker

log = logging.getLogger("lordi.enrol")

REQUESTS = f"{REQUEST_PREFIX}enrol/+/+/+"
# A new probe account per batch ("lordi-enrol-probe-<run>-<n>"): the broker accepting it
# proves the reload is done. Appended with the batch (the file is not rewritten); the
# old ones are dropped every PROBE_PURGE batches and at start. No "/" in the name, so
# the ACL's %u patterns give it no topic anyone reads.
PROBE_USER = "lordi-enrol-probe"
PROBE_PURGE = 50


@dataclass(frozen=True, slots=True)
class Request:
    school: str
    secret_id: str
    request_id: str
    password_hash: str  # `$7$...`, made on the laptop

    @property
    def answer_topic(self) -> str:
        return answer_topic(enrol_account(self.school, self.secret_id), self.request_id)


class Refused(Exception):
    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


def parse_request(topic: str, payload: bytes) -> Request:
    """The request in a message; Refused names what is wrong with it."""
    parts = topic.removeprefix(REQUEST_PREFIX).split("/")
    if len(parts) != 4 or parts[0] != "enrol":
        raise Refused(f"topic {topic!r} is not an enrolment request topic")
    _, school, secret_id, request_id = parts
    if not UAI.match(school) or not REQUEST_ID.match(request_id):
        raise Refused(f"topic {topic!r}: bad school or request id")
    try:
        body = json.loads(payload)
    except ValueError:
        raise Refused("request is not JSON") from None
    if not isinstance(body, dict) or body.get("v") != PROTOCOL:
        raise Refused(f"request protocol: expected v={PROTOCOL} (got {body!r:.60})")
    hashed = body.get("password_hash")
    if not isinstance(hashed, str) or not HASHED.match(hashed):
        raise Refused("request password_hash: expected Mosquitto's $7$ format")
    if body.get("request_id") != request_id:
        raise Refused("request_id differs from the topic's")
    return Request(school, secret_id, request_id, hashed)


@dataclass
class TokenBucket:
    per_s: float
    burst: float
    tokens: float = -1.0
    at: float = field(default_factory=time.monotonic)

    def take(self, now: float) -> float:
        """0 when allowed, else the seconds until a token is there."""
        if self.tokens < 0:
            self.tokens = self.burst
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.per_s)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.per_s


def mqtt_client(settings: MqttSettings, client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.enable_logger(logging.getLogger("lordi.enrol.mqtt"))
    client.username_pw_set(settings.username, settings.password or None)
    if settings.tls:
        client.tls_set_context(ssl.create_default_context(cafile=settings.ca_file or None))
    return client


def _try_connect(settings: MqttSettings, timeout_s: float) -> bool:
    done = threading.Event()
    box: dict[str, bool] = {}

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        box["ok"] = not reason.is_failure
        done.set()

    probe = mqtt_client(settings, "")
    probe.on_connect = on_connect
    try:
        probe.connect(settings.host, settings.port, keepalive=10)
        probe.loop_start()
        done.wait(timeout_s)
    except OSError:
        pass
    finally:
        probe.disconnect()
        probe.loop_stop()
    return box.get("ok", False)


def broker_accepts(settings: MqttSettings, user: str, password: str, timeout_s: float) -> bool:
    """Whether the broker lets `user` in (after a reload it may take a moment)."""
    deadline = time.monotonic() + timeout_s
    as_user = settings.model_copy(update={"username": user, "password": password})
    while not _try_connect(as_user, max(0.1, deadline - time.monotonic())):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


SESSION_EXPIRY_S = 7 * 86_400


def _session(expiry_s: int) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = expiry_s
    return props


class EnrolService:
    def __init__(self, settings: EnrolSettings, store: EnrolStore) -> None:
        self.settings = settings
        self.store = store
        # (topic, payload, arrival on the monotonic clock)
        self.inbox: queue.Queue[tuple[str, bytes, float]] = queue.Queue()
        self._run = secrets.token_hex(3)
        self._batches = 0
        self.buckets: dict[str, TokenBucket] = {}
        self.enrolled = 0
        self.refused = 0
        self._client = mqtt_client(settings.mqtt, "lordi-enrol")
        self._client.on_connect = self._on_connect
        self._client.on_message = lambda _c, _u, m: self.inbox.put(
            (m.topic, bytes(m.payload), time.monotonic())
        )

    @property
    def passwd_file(self) -> Path:
        return self.settings.broker.dir / PASSWD_FILE

    def _on_connect(self, client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the enrolment service's account %s (%s)",
                      self.settings.mqtt.username, reason)
            return
        client.subscribe(REQUESTS, qos=1)
        log.info("enrolment service listening on %s", REQUESTS)

    def reconcile(self) -> None:
        """The password file holds exactly the store's live secrets and devices."""
        live, revoked = self.store.live_lines(), self.store.revoked_users()
        with locked(self.settings.broker.dir):
            present = passwd.users(self.passwd_file)
            missing = [line for user, line in live.items() if user not in present]
            stale = ((revoked - set(live)) & present) | self._old_probes()
            added = passwd.append(self.passwd_file, missing)
            removed = passwd.remove(self.passwd_file, stale)
        if added or removed:
            log.warning("password file repaired from the enrolment store: %d line(s) put "
                        "back, %d revoked removed", added, removed)
            self._reload()

    def _reload(self) -> None:
        log.info(reload_broker(None, self.settings.broker.pid_file))

    def start(self) -> None:
        self.store.create_tables()
        self.reconcile()
        # A persistent session: requests published while the service restarts wait in
        # the broker (QoS 1) instead of being lost.
        self._client.connect(
            self.settings.mqtt.host, self.settings.mqtt.port, keepalive=60, clean_start=False,
            properties=_session(SESSION_EXPIRY_S),
        )
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            batch = self._collect(stop)
            if not batch:
                continue
            try:
                self.handle(batch)
            except (OSError, SQLAlchemyError) as exc:
                # Unanswered, these laptops ask again (same request ids) within a minute.
                log.error("enrolment batch of %d request(s) failed, not answered: %s",
                          len(batch), exc)
                try:  # recorded but not in the password file: put the lines back
                    self.reconcile()
                except (OSError, SQLAlchemyError) as again:
                    log.error("password file not repaired: %s", again)

    def _collect(self, stop: threading.Event) -> list[tuple[str, bytes]]:
        """Requests for one batch: the window starts at the first one's arrival, so
        requests that queued up during the previous batch go at once."""
        try:
            topic, payload, arrived = self.inbox.get(timeout=0.5)
        except queue.Empty:
            return []
        batch = [(topic, payload)]
        deadline = arrived + self.settings.batch_window_s
        while len(batch) < self.settings.batch_max and not stop.is_set():
            try:
                topic, payload, _ = self.inbox.get_nowait()
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    topic, payload, _ = self.inbox.get(timeout=left)
                except queue.Empty:
                    break
            batch.append((topic, payload))
        return batch

    def _probe_user(self) -> str:
        self._batches += 1
        return f"{PROBE_USER}-{self._run}-{self._batches}"

    def _old_probes(self) -> set[str]:
        return {u for u in passwd.users(self.passwd_file) if u.startswith(PROBE_USER)}

    def _refuse(self, topic: str, request: Request | None, exc: Refused) -> None:
        self.refused += 1
        log.warning("enrolment refused (%s): %s", topic, exc)
        if request is not None:
            answer: dict[str, Any] = {"v": PROTOCOL, "error": str(exc)}
            if exc.retry_after_s is not None:
                answer["retry_after_s"] = round(exc.retry_after_s, 1)
            self._client.publish(request.answer_topic, json.dumps(answer), qos=1)

    def handle(self, batch: list[tuple[str, bytes]]) -> None:
        """Enrol a batch of requests and answer each one."""
        new: list[tuple[Request, str, str]] = []  # request, device, passwd line
        again: list[tuple[Request, str]] = []
        taken: set[tuple[str, str]] = set()
        for topic, payload in batch:
            request: Request | None = None
            try:
                request = parse_request(topic, payload)
                if (request.secret_id, request.request_id) in taken:
                    continue  # the same request twice in one batch (a QoS 1 redelivery)
                taken.add((request.secret_id, request.request_id))
                device = self._judge(request)
            except Refused as exc:
                self._refuse(topic, request, exc)
                continue
            if device is not None:
                again.append((request, device))
            else:
                device = new_device_id()
                line = passwd.line(device_user(request.school, device), request.password_hash)
                new.append((request, device, line))
        if new:
            self._commit(new)
        for request, device in [*again, *((r, d) for r, d, _ in new)]:
            answer = {"v": PROTOCOL, "device": device,
                      "username": device_user(request.school, device)}
            self._client.publish(request.answer_topic, json.dumps(answer), qos=1)

    def _judge(self, request: Request) -> str | None:
        """The device already made for this request, None for a new one; Refused."""
        secret = self.store.secret(request.secret_id)
        if secret is None or secret.school != request.school:
            raise Refused(f"enrolment secret {request.secret_id} is unknown for "
                          f"school {request.school}")
        if secret.revoked_at is not None:
            raise Refused(f"enrolment secret {request.secret_id} was revoked")
        known = self.store.by_request(request.secret_id, request.request_id)
        if known is not None:
            if known.revoked_at is not None:
                raise Refused(f"device {known.device} was revoked")
            return known.device
        limits = self.settings.limits
        bucket = self.buckets.setdefault(
            request.school, TokenBucket(limits.per_minute / 60.0, float(limits.burst))
        )
        wait = bucket.take(time.monotonic())
        if wait > 0:
            raise Refused(f"school {request.school}: too many enrolments, retry later", wait)
        return None

    def _commit(self, new: list[tuple[Request, str, str]]) -> None:
        # Store first: a crash before the password file is repaired by reconcile() at
        # the next start, and the agent asking again gets the same device.
        self.store.add_enrolments([
            {"device": device, "school": r.school, "secret_id": r.secret_id,
             "request_id": r.request_id, "passwd_line": line}
            for r, device, line in new
        ])
        probe, probe_user = secrets.token_urlsafe(24), self._probe_user()
        with locked(self.settings.broker.dir):
            if self._batches % PROBE_PURGE == 0:  # the file is rewritten only then
                passwd.remove(self.passwd_file, self._old_probes())
            passwd.append(self.passwd_file,
                          [*(line for _, _, line in new), passwd.hash_line(probe_user, probe)])
        self._reload()
        if not broker_accepts(self.settings.mqtt, probe_user, probe, 10.0):
            log.error("the broker did not take the new identities within 10 s of its reload: "
                      "check that [broker] pid_file is Mosquitto's and that its "
                      "password_file is %s", self.passwd_file)
        for r, device, _ in new:
            log.info("enrolled device %s: school %s, secret %s, request %s",
                     device, r.school, r.secret_id, r.request_id)
        self.enrolled += len(new)
