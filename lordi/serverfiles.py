"""What `lordi server init` writes: the collector's and the web's configuration, an
empty registry, and the repository's broker configuration and systemd units with
this server's paths and port (`lordi/server.py` decides when to write them).

Every path the files name goes through `Layout.at`, so a set-up in a test root
names that root's files and can be run as is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

COLLECTOR_MQTT_USER = "collector-1"  # the collector role of provisioning/mosquitto/acl
ADMIN_MQTT_USER = "lordi-admin"  # the read-all role of the same ACL
ENROL_MQTT_USER = "lordi-enrol"  # the enrolment service's role of the same ACL


def q(value: str) -> str:
    """A TOML basic string (JSON's escaping is valid TOML)."""
    return json.dumps(value, ensure_ascii=False)


@dataclass
class Layout:
    """Where things go, under `root` ("/" on a real server)."""

    root: Path = Path("/")
    venv: Path = Path("/opt/lordi/venv")

    def at(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    @property
    def etc(self) -> Path:
        return self.at("/etc/lordi")

    @property
    def state(self) -> Path:
        return self.at("/var/lib/lordi-collector")

    @property
    def mosquitto(self) -> Path:
        return self.at("/etc/mosquitto")

    @property
    def enrol_state(self) -> Path:
        return self.at("/var/lib/lordi-enrol")


@dataclass
class Settings:
    """The operator's answers (`lordi server init --help`)."""

    hosts: list[str]
    fallback_email: str
    mail_from: str
    tls_port: int = 8883
    store: str = "victoriametrics"  # or influxdb2
    store_url: str = "http://127.0.0.1:8428"
    org: str = "lordi"
    bucket: str = "lordi"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_tls: str = "none"
    smtp_user: str = ""
    web_url: str = ""
    web_port: int = 8080
    metrics_port: int = 9108
    calendar_zone: str = ""  # the schools' holiday zone ("" : none written)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def local_host(self) -> str:
        """The name the collector uses for the broker on this machine (in the certificate)."""
        return "localhost"


def collector_toml(s: Settings, lay: Layout) -> str:
    vm = s.store == "victoriametrics"
    smtp_user = f"user = {q(s.smtp_user)}\n" if s.smtp_user else ""
    web_url = f"web_url = {q(s.web_url)}\n" if s.web_url else ""
    ca = lay.at("/etc/mosquitto/certs/ca.crt")
    return f"""\
# lordi-collector, written by `lordi server init` (every key explained in the
# repository's provisioning/collector/collector.toml). Secrets are not here: they
# are LORDI_COLLECTOR_* variables in {lay.etc / "collector.env"} (mode 0600).

[mqtt]
# The broker on this machine, over TLS, with the private CA made by `lordi server init`
# (the server certificate names {", ".join(s.hosts)}, localhost and 127.0.0.1).
host = {q(s.local_host)}
port = {s.tls_port}
tls = true
ca_file = {q(str(ca))}
# The collector role of the broker's ACL ({lay.at("/etc/mosquitto/lordi/acl")}).
username = {q(COLLECTOR_MQTT_USER)}
client_id = "lordi-collector-1"
# One collector, plain persistent subscription: Mosquitto keeps its queue across a
# broker restart (a shared subscription would not; docs/server-stack.md).
share_group = ""

[store]
url = {q(s.store_url)}
org = {q(s.org)}
bucket = {q(s.bucket)}
# VictoriaMetrics keeps string fields as series of zeros: leave them out.
string_fields = {"false" if vm else "true"}

[metrics]
# /metrics, /healthz and /readyz on loopback (docs/operations.md).
enabled = true
host = "127.0.0.1"
port = {s.metrics_port}

[alerts]
enabled = true
# Four slashes: an absolute path (three would be relative to the working directory).
store_url = {q("sqlite:///" + str(lay.state / "alerts.sqlite3"))}
registry = {q(str(lay.etc / "schools.toml"))}

[alerts.notify]
{web_url}
[alerts.notify.smtp]
host = {q(s.smtp_host)}
port = {s.smtp_port}
tls = {q(s.smtp_tls)}
{smtp_user}from_address = {q(s.mail_from)}
"""


def web_toml(s: Settings, lay: Layout) -> str:
    kind = "victoriametrics" if s.store == "victoriametrics" else "none"
    return f"""\
# lordi-web, written by `lordi server init` (keys: provisioning/web/web.toml).
# Accounts: lordi web --config {lay.etc / "web.toml"} user add NAME --school UAI

[web]
host = "127.0.0.1"
port = {s.web_port}
collector_config = {q(str(lay.etc / "collector.toml"))}
# Behind the TLS reverse proxy (provisioning/web/nginx-lordi-web.conf).
secure_cookies = true

[web.series]
kind = {q(kind)}
url = {q(s.store_url)}
"""


def enrol_toml(s: Settings, lay: Layout) -> str:
    return f"""\
# lordi enrol (service and commands), written by `lordi server init` (every key
# explained in the repository's provisioning/enrol/enrol.toml). The broker password
# of its account is LORDI_ENROL_MQTT__PASSWORD in {lay.etc / "enrol.env"} (mode 0600).

# Four slashes: an absolute path.
store_url = {q("sqlite:///" + str(lay.enrol_state / "enrol.sqlite3"))}
registry = {q(str(lay.etc / "schools.toml"))}

[mqtt]
host = {q(s.local_host)}
port = {s.tls_port}
tls = true
ca_file = {q(str(lay.at("/etc/mosquitto/certs/ca.crt")))}
username = {q(ENROL_MQTT_USER)}

[broker]
dir = {q(str(lay.mosquitto / "lordi"))}
pid_file = {q(str(lay.at("/run/mosquitto/mosquitto.pid")))}
"""


def registry_toml(s: Settings) -> str:
    zone = (
        "\n# The school holiday zone of every school that names none (docs/alerts.md,\n"
        '# "School calendar"): it drives the silence rule and the forecast per term.\n'
        f"calendar_zone = {q(s.calendar_zone)}\n" if s.calendar_zone else
        "\n# No calendar_zone: set the region's school holiday zone (e.g. calendar_zone =\n"
        '# "C"), or a `zone` per school; without one, schools have no holidays.\n'
    )
    return f"""\
# Lordi school registry, written empty by `lordi server init`. Fill it with
#   lordi provision contractor ...   (level-2 contractors, before the schools)
#   lordi provision school ...
# and read provisioning/schools.toml for every key. The collector reads it at start,
# and again within 4 s of a change or on `systemctl reload lordi-collector`.

# Alerts of a school missing from this file go here: someone who can edit it.
fallback_email = {q(s.fallback_email)}
{zone}
[contractors]

[schools]
"""


_MOSQUITTO_PATHS = {
    "pid_file": "/run/mosquitto/mosquitto.pid",
    "password_file": "/etc/mosquitto/lordi/passwd",
    "acl_file": "/etc/mosquitto/lordi/acl",
    "cafile": "/etc/mosquitto/certs/ca.crt",
    "certfile": "/etc/mosquitto/certs/server.crt",
    "keyfile": "/etc/mosquitto/certs/server.key",
    "persistence_location": "/var/lib/mosquitto/",
}


def mosquitto_conf(sample: str, s: Settings, lay: Layout) -> str:
    """The repository's broker configuration with this server's port and root."""
    out = []
    for line in sample.splitlines():
        key, _, value = line.partition(" ")
        new = line
        if key in _MOSQUITTO_PATHS:
            path = str(lay.at(_MOSQUITTO_PATHS[key]))
            new = f"{key} {path}/" if value.endswith("/") else f"{key} {path}"
        elif key == "listener" and value.strip() == "8883":
            new = f"listener {s.tls_port}"
        elif key == "log_dest" and value.startswith("file "):
            new = f"log_dest file {lay.at('/var/log/mosquitto/mosquitto.log')}"
        out.append(new)
    return "\n".join(out) + "\n"


def is_foreign_mosquitto_conf(text: str) -> bool:
    """A broker configuration never set up for Lordi (Debian's own, typically): init
    replaces it, keeping it as a backup; a Lordi one the operator edited is kept."""
    return "Lordi" not in text


def unit(sample: str, lay: Layout) -> str:
    """A repository unit with this server's virtualenv and, under a test root, its paths."""
    text = sample.replace("/opt/lordi/venv", str(lay.venv))
    if lay.root != Path("/"):
        for path in ("/etc/lordi", "/var/lib/lordi-collector", "/var/lib/lordi-enrol",
                     "/etc/mosquitto/lordi"):
            text = re.sub(rf"(?<![\w/]){re.escape(path)}", str(lay.at(path)), text)
    return text


def vm_args(text: str, retention: str = "90d") -> str:
    """/etc/default/victoria-metrics with the flags the collector needs: one point per
    series and timestamp (a message delivered twice is stored once), loopback only."""
    wanted = {
        "-dedup.minScrapeInterval": "1ms",
        "-httpListenAddr": "127.0.0.1:8428",
        "-retentionPeriod": retention,
    }
    m = re.search(r'^ARGS="([^"]*)"', text, flags=re.M)
    current = m.group(1).split() if m else ["-storageDataPath=/var/lib/victoria-metrics"]
    present = {a.split("=", 1)[0] for a in current}
    # The operator's own values stay (e.g. a longer -retentionPeriod).
    args = current + [f"{k}={v}" for k, v in wanted.items() if k not in present]
    line = f'ARGS="{" ".join(args)}"'
    if m:
        return text[: m.start()] + line + text[m.end():]
    return text.rstrip("\n") + "\n" + line + "\n"
