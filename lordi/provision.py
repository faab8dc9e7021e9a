"""`lordi provision`: add a school to the registry, enrol or revoke a laptop.

A laptop's broker user name is `<UAI>/<device>`: the committed ACL's two lines
`pattern write lordi/v1/%u/telemetry` (and `/status`) then allow exactly its own
topics, so enrolment only adds a line to the password file (through the real
`mosquitto_passwd`) and never touches the ACL. One generated ACL block per device
was measured instead: Mosquitto 2.0.11 loads `user` blocks in quadratic time
(40,000 devices: 8 s per start or SIGHUP, with the broker frozen), whereas
200,000 password lines load in 0.4 s. Details: docs/broker.md.

`--asset-tag` records the laptop's inventory tag in the registry's
`[schools.<UAI>.asset_tags]` table, which the collector's alert e-mails and
escalation packets read (`Registry.asset_tag`); `lookup_asset_tag` reads it back.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent.config import DEVICE_ID, UAI  # stdlib only: cheap to import

PASSWD_FILE = "passwd"  # noqa: S105 - a file name, not a password


class ProvisionError(Exception):
    """Refused or failed provisioning step; the message says what and why."""


def new_device_id() -> str:
    """Opaque and random (60 bits): never derived from a hostname, a serial or a name."""
    return "d-" + base64.b32encode(secrets.token_bytes(8)).decode().lower()[:12]


def _toml_str(value: str) -> str:
    # A JSON string (with non-ASCII kept) is a valid TOML basic string.
    return json.dumps(value, ensure_ascii=False)


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(map(_toml_str, values)) + "]"


def _write_atomic(path: Path, text: str, mode: int | None = None) -> None:
    """Write beside `path` then rename: a crash never leaves half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        keep = path.stat().st_mode & 0o777 if path.exists() else 0o644
        os.chmod(tmp, mode if mode is not None else keep)
        if path.exists():  # the collector reads the registry through its group
            st, mine = path.stat(), os.stat(tmp)
            if (st.st_uid, st.st_gid) != (mine.st_uid, mine.st_gid):
                os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def school_block(args: argparse.Namespace) -> str:
    contacts = []
    for item in args.level1:
        m = re.fullmatch(r"\s*(.+?)\s*<([^<>]+)>\s*", item)
        if not m:
            raise ProvisionError(f"--level1: expected 'Name <email>' (got {item!r})")
        contacts.append(f"  {{ name = {_toml_str(m[1])}, email = {_toml_str(m[2])} }},\n")
    lines = [
        f"\n[schools.{args.uai}]\n",
        f"name = {_toml_str(args.name)}\ntown = {_toml_str(args.town)}\n",
        "level1 = [\n", *contacts, "]\n",
        f"ssids = {_toml_list(args.ssid)}\n",
        f"hardware_contractor = {_toml_str(args.hardware_contractor)}\n",
        f"network_contractor = {_toml_str(args.network_contractor)}\n",
    ]
    if args.helpdesk_webhook_url:
        lines.append(f"helpdesk_webhook_url = {_toml_str(args.helpdesk_webhook_url)}\n")
    if getattr(args, "zone", None):
        lines.append(f"zone = {_toml_str(args.zone)}\n")
    return "".join(lines)


def add_school(registry: Path, args: argparse.Namespace) -> None:
    """Append a `[schools.<UAI>]` block; the file's comments and order stay as they are."""
    from collector.notify.registry import parse_registry  # noqa: PLC0415 - pydantic here only

    if not UAI.match(args.uai):
        raise ProvisionError(f"--uai: expected a UAI code like 0341234A (got {args.uai!r})")
    text = registry.read_text(encoding="utf-8")
    existing = tomllib.loads(text).get("schools", {}).get(args.uai)
    if existing is not None:
        raise ProvisionError(
            f"{registry}: school {args.uai} already exists ({existing.get('name')!r}, "
            f"{existing.get('town')!r}); edit its [schools.{args.uai}] table instead"
        )
    new_text = text.rstrip("\n") + "\n" + school_block(args)
    try:
        data = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:  # a value our quoting did not foresee
        raise ProvisionError(f"the new block is not valid TOML ({exc})") from None
    parse_registry(data, source=f"{registry} + [schools.{args.uai}]")
    _write_atomic(registry, new_text)


