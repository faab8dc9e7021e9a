"""Who receives an alert, and why: pure functions over the registry.

Level 1 is the school's own technicians, for every alert of the school. Level 2 is
chosen by the alert's category alone: "hardware" goes to the school's hardware
contractor, "network" to its network contractor. The reason is spelled out in
French because it is printed in the e-mails: a contractor who sees *why* the
ticket is theirs does not send it back.

A school missing from the registry is never dropped: both levels go to the
registry's fallback address and the route says what went wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collector.alerts.model import Alert, Category
from collector.notify.errors import UnknownSchoolError
from collector.notify.registry import Registry, School

CATEGORY_FR: dict[Category, str] = {"hardware": "matériel", "network": "réseau"}
FALLBACK_PARTY = "fallback"


@dataclass(frozen=True, slots=True)
class Recipient:
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class Escalation:
    """The level-2 party for an alert."""

    party_id: str  # contractor id, or "fallback"
    party_name: str
    category: Category
    emails: tuple[str, ...]
    # repr=False: webhook URLs often carry a token, and reports get logged.
    webhook_url: str | None = field(repr=False)
    reason: str = ""  # French, printed in the e-mail and the packet


@dataclass(frozen=True, slots=True)
class Route:
    uai: str
    school_name: str | None  # None when the school is not in the registry
    level1: tuple[Recipient, ...]
    escalation: Escalation
    helpdesk_webhook_url: str | None = field(repr=False)
    # Set when the route is a fallback: what is wrong, for the report and the logs.
    problem: str | None = None

    @property
    def fallback_used(self) -> bool:
        return self.problem is not None


def _escalation(registry: Registry, school: School, alert: Alert) -> Escalation:
    contractor_id = (
        school.hardware_contractor if alert.category == "hardware" else school.network_contractor
    )
    contractor = registry.contractor(contractor_id)
    trade = CATEGORY_FR[alert.category]
    return Escalation(
        party_id=contractor_id,
        party_name=contractor.name,
        category=alert.category,
        emails=tuple(contractor.emails),
        webhook_url=contractor.webhook_url,
        reason=(
            f"alerte de catégorie « {trade} » (règle {alert.rule}) : "
            f"{contractor.name} est le prestataire {trade} de l'établissement {school.name}"
        ),
    )


def _fallback(registry: Registry, alert: Alert) -> Route:
    problem = (
        f"school {alert.school!r} is not in the school registry: alert {alert.id} "
        f"sent to the fallback address {registry.fallback_email}"
    )
    escalation = Escalation(
        party_id=FALLBACK_PARTY,
        party_name="Adresse de secours du registre",
        category=alert.category,
        emails=(registry.fallback_email,),
        webhook_url=None,
        reason=(
            f"établissement {alert.school} absent du registre des établissements : "
            "aucun prestataire connu, à compléter dans le registre"
        ),
    )
    return Route(
        uai=alert.school,
        school_name=None,
        level1=(Recipient("Adresse de secours du registre", registry.fallback_email),),
        escalation=escalation,
        helpdesk_webhook_url=None,
        problem=problem,
    )


def route(alert: Alert, registry: Registry) -> Route:
    """Level-1 recipients and the level-2 party for `alert`. Never raises for an
    unknown school: the returned route is the fallback and `problem` says so."""
    try:
        school = registry.school(alert.school)
    except UnknownSchoolError:
        return _fallback(registry, alert)
    return Route(
        uai=alert.school,
        school_name=school.name,
        level1=tuple(Recipient(c.name, c.email) for c in school.level1),
        escalation=_escalation(registry, school, alert),
        helpdesk_webhook_url=school.helpdesk_webhook_url,
    )
