"""A laptop enrolled after the collector started has its asset tag in the
notifications: the registry file that `lordi provision` rewrites is reloaded
(collector/notify/live.py); a registry being edited into an invalid state gives no
error at notification time, the previous registry's tags stay in force."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from collector.notify.deliver import Notifier
from collector.notify.live import LiveRegistry
from collector.notify.settings import NotifySettings
from lordi.provision import with_asset_tag
from tests.notify.factories import battery_alert
from tests.notify.registries import replace_file

REGISTRY = Path(__file__).resolve().parents[2] / "provisioning" / "schools.toml"


def _settled(live: LiveRegistry) -> None:
    """The watch's two looks at a changed file."""
    live.poll()
    live.poll()


def test_a_tag_recorded_after_start_is_found(tmp_path: Path) -> None:
    registry = tmp_path / "schools.toml"
    shutil.copy(REGISTRY, registry)
    live = LiveRegistry.load(registry)
    notifier = Notifier(live, NotifySettings())
    alert = battery_alert(school="0340002B", device="d-new-laptop")
    assert notifier.context(alert).asset_tag is None
    text = with_asset_tag(registry, "0340002B", "d-new-laptop", "REG-2026-00042")
    assert text is not None
    replace_file(registry, text)
    _settled(live)
    assert notifier.context(alert).asset_tag == "REG-2026-00042"


def test_an_unreadable_registry_keeps_the_tags_in_force(tmp_path: Path) -> None:
    registry = tmp_path / "schools.toml"
    shutil.copy(REGISTRY, registry)
    live = LiveRegistry.load(registry)
    notifier = Notifier(live, NotifySettings())
    alert = battery_alert(school="0340001A", device="dev-0340001A-0001")
    replace_file(registry, "[schools.0340001A\n")
    _settled(live)
    assert notifier.context(alert).asset_tag == "LRD-34-000101"
    registry.unlink()
    _settled(live)
    assert notifier.context(alert).asset_tag == "LRD-34-000101"


def test_a_notification_reads_a_changed_file_without_waiting_for_the_watch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`Notifier.send` routes with `LiveRegistry.fresh()`: a laptop enrolled (its tag
    written) a moment before its first alert has the tag, with no poll in between; a
    file refused once is not read again until it changes."""
    registry = tmp_path / "schools.toml"
    shutil.copy(REGISTRY, registry)
    live = LiveRegistry.load(registry)
    text = with_asset_tag(registry, "0340002B", "d-just-enrolled", "REG-2026-00043")
    assert text is not None
    replace_file(registry, text)
    assert live.fresh().asset_tag("0340002B", "d-just-enrolled") == "REG-2026-00043"
    replace_file(registry, "[schools.0340001A\n")
    with caplog.at_level("ERROR"):
        for _ in range(3):
            assert live.fresh().asset_tag("0340002B", "d-just-enrolled") == "REG-2026-00043"
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1
