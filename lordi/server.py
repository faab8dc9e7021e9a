"""`lordi server init`: the server side of a Debian/Ubuntu host, set up in one command.

System users, folders with owners and modes, a private CA and the broker's
certificate, the broker's configuration, ACL and the collector's and admin's
broker accounts, the BSSID key, an empty school registry, the collector's and the
web's configuration with their secrets in environment files, the systemd units and
VictoriaMetrics' flags. Idempotent: what exists and is right is left alone and
reported `unchanged`; a file the operator edited is never overwritten (`kept`, with
what init would write beside it as `<file>.lordi-init`); secrets are made once.

`--root DIR` writes everything under DIR (a test or a staging copy): the files name
DIR's paths, while users and groups are the system's.
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lordi import pki
from lordi import serverfiles as files
from lordi.provision import ProvisionError, broker_users, locked, set_password

COLLECTOR_USER = "lordi-collector"
WEB_USER = "lordi-web"
BROKER_USER = "mosquitto"
MQTT_PASSWORD_ENV = "LORDI_COLLECTOR_MQTT__PASSWORD"  # noqa: S105 - a variable name
ADMIN_PASSWORD_ENV = "LORDI_MQTT_ADMIN_PASSWORD"  # noqa: S105 - a variable name
ENROL_PASSWORD_ENV = "LORDI_ENROL_MQTT__PASSWORD"  # noqa: S105 - a variable name


# Settings of the files init writes -> the option that sets them (for error messages).
OPTIONS = {
    "alerts.notify.smtp.from_address": "--mail-from",
    "alerts.notify.smtp.host": "--smtp-host",
    "alerts.notify.smtp.port": "--smtp-port",
    "alerts.notify.web_url": "--web-url",
    "fallback_email": "--fallback-email",
    "calendar_zone": "--calendar-zone",
    "mqtt.port": "--tls-port",
    "store.url": "--store-url",
    "metrics.port": "--metrics-port",
}


class InitError(Exception):
    """A step init cannot take; the message says which and what to do."""


@dataclass
class Report:
    lines: list[tuple[str, str]] = field(default_factory=list)

    def add(self, action: str, what: Path | str) -> None:
        self.lines.append((action, str(what)))
        print(f"{action:<10} {what}", flush=True)

    def count(self, action: str) -> int:
        return sum(1 for a, _ in self.lines if a == action)


def _ids(user: str, group: str) -> tuple[int, int]:
    return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid


def _fix(path: Path, mode: int, user: str, group: str) -> bool:
    """Owner, group and mode as wanted; True when something had to change."""
    uid, gid = _ids(user, group)
    st = path.stat()
    changed = False
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.chown(path, uid, gid)
        changed = True
    if st.st_mode & 0o7777 != mode:
        path.chmod(mode)
        changed = True
    return changed


def _write(path: Path, data: str, mode: int, user: str, group: str) -> None:
    tmp = path.with_name(f".{path.name}.lordi-tmp")
    tmp.write_text(data, encoding="utf-8")
    uid, gid = _ids(user, group)
    os.chown(tmp, uid, gid)
    tmp.chmod(mode)
    os.replace(tmp, path)


def read_env(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a systemd EnvironmentFile (no quoting is written by init)."""
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.lstrip().startswith("#"):
            out[key.strip()] = value.strip()
    return out


