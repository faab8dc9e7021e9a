"""The real `lordi-web` process for the browser tests, and what drives it.

`running_web` writes a collector configuration (alert store on a SQLite file, the
sample registry without its webhooks, the real SMTP server), seeds two schools,
creates the accounts with the real `lordi web user add` command, then starts
`lordi-web` as its own process on a free loopback port and waits for /healthz: the
browser talks to what an operator would run, not to an in-process test client.

`axe_source` fetches axe-core from the npm registry once (kept in pytest's cache
directory, never in git) and `axe_violations` runs it on a page.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, ViewportSize, expect

from collector.alerts.store import AlertStore
from lordi.smtp import SmtpServer
from lordi.stack import free_port
from lordi.web.seed import now_utc, seed_school
from tests.web.site import PASSWORD, SCHOOL_A, SCHOOL_B

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the virtualenv's bin/, where lordi-web is installed
ACCOUNTS = {  # name -> (role, schools)
    "tech-a": ("school", SCHOOL_A),
    "tech-b": ("school", SCHOOL_B),
    "region": ("region", ""),
}
CHROMIUM = "/usr/bin/chromium"
START_TIMEOUT_S = 20.0
# Pinned: a newer axe may add rules; bump it on purpose and look at what it finds.
AXE_VERSION = "4.14.1"
# docs/img/web/ when asked (LORDI_WEB_SCREENSHOTS=docs/img/web), else a temporary
# folder: the screenshots are always taken, but a plain `make test` leaves the
# checkout clean.
SCREENSHOTS = Path(
    os.environ.get("LORDI_WEB_SCREENSHOTS")
    or Path(tempfile.gettempdir()) / "lordi-web-screenshots"
)
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 360, "height": 740}


@dataclass
class WebServer:
    url: str
    proc: subprocess.Popen[bytes]
    smtp: SmtpServer
    ids: dict[str, list[int]]  # school -> its seeded alert ids, most severe first
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def write_mail_only_registry(path: Path) -> Path:
    """The sample registry without its webhook keys: their example.org hosts do not
    exist, so escalations go by e-mail only, to the real SMTP server."""
    text = (ROOT / "provisioning" / "schools.toml").read_text(encoding="utf-8")
    kept = [
        line for line in text.splitlines()
        if not re.match(r"\s*(webhook_url|helpdesk_webhook_url)\s*=", line)
    ]  # fmt: skip
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return path


def write_configs(tmp: Path, smtp_port: int, web_port: int) -> Path:
    """collector.toml (as the collector reads it) and web.toml pointing to it."""
    collector = tmp / "collector.toml"
    store = tmp / "alerts.sqlite3"
    registry = write_mail_only_registry(tmp / "schools.toml")
    collector.write_text(
        f"""[alerts]
enabled = true
store_url = "sqlite:///{store}"
registry = "{registry}"

[alerts.notify]
web_url = "http://127.0.0.1:{web_port}/alertes/{{id}}"

[alerts.notify.smtp]
host = "127.0.0.1"
port = {smtp_port}
timeout_s = 5