def add_contractor(registry: Path, args: argparse.Namespace) -> None:
    """Append a `[contractors.<id>]` block, validated with the whole registry."""
    from collector.notify.registry import parse_registry  # noqa: PLC0415 - pydantic here only

    text = registry.read_text(encoding="utf-8")
    existing = tomllib.loads(text).get("contractors", {}).get(args.id)
    if existing is not None:
        raise ProvisionError(
            f"{registry}: contractor {args.id!r} already exists ({existing.get('name')!r}); "
            f"edit its [contractors.{args.id}] table instead"
        )
    lines = [
        f"\n[contractors.{_toml_str(args.id)}]\n",
        f"name = {_toml_str(args.name)}\ncategory = {_toml_str(args.category)}\n",
        f"emails = {_toml_list(args.email)}\n",
    ]
    if args.webhook_url:
        lines.append(f"webhook_url = {_toml_str(args.webhook_url)}\n")
    new_text = text.rstrip("\n") + "\n" + "".join(lines)
    try:
        data = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:
        raise ProvisionError(f"the new block is not valid TOML ({exc})") from None
    parse_registry(data, source=f"{registry} + [contractors.{args.id}]")
    _write_atomic(registry, new_text)


def _asset_tags_header(uai: str) -> re.Pattern[str]:
    """`[schools.<UAI>.asset_tags]`, with the spacing and quoting TOML allows."""
    key = rf'(?:{uai}|"{uai}"|\'{uai}\')'
    tags = r'(?:asset_tags|"asset_tags"|\'asset_tags\')'
    return re.compile(rf"^\s*\[\s*schools\s*\.\s*{key}\s*\.\s*{tags}\s*\]\s*(?:#.*)?$")


def with_asset_tag(registry: Path, uai: str, device: str, tag: str | None) -> str | None:
    """The registry's text with `device = tag` in `[schools.<UAI>.asset_tags]` (the
    table the alert e-mails and escalation packets read), or None when there is
    nothing to change. The rest of the file is kept as it is; the result is checked
    with the collector's registry loader. Refuses a tag another laptop of the school
    already has (two laptops with one sticker send the technician to the wrong one)."""
    from collector.notify.registry import (  # noqa: PLC0415 - pydantic here only
        ASSET_TAG_PATTERN,
        parse_registry,
    )

    if tag is None:
        return None
    if not re.fullmatch(ASSET_TAG_PATTERN, tag):
        raise ProvisionError(f"--asset-tag: expected 1-64 of [0-9A-Za-z_./-] (got {tag!r})")
    text = registry.read_text(encoding="utf-8")
    school = tomllib.loads(text).get("schools", {}).get(uai)
    if school is None:
        raise ProvisionError(f"{registry}: no school {uai}; add it with `provision school`")
    tags: dict[str, str] = school.get("asset_tags", {})
    owner = next((d for d, t in tags.items() if t == tag and d != device), None)
    if owner is not None:
        raise ProvisionError(f"asset tag {tag} is already laptop {owner}'s (school {uai})")
    if tags.get(device) == tag:
        return None
    lines = text.splitlines(keepends=True)
    entry = f"{_toml_str(device)} = {_toml_str(tag)}\n"
    header = next((i for i, ln in enumerate(lines) if _asset_tags_header(uai).match(ln)), None)
    if header is None and tags:
        raise ProvisionError(
            f"{registry}: schools.{uai}.asset_tags is not written as a "
            f"[schools.{uai}.asset_tags] table; add {entry.strip()!r} by hand"
        )
    if header is None:
        new_text = text.rstrip("\n") + f"\n\n[schools.{uai}.asset_tags]\n{entry}"
    else:
        new_text = "".join(_put_in_table(lines, header, device, entry))
    try:
        data = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:
        raise ProvisionError(f"the new asset tag line is not valid TOML ({exc})") from None
    if parse_registry(data, source=str(registry)).asset_tag(uai, device) != tag:
        raise ProvisionError(f"{registry}: could not place the asset tag of {device}")
    return new_text


def _put_in_table(lines: list[str], header: int, device: str, entry: str) -> list[str]:
    """Replace the device's line in the table starting at `header`, or add it after
    the table's last key."""
    own_key = re.compile(rf"""^\s*(?:{device}|"{device}"|'{device}')\s*=""")
    last = header
    for i in range(header + 1, len(lines)):
        stripped = lines[i].strip()
        if stripped.startswith("["):
            break
        if own_key.match(lines[i]):
            return [*lines[:i], entry, *lines[i + 1 :]]
        if stripped and not stripped.startswith("#"):
            last = i
    if not lines[last].endswith("\n"):
        lines[last] += "\n"
    return [*lines[: last + 1], entry, *lines[last + 1 :]]


def lookup_asset_tag(registry: Path, uai: str, device: str) -> str | None:
    """A laptop's asset tag as recorded at enrolment (None if it has none): a fresh
    read of the registry file, for a process that did not load it at start-up."""
    school = tomllib.loads(registry.read_text(encoding="utf-8")).get("schools", {}).get(uai, {})
    tag = school.get("asset_tags", {}).get(device)
    return str(tag) if tag is not None else None


