"""The asset-tag hook: an inventory outside the registry fills the tag the
registry lacks; the registry's own tag wins."""

from __future__ import annotations

from collector.notify.deliver import Notifier
from collector.notify.payload import evidence_packet
from collector.notify.settings import NotifySettings
from tests.notify.factories import battery_alert, registry


def test_the_source_fills_a_missing_tag_and_the_registry_wins() -> None:
    asked: list[tuple[str, str]] = []

    def inventory(uai: str, device: str) -> str | None:
        asked.append((uai, device))
        return "INV-0042"

    notifier = Notifier(registry(), NotifySettings(), asset_tags=inventory)
    unknown = battery_alert(device="dev-0340001A-0999")
    packet = evidence_packet(unknown, [], notifier.context(unknown))
    assert packet["alert"]["asset_tag"] == "INV-0042"
    assert asked == [("0340001A", "dev-0340001A-0999")]
    known = battery_alert(device="dev-0340001A-0001")
    assert notifier.context(known).asset_tag == "LRD-34-000101"  # from the registry
    assert Notifier(registry(), NotifySettings()).context(unknown).asset_tag is None
