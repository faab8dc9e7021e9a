"""The web worklist's deployment files under provisioning/web/, checked with the real
tools: the sample web.toml through lordi-web's own loader; the systemd unit through
`systemd-analyze verify` and `security --offline`, and lordi-web run through a
log-in, its pages and an escalation under MemoryDenyWriteExecute's seccomp rule;
the nginx site through `nginx -t`, then a real nginx in front of a server that
echoes what reaches it (both the password and the single-sign-on variants).

Not checked here: starting the unit under a real systemd (none runs on this
machine: PID 1 is not systemd), and the SSO module itself (a stand-in answers
nginx's auth_request).
"""

from __future__ import annotations

import errno
import json
import platform
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from collector.alerts.store import AlertStore
from lordi import demo
from lordi.stack import LocalStack, free_port
from lordi.web.config import WebConfigError, WebSettings, load_web_settings
from lordi.web.seed import now_utc, seed_school
from tests.units import analyze_unit
from tests.units import unit_settings as read_unit

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "provisioning" / "web"
SAMPLE = WEB / "web.toml"
UNIT = WEB / "lordi-web.service"
NGINX_SITE = WEB / "nginx-lordi-web.conf"
EXEC = "/opt/lordi/venv/bin/lordi-web"
CONFIG = "/etc/lordi/web.toml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "web.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _model_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            keys |= _model_keys(sub, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def _doc_keys(doc: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for name, value in doc.items():
        if isinstance(value, dict):
            keys |= _doc_keys(value, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


# --- web.toml -------------------------------------------------------------------


def test_web_sample_loads_and_shows_the_defaults() -> None:
    settings = load_web_settings(SAMPLE)
    assert settings == WebSettings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.secure_cookies is True
    assert settings.sso.enabled is False  # never on by default


def test_web_sample_documents_every_setting_and_no_dead_one() -> None:
    doc = tomllib.loads(SAMPLE.read_text(encoding="utf-8"))
    assert set(doc) == {"web"}
    documented = _doc_keys(doc["web"])
    assert documented == _model_keys(WebSettings)
    text = SAMPLE.read_text(encoding="utf-8")
    for key in documented:  # each with its explanation just above it
        name = key.rsplit(".", 1)[-1]
        assert re.search(rf"#[^\n]*\n{name} = ", text) or re.search(
            rf"#[^\n]*\n(\w+ = [^\n]*\n)+{name} = ", text
        ), key


@pytest.mark.parametrize(
    ("toml", "key", "shown"),
    [
        ('[web]\nport = "x"\n', "web.port", "'x'"),
        ("[web]\nport = 70000\n", "web.port", "70000"),
        ("[web]\nsession_ttl_s = 10\n", "web.session_ttl_s", "10"),
        ('[web.sso]\nenabled = "maybe"\n', "web.sso.enabled", "'maybe'"),
        ('[web.series]\nkind = "prometheus"\n', "web.series.kind", "'prometheus'"),
        ("[web.login]\nper_user = 0\n", "web.login.per_user", "0"),
    ],
)
def test_web_bad_value_names_key_and_value(tmp_path: Path, toml: str, key: str, shown: str) -> None:
    with pytest.raises(WebConfigError) as info:
        load_web_settings(_write(tmp_path, toml))
    message = str(info.value)
    assert f"{key}:" in message and f"(got {shown})" in message, message


def test_web_unknown_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WebConfigError, match=r"web\.prot: Extra inputs are not permitted"):
        load_web_settings(_write(tmp_path, "[web]\nprot = 8080\n"))


def test_lordi_web_exits_2_on_a_bad_config(tmp_path: Path) -> None:
    done = subprocess.run(
        [*demo.web_command(), "--config", str(_write(tmp_path, '[web]\nport = "x"\n'))],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "web.port" in done.stderr and "'x'" in done.stderr


# --- systemd unit ----------------------------------------------------------------


def unit_settings() -> dict[str, dict[str, list[str]]]:
    return read_unit(UNIT)


def test_unit_runs_lordi_web_behind_the_proxy() -> None:
    s = unit_settings()["Service"]
    one = {k: v[-1] for k, v in s.items()}
    assert one["ExecStart"] == f"{EXEC} --config {CONFIG}"
    assert (one["User"], one["Group"]) == ("lordi-web", "lordi-web")
    assert one["Restart"] == "on-failure"
    assert one["ReadWritePaths"] == "-/var/lib/lordi-collector"
    assert one["EnvironmentFile"].startswith("-/etc/lordi/")
    assert unit_settings()["Install"]["WantedBy"] == ["multi-user.target"]
    # The sample's address is loopback, and the nginx site proxies to it.
    settings = load_web_settings(SAMPLE)
    assert settings.host == "127.0.0.1"
    nginx = NGINX_SITE.read_text(encoding="utf-8")
    assert f"proxy_pass http://{settings.host}:{settings.port};" in nginx
    assert CONFIG.startswith(str(settings.collector_config.parent))


def test_unit_hardening() -> None:
    s = unit_settings()["Service"]
    one = {k: v[-1] for k, v in s.items()}
    for key in (
        "NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables",
        "ProtectKernelModules", "ProtectControlGroups", "RestrictNamespaces", "RestrictSUIDSGID",
        "LockPersonality", "MemoryDenyWriteExecute",
    ):  # fmt: skip
        assert one[key] == "yes", key
    assert one["ProtectSystem"] == "strict"
    assert one["CapabilityBoundingSet"] == ""
    assert s["SystemCallFilter"][0] == "@system-service"
    assert set(one["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert "DynamicUser" not in one  # it writes into the collector's directory


def _find(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")


def test_unit_systemd_analyze_verify_and_security(tmp_path: Path) -> None:
    analyze_unit(UNIT, EXEC, tmp_path)  # 1.2 measured


# --- MemoryDenyWriteExecute ------------------------------------------------------

# systemd 252 (Debian 12) implements MemoryDenyWriteExecute=yes as a seccomp filter
# (src/shared/seccomp-util.c): EPERM for mmap() asking for PROT_WRITE|PROT_EXEC, for
# mprotect() and pkey_mprotect() asking for PROT_EXEC, and for shmat() with SHM_EXEC.
# The same rule, as classic BPF, installed before exec'ing the command given.
SYSCALLS = {  # machine: (AUDIT_ARCH, mmap, mprotect, pkey_mprotect, shmat)
    "x86_64": (0xC000003E, 9, 10, 329, 30),
    "aarch64": (0xC00000B7, 222, 226, 288, 196),
}
MDWE_WRAPPER = """
import ctypes, os, struct, sys
arch, mmap, mprotect, pkey_mprotect, shmat = {numbers}
LD, JEQ, AND, RET = 0x20, 0x15, 0x54, 0x06
ALLOW, DENY = 0x7FFF0000, 0x00050000 | {eperm}
ARG2 = 32  # seccomp_data.args[2], low 32 bits (little-endian)
prog = [
    (LD, 0, 0, 4), (JEQ, 1, 0, arch), (RET, 0, 0, ALLOW),
    (LD, 0, 0, 0), (JEQ, 4, 0, mmap), (JEQ, 6, 0, mprotect), (JEQ, 5, 0, pkey_mprotect),
    (JEQ, 7, 0, shmat), (RET, 0, 0, ALLOW),
    (LD, 0, 0, ARG2), (AND, 0, 0, 6), (JEQ, 6, 7, 6),
    (LD, 0, 0, ARG2), (AND, 0, 0, 4), (JEQ, 3, 4, 4),
    (LD, 0, 0, ARG2), (AND, 0, 0, 0o100000), (JEQ, 0, 1, 0o100000),
    (RET, 0, 0, DENY), (RET, 0, 0, ALLOW),
]
code = b"".join(struct.pack("HBBI", *i) for i in prog)
buf = ctypes.create_string_buffer(code)
fprog = struct.pack("HxxxxxxP", len(prog), ctypes.addressof(buf))
fbuf = ctypes.create_string_buffer(fprog)
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, fbuf, 0, 0):
    raise SystemExit("seccomp: " + os.strerror(ctypes.get_errno()))
os.execv(sys.argv[1], sys.argv[1:])
"""


def mdwe_wrapper() -> tuple[str, ...]:
    numbers = SYSCALLS.get(platform.machine())
    if numbers is None:
        # Not a skip: the deployment tests must prove the rule wherever they run.
        pytest.fail(f"no syscall numbers written down for {platform.machine()}: add them")
    code = MDWE_WRAPPER.format(numbers=numbers, eperm=errno.EPERM)
    return (sys.executable, "-c", code)


def test_the_mdwe_rule_refuses_writable_executable_memory() -> None:
    """The wrapper's filter is really in force (else the next test proves nothing)."""
    probe = "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | {})"
    for prot, refused in (("mmap.PROT_EXEC", True), ("0", False)):
        done = subprocess.run(
            [*mdwe_wrapper(), sys.executable, "-c", probe.format(prot)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert (done.returncode != 0) is refused, done.stderr
        if refused:
            assert "PermissionError" in done.stderr, done.stderr


@pytest.fixture
def demo_web(stack: LocalStack, tmp_path: Path) -> Iterator[tuple[LocalStack, demo.DemoWorklist]]:
    """The session stack's servers, with this test's own folder and processes (the
    demo's SMTP server and lordi-web), which `stop()` ends."""
    own = LocalStack(
        keep_files=True, root=tmp_path, mqtt_port=stack.mqtt_port, vm_port=stack.vm_port,
        influx_port=stack.influx_port, influx_rpc_port=stack.influx_rpc_port,
    )  # fmt: skip
    try:
        prepared = demo.prepare_alerts(own)
        store = AlertStore(f"sqlite:///{tmp_path / 'alerts.sqlite3'}")
        store.create_tables()
        for school in ("0340001A", "0310003C"):
            seed_school(store, school, now_utc())
        store.engine.dispose()
        yield own, prepared
    finally:
        own.stop()


def _log_in(base: str, name: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    page = client.get("/connexion")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text
    # Secure cookies over http://127.0.0.1: httpx keeps them, as browsers do there.
    assert "Secure" in page.headers["set-cookie"]
    client.cookies = httpx.Cookies({"lordi_login": page.cookies["lordi_login"]})
    done = client.post(
        "/connexion", data={"utilisateur": name, "mot_de_passe": password, "csrf": csrf[1]}
    )
    assert done.status_code == 303, done.text
    assert "Secure" in done.headers["set-cookie"]
    client.cookies = httpx.Cookies({"lordi_session": done.cookies["lordi_session"]})
    return client


def test_lordi_web_works_under_memory_deny_write_execute(
    demo_web: tuple[LocalStack, demo.DemoWorklist],
) -> None:
    """The demo's `--keep` web part (web.toml, the `demo` account through `lordi web
    user add`, a real lordi-web process), run under the MDWE rule: argon2 log-in,
    pages with charts, an escalation whose e-mail reaches the SMTP server."""
    own, prepared = demo_web
    web = demo.start_worklist(own, prepared, wrapper=mdwe_wrapper())
    assert web.maildir is not None and web.web_config is not None
    settings = load_web_settings(web.web_config)
    assert settings.secure_cookies and settings.series.kind == "victoriametrics"
    client = _log_in(web.url, "demo", web.password)
    region = client.get("/region")
    assert region.status_code == 200 and "0340001A" in region.text
    school = client.get("/etablissements/0340001A")
    alert_id = int(re.findall(r"/alertes/(\d+)", school.text)[0])
    page = client.get(f"/alertes/{alert_id}")
    assert page.status_code == 200 and "<svg" in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    before = web.mails()
    done = client.post(f"/alertes/{alert_id}/escalader", data={"csrf": csrf[1], "texte": "MDWE"})
    assert done.status_code == 303, done.text
    assert done.headers["location"].endswith("fait=escalade")  # every channel delivered
    assert web.mails() > before
    log = (own.root / "lordi-web.log").read_text(encoding="utf-8")
    assert "Traceback" not in log and "PermissionError" not in log, log[-3000:]


# --- nginx -----------------------------------------------------------------------


def sso_variant(text: str) -> str:
    """The site as the operator switches it to single sign-on: the password block
    deleted, the `#sso ` lines uncommented."""
    begin = text.index("    # --- password mode: begin")
    end = text.index("\n", text.index("    # --- password mode: end")) + 1
    text = text[:begin] + text[end:]
    return re.sub(r"^#sso ?", "", text, flags=re.MULTILINE)


@pytest.fixture(scope="module")
def nginx() -> str:
    found = _find("nginx")
    # scripts/bootstrap.sh installs Debian's nginx package when this is missing.
    assert found is not None, "nginx not installed: run make bootstrap"
    return found


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=lordi.example.org", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def nginx_conf(tmp: Path, site: str, cert: tuple[Path, Path], ports: dict[str, int]) -> Path:
    """A whole nginx.conf around `site`: files in `tmp`, the certificate generated,
    the ports of `ports` (the site's port -> a free one) when given."""
    site = site.replace("/etc/ssl/lordi/lordi.example.org.fullchain.pem", str(cert[0]))
    site = site.replace("/etc/ssl/lordi/lordi.example.org.key", str(cert[1]))
    for old, new in ports.items():
        site = re.sub(rf"^(\s*listen )(\[::\]:)?{old}\b", rf"\g<1>127.0.0.1:{new}", site, flags=re.M)
        site = re.sub(rf"127\.0\.0\.1:{old}\b", f"127.0.0.1:{new}", site)
    if ports:  # the IPv6 listeners became duplicates of the IPv4 ones: one of each
        seen: set[str] = set()
        lines = []
        for line in site.splitlines():
            if line.strip().startswith("listen"):
                if line.strip() in seen:
                    continue
                seen.add(line.strip())
            lines.append(line)
        site = "\n".join(lines) + "\n"
    (tmp / "site.conf").write_text(site, encoding="utf-8")
    temp = "\n".join(f"  {kind}_temp_path {tmp / kind};" for kind in (
        "client_body", "proxy", "fastcgi", "uwsgi", "scgi"))  # fmt: skip
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"pid {tmp / 'nginx.pid'};\nerror_log {tmp / 'error.log'} warn;\n"
        f"events {{}}\nhttp {{\n  access_log off;\n{temp}\n  include {tmp / 'site.conf'};\n}}\n",
        encoding="utf-8",
    )
    return conf


@pytest.mark.parametrize("variant", ["password", "sso"])
def test_nginx_accepts_the_site(
    nginx: str, certificate: tuple[Path, Path], tmp_path: Path, variant: str
) -> None:
    site = NGINX_SITE.read_text(encoding="utf-8")
    conf = nginx_conf(tmp_path, site if variant == "password" else sso_variant(site), certificate, {})
    done = subprocess.run(
        [nginx, "-t", "-q", "-e", str(tmp_path / "error.log"), "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Anything but the "user directive" notice when not root is a problem.
    problems = [
        line for line in done.stderr.splitlines() if "user\" directive makes sense" not in line
    ]
    assert problems == []


class Echo(BaseHTTPRequestHandler):
    """lordi-web's and the SSO module's stand-in: answers with the headers it got.
    /oauth2/auth: 200 with the person's name when the browser has the SSO cookie."""

    def do_GET(self) -> None:
        if self.path.startswith("/oauth2/auth"):
            if "sso=alice" in (self.headers.get("Cookie") or ""):
                self.send_response(202)
                self.send_header("X-Auth-Request-User", "alice")
            else:
                self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def run_nginx(nginx: str, conf: Path, tmp: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [nginx, "-e", str(tmp / "error.log"), "-p", str(tmp), "-c", str(conf), "-g",
         "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return proc


def _get(url: str, headers: dict[str, str]) -> tuple[int, httpx.Headers, bytes]:
    # Our self-signed test certificate; redirections are looked at, not followed.
    response = httpx.get(url, headers=headers, verify=False, follow_redirects=False, timeout=10)  # noqa: S501
    return response.status_code, response.headers, response.content


def _wait_https(url: str, proc: subprocess.Popen[bytes], tmp: Path) -> None:
    for _ in range(100):
        try:
            _get(url, {})
            return
        except httpx.TransportError:
            assert proc.poll() is None, (tmp / "error.log").read_text()
            threading.Event().wait(0.05)
    raise AssertionError("nginx did not answer")


@pytest.mark.parametrize("variant", ["password", "sso"])
def test_nginx_strips_what_the_browser_must_not_set(
    nginx: str, certificate: tuple[Path, Path], tmp_path: Path, echo: int, variant: str
) -> None:
    site = NGINX_SITE.read_text(encoding="utf-8")
    https, http = free_port(), free_port()
    ports = {"443": https, "80": http, "8080": echo, "4180": echo}
    text = site if variant == "password" else sso_variant(site)
    proc = run_nginx(nginx, nginx_conf(tmp_path, text, certificate, ports), tmp_path)
    try:
        base = f"https://127.0.0.1:{https}"
        _wait_https(base + "/healthz", proc, tmp_path)
        forged = {"X-Remote-User": "region-admin", "X-Forwarded-For": "203.0.113.9"}
        if variant == "sso":
            forged["Cookie"] = "sso=alice"
        status, headers, body = _get(base + "/region", forged)
        assert status == 200, body
        assert headers["Strict-Transport-Security"].startswith("max-age=")
        seen = json.loads(body)
        assert seen["x-forwarded-proto"] == "https"
        assert seen["x-forwarded-for"] == "127.0.0.1"  # the real peer, not the forged one
        if variant == "password":
            assert "x-remote-user" not in seen
        else:
            assert seen["x-remote-user"] == "alice"  # the SSO module's word only
            status, _, _ = _get(base + "/region", {"X-Remote-User": "alice"})
            assert status == 403  # no SSO session: sent to sign in, nothing reaches the web
        status, headers, _ = _get(f"http://127.0.0.1:{http}/region", {})
        assert status == 301 and headers["location"] == "https://127.0.0.1/region"
        # lordi-web's /metrics never leaves the host, however the path is spelt.
        for path in ("/metrics", "/metrics?format=x", "//metrics", "/%6Detrics", "/./metrics"):
            status, _, body = _get(base + path, {"Cookie": "sso=alice"})
            assert status == 403, (path, body)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