@contextmanager
def locked(broker_dir: Path) -> Iterator[None]:
    """One enrolment at a time: mosquitto_passwd rewrites the whole file, two would race."""
    with (broker_dir / ".provision.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _mosquitto_passwd(*argv: str) -> None:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        raise ProvisionError("mosquitto_passwd not found (Debian package: mosquitto)")
    done = subprocess.run([tool, *argv], capture_output=True, text=True, check=False)
    if done.returncode != 0:  # its messages never contain the password
        raise ProvisionError(f"mosquitto_passwd failed: {(done.stderr or done.stdout).strip()}")


def set_password(broker_dir: Path, user: str, password: str) -> None:
    path = broker_dir / PASSWD_FILE
    if not path.exists():
        path.touch(mode=0o640)
    _mosquitto_passwd("-b", str(path), user, password)


def device_user(school: str, device: str) -> str:
    """The broker user name; %u in the ACL patterns expands to these two topic levels."""
    return f"{school}/{device}"


def broker_users(broker_dir: Path) -> set[str]:
    path = broker_dir / PASSWD_FILE
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return {line.split(":", 1)[0] for line in lines if ":" in line}


def enrolled(broker_dir: Path) -> dict[str, str]:
    """device id -> school, from the password file's `<UAI>/<device>` users."""
    pairs = (user.split("/") for user in broker_users(broker_dir) if user.count("/") == 1)
    return {device: school for school, device in pairs}


def reload_broker(pid: int | None, pid_file: Path | None) -> str:
    """SIGHUP: Mosquitto 2.0 re-reads password and ACL files, connections stay up."""
    if pid is None and pid_file is not None:
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError) as exc:
            raise ProvisionError(f"--pid-file {pid_file}: no broker PID ({exc})") from None
    if pid is None:
        return "broker NOT reloaded: run `systemctl reload mosquitto` (or kill -HUP its PID)"
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as exc:
        raise ProvisionError(f"cannot signal broker PID {pid}: {exc.strerror}") from None
    return f"broker (PID {pid}) reloaded"


def agent_config(args: argparse.Namespace, device: str, password: str, ssids: list[str]) -> str:
    lines = [
        "# Generated by `lordi provision device`. Secret: keep it readable by the\n",
        "# agent's service account only. Keys: provisioning/agent/agent.toml.\n",
        f"school = {_toml_str(args.school)}\ndevice = {_toml_str(device)}\n\n[mqtt]\n",
        f"host = {_toml_str(args.host)}\nport = {args.port}\ntls = true\n",
        f"ca_file = {_toml_str(args.ca_file or '')}\n",
        f"username = {_toml_str(device_user(args.school, device))}\n",
        f"password = {_toml_str(password)}\n\n[privacy]\n",
        f"school_ssids = {_toml_list(ssids)}\n",
    ]
    if args.bssid_key_file:
        from agent.keyfile import read_bssid_key  # noqa: PLC0415

        key = read_bssid_key(Path(args.bssid_key_file))
        lines.append(f"bssid_key = {_toml_str(key)}\n")
    return "".join(lines)


def enrol_device(args: argparse.Namespace) -> str:
    from agent.config import load_config  # noqa: PLC0415
    from collector.notify.registry import load_registry  # noqa: PLC0415

    broker_dir, out, registry = Path(args.broker_dir), Path(args.out), Path(args.registry)
    ssids = list(load_registry(registry).school(args.school).ssids)
    with locked(broker_dir):
        known = enrolled(broker_dir)
        device = args.device or new_device_id()
        if not DEVICE_ID.match(device):
            raise ProvisionError(f"--device: expected 1-64 of [0-9A-Za-z_-] (got {device!r})")
        if device in known:
            raise ProvisionError(f"device {device} is already enrolled (school {known[device]})")
        # Checked before anything is written: a refused tag enrols nothing.
        tagged = with_asset_tag(registry, args.school, device, args.asset_tag)
        password = secrets.token_urlsafe(24)  # 192 bits
        _write_atomic(out, agent_config(args, device, password, ssids), mode=0o600)
        try:
            # The agent must accept what we wrote; ca_file is a path on the laptop,
            # which need not exist here.
            load_config(out, env={"LORDI_AGENT_MQTT__CA_FILE": ""})
            set_password(broker_dir, device_user(args.school, device), password)
        except BaseException:
            out.unlink(missing_ok=True)  # no config file for a device the broker does not know
            raise
        if tagged is not None:
            _write_atomic(registry, tagged)
    return device


def revoke_device(broker_dir: Path, device: str) -> str:
    with locked(broker_dir):
        school = enrolled(broker_dir).get(device)
        if school is None:
            raise ProvisionError(f"device {device!r} is not enrolled in {broker_dir / PASSWD_FILE}")
        _mosquitto_passwd("-D", str(broker_dir / PASSWD_FILE), device_user(school, device))
    return school


