"""Mosquitto's password file, changed in batches.

Laptop identities live in the broker's `password_file`, with the committed ACL's
`%u` patterns giving each one exactly its own topics. Mosquitto 2.0's
dynamic-security plugin was measured as the alternative (BENCHMARKS.md, "Enrolment"):
it rewrites its whole JSON file inside the broker's only thread after every
command, 3.8-5.9 s per command with 250,000 identities (broker frozen meanwhile)
and 1.2-1.6 GB of resident memory, so it cannot take 32,000 laptops in a morning.

Lines are in Mosquitto's own format (`$7$`: PBKDF2-HMAC-SHA512, 101 iterations,
12-byte salt, what `mosquitto_passwd` writes); a laptop sends its line's hash, made
on the laptop (agent/enrol.py), so a batch of new laptops is one append and one
SIGHUP, not one `mosquitto_passwd` process each, and no password crosses the wire.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from agent.enrol import HASHED, mosquitto_hash


def line(user: str, hashed: str) -> str:
    """`user:$7$...`; refuses a user name or a hash that would break the file."""
    if ":" in user or "\n" in user or not HASHED.match(hashed):
        raise ValueError(f"broker user {user!r}: not a password-file line")
    return f"{user}:{hashed}"


def hash_line(user: str, password: str) -> str:
    """`user:$7$101$salt$hash`, as `mosquitto_passwd -b` writes it."""
    return line(user, mosquitto_hash(password))


def check_line(line: str, password: str) -> bool:
    """Whether `password` is the one hashed in `line` (tests and diagnostics)."""
    _user, _, hashed = line.partition(":")
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    salt, expected = base64.b64decode(parts[3]), base64.b64decode(parts[4])
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]), 64) == expected


def users(path: Path) -> set[str]:
    if not path.exists():
        return set()
    lines = path.read_text(encoding="utf-8").splitlines()
    return {ln.split(":", 1)[0] for ln in lines if ":" in ln}


def append(path: Path, lines: Iterable[str]) -> int:
    """Add lines at the end, flushed to disk; the caller holds the provisioning lock."""
    text = "".join(f"{ln}\n" for ln in lines)
    if not text:
        return 0
    existing = path.read_bytes() if path.exists() else b""
    prefix = b"\n" if existing and not existing.endswith(b"\n") else b""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    with os.fdopen(fd, "ab") as out:
        out.write(prefix + text.encode())
        out.flush()
        os.fsync(out.fileno())
    return text.count("\n")


def remove(path: Path, names: set[str]) -> int:
    """Drop these users' lines (the file is replaced atomically, owner and mode kept)."""
    from lordi.provision import _write_atomic  # noqa: PLC0415

    if not path.exists():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.split(":", 1)[0] in names:
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        _write_atomic(path, "".join(f"{ln}\n" for ln in kept))
    return dropped
