"""Senders: e-mail (SMTP, collector/notify/smtp.py: one connection and one TLS
context reused), JSON webhooks through apprise, retained MQTT topics through
paho-mqtt.

Each sender returns `None` on success or a one-line reason on failure and never
raises for a delivery problem. Webhook reasons come from apprise's captured
warnings, with every secret we handed to apprise replaced by `***`.

* E-mail: smtplib, through `SENDER`, which keeps the relay's connection open
  between e-mails (apprise opened one, and built a TLS context, per e-mail).
  `email_url` is the apprise form of the same settings, kept for the benchmark
  that compares the two (`python -m lordi.bench.smtp`).
* Webhook: apprise's `json://` plugin wraps the body in its own envelope
  ({version, title, message, type, attachments}) with our document as a *string*.
  Its payload overrides (an empty value removes a field; other keys are added),
  given as a dict when building the plugin, make the HTTP body exactly our
  document, so helpdesks get plain JSON objects. A test against a real HTTP
  server pins that behaviour (it would catch a change in a future apprise).
* MQTT: not apprise, whose `mqtt://` plugin takes no CA file (a broker certificate
  from a private CA failed with "MQTT SSL Certificate Error"): paho-mqtt publishes
  retained at QoS 1 and waits for the broker's PUBACK (collector/notify/mqtt_publish.py),
  with the `[mqtt]` connection's host, port, TLS settings and user unless the alert
  topic's own section says otherwise. A school with no open alert publishes `[]`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import apprise
from apprise.plugins.custom_json import NotifyJSON

from collector.notify import mqtt_publish
from collector.notify.settings import AlertTopicSettings, SmtpSettings
from collector.notify.smtp import SmtpSender

_APPRISE_MODE = {"none": "insecure", "starttls": "starttls", "ssl": "ssl"}
# Fields of apprise's JSON envelope; mapping one to "" removes it from the body.
_APPRISE_JSON_FIELDS = ("version", "title", "message", "type", "attachments")
# apprise ships without annotations on this static method.
_PARSE_JSON_URL = cast(Callable[[str], dict[str, Any] | None], NotifyJSON.parse_url)
_NEW_JSON = cast(Callable[..., NotifyJSON], NotifyJSON)
_ASSET = apprise.AppriseAsset(storage_mode=apprise.PersistentStoreMode.MEMORY)
# The collector's e-mail sender: its connections live as long as the process.
SENDER = SmtpSender()


def _q(text: str) -> str:
    return quote(text, safe="")


def _credentials(user: str | None, password: str | None) -> str:
    if not user:
        return ""
    return f"{_q(user)}:{_q(password)}@" if password else f"{_q(user)}@"


def email_url(smtp: SmtpSettings, to: Sequence[str]) -> str:
    """The apprise URL sending one message per recipient in `to` through `smtp`."""
    scheme = "mailto" if smtp.tls == "none" else "mailtos"
    password = smtp.password.get_secret_value() if smtp.password else None
    query = urlencode(
        {
            "smtp": smtp.host,
            "mode": _APPRISE_MODE[smtp.tls],
            "from": smtp.from_address,
            "name": smtp.from_name,
            "to": ",".join(to),
            "format": "text",
            "cto": str(smtp.timeout_s),
        }
    )
    return f"{scheme}://{_credentials(smtp.user, password)}{smtp.host}:{smtp.port}/?{query}"


def webhook_target(url: str) -> str:
    """What a report may show of a webhook URL: no credentials, no query string."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def _webhook_service(url: str, document: dict[str, Any], timeout_s: float) -> NotifyJSON:
    parts = urlsplit(url)
    scheme = "jsons" if parts.scheme == "https" else "json"
    options = urlencode({"method": "POST", "cto": str(timeout_s), "rto": str(timeout_s)})
    service = _PARSE_JSON_URL(f"{scheme}://{parts.netloc}{parts.path or '/'}?{options}")
    if not service:
        raise ValueError(f"webhook URL not understood by apprise: {webhook_target(url)}")
    payload = {name: "" for name in _APPRISE_JSON_FIELDS}
    payload.update(document)
    service["payload"] = payload
    # Built here rather than from a URL string: apprise logs every URL it loads,
    # and that log would carry the whole document and the query string.
    plugin = _NEW_JSON(asset=_ASSET, **service)
    # apprise ignores unknown query arguments; the helpdesk's own (often a token)
    # must reach it unchanged, as request parameters.
    plugin.params = dict(parse_qsl(parts.query, keep_blank_values=True))
    return plugin


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***").replace(_q(secret), "***")
    return text


def _notify(service: str | NotifyJSON, title: str, body: str, secrets: Iterable[str]) -> str | None:
    """Send through apprise; None on success, else the scrubbed reason."""
    secrets = tuple(secrets)
    try:
        sender = apprise.Apprise(asset=_ASSET)
        if not sender.add(service):
            return "apprise rejected the service configuration"
        result = sender.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT)
        if result.status == apprise.AppriseResultStatus.SUCCESS:
            return None
        reasons = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR")]
        reason = "; ".join(dict.fromkeys(reasons)) or f"apprise status {result.status.name}"
    except Exception as exc:  # a sender must never raise into the alert engine
        reason = f"{type(exc).__name__}: {exc}"
    return _scrub(reason, secrets)


def _secret_values(*secrets: Any) -> list[str]:
    return [s.get_secret_value() for s in secrets if s is not None]


def send_email(smtp: SmtpSettings, to: Sequence[str], subject: str, body: str) -> str | None:
    return SENDER.send(smtp, to, subject, body)


def send_email_apprise(
    smtp: SmtpSettings, to: Sequence[str], subject: str, body: str
) -> str | None:
    """The former path (a connection and a TLS context per e-mail), for the benchmark."""
    return _notify(email_url(smtp, to), subject, body, _secret_values(smtp.password))


def send_webhook(url: str, document: dict[str, Any], timeout_s: float) -> str | None:
    # Userinfo and query strings of webhook URLs often carry tokens.
    parts = urlsplit(url)
    secrets = [parts.password or "", *(v for _, v in parse_qsl(parts.query))]
    try:
        service = _webhook_service(url, document, timeout_s)
    except ValueError as exc:
        return str(exc)
    # apprise needs a non-empty body; the removed "message" field keeps it off the wire.
    return _notify(service, "", "lordi", secrets)


def publish_retained(
    broker: AlertTopicSettings, topic: str, state: list[dict[str, Any]]
) -> str | None:
    body = json.dumps(state, ensure_ascii=False, separators=(",", ":"))
    try:
        error = mqtt_publish.publish_retained(broker, topic, body.encode("utf-8"))
    except Exception as exc:  # a sender must never raise into the alert engine
        error = f"{type(exc).__name__}: {exc}"
    return None if error is None else _scrub(error, _secret_values(broker.password))