def cmd_asset_tag(args: argparse.Namespace) -> int:
    registry = Path(args.registry)
    text = with_asset_tag(registry, args.school, args.device, args.tag)
    if text is not None:
        _write_atomic(registry, text)
    print(f"device {args.device} (school {args.school}): asset tag {args.tag}; "
          "restart the collector to load it")  # fmt: skip
    return 0


def cmd_contractor(args: argparse.Namespace) -> int:
    add_contractor(Path(args.registry), args)
    print(f"contractor {args.id} added to {args.registry}")
    return 0


def cmd_school(args: argparse.Namespace) -> int:
    add_school(Path(args.registry), args)
    print(f"school {args.uai} added to {args.registry}; restart the collector to load it")
    return 0


def cmd_device(args: argparse.Namespace) -> int:
    device = enrol_device(args)
    print(f"device {device} enrolled in school {args.school}; agent config: {args.out}")
    if args.asset_tag:
        print(f"asset tag {args.asset_tag} recorded in {args.registry}; restart the collector")
    print(reload_broker(args.broker_pid, Path(args.pid_file) if args.pid_file else None))
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    school = revoke_device(Path(args.broker_dir), args.device)
    print(f"device {args.device} (school {school}) revoked")
    print(reload_broker(args.broker_pid, Path(args.pid_file) if args.pid_file else None))
    return 0


def _run(func: Any) -> Any:
    def wrapped(args: argparse.Namespace) -> int:
        from agent.config import ConfigError  # noqa: PLC0415
        from collector.notify.errors import NotifyError  # noqa: PLC0415

        try:
            return int(func(args))
        except (ProvisionError, NotifyError, ConfigError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return wrapped


def _broker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker-dir", required=True, help="folder holding the broker's `passwd` file")
    p.add_argument("--broker-pid", type=int, help="send SIGHUP to this PID to reload")
    p.add_argument("--pid-file", help="... or to the PID in this file (mosquitto's pid_file)")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("provision", help="add schools, enrol and revoke laptops")
    acts = p.add_subparsers(dest="action", required=True)
    s = acts.add_parser("school", help="append a school to the registry TOML")
    for flag, extra in (
        ("--registry", {"help": "the school registry (schools.toml)"}),
        ("--uai", {"help": "UAI code, e.g. 0341234A"}), ("--name", {}), ("--town", {}),
        ("--level1", {"action": "append", "metavar": "'NAME <EMAIL>'"}),
        ("--ssid", {"action": "append", "help": "school SSID (repeatable)"}),
        ("--hardware-contractor", {}), ("--network-contractor", {}),
    ):
        s.add_argument(flag, required=True, **extra)
    s.add_argument("--helpdesk-webhook-url")
    s.add_argument("--zone", help="its school holiday zone, when not the registry's "
                   "calendar_zone (A, B, C, Corse...)")
    s.set_defaults(func=_run(cmd_school))
    c = acts.add_parser("contractor", help="append a level-2 contractor to the registry TOML")
    c.add_argument("--registry", required=True, help="the school registry (schools.toml)")
    c.add_argument("--id", required=True, help="an id of your choice ([a-z0-9_-], max 64)")
    c.add_argument("--name", required=True)
    c.add_argument("--category", required=True, choices=["hardware", "network"])
    c.add_argument("--email", required=True, action="append", help="repeatable")
    c.add_argument("--webhook-url", help="the contractor's ticketing endpoint (optional)")
    c.set_defaults(func=_run(cmd_contractor))
    d = acts.add_parser("device", help="create a device id, its credentials and agent.toml")
    d.add_argument("--school", required=True, help="UAI code (must be in the registry)")
    d.add_argument("--device", help="device id (default: a new random d-xxxxxxxxxxxx)")
    d.add_argument("--registry", required=True, help="the school registry (schools.toml)")
    d.add_argument("--out", required=True, help="agent config file to write (mode 0600)")
    d.add_argument("--host", required=True, help="broker host name the laptops connect to")
    d.add_argument("--port", type=int, default=8883)
    d.add_argument("--ca-file", help="CA certificate path on the laptop (default: OS store)")
    d.add_argument("--bssid-key-file", help="file holding the region's privacy.bssid_key")
    d.add_argument("--asset-tag", help="the region's inventory tag (sticker) of this laptop")
    _broker_options(d)
    d.set_defaults(func=_run(cmd_device))
    t = acts.add_parser("asset-tag", help="record or change an enrolled laptop's asset tag")
    for flag in ("--registry", "--school", "--device", "--tag"):
        t.add_argument(flag, required=True)
    t.set_defaults(func=_run(cmd_asset_tag))
    r = acts.add_parser("revoke", help="remove a device's broker credentials")
    r.add_argument("--device", required=True)
    _broker_options(r)
    r.set_defaults(func=_run(cmd_revoke))
