"""The collector reads a laptop's asset tag again from the registry when a
notification needs it, so a laptop enrolled after the collector started has its tag."""

from __future__ import annotations

import shutil
from pathlib import Path

from collector.cli import _fresh_asset_tag
from lordi.provision import with_asset_tag

REGISTRY = Path(__file__).resolve().parents[2] / "provisioning" / "schools.toml"


def test_a_tag_recorded_after_start_is_found(tmp_path: Path) -> None:
    registry = tmp_path / "schools.toml"
    shutil.copy(REGISTRY, registry)
    assert _fresh_asset_tag(registry, "0340002B", "d-new-laptop") is None
    text = with_asset_tag(registry, "0340002B", "d-new-laptop", "REG-2026-00042")
    assert text is not None
    registry.write_text(text, encoding="utf-8")
    assert _fresh_asset_tag(registry, "0340002B", "d-new-laptop") == "REG-2026-00042"


def test_an_unreadable_registry_gives_no_tag_and_no_error(tmp_path: Path) -> None:
    broken = tmp_path / "schools.toml"
    broken.write_text("[schools.0340001A\n", encoding="utf-8")
    assert _fresh_asset_tag(broken, "0340001A", "d-1") is None
    assert _fresh_asset_tag(tmp_path / "missing.toml", "0340001A", "d-1") is None