class Init:
    def __init__(self, s: files.Settings, lay: files.Layout, provisioning: Path) -> None:
        self.s, self.lay, self.prov = s, lay, provisioning
        self.report = Report()

    # -- primitives --------------------------------------------------------------
    def folder(self, path: Path, mode: int, user: str = "root", group: str = "root") -> None:
        if not path.exists():
            path.mkdir(parents=True)
            _fix(path, mode, user, group)
            self.report.add("created", f"{path}/")
        elif _fix(path, mode, user, group):
            self.report.add("changed", f"{path}/ (owner or mode)")
        else:
            self.report.add("unchanged", f"{path}/")

    def file(self, path: Path, text: str, mode: int, user: str = "root",
             group: str = "root", *, operator_data: bool = False) -> None:
        """Ours to write when missing; the operator's once it differs from ours."""
        if not path.exists():
            _write(path, text, mode, user, group)
            self.report.add("created", path)
            return
        fixed = _fix(path, mode, user, group)
        proposal = path.with_name(path.name + ".lordi-init")
        if operator_data or path.read_text(encoding="utf-8") == text:
            proposal.unlink(missing_ok=True)
            self.report.add("changed" if fixed else "unchanged", path)
            return
        _write(proposal, text, mode, user, group)
        self.report.add("kept", f"{path} (edited; what init would write: {proposal})")

    def env(self, path: Path, wanted: dict[str, str], mode: int = 0o600) -> dict[str, str]:
        """Add the missing keys of an environment file; existing values stay."""
        current = read_env(path)
        missing = {k: v for k, v in wanted.items() if k not in current}
        if not path.exists():
            header = "# Secrets, written by `lordi server init`. Mode 0600, owner root.\n"
            _write(path, header + "".join(f"{k}={v}\n" for k, v in missing.items()),
                   mode, "root", "root")
            self.report.add("created", path)
        elif missing:
            text = path.read_text(encoding="utf-8").rstrip("\n") + "\n"
            _write(path, text + "".join(f"{k}={v}\n" for k, v in missing.items()),
                   mode, "root", "root")
            self.report.add("changed", f"{path} (added {', '.join(sorted(missing))})")
        else:
            self.report.add("changed" if _fix(path, mode, "root", "root") else "unchanged", path)
        return {**missing, **current}

    # -- steps -------------------------------------------------------------------
    def users(self) -> None:
        for name in (COLLECTOR_USER, WEB_USER):
            try:
                pwd.getpwnam(name)
                self.report.add("unchanged", f"system user {name}")
            except KeyError:
                _run("useradd", "--system", "--user-group", "--no-create-home",
                     "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name)
                self.report.add("created", f"system user {name}")
        # lordi-web writes its accounts and actions into the collector's SQLite store.
        if WEB_USER in grp.getgrnam(COLLECTOR_USER).gr_mem:
            self.report.add("unchanged", f"{WEB_USER} in group {COLLECTOR_USER}")
        else:
            _run("usermod", "--append", "--groups", COLLECTOR_USER, WEB_USER)
            self.report.add("changed", f"{WEB_USER} in group {COLLECTOR_USER}")

    def folders(self) -> None:
        lay = self.lay
        self.folder(lay.etc, 0o750, "root", COLLECTOR_USER)
        self.folder(lay.etc / "ca", 0o700)
        self.folder(lay.state, 0o2770, COLLECTOR_USER, COLLECTOR_USER)
        self.folder(lay.enrol_state, 0o700)
        self.folder(lay.mosquitto / "lordi", 0o750, "root", BROKER_USER)
        self.folder(lay.mosquitto / "certs", 0o755)
        # What Debian's mosquitto unit and package make, for a broker started by hand too
        # (a missing /run/mosquitto is "Unable to write pid file").
        for path in ("/var/lib/mosquitto", "/var/log/mosquitto", "/run/mosquitto"):
            self.folder(lay.at(path), 0o755, BROKER_USER, BROKER_USER)
        self.folder(lay.at("/etc/systemd/system"), 0o755)

    def certificates(self) -> None:
        ca_key, ca_crt = self.lay.etc / "ca" / "ca.key", self.lay.etc / "ca" / "ca.crt"
        certs = self.lay.mosquitto / "certs"
        if ca_key.exists() and ca_crt.exists():
            self.report.add("unchanged", ca_crt)
        else:
            pki.make_ca(ca_key, ca_crt)
            self.report.add("created", f"{ca_crt} (private CA; its key {ca_key}, mode 0600)")
        self.file(certs / "ca.crt", ca_crt.read_text(), 0o644)
        names = list(dict.fromkeys([*self.s.hosts, "localhost", "127.0.0.1"]))
        crt, key = certs / "server.crt", certs / "server.key"
        why = "missing"
        if crt.exists() and key.exists():
            have = pki.cert_names(crt)
            why = pki.still_valid(crt, ca_crt) or (
                "" if set(names) <= set(have) else f"names {', '.join(have)}"
            )
        if why:
            pki.make_server(ca_key, ca_crt, key, crt, names)
            self.report.add("created" if why == "missing" else "changed",
                            f"{crt} for {', '.join(names)}"
                            + ("" if why == "missing" else f" (was: {why})"))
        else:
            self.report.add("unchanged", f"{crt} ({', '.join(pki.cert_names(crt))})")
        _fix(key, 0o640, "root", BROKER_USER)
        _fix(crt, 0o644, "root", "root")

    def broker(self) -> None:
        lay, folder = self.lay, self.lay.mosquitto / "lordi"
        self.file(folder / "acl", (self.prov / "mosquitto" / "acl").read_text(), 0o640,
                  "root", BROKER_USER)
        passwd = folder / "passwd"
        if not passwd.exists():
            _write(passwd, "", 0o640, "root", BROKER_USER)
        users = broker_users(folder)
        for user, env_file, var in (
            (files.COLLECTOR_MQTT_USER, lay.etc / "collector.env", MQTT_PASSWORD_ENV),
            (files.ADMIN_MQTT_USER, lay.etc / "mqtt-admin.env", ADMIN_PASSWORD_ENV),
            (files.ENROL_MQTT_USER, lay.etc / "enrol.env", ENROL_PASSWORD_ENV),
        ):
            known = read_env(env_file).get(var)
            password = known or secrets.token_urlsafe(24)
            if user not in users or not known:
                with locked(folder):
                    set_password(folder, user, password)
                self.report.add("created", f"broker user {user} (password in {env_file})")
            else:
                self.report.add("unchanged", f"broker user {user}")
            self.env(env_file, {var: password})
        _fix(passwd, 0o640, "root", BROKER_USER)
        conf = lay.mosquitto / "mosquitto.conf"
        text = files.mosquitto_conf(
            (self.prov / "mosquitto" / "mosquitto.conf").read_text(), self.s, lay
        )
        if conf.exists() and files.is_foreign_mosquitto_conf(conf.read_text()):
            backup = conf.with_name("mosquitto.conf.before-lordi")
            shutil.copy2(conf, backup)
            _write(conf, text, 0o644, "root", "root")
            self.report.add("changed", f"{conf} (the previous file is kept as {backup})")
        else:
            self.file(conf, text, 0o644)

    def secrets_and_configs(self) -> None:
        etc = self.lay.etc
        key = etc / "bssid.key"
        if key.exists():
            self.report.add("changed" if _fix(key, 0o600, "root", "root") else "unchanged", key)
        else:
            _write(key, secrets.token_hex(32) + "\n", 0o600, "root", "root")
            self.report.add("created", f"{key} (the region's privacy.bssid_key)")
        extra = {}
        if self.s.smtp_user and os.environ.get("LORDI_SMTP_PASSWORD"):
            extra["LORDI_COLLECTOR_ALERTS__NOTIFY__SMTP__PASSWORD"] = os.environ[
                "LORDI_SMTP_PASSWORD"]
        if self.s.store == "influxdb2" and os.environ.get("LORDI_STORE_TOKEN"):
            extra["LORDI_COLLECTOR_STORE__TOKEN"] = os.environ["LORDI_STORE_TOKEN"]
        if extra:
            self.env(etc / "collector.env", extra)
        self.file(etc / "schools.toml", files.registry_toml(self.s), 0o640, "root",
                  COLLECTOR_USER, operator_data=True)
        self.file(etc / "collector.toml", files.collector_toml(self.s, self.lay), 0o640,
                  "root", COLLECTOR_USER)
        self.file(etc / "web.toml", files.web_toml(self.s, self.lay), 0o640, "root",
                  COLLECTOR_USER)
        self.file(etc / "enrol.toml", files.enrol_toml(self.s, self.lay), 0o600)

    def units(self) -> None:
        system = self.lay.at("/etc/systemd/system")
        for sample in (self.prov / "collector" / "lordi-collector.service",
                       self.prov / "web" / "lordi-web.service",
                       self.prov / "enrol" / "lordi-enrol.service"):
            self.file(system / sample.name, files.unit(sample.read_text(), self.lay), 0o644)

    def store(self) -> None:
        if self.s.store != "victoriametrics":
            return
        defaults = self.lay.at("/etc/default/victoria-metrics")
        if not defaults.exists():
            self.report.add("missing", f"{defaults}: apt-get install victoria-metrics, "
                            "then run `lordi server init` again")
            return
        text = defaults.read_text()
        new = files.vm_args(text)
        if new == text:
            self.report.add("unchanged", defaults)
        else:
            _write(defaults, new, 0o644, "root", "root")
            self.report.add("changed", f"{defaults} (dedup 1 ms, loopback, retention)")

    def check(self, collector_toml: Path, registry: Path) -> None:
        """Load a configuration with the collector's own loaders (the secrets from its
        environment file, or stand-ins before anything is written)."""
        from collector.config import ConfigError, load_settings  # noqa: PLC0415
        from collector.notify.errors import RegistryError  # noqa: PLC0415
        from collector.notify.registry import load_registry  # noqa: PLC0415

        env = read_env(self.lay.etc / "collector.env") or {MQTT_PASSWORD_ENV: "stand-in"}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            load_registry(registry)
            load_settings(collector_toml)
        except (ConfigError, RegistryError) as exc:
            text = str(exc)
            for setting, option in OPTIONS.items():
                text = text.replace(setting, f"{setting} (option {option})")
            raise InitError(text) from None
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def precheck(self) -> None:
        """The options' configuration, loaded before anything is written."""
        with tempfile.TemporaryDirectory() as tmp:
            conf, reg = Path(tmp) / "collector.toml", Path(tmp) / "schools.toml"
            conf.write_text(files.collector_toml(self.s, self.lay), encoding="utf-8")
            reg.write_text(files.registry_toml(self.s), encoding="utf-8")
            try:
                self.check(conf, reg)
            except InitError as exc:
                text = str(exc).replace(f"{tmp}/", f"{self.lay.etc}/")
                raise InitError(f"nothing written: {text}") from None

    def run(self) -> Report:
        self.precheck()
        self.users()
        self.folders()
        self.certificates()
        self.broker()
        self.secrets_and_configs()
        self.units()
        self.store()
        self.check(self.lay.etc / "collector.toml", self.lay.etc / "schools.toml")
        return self.report


def _run(*argv: str) -> None:
    done = subprocess.run(
        argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
    )
    if done.returncode != 0:
        raise InitError(f"{' '.join(argv)}: {done.stderr.strip() or done.stdout.strip()}")


def _provisioning(arg: str | None) -> Path:
    here = Path(__file__).resolve().parents[1] / "provisioning"
    for candidate in ([Path(arg)] if arg else [Path("provisioning"), here]):
        if (candidate / "mosquitto" / "mosquitto.conf").is_file():
            return candidate
    raise InitError(
        f"no provisioning folder at {arg or 'provisioning/'}: run `lordi server init` from "
        "the repository's checkout, or give --provisioning CHECKOUT/provisioning"
    )


def preflight() -> None:
    if os.geteuid() != 0:
        raise InitError("run as root: init creates system users and root-owned files")
    for tool, package in (("mosquitto_passwd", "mosquitto"), ("openssl", "openssl"),
                          ("useradd", "passwd")):
        if shutil.which(tool) is None:
            raise InitError(f"{tool} not found: apt-get install {package}")
    try:
        pwd.getpwnam(BROKER_USER)
    except KeyError:
        raise InitError("no `mosquitto` user: apt-get install mosquitto") from None


def next_steps(s: files.Settings, lay: files.Layout) -> str:
    etc = lay.etc
    return f"""
Next:
  systemctl daemon-reload && systemctl restart mosquitto victoria-metrics
  lordi provision contractor --registry {etc}/schools.toml --id ID --name NAME \\
      --category hardware|network --email ADDRESS      (one per contractor)
  lordi provision school --registry {etc}/schools.toml --uai UAI ...
  systemctl enable --now lordi-collector lordi-web
  A school's laptops enrol themselves (docs/rollout.md):
  systemctl enable --now lordi-enrol
  lordi enrol secret create --config {etc}/enrol.toml --school UAI
  lordi enrol school-config --config {etc}/enrol.toml --school UAI --secret SECRET \\
      --host {s.hosts[0]} --port {s.tls_port} --bssid-key-file {etc}/bssid.key \\
      --ca-file PATH-ON-THE-LAPTOP --out school-agent.toml
  or one laptop at a time:
  lordi provision device --registry {etc}/schools.toml --school UAI --host {s.hosts[0]} \\
      --port {s.tls_port} --broker-dir {lay.mosquitto}/lordi --bssid-key-file {etc}/bssid.key \\
      --pid-file {lay.at('/run/mosquitto/mosquitto.pid')} \\
      --ca-file PATH-ON-THE-LAPTOP --out agent.toml
  The laptops trust {lay.mosquitto}/certs/ca.crt (copy it with the configuration).
  lordi store status --url {s.store_url}        (did samples arrive?)"""


def cmd_init(args: argparse.Namespace) -> int:
    s = files.Settings(
        hosts=args.host, fallback_email=args.fallback_email,
        mail_from=args.mail_from or args.fallback_email, tls_port=args.tls_port,
        store=args.store, store_url=args.store_url, smtp_host=args.smtp_host,
        smtp_port=args.smtp_port, smtp_tls=args.smtp_tls, smtp_user=args.smtp_user or "",
        web_url=args.web_url or "", web_port=args.web_port, metrics_port=args.metrics_port,
        calendar_zone=args.calendar_zone or "",
    )
    lay = files.Layout(root=Path(args.root), venv=Path(args.venv))
    try:
        preflight()
        report = Init(s, lay, _provisioning(args.provisioning)).run()
    except (InitError, pki.PkiError, ProvisionError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    changed = report.count("created") + report.count("changed")
    kept = report.count("kept")
    if changed == 0 and kept == 0:
        print("nothing to change: everything is as `lordi server init` writes it")
    else:
        print(f"{changed} created or changed, {kept} kept as edited, "
              f"{report.count('unchanged')} unchanged")
    print(next_steps(s, lay))
    return 1 if report.count("missing") else 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("server", help="set up this Debian/Ubuntu host as the Lordi server")
    acts = p.add_subparsers(dest="action", required=True)
    i = acts.add_parser("init", help="users, folders, CA and certificates, broker, collector, "
                        "web and systemd units; idempotent", description=__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    i.add_argument("--host", action="append", required=True,
                   help="a name the laptops use for the broker (repeatable; the first is "
                   "written in agent.toml); localhost and 127.0.0.1 are always added")
    i.add_argument("--fallback-email", required=True,
                   help="who receives alerts of a school missing from the registry")
    i.add_argument("--mail-from", help="sender of alert e-mails (default: --fallback-email)")
    i.add_argument("--calendar-zone", help="the schools' holiday zone written in the new "
                   "registry (A, B, C, Corse...; e.g. C for Occitanie)")
    i.add_argument("--tls-port", type=int, default=8883)
    i.add_argument("--store", choices=["victoriametrics", "influxdb2"],
                   default="victoriametrics",
                   help="influxdb2: token from the LORDI_STORE_TOKEN variable")
    i.add_argument("--store-url", default="http://127.0.0.1:8428")
    i.add_argument("--smtp-host", default="127.0.0.1")
    i.add_argument("--smtp-port", type=int, default=25)
    i.add_argument("--smtp-tls", choices=["none", "starttls", "ssl"], default="none")
    i.add_argument("--smtp-user", help="password from the LORDI_SMTP_PASSWORD variable")
    i.add_argument("--web-url", help="the worklist's alert page, e.g. "
                   "https://lordi.example.org/alertes/{id} (linked from e-mails)")
    i.add_argument("--metrics-port", type=int, default=9108,
                   help="the collector's /metrics, /healthz, /readyz on loopback")
    i.add_argument("--web-port", type=int, default=8080, help="lordi-web on loopback")
    i.add_argument("--venv", default="/opt/lordi/venv",
                   help="the virtualenv the units run (default /opt/lordi/venv)")
    i.add_argument("--root", default="/", help="write under this folder instead of / (tests)")
    i.add_argument("--provisioning", help="the checkout's provisioning/ folder "
                   "(default: ./provisioning)")
    i.set_defaults(func=cmd_init)