[alerts.notify.alert_topic]
enabled = false
""",
        encoding="utf-8",
    )
    web = tmp / "web.toml"
    web.write_text(
        f'[web]\nhost = "127.0.0.1"\nport = {web_port}\ncollector_config = "{collector}"\n',
        encoding="utf-8",
    )
    return web


def seed(tmp: Path) -> dict[str, list[int]]:
    store = AlertStore(f"sqlite:///{tmp / 'alerts.sqlite3'}")
    try:
        store.create_tables()
        now = now_utc()
        return {school: seed_school(store, school, now) for school in (SCHOOL_A, SCHOOL_B)}
    finally:
        store.close()


def add_accounts(web_toml: Path) -> None:
    """The accounts, created the way an operator does: `lordi web user add`."""
    for name, (role, schools) in ACCOUNTS.items():
        cmd = [str(BIN / "lordi"), "web", "--config", str(web_toml), "user", "add", name,
               "--role", role, "--password-stdin"]  # fmt: skip
        if schools:
            cmd += ["--schools", schools]
        done = subprocess.run(cmd, input=PASSWORD + "\n", capture_output=True, text=True,
                              timeout=60, check=False)  # fmt: skip
        assert done.returncode == 0, f"{' '.join(cmd)}: {done.stderr}"
        assert f"compte {name} créé" in done.stdout


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as resp:  # noqa: S310 - loopback
            return bool(resp.status == 200)
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the process we started, by its PID (SIGTERM: uvicorn shuts down cleanly)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextmanager
def running_web(tmp: Path, smtp: SmtpServer) -> Iterator[WebServer]:
    port = free_port()
    web_toml = write_configs(tmp, smtp.port, port)
    ids = seed(tmp)
    add_accounts(web_toml)
    log = tmp / "lordi-web.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(BIN / "lordi-web"), "--config", str(web_toml), "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = WebServer(url, proc, smtp, ids, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"lordi-web did not start:\n{server.log_tail()}")
            time.sleep(0.05)
        yield server
    finally:
        _stop(proc)


# --- the browser ---------------------------------------------------------------------


def chromium_args() -> list[str]:
    """Chromium refuses to run its sandbox as root (CI runs `make test` as root)."""
    return ["--no-sandbox"] if os.geteuid() == 0 else []


def log_in(page: Page, base: str, name: str, path: str = "/") -> None:
    """Log in through the form, as a person does, and land on `path`."""
    page.goto(f"{base}/connexion?suite={path}")
    page.get_by_label("Identifiant").fill(name)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).not_to_have_url(re.compile("/connexion"))


def subject_of(message: Message) -> str:
    """The subject as read (accented subjects travel RFC 2047-encoded)."""
    return str(make_header(decode_header(message["Subject"])))


def wait_for_mail(smtp: SmtpServer, subject: str, timeout_s: float = 10.0) -> list[Message]:
    """The messages whose subject contains `subject`, once at least one has arrived."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [m for m in smtp.messages() if subject in subject_of(m)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def screenshot(page: Page, name: str, *, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size
    assert viewport is not None
    assert width <= viewport["width"], f"{page.url}: {width} px wide on a {viewport} screen"


# --- axe-core ------------------------------------------------------------------------


def npm_command() -> list[str]:
    """npm on PATH, or else the npm that Node.js's own packages (NodeSource's nodejs)
    ship beside node without linking it, run by that node."""
    npm = shutil.which("npm")
    if npm:
        return [npm]
    node = shutil.which("node")
    assert node, "neither npm nor node found: the accessibility tests need npm to fetch axe-core"
    cli = Path(node).resolve().parent.parent / "lib/node_modules/npm/bin/npm-cli.js"
    assert cli.is_file(), f"npm not found on PATH nor at {cli}: the accessibility tests need it"
    return [node, str(cli)]


def axe_source(cache_dir: Path) -> str:
    """axe.min.js of AXE_VERSION, from the npm registry through npm (which checks the
    tarball's integrity), kept in `cache_dir`. No npm or no registry: the test fails
    with npm's own message rather than skipping the accessibility checks."""
    target = cache_dir / f"axe-core-{AXE_VERSION}.min.js"
    if not target.exists():
        npm = npm_command()
        with tempfile.TemporaryDirectory() as work:
            done = subprocess.run(
                [*npm, "pack", f"axe-core@{AXE_VERSION}", "--pack-destination", work, "--silent"],
                capture_output=True, text=True, timeout=180, check=False, cwd=work,
            )  # fmt: skip
            assert done.returncode == 0, f"npm pack axe-core@{AXE_VERSION} failed:\n{done.stderr}"
            tarball = Path(work) / done.stdout.strip().splitlines()[-1]
            with tarfile.open(tarball) as archive:
                member = archive.extractfile("package/axe.min.js")
                assert member is not None
                partial = target.with_suffix(".part")
                partial.write_bytes(member.read())
                partial.replace(target)
    return target.read_text(encoding="utf-8")


AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => `${n.target.join(" ")}: ${n.failureSummary}`),
  }));
}"""


def axe_violations(page: Page, source: str) -> list[dict[str, Any]]:
    """Every axe violation on the page as it is now (the page's context must bypass
    the site's Content-Security-Policy, which forbids any script)."""
    page.add_script_tag(content=source)
    violations: list[dict[str, Any]] = page.evaluate(AXE_RUN)
    return violations
