"""The region's BSSID key file: what `privacy.bssid_key` is copied from at enrolment
(`lordi provision device --bssid-key-file`, docs/privacy.md "The BSSID hash").

Format: one line of at least 16 characters, letters, digits and punctuation, no
space; surrounding white space (the final newline) is ignored. Made with e.g.

    openssl rand -hex 32 > /etc/lordi/bssid.key    # 64 hexadecimal characters
    chmod 0600 /etc/lordi/bssid.key

The whole line is the key: the agent uses its UTF-8 bytes as the HMAC-SHA256 key
(agent/privacy.py); it is not decoded from hex or base64. Every laptop of the
region must have the same one (laptops under one access point then report one hash).
"""

from __future__ import annotations

from pathlib import Path

from agent.config import ConfigError, who

MIN_KEY_CHARS = 16
MAKE_ONE = "openssl rand -hex 32 > FILE"


def read_bssid_key(path: Path, setting: str = "--bssid-key-file") -> str:
    """The key in `path`, or one `ConfigError` line naming the setting, the file,
    what is wrong (never the key) and the fix."""
    where = f"{setting}: {path.absolute()}"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{where} does not exist: create the region's key with {MAKE_ONE}"
        ) from None
    except PermissionError:
        raise ConfigError(
            f"{where} is not readable by {who()}: run as the account that owns it (root) or "
            "let this one read it (mode 0600: the key is a secret)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(
            f"{where} is not text (raw bytes?): the key is one line of text; make it with "
            f"{MAKE_ONE}"
        ) from None
    problem = _format_problem(text)
    if problem is not None:
        raise ConfigError(
            f"{where}: {problem}: the key is one line of at least {MIN_KEY_CHARS} "
            f"characters without spaces; make it with {MAKE_ONE}"
        )
    return text


def _format_problem(key: str) -> str | None:
    if not key:
        return "the file is empty"
    if "\n" in key or "\r" in key:
        return f"{len(key.splitlines())} lines"
    if any(c.isspace() or not c.isprintable() for c in key):
        return "spaces or control characters in the key"
    if key.startswith("CHANGE-ME"):
        return "still the sample's placeholder"
    if len(key) < MIN_KEY_CHARS:
        return f"{len(key)} characters"
    return None
