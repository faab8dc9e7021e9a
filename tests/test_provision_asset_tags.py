"""`lordi provision device --asset-tag` and `provision asset-tag`: the region's inventory
tag lands in the registry table the alert e-mails and escalation packets read
(`[schools.<UAI>.asset_tags]`, `Registry.asset_tag`), the rest of the file untouched.

Enrolment runs the real `mosquitto_passwd` on a password file in a temporary folder
(no broker is needed: without --pid-file the command only says to reload it).
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from collector.notify.payload import alert_summary
from collector.notify.registry import load_registry
from lordi.provision import lookup_asset_tag
from tests.notify.factories import battery_alert
from tests.secure_broker import lordi_provision

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "schools.toml"
    shutil.copy(ROOT / "provisioning" / "schools.toml", path)
    return path


def enrol(registry: Path, school: str, device: str, *extra: str) -> int:
    broker = registry.parent / "broker"
    broker.mkdir(exist_ok=True)
    return lordi_provision(
        "device", "--school", school, "--device", device, "--registry", str(registry),
        "--host", "mqtt.lordi.example", "--out", str(registry.parent / f"{device}.toml"),
        "--broker-dir", str(broker), *extra,
    )  # fmt: skip


def test_new_table_for_a_school_without_tags(registry: Path) -> None:
    before = registry.read_text(encoding="utf-8")
    assert enrol(registry, "0340002B", "d-new1", "--asset-tag", "LRD-34-000201") == 0
    after = registry.read_text(encoding="utf-8")
    assert after.startswith(before.rstrip("\n"))  # comments and order kept
    assert after.endswith('\n\n[schools.0340002B.asset_tags]\n"d-new1" = "LRD-34-000201"\n')
    loaded = load_registry(registry)  # the collector's loader, as at start-up
    assert loaded.asset_tag("0340002B", "d-new1") == "LRD-34-000201"
    assert lookup_asset_tag(registry, "0340002B", "d-new1") == "LRD-34-000201"
    # What the escalation packet and the e-mails print (collector/notify/deliver.py
    # asks the registry exactly this way).
    packet = alert_summary(
        battery_alert(school="0340002B", device="d-new1"), loaded.asset_tag("0340002B", "d-new1")
    )
    assert packet["asset_tag"] == "LRD-34-000201"
    assert "0340002B/d-new1:" in (registry.parent / "broker" / "passwd").read_text()


def test_existing_table_gets_one_more_line(registry: Path) -> None:
    assert enrol(registry, "0340001A", "d-new2", "--asset-tag", "LRD-34-000103") == 0
    text = registry.read_text(encoding="utf-8")
    assert (
        '[schools.0340001A.asset_tags]\n"dev-0340001A-0001" = "LRD-34-000101"\n'
        '"dev-0340001A-0002" = "LRD-34-000102"\n"d-new2" = "LRD-34-000103"\n\n'
        "[schools.0340002B]"
    ) in text
    tags = tomllib.loads(text)["schools"]["0340001A"]["asset_tags"]
    assert tags == {
        "dev-0340001A-0001": "LRD-34-000101",
        "dev-0340001A-0002": "LRD-34-000102",
        "d-new2": "LRD-34-000103",
    }


def test_without_asset_tag_the_registry_is_untouched(registry: Path) -> None:
    before = registry.read_text(encoding="utf-8")
    assert enrol(registry, "0340001A", "d-new3") == 0
    assert registry.read_text(encoding="utf-8") == before
    assert lookup_asset_tag(registry, "0340001A", "d-new3") is None


def test_refusals_enrol_nothing(registry: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = registry.read_text(encoding="utf-8")
    assert enrol(registry, "0340001A", "d-dup", "--asset-tag", "LRD-34-000101") == 2
    err = capsys.readouterr().err
    assert "asset tag LRD-34-000101 is already laptop dev-0340001A-0001's (school 0340001A)" in err
    assert enrol(registry, "0340001A", "d-bad", "--asset-tag", 'LRD 34 "x"') == 2
    assert "--asset-tag: expected 1-64 of [0-9A-Za-z_./-] (got 'LRD 34 \"x\"')" in (
        capsys.readouterr().err
    )
    assert registry.read_text(encoding="utf-8") == before
    assert not (registry.parent / "d-dup.toml").exists()
    passwd = registry.parent / "broker" / "passwd"
    assert not passwd.exists() or "d-dup" not in passwd.read_text()


def test_asset_tag_command_replaces_a_tag(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--registry", str(registry), "--school", "0340001A", "--device", "dev-0340001A-0002"]
    assert lordi_provision("asset-tag", *args, "--tag", "LRD-34-000999") == 0
    text = registry.read_text(encoding="utf-8")
    assert '"dev-0340001A-0002" = "LRD-34-000999"\n' in text and "000102" not in text
    assert load_registry(registry).asset_tag("0340001A", "dev-0340001A-0002") == "LRD-34-000999"
    assert lordi_provision("asset-tag", *args, "--tag", "LRD-34-000999") == 0  # no change
    assert registry.read_text(encoding="utf-8") == text
    assert lordi_provision("asset-tag", *args[:3], "0999999Z", *args[4:], "--tag", "X") == 2
    assert "no school 0999999Z" in capsys.readouterr().err


def test_inline_table_is_left_to_a_person(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = registry.read_text(encoding="utf-8").replace(
        'network_contractor = "sudreseaux"\n\n[schools.0310003C]',
        'network_contractor = "sudreseaux"\nasset_tags = { "d-a" = "T-1" }\n\n[schools.0310003C]',
    )
    registry.write_text(text, encoding="utf-8")
    assert load_registry(registry).asset_tag("0340002B", "d-a") == "T-1"
    assert enrol(registry, "0340002B", "d-new4", "--asset-tag", "T-2") == 2
    assert "is not written as a [schools.0340002B.asset_tags] table" in capsys.readouterr().err
    assert registry.read_text(encoding="utf-8") == text
