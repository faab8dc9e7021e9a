"""The school registry: who works for which school, loaded from one TOML file.

`provisioning/schools.toml` is the commented sample. Schools and contractors are
tables keyed by their identifier (`[schools.0340001A]`, `[contractors.<id>]`), so a
duplicate is a TOML error rather than a silent override. Cross-references (a school
naming its hardware and network contractors) are checked at load time: a registry
that would route an escalation to nobody, or to the wrong trade, never loads.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from collector.calendar.zones import canonical_zone, known_zones
from collector.contract import ID_PATTERN, TEXT_PATTERN, UAI_PATTERN
from collector.notify.errors import RegistryError, UnknownSchoolError
from collector.validate import describe

ContractorCategory = Literal["hardware", "network"]

# Deliberately loose: the SMTP server is the judge of deliverability; this only
# catches typos such as a missing "@" or a stray space.
EMAIL_PATTERN = r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$"
CONTRACTOR_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
ASSET_TAG_PATTERN = r"^[0-9A-Za-z_./-]{1,64}$"

Email = Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=254)]
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=TEXT_PATTERN)]
Uai = Annotated[str, Field(pattern=UAI_PATTERN)]
DeviceId = Annotated[str, Field(pattern=ID_PATTERN)]
AssetTag = Annotated[str, Field(pattern=ASSET_TAG_PATTERN)]
ContractorId = Annotated[str, Field(pattern=CONTRACTOR_ID_PATTERN)]
Ssid = Annotated[str, Field(min_length=1, max_length=32, pattern=TEXT_PATTERN)]
# A time of day on the school's wall clock (Paris time), "HH:MM": when the level-1
# digest e-mail goes out (collector/notify/digest.py).
DigestTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


def _check_http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return url


WebhookUrl = Annotated[str, Field(max_length=2048), AfterValidator(_check_http_url)]


def _check_zone(zone: str) -> str:
    found = canonical_zone(zone)
    if found is None:
        raise ValueError(f"not a school holiday zone (known: {known_zones()})")
    return found


# The school holiday zone ("A", "B", "C", "Corse", "Guadeloupe"...): the school
# calendar the silence rules and forecast terms use (docs/alerts.md).
Zone = Annotated[str, AfterValidator(_check_zone)]


def alert_topic(uai: str) -> str:
    """The retained MQTT topic holding a school's open alerts (design.md, topics v1)."""
    return f"lordi/v1/{uai}/alerts"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Contact(_Model):
    name: Name
    email: Email


class Contractor(_Model):
    name: Name
    category: ContractorCategory
    emails: Annotated[list[Email], Field(min_length=1)]
    webhook_url: WebhookUrl | None = None


class School(_Model):
    name: Name
    town: Name
    level1: Annotated[list[Contact], Field(min_length=1)]
    ssids: Annotated[list[Ssid], Field(min_length=1)]
    hardware_contractor: ContractorId
    network_contractor: ContractorId
    helpdesk_webhook_url: WebhookUrl | None = None
    # Filled by enrolment: the sticker on the laptop, which is what a technician
    # looks for in a cupboard of 300 identical machines.
    asset_tags: dict[DeviceId, AssetTag] = {}
    # Its school holiday zone; None: the registry's `calendar_zone`.
    zone: Zone | None = None
    # When its level-1 technicians get the digest of non-critical alerts, e.g.
    # ["07:45", "12:30"]; [] : every alert e-mailed at once; None: the collector's
    # `[alerts.notify.digest] times`.
    digest_times: list[DigestTime] | None = None
    # The collector partition that serves it ([partition] in the collector's file);
    # None: a stable hash of the UAI over the partitions (collector/partition.py).
    partition: Annotated[int, Field(ge=0)] | None = None


class Registry(_Model):
    # Where alerts go when the school is missing from this file: a person who can
    # fix the registry, so nothing is dropped silently.
    fallback_email: Email
    contractors: dict[ContractorId, Contractor]
    schools: dict[Uai, School]
    # The holiday zone of the schools that name none (None: they have no calendar
    # zone, a start-up warning: docs/alerts.md, "School calendar").
    calendar_zone: Zone | None = None

    def school(self, uai: str) -> School:
        try:
            return self.schools[uai]
        except KeyError:
            raise UnknownSchoolError(uai) from None

    def contractor(self, contractor_id: str) -> Contractor:
        return self.contractors[contractor_id]

    def zone_of(self, uai: str) -> str | None:
        """The school's holiday zone (a school missing here: `calendar_zone`)."""
        school = self.schools.get(uai)
        zone = school.zone if school is not None else None
        return zone or self.calendar_zone

    def zones_in_use(self) -> set[str | None]:
        return {self.zone_of(uai) for uai in self.schools}

    def asset_tag(self, uai: str, device: str | None) -> str | None:
        school = self.schools.get(uai)
        if school is None or device is None:
            return None
        return school.asset_tags.get(device)


def _check_references(registry: Registry) -> None:
    """Every school names existing contractors of the right trade."""
    for uai, school in registry.schools.items():
        for field_name, wanted in (
            ("hardware_contractor", "hardware"),
            ("network_contractor", "network"),
        ):
            ref = getattr(school, field_name)
            where = f"schools.{uai}.{field_name}"
            contractor = registry.contractors.get(ref)
            if contractor is None:
                known = ", ".join(sorted(registry.contractors)) or "none"
                raise RegistryError(f"{where}: unknown contractor {ref!r} (known: {known})")
            if contractor.category != wanted:
                raise RegistryError(
                    f"{where}: contractor {ref!r} has category {contractor.category!r}, "
                    f"expected {wanted!r}"
                )


def parse_registry(data: dict[str, Any], source: str = "registry") -> Registry:
    """Validate an already-parsed registry document."""
    try:
        registry = Registry.model_validate(data)
    except ValidationError as exc:
        raise RegistryError(f"{source}: {describe(exc)}") from None
    try:
        _check_references(registry)
    except RegistryError as exc:
        raise RegistryError(f"{source}: {exc}") from None
    return registry


def load_registry(path: Path) -> Registry:
    """Read and validate the registry; any problem raises `RegistryError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{path}: not valid TOML ({exc})") from None
    return parse_registry(data, source=str(path))
