"""The agent's configuration file and the region's BSSID key file, missing,
unreadable or malformed: one line naming the file, the setting, the account when a
permission is missing, and the fix (`lordi-agent` exits 2, no traceback).
Unreadable files: in a child running as `nobody` (tests/collector/other_user.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import cli
from agent.config import ConfigError
from agent.keyfile import read_bssid_key
from tests.collector.other_user import as_other_user, locked, open_folder

KEYS = "keys: provisioning/agent/agent.toml"
MAKE_ONE = "openssl rand -hex 32 > FILE"
GOOD_KEY = "9f2c4e7a1b3d5f60" * 4  # 64 hexadecimal characters, as openssl rand -hex 32


@pytest.fixture
def shared() -> Iterator[Path]:
    folder = open_folder()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _check_config(config: Path) -> str:
    """The real `lordi-agent --config ... check-config`: exit 2, no traceback, its line."""
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "--config", str(config), "check-config"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr.strip().splitlines()[-1]


# --- the configuration file ---------------------------------------------------------


def test_a_missing_config_file_is_named_with_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "agent.toml"
    assert _check_config(missing) == (
        f"config error: --config: {missing} does not exist: give --config the agent.toml "
        f"written by `lordi provision device` ({KEYS})"
    )


def test_invalid_toml_gives_the_line(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('school = "0341234A"\ndevice = "d1"\n[mqtt\n', encoding="utf-8")
    line = _check_config(path)
    assert line.startswith(f"config error: --config: {path} is not valid TOML: ")
    assert "(at line 3, column 6)" in line
    assert line.endswith(f": fix that line ({KEYS})")


def test_a_config_file_the_agent_cannot_read_names_its_user(shared: Path) -> None:
    path = locked(shared / "agent.toml", 'school = "0341234A"\ndevice = "d1"\n')
    done = as_other_user(lambda: cli.main(["--config", str(path), "check-config"]))
    assert done.code == 2, done.stderr
    assert "Traceback" not in done.stderr
    uid = done.account.split()[1]
    assert done.stderr.strip().splitlines()[-1] == (
        f"config error: --config: {path} is not readable by the agent's user (uid {uid}): let "
        "that user read it and no other (it holds the broker password: owner that user, mode "
        "0600), or run the installed service, which can (docs/install-agent.md)"
    )


# --- the region's BSSID key file ------------------------------------------------------


def _key_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        read_bssid_key(path)
    return str(caught.value)


def test_a_good_key_file_gives_the_key_without_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "bssid.key"
    path.write_text(GOOD_KEY + "\n", encoding="utf-8")
    assert read_bssid_key(path) == GOOD_KEY


def test_a_missing_key_file_says_how_to_make_one(tmp_path: Path) -> None:
    missing = tmp_path / "bssid.key"
    assert _key_error(missing) == (
        f"--bssid-key-file: {missing} does not exist: create the region's key with {MAKE_ONE}"
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "the file is empty"),
        (b"\n  \n", "the file is empty"),
        (f"{GOOD_KEY}\n{GOOD_KEY}\n".encode(), "2 lines"),
        (b"two words-but-long-enough", "spaces or control characters in the key"),
        (b"CHANGE-ME-long-random-region-key\n", "still the sample's placeholder"),
        (b"short-key\n", "9 characters"),
    ],
)
def test_a_key_of_the_wrong_format_says_what_is_wrong(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "bssid.key"
    path.write_bytes(content)
    assert _key_error(path) == (
        f"--bssid-key-file: {path}: {problem}: the key is one line of at least 16 characters "
        f"without spaces; make it with {MAKE_ONE}"
    )


def test_raw_bytes_are_not_a_key(tmp_path: Path) -> None:
    path = tmp_path / "bssid.key"
    path.write_bytes(bytes(range(200, 232)))  # `openssl rand 32` without -hex
    assert _key_error(path) == (
        f"--bssid-key-file: {path} is not text (raw bytes?): the key is one line of text; "
        f"make it with {MAKE_ONE}"
    )


def test_a_key_file_the_account_cannot_read_names_the_account(shared: Path) -> None:
    path = locked(shared / "bssid.key", GOOD_KEY)

    def check() -> int:
        try:
            read_bssid_key(path)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
        return 0

    done = as_other_user(check)
    assert done.code == 2, done.stderr
    uid = done.account.split()[1]
    assert done.stderr.strip() == (
        f"--bssid-key-file: {path} is not readable by uid {uid}: run as the account that owns "
        "it (root) or let this one read it (mode 0600: the key is a secret)"
    )
