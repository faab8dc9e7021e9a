"""systemd unit files in tests: read one, and have systemd-analyze check it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def unit_settings(unit: Path) -> dict[str, dict[str, list[str]]]:
    """Section -> key -> every value (systemd allows repeated keys, which
    configparser refuses)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = ""
    for raw in unit.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), "continuation lines are not parsed here"
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            out.setdefault(section, {})
            continue
        key, sep, value = line.partition("=")
        assert sep and section, f"not a key=value line in a section: {raw!r}"
        out[section].setdefault(key.strip(), []).append(value.strip())
    assert set(out) == {"Unit", "Service", "Install"}
    return out


def analyze_unit(unit: Path, exec_path: str, tmp_path: Path) -> None:
    """`systemd-analyze verify` says nothing and `security --offline` scores 2.0 or
    better (exposure 0-10 shown, 0-100 for --threshold)."""
    analyze = shutil.which("systemd-analyze")
    # scripts/bootstrap.sh installs Debian's systemd package when this is missing.
    assert analyze is not None, "systemd-analyze not installed: run make bootstrap"
    # verify insists that ExecStart's binary exists: a stand-in, in a copy of the unit.
    fake = tmp_path / "bin" / Path(exec_path).name
    fake.parent.mkdir(exist_ok=True)
    fake.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    fake.chmod(0o755)
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text(encoding="utf-8").replace(exec_path, str(fake)), "utf-8")
    done = subprocess.run(
        [analyze, "verify", str(copy)], check=False, capture_output=True, text=True, timeout=60
    )
    # verify exits 0 on unknown keys, but says so: any output is a failure.
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), (
        done.stdout + done.stderr
    )
    done = subprocess.run(
        [analyze, "security", "--offline=yes", "--threshold=20", str(copy)],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
