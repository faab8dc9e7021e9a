"""`lordi-collector run` with an alert store it cannot open: one line naming the
setting, the file and what is wrong, exit 2, no traceback (the real process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REGISTRY = Path(__file__).resolve().parents[2] / "provisioning" / "schools.toml"


def _run(store_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "LORDI_COLLECTOR_ALERTS__ENABLED": "true",
        "LORDI_COLLECTOR_ALERTS__STORE_URL": store_url,
        # a registry it can read (checked first): the store is what is wrong here
        "LORDI_COLLECTOR_ALERTS__REGISTRY": str(REGISTRY),
        # a port where nothing listens: the collector must fail before any connection
        "LORDI_COLLECTOR_MQTT__PORT": "9",
    }
    return subprocess.run(
        [sys.executable, "-m", "collector.cli", "run"],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("slashes", ["sqlite:///", "sqlite:////"])
def test_a_missing_folder_is_named_with_the_fix(tmp_path: Path, slashes: str) -> None:
    target = tmp_path / "no-such-dir" / "alerts.sqlite3"
    url = slashes + (str(target).lstrip("/") if slashes == "sqlite:///" else str(target))
    done = _run(url, cwd=Path("/"))  # three slashes: relative to the working directory
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(f"config error: alerts.store_url: cannot open the SQLite file {target}")
    assert f"its folder {target.parent} does not exist" in line
    assert ("four slashes" in line) == (slashes == "sqlite:///")
