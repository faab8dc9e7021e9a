"""`lordi enrol`: enrolment secrets per school, the school configuration, the service,
and the list and revocation of enrolled laptops. Run on the broker's host (it
changes the broker's password file and reloads Mosquitto)."""

from __future__ import annotations

import argparse
import base64
import logging
import secrets
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from agent.config import UAI
from agent.enrol import enrol_account
from lordi.enrol import passwd
from lordi.enrol.settings import EnrolConfigError, EnrolSettings, load_settings
from lordi.enrol.store import EnrolStore
from lordi.provision import (
    PASSWD_FILE,
    ProvisionError,
    _toml_list,
    _toml_str,
    _write_atomic,
    device_user,
    locked,
    reload_broker,
)


def new_secret() -> tuple[str, str]:
    """(id, secret): the id names the secret in logs and commands; the secret is
    `<id>.<random>` (256 random bits) and is printed once, never stored."""
    secret_id = base64.b32encode(secrets.token_bytes(5)).decode().lower()
    return secret_id, f"{secret_id}.{secrets.token_urlsafe(32)}"


def _store(settings: EnrolSettings) -> EnrolStore:
    store = EnrolStore(settings.store_url)
    store.create_tables()
    return store


def _registry_school(settings: EnrolSettings, uai: str) -> Any:
    from collector.notify.registry import load_registry  # noqa: PLC0415

    if not UAI.match(uai):
        raise ProvisionError(f"--school: expected a UAI code like 0341234A (got {uai!r})")
    return load_registry(settings.registry).school(uai)


def cmd_secret_create(settings: EnrolSettings, args: argparse.Namespace) -> int:
    _registry_school(settings, args.school)  # refused when the school is not in the registry
    secret_id, secret = new_secret()
    line = passwd.hash_line(enrol_account(args.school, secret_id), secret)
    store = _store(settings)
    store.add_secret(secret_id, args.school, line, args.note or "")
    with locked(settings.broker.dir):
        passwd.append(settings.broker.dir / PASSWD_FILE, [line])
    print(f"enrolment secret {secret_id} created for school {args.school}:")
    print(secret)
    print("It is shown once: put it in the school's configuration "
          "(`lordi enrol school-config`). " + reload_broker(None, settings.broker.pid_file))
    return 0


def _revoke_users(settings: EnrolSettings, users: set[str]) -> str:
    with locked(settings.broker.dir):
        passwd.remove(settings.broker.dir / PASSWD_FILE, users)
    # Mosquitto re-checks connected clients at the reload and disconnects them.
    return reload_broker(None, settings.broker.pid_file)


def cmd_secret_revoke(settings: EnrolSettings, args: argparse.Namespace) -> int:
    store = _store(settings)
    secret = store.secret(args.id)
    if secret is None:
        raise ProvisionError(f"--id: no enrolment secret {args.id!r}")
    store.revoke_secret(args.id)
    note = _revoke_users(settings, {enrol_account(secret.school, secret.id)})
    print(f"enrolment secret {args.id} (school {secret.school}) revoked; laptops already "
          f"enrolled with it keep their identity. {note}")
    return 0


def cmd_secret_list(settings: EnrolSettings, args: argparse.Namespace) -> int:
    for s in _store(settings).secrets(args.school):
        state = f"revoked {s.revoked_at:%Y-%m-%d %H:%M}" if s.revoked_at else "active"
        print(f"{s.id}\t{s.school}\tcreated {s.created_at:%Y-%m-%d %H:%M}\t{state}\t{s.note}")
    return 0


def cmd_list(settings: EnrolSettings, args: argparse.Namespace) -> int:
    rows = _store(settings).enrolments(args.school)
    for e in rows:
        state = f"revoked {e.revoked_at:%Y-%m-%d %H:%M}" if e.revoked_at else "active"
        print(f"{e.device}\t{e.school}\tsecret {e.secret_id}\t"
              f"enrolled {e.enrolled_at:%Y-%m-%d %H:%M:%S}\t{state}")
    print(f"{len(rows)} laptop(s)", file=sys.stderr)
    return 0


def cmd_revoke_device(settings: EnrolSettings, args: argparse.Namespace) -> int:
    store = _store(settings)
    known = store.device(args.device)
    if known is None:
        raise ProvisionError(f"--device: no enrolled laptop {args.device!r}")
    store.revoke_device(args.device)
    note = _revoke_users(settings, {device_user(known.school, known.device)})
    print(f"device {args.device} (school {known.school}) revoked. {note}")
    return 0


