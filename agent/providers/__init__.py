"""Platform providers: one module per OS plus fallbacks, chosen once at start-up.

A provider turns raw inputs (from a `Source`) into a `Reading`. Each OS module is a
thin reader over pure parsers in `agent.parsers`; it never raises on odd input.
"""

from __future__ import annotations

import importlib
import logging
import platform
import sys
from pathlib import Path

from agent.providers.base import NullProvider, Provider
from agent.sources import LiveSource, ReplaySource, Source

log = logging.getLogger(__name__)

# platform name -> "module:Class". Modules are imported lazily so a missing or
# broken OS backend degrades to the psutil/null providers instead of crashing.
_BACKENDS = {
    "linux": "agent.providers.linux:LinuxProvider",
    "windows": "agent.providers.windows:WindowsProvider",
    "darwin": "agent.providers.macos:MacProvider",
}


def current_platform() -> str:
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "darwin"
    return sys.platform


def provider_for(plat: str, source: Source, release: str | None = None) -> Provider:
    """The provider for `plat` reading from `source`, or a null provider."""
    target = _BACKENDS.get(plat)
    if target is None:
        return NullProvider(plat, release)
    module_name, class_name = target.split(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        log.warning("no %s provider available (%s); reporting nothing", plat, exc)
        return NullProvider(plat, release)
    provider: Provider = cls(source, release)
    return provider


def live_provider(capture_dir: Path | None = None) -> Provider:
    """The provider for this machine. With `capture_dir`, raw inputs are saved there."""
    plat = current_platform()
    if capture_dir is not None:
        capture_dir.mkdir(parents=True, exist_ok=True)
        (capture_dir / "platform").write_text(plat + "\n", encoding="utf-8")
    return provider_for(plat, LiveSource(capture_dir=capture_dir), platform.release() or None)


def replay_provider(folder: Path) -> Provider:
    """The provider that recomputes a reading from a capture folder."""
    source = ReplaySource(folder)
    plat = source.platform()
    if plat is None:
        raise FileNotFoundError(f"{folder}: not a capture folder (no 'platform' file)")
    return provider_for(plat, source)
