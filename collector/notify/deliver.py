"""`Notifier`: one alert event in, every channel it concerns out, and a report.

Which channels an event uses:

- opened: level-1 e-mail, helpdesk webhook, MQTT list; plus the level-2 e-mail and
  contractor webhook when the alert's subject is in `escalate_on_open`.
- escalated: level-2 e-mail, contractor webhook, helpdesk webhook, MQTT list.
- acknowledged: helpdesk webhook, MQTT list.
- resolved: level-1 e-mail, helpdesk webhook, MQTT list; plus the level-2 e-mail
  and contractor webhook when the alert had been escalated.

Webhooks without a configured URL are not attempted. `send` never raises for a
delivery failure: the report names each failed channel and why, and the caller
retries those channels with `only=report.failed_channels`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import monotonic
from typing import Literal

from collector.alerts.model import Alert, Transition
from collector.notify import channels
from collector.notify.digest import DIGEST_KINDS, DigestItem, digest_email, next_digest
from collector.notify.live import LiveRegistry
from collector.notify.payload import (
    OPEN_STATUSES,
    AlertContext,
    NotificationKind,
    alert_topic_state,
    webhook_document,
)
from collector.notify.registry import Registry, alert_topic
from collector.notify.render import level1_email, level2_email
from collector.notify.routing import Route, route
from collector.notify.settings import NotifySettings

log = logging.getLogger(__name__)

Channel = Literal[
    "email_level1", "email_level2", "webhook_contractor", "webhook_helpdesk", "mqtt_alerts"
]
# The school's current open alerts, e.g. the alert store's query. It must already
# reflect the event being sent.
OpenAlertsSource = Callable[[str], Iterable[Alert]]
# (UAI, device id) -> asset tag, consulted when the registry has none for the device:
# the hook for an inventory kept elsewhere (e.g. the alert store's devices.asset_tag,
# filled at enrolment).
AssetTagSource = Callable[[str, str], str | None]


@dataclass(frozen=True, slots=True)
class ChannelResult:
    channel: Channel
    target: str  # recipients, webhook address without credentials, or MQTT topic
    ok: bool
    error: str | None = None  # never contains a secret
    elapsed_s: float = 0.0


@dataclass(slots=True)
class DeliveryReport:
    kind: NotificationKind
    alert_id: int
    route: Route
    results: list[ChannelResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed_channels(self) -> set[Channel]:
        return {r.channel for r in self.results if not r.ok}

    @property
    def escalated_to(self) -> str | None:
        """The level-2 party reached, for `Alert.escalated_to`."""
        sent = {"email_level2", "webhook_contractor"}
        if any(r.ok and r.channel in sent for r in self.results):
            return self.route.escalation.party_id
        return None


class OpenAlertBook:
    """In-memory open alerts per school, used when no store is wired in: the
    retained MQTT list then covers the alerts this process has seen."""

    def __init__(self) -> None:
        self._by_school: dict[str, dict[int, Alert]] = {}

    def record(self, alert: Alert) -> None:
        school = self._by_school.setdefault(alert.school, {})
        if alert.status in OPEN_STATUSES:
            school[alert.id] = alert
        else:
            school.pop(alert.id, None)

    def open_alerts(self, uai: str) -> list[Alert]:
        return list(self._by_school.get(uai, {}).values())


class Notifier:
    """`registry`: a fixed `Registry`, or a `LiveRegistry` that a reload replaces
    (the collector's); each `send` routes with the one registry in force when it
    starts."""

    def __init__(
        self,
        registry: Registry | LiveRegistry,
        settings: NotifySettings,
        open_alerts: OpenAlertsSource | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        asset_tags: AssetTagSource | None = None,
    ) -> None:
        self.live = registry if isinstance(registry, LiveRegistry) else LiveRegistry(registry)
        self._asset_tags = asset_tags
        self.settings = settings
        self._book: OpenAlertBook | None = None
        if open_alerts is None:
            self._book = OpenAlertBook()
            open_alerts = self._book.open_alerts
        self._open_alerts = open_alerts
        self._clock = clock
        # Within one outbox pass (`topic_pass`): each school's retained alert list as
        # published by the pass (None: sent; else the error), per delivering thread.
        self._pass = threading.local()

    @property
    def registry(self) -> Registry:
        """The registry in force: read it once per use (a reload replaces it whole)."""
        return self.live.current

    def asset_tag(
        self, uai: str, device: str | None, registry: Registry | None = None
    ) -> str | None:
        """The registry's tag, else the `asset_tags` source's (None: unknown)."""
        tag = (self.registry if registry is None else registry).asset_tag(uai, device)
        if tag is None and device is not None and self._asset_tags is not None:
            tag = self._asset_tags(uai, device)
        return tag

    def context(self, alert: Alert, registry: Registry | None = None) -> AlertContext:
        registry = self.registry if registry is None else registry
        the_route = route(alert, registry)
        school = registry.schools.get(alert.school)
        url = self.settings.dashboard_url.format(school=alert.school, device=alert.device or "")
        return AlertContext(
            route=the_route,
            town=school.town if school else None,
            asset_tag=self.asset_tag(alert.school, alert.device, registry),
            dashboard_url=url,
            alert_url=self.settings.web_url.format(id=alert.id) if self.settings.web_url else None,
        )

    def digest_times(self, uai: str, registry: Registry | None = None) -> list[str]:
        """The school's digest times: its own in the registry, else the settings'."""
        school = (self.registry if registry is None else registry).schools.get(uai)
        if school is not None and school.digest_times is not None:
            return school.digest_times
        return self.settings.digest.times

    def digest_at(self, kind: str, alert: Alert, now: datetime) -> datetime | None:
        """When this event's level-1 e-mail goes out in its school's digest; None: at
        once (no digest time, a critical alert, or not a digest event)."""
        if kind not in DIGEST_KINDS or alert.severity in self.settings.digest.immediate:
            return None
        times = self.digest_times(alert.school)
        return next_digest(times, now) if times else None

    def send_digest(
        self, uai: str, events: Sequence[tuple[str, Alert]], now: datetime
    ) -> ChannelResult:
        """One level-1 e-mail listing `events` ((kind, alert) of one school), dated `now`."""
        registry = self.live.fresh()
        ctx = self.context(events[0][1], registry)
        web = self.settings.web_url
        items = [
            DigestItem(
                kind,
                alert,
                self.asset_tag(alert.school, alert.device, registry),
                web.format(id=alert.id) if web else None,
            )
            for kind, alert in events
        ]
        footer = [f"Tableau de bord : {self.settings.dashboard_url.format(school=uai, device='')}"]
        if ctx.route.fallback_used:
            footer.insert(
                0,
                f"ATTENTION : l'établissement {uai} n'est pas dans le registre des "
                "établissements ; ce message est envoyé à l'adresse de secours.",
            )
        text = digest_email(uai, ctx.route.school_name, items, now, footer)
        to = [r.email for r in ctx.route.level1]
        started = monotonic()
        try:
            error = channels.send_email(self.settings.smtp, to, text.subject, text.body)
        except Exception as exc:  # a rendering or sending bug: the rows wait and retry
            error = f"{type(exc).__name__}: {exc}"
        result = ChannelResult("email_level1", ", ".join(to), error is None, error,
                               monotonic() - started)  # fmt: skip
        if error is None:
            log.info("school %s: digest of %d alert events delivered to %s",
                     uai, len(events), result.target)  # fmt: skip
        else:
            log.warning("school %s: digest to %s failed: %s", uai, result.target, error)
        return result

    def planned(self, kind: NotificationKind, alert: Alert) -> list[Channel]:
        """The channels this event uses (module docstring)."""
        return self._planned(kind, alert)

    def _planned(self, kind: NotificationKind, alert: Alert) -> list[Channel]:
        level2 = (
            kind == "escalated"
            or (kind == "opened" and alert.subject in self.settings.escalate_on_open)
            or (kind == "resolved" and alert.escalated_to is not None)
        )
        plan: list[Channel] = []
        if kind in ("opened", "resolved"):
            plan.append("email_level1")
        if level2:
            plan += ["email_level2", "webhook_contractor"]
        plan.append("webhook_helpdesk")
        if self.settings.alert_topic.enabled:
            plan.append("mqtt_alerts")
        return plan

    def send(
        self,
        kind: NotificationKind,
        alert: Alert,
        transitions: Sequence[Transition] = (),
        only: Collection[Channel] | None = None,
    ) -> DeliveryReport:
        """Deliver one alert event; `only` restricts it to some channels (a retry)."""
        # One version throughout, even if a reload swaps it; the file's latest version
        # if it changed (e.g. the asset tag of a laptop enrolled a moment ago).
        registry = self.live.fresh()
        ctx = self.context(alert, registry)
        report = DeliveryReport(kind, alert.id, ctx.route)
        if ctx.route.problem:
            log.warning("routing: %s", ctx.route.problem)
        if self._book is not None:
            self._book.record(alert)
        for channel in self._planned(kind, alert):
            if only is not None and channel not in only:
                continue
            result = self._deliver(channel, kind, alert, transitions, ctx, registry=registry)
            if result is not None:
                report.results.append(result)
        return report

    def _deliver(
        self,
        channel: Channel,
        kind: NotificationKind,
        alert: Alert,
        transitions: Sequence[Transition],
        ctx: AlertContext,
        *,
        registry: Registry,
    ) -> ChannelResult | None:
        target_and_send = self._sender(channel, kind, alert, transitions, ctx, registry=registry)
        if target_and_send is None:
            return None
        target, send = target_and_send
        started = monotonic()
        try:
            error = send()
        except Exception as exc:  # rendering bugs must not stop the other channels
            error = f"{type(exc).__name__}: {exc}"
        result = ChannelResult(channel, target, error is None, error, monotonic() - started)
        if error is None:
            log.info("alert %d %s: %s delivered to %s", alert.id, kind, channel, target)
        else:
            log.warning("alert %d %s: %s to %s failed: %s", alert.id, kind, channel, target, error)
        return result

    def _sender(
        self,
        channel: Channel,
        kind: NotificationKind,
        alert: Alert,
        transitions: Sequence[Transition],
        ctx: AlertContext,
        *,
        registry: Registry,
    ) -> tuple[str, Callable[[], str | None]] | None:
        """(target description, send function), or None when not configured."""
        smtp, esc = self.settings.smtp, ctx.route.escalation
        if channel == "email_level1":
            to = [r.email for r in ctx.route.level1]
            text = level1_email(kind, alert, ctx)
            return ", ".join(to), lambda: channels.send_email(smtp, to, text.subject, text.body)
        if channel == "email_level2":
            l2_text, _ = level2_email(kind, alert, transitions, ctx)
            return ", ".join(esc.emails), lambda: channels.send_email(
                smtp, esc.emails, l2_text.subject, l2_text.body
            )
        if channel == "mqtt_alerts":
            return self._mqtt_sender(alert.school, registry)
        url = esc.webhook_url if channel == "webhook_contractor" else ctx.route.helpdesk_webhook_url
        if url is None:
            return None
        doc = webhook_document(kind, alert, transitions, ctx, self._clock())
        timeout_s = self.settings.webhook_timeout_s
        return channels.webhook_target(url), lambda: channels.send_webhook(url, doc, timeout_s)

    @contextmanager
    def topic_pass(self) -> Iterator[None]:
        """One pass over outbox rows claimed together: each school's retained alert
        list is read and published once, by the pass's first row of that school; its
        other rows take that result. The list read after the claim holds every alert
        whose row the pass claimed (a later change has its own row, for a later
        pass); publishing the same retained list again would change nothing, and
        re-reading a school's alerts for each of hundreds of rows (a first day) is
        what made the outbox's time grow with the square of the burst."""
        self._pass.published = {}
        try:
            yield
        finally:
            self._pass.published = None

    def _mqtt_sender(self, uai: str, registry: Registry) -> tuple[str, Callable[[], str | None]]:
        topic = alert_topic(uai)
        published: dict[str, str | None] | None = getattr(self._pass, "published", None)
        if published is not None and uai in published:
            error = published[uai]
            return topic, lambda: error
        pairs = [(a, self.asset_tag(a.school, a.device, registry)) for a in self._open_alerts(uai)]
        state = alert_topic_state(pairs)
        broker = self.settings.alert_topic

        def send() -> str | None:
            error = channels.publish_retained(broker, topic, state)
            if published is not None:
                published[uai] = error
            return error

        return topic, send
