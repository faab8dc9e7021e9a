"""Where providers get their raw inputs: the live machine, or a captured folder.

Providers never open files or run commands themselves; they ask a `Source`. The
live source reads the real machine (and can record what it read: that is
`lordi-agent capture`), the replay source reads a capture folder laid out as in
design.md ("Capture / replay"). Both feed the same parsers.

Layout of a capture folder:
    platform                      linux | windows | darwin
    sys/..., proc/...             files, at their path below the root
    commands/<name>               output of the command captured as <name>
                                  (e.g. "iw-dev-link.txt", "powercfg-batteryreport.xml")
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

COMMAND_TIMEOUT_S = 20.0


class Source(Protocol):
    # True for the running machine: only then may a provider ask live-only APIs
    # (psutil, WMI) that a capture folder cannot answer.
    is_live: bool

    def read_text(self, path: str) -> str | None:
        """Contents of `path` (relative to the machine root, e.g. "sys/class/..."), or None."""
        ...

    def list_dir(self, path: str) -> list[str]:
        """Sorted entry names of a directory, [] when it does not exist."""
        ...

    def command(self, name: str, argv: list[str]) -> str | None:
        """Output of a command saved as `commands/<name>` in captures, or None when
        unavailable. An argument "{out}" in `argv` is replaced by a temporary file
        path and the file's contents are returned instead of stdout (for tools that
        only write to a file, like `powercfg /batteryreport /xml /output {out}`)."""
        ...

    def call(self, name: str, read: Callable[[], str | None]) -> str | None:
        """Text produced in-process by `read` (an OS API such as the Windows Native
        Wi-Fi API), kept as `commands/<name>` in captures like a command's output."""
        ...


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _list(path: Path) -> list[str]:
    try:
        return sorted(p.name for p in path.iterdir())
    except OSError:
        return []


def _decode(raw: bytes) -> str:
    """Command output as text. Windows console tools (netsh) print in the OEM code
    page (850 on French Windows), not UTF-8: decoding them as UTF-8 would garble an
    accented school SSID and break the allowlist match."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if sys.platform == "win32":
        import ctypes  # noqa: PLC0415 - Windows only

        windll = getattr(ctypes, "windll", None)
        if windll is not None:
            return raw.decode(f"cp{windll.kernel32.GetOEMCP()}", errors="replace")
    return raw.decode("utf-8", errors="replace")


class LiveSource:
    """Reads the running machine. With `capture_dir`, every successful read is also
    written there, so the same inputs can be replayed later."""

    is_live = True

    def __init__(self, root: Path = Path("/"), capture_dir: Path | None = None) -> None:
        self.root = root
        self.capture_dir = capture_dir

    def read_text(self, path: str) -> str | None:
        text = _read(self.root / path)
        if text is not None:
            self._save(path, text)
        return text

    def list_dir(self, path: str) -> list[str]:
        return _list(self.root / path)

    def command(self, name: str, argv: list[str]) -> str | None:
        with tempfile.TemporaryDirectory(prefix="lordi-") as tmp:
            out_file = Path(tmp) / name
            args = [str(out_file) if a == "{out}" else a for a in argv]
            try:
                done = subprocess.run(
                    args, capture_output=True, timeout=COMMAND_TIMEOUT_S, check=False
                )
            except (OSError, subprocess.SubprocessError) as exc:
                log.debug("command %s unavailable: %s", name, exc)
                return None
            text = _read(out_file) if "{out}" in argv else _decode(done.stdout)
        if text is None or (done.returncode != 0 and not text.strip()):
            return None
        self._save(f"commands/{name}", text)
        return text

    def call(self, name: str, read: Callable[[], str | None]) -> str | None:
        try:
            text = read()
        except Exception:  # an OS API failing is "unavailable", never a crash
            log.debug("%s unavailable", name, exc_info=True)
            return None
        if text is not None:
            self._save(f"commands/{name}", text)
        return text

    def _save(self, rel: str, text: str) -> None:
        if self.capture_dir is None:
            return
        target = self.capture_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        # newline="": keep the tool's own line ends (Windows would turn CRLF into CRCRLF).
        with target.open("w", encoding="utf-8", newline="") as f:
            f.write(text)


class ReplaySource:
    """Reads a capture folder. A missing file means the source was unavailable."""

    is_live = False

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def read_text(self, path: str) -> str | None:
        return _read(self.folder / path)

    def list_dir(self, path: str) -> list[str]:
        return _list(self.folder / path)

    def command(self, name: str, argv: list[str]) -> str | None:
        del argv  # the capture stands for whatever was run
        return _read(self.folder / "commands" / name)

    def call(self, name: str, read: Callable[[], str | None]) -> str | None:
        del read  # the capture stands for what the API answered
        return _read(self.folder / "commands" / name)

    def platform(self) -> str | None:
        text = _read(self.folder / "platform")
        return text.strip() if text else None