def school_config(settings: EnrolSettings, args: argparse.Namespace) -> str:
    school = _registry_school(settings, args.school)
    from agent.enrol import EnrolError, secret_id  # noqa: PLC0415

    try:
        sid = secret_id(args.secret)
    except EnrolError as exc:
        raise ProvisionError(f"--secret: {exc}") from None
    known = _store(settings).secret(sid)
    if known is None or known.school != args.school or known.revoked_at is not None:
        raise ProvisionError(f"--secret: {sid} is not an active secret of school {args.school}")
    lines = [
        "# School configuration, made by `lordi enrol school-config`: the same on every\n",
        "# laptop of the school (master image, MDM profile). Each laptop enrols itself\n",
        "# at first start and keeps its own identity in enrol.identity_file.\n",
        f"school = {_toml_str(args.school)}\n\n[mqtt]\n",
        f"host = {_toml_str(args.host)}\nport = {args.port}\ntls = true\n",
        f"ca_file = {_toml_str(args.ca_file or '')}\n\n[enrol]\n",
        f"secret = {_toml_str(args.secret)}\n",
    ]
    if args.identity_file:
        lines.append(f"identity_file = {_toml_str(args.identity_file)}\n")
    lines.append(f"\n[privacy]\nschool_ssids = {_toml_list(list(school.ssids))}\n")
    if args.bssid_key_file:
        from agent.keyfile import read_bssid_key  # noqa: PLC0415

        lines.append(f"bssid_key = {_toml_str(read_bssid_key(Path(args.bssid_key_file)))}\n")
    return "".join(lines)


def cmd_school_config(settings: EnrolSettings, args: argparse.Namespace) -> int:
    from agent.config import load_config  # noqa: PLC0415

    out = Path(args.out)
    _write_atomic(out, school_config(settings, args), mode=0o600)
    load_config(out, env={"LORDI_AGENT_MQTT__CA_FILE": ""})  # the agent accepts it
    print(f"school configuration for {args.school} written to {out}")
    return 0


def cmd_serve(settings: EnrolSettings, args: argparse.Namespace) -> int:
    from lordi.enrol.service import EnrolService  # noqa: PLC0415

    root = logging.getLogger()
    root.setLevel(logging.INFO)  # every enrolment and refusal is logged
    for handler in root.handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    service = EnrolService(settings, EnrolStore(settings.store_url))
    service.start()
    try:
        service.run(stop)
    finally:
        service.stop()
    return 0


def _run(func: Any) -> Any:
    def wrapped(args: argparse.Namespace) -> int:
        from agent.config import ConfigError  # noqa: PLC0415
        from collector.notify.errors import NotifyError  # noqa: PLC0415

        try:
            return int(func(load_settings(Path(args.config)), args))
        except (EnrolConfigError, ProvisionError, NotifyError, ConfigError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return wrapped


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("enrol", help="self-enrolment: secrets, school configuration, service")
    acts = p.add_subparsers(dest="action", required=True)

    def act(name: str, help_: str, func: Any) -> argparse.ArgumentParser:
        a = acts.add_parser(name, help=help_)
        a.add_argument("--config", required=True, help="enrol.toml")
        a.set_defaults(func=_run(func))
        return a

    act("serve", "run the enrolment service", cmd_serve)
    sec = acts.add_parser("secret", help="create, revoke or list a school's enrolment secrets")
    sec_acts = sec.add_subparsers(dest="secret_action", required=True)
    for name, help_, func in (
        ("create", "make a school's enrolment secret (printed once)", cmd_secret_create),
        ("revoke", "refuse a secret from now on", cmd_secret_revoke),
        ("list", "the secrets and their state", cmd_secret_list),
    ):
        a = sec_acts.add_parser(name, help=help_)
        a.add_argument("--config", required=True, help="enrol.toml")
        a.set_defaults(func=_run(func))
        if name == "create":
            a.add_argument("--school", required=True, help="UAI code (must be in the registry)")
            a.add_argument("--note", help="e.g. 'rentrée 2027 image'")
        elif name == "revoke":
            a.add_argument("--id", required=True, help="the secret's id (before the dot)")
        else:
            a.add_argument("--school", help="only this school")
    c = act("school-config", "write the school's agent configuration", cmd_school_config)
    c.add_argument("--school", required=True)
    c.add_argument("--secret", required=True, help="as printed by `lordi enrol secret create`")
    c.add_argument("--host", required=True, help="broker host name the laptops connect to")
    c.add_argument("--port", type=int, default=8883)
    c.add_argument("--ca-file", help="CA certificate path on the laptop (default: OS store)")
    c.add_argument("--identity-file", help="where each laptop keeps its identity "
                   "(default: next to the configuration)")
    c.add_argument("--bssid-key-file", help="file holding the region's privacy.bssid_key")
    c.add_argument("--out", required=True, help="file to write (mode 0600)")
    ls = act("list", "enrolled laptops", cmd_list)
    ls.add_argument("--school", help="only this school")
    r = act("revoke-device", "revoke an enrolled laptop's identity", cmd_revoke_device)
    r.add_argument("--device", required=True)
