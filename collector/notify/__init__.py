"""Alert routing and delivery: the school registry, who receives what, the French
e-mails and JSON documents, and the senders (e-mail, webhook, retained MQTT)."""

from collector.notify.deliver import ChannelResult, DeliveryReport, Notifier, OpenAlertBook
from collector.notify.errors import NotifyError, RegistryError, UnknownSchoolError
from collector.notify.payload import SCHEMA_VERSION, NotificationKind
from collector.notify.registry import Registry, alert_topic, load_registry
from collector.notify.routing import Escalation, Recipient, Route, route
from collector.notify.settings import AlertTopicSettings, NotifySettings, SmtpSettings

__all__ = [
    "SCHEMA_VERSION",
    "AlertTopicSettings",
    "ChannelResult",
    "DeliveryReport",
    "Escalation",
    "NotificationKind",
    "Notifier",
    "NotifyError",
    "NotifySettings",
    "OpenAlertBook",
    "Recipient",
    "Registry",
    "RegistryError",
    "Route",
    "SmtpSettings",
    "UnknownSchoolError",
    "alert_topic",
    "load_registry",
    "route",
]
