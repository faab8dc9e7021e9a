"""The school registry: the commented sample loads, and every invalid registry is
refused with a message naming the field and the value."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from collector.notify.errors import RegistryError, UnknownSchoolError
from collector.notify.registry import alert_topic, load_registry, parse_registry
from tests.notify.factories import SAMPLE_REGISTRY

DEMO_SCHOOLS = {
    "0340001A": "Lycée Jean Moulin",
    "0340002B": "Lycée Marie Curie",
    "0310003C": "Lycée Pierre de Fermat",
    "0300004D": "Lycée Alphonse Daudet",
    "0660005E": "Lycée François Arago",
}


def _sample() -> dict[str, Any]:
    return tomllib.loads(SAMPLE_REGISTRY.read_text(encoding="utf-8"))


def _refused(data: dict[str, Any]) -> str:
    with pytest.raises(RegistryError) as info:
        parse_registry(data, source="schools.toml")
    return str(info.value)


def test_sample_registry_loads_the_demo_schools() -> None:
    registry = load_registry(SAMPLE_REGISTRY)
    assert {uai: s.name for uai, s in registry.schools.items()} == DEMO_SCHOOLS
    assert {c.category for c in registry.contractors.values()} == {"hardware", "network"}
    assert all(s.ssids[0] == "LORDI-EDU" for s in registry.schools.values())
    assert registry.asset_tag("0340001A", "dev-0340001A-0001") == "LRD-34-000101"
    assert registry.asset_tag("0340001A", "dev-unknown") is None
    assert registry.asset_tag("0999999Z", "dev-0340001A-0001") is None
    assert registry.fallback_email == "registre-lordi@example.org"


def test_sample_uses_only_example_org_addresses() -> None:
    text = SAMPLE_REGISTRY.read_text(encoding="utf-8")
    registry = load_registry(SAMPLE_REGISTRY)
    emails = [registry.fallback_email]
    emails += [e for c in registry.contractors.values() for e in c.emails]
    emails += [c.email for s in registry.schools.values() for c in s.level1]
    assert len(emails) == 11
    assert all(e.endswith("example.org") for e in emails), emails
    assert "fictif" in text


def test_alert_topic_is_derived_from_the_uai() -> None:
    assert alert_topic("0340001A") == "lordi/v1/0340001A/alerts"


def test_unknown_school_lookup_names_the_uai() -> None:
    with pytest.raises(UnknownSchoolError, match="'0999999Z' is not in the school registry"):
        load_registry(SAMPLE_REGISTRY).school("0999999Z")


def test_bad_uai_is_named() -> None:
    data = _sample()
    data["schools"]["0340001a"] = data["schools"].pop("0340002B")
    message = _refused(data)
    assert message.startswith("schools.toml: schools.0340001a")
    assert "(got '0340001a')" in message


def test_unknown_contractor_is_named_with_the_known_ones() -> None:
    data = _sample()
    data["schools"]["0340002B"]["hardware_contractor"] = "reparfix"
    assert _refused(data) == (
        "schools.toml: schools.0340002B.hardware_contractor: unknown contractor 'reparfix' "
        "(known: occimat, sudreseaux)"
    )


def test_hardware_contractor_of_network_category_is_refused() -> None:
    data = _sample()
    data["schools"]["0300004D"]["hardware_contractor"] = "sudreseaux"
    assert _refused(data) == (
        "schools.toml: schools.0300004D.hardware_contractor: contractor 'sudreseaux' "
        "has category 'network', expected 'hardware'"
    )


def test_network_contractor_of_hardware_category_is_refused() -> None:
    data = _sample()
    data["schools"]["0660005E"]["network_contractor"] = "occimat"
    assert "schools.0660005E.network_contractor: contractor 'occimat' has category " in _refused(
        data
    )


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["schools"]["0340002B"]["level1"][0].update(email="sophie at example.org"),
            "schools.0340002B.level1[0].email: String should match pattern",
        ),
        (
            lambda d: d["schools"]["0340002B"].update(level1=[]),
            "schools.0340002B.level1: List should have at least 1 item",
        ),
        (
            lambda d: d["contractors"]["occimat"].update(category="servers"),
            "contractors.occimat.category: Input should be 'hardware' or 'network' (got 'servers')",
        ),
        (
            lambda d: d["schools"]["0340002B"].update(helpdesk_webhook_url="ftp://x.example.org"),
            "schools.0340002B.helpdesk_webhook_url: Value error, must be an http:// or https:// "
            "URL with a host (got 'ftp://x.example.org')",
        ),
        (
            lambda d: d["schools"]["0340002B"].update(asset_tags={"dev 1": "LRD-1"}),
            "schools.0340002B.asset_tags.dev 1.[key]: String should match pattern",
        ),
        (
            lambda d: d["schools"]["0340002B"].update(ssid=["LORDI-EDU"]),
            "schools.0340002B.ssid: Extra inputs are not permitted (got ['LORDI-EDU'])",
        ),
        (
            lambda d: d["schools"]["0340002B"].update(town=34),
            "schools.0340002B.town: Input should be a valid string (got 34)",
        ),
        (lambda d: d.pop("fallback_email"), "fallback_email: Field required"),
    ],
)
def test_invalid_field_is_named(mutate: Any, expected: str) -> None:
    data = copy.deepcopy(_sample())
    mutate(data)
    message = _refused(data)
    assert message.startswith("schools.toml: ")
    assert expected in message, message


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    with pytest.raises(RegistryError, match=r"absent\.toml: cannot read \(No such file"):
        load_registry(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("[schools.0340001A\nname = 1\n", encoding="utf-8")
    with pytest.raises(RegistryError, match=r"broken\.toml: not valid TOML"):
        load_registry(broken)
