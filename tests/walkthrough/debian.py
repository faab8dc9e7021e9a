"""What the Debian walkthrough needs around the product: Debian's own files as the
packages install them, the documented commands, and running a systemd unit's
command by hand (no systemd here) as the unit's user."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.units import unit_settings

REPO = Path(__file__).resolve().parents[2]

# /etc/mosquitto/mosquitto.conf as Debian 12's mosquitto 2.0.11 package installs it.
DEBIAN_MOSQUITTO_CONF = """\
# Place your local configuration in /etc/mosquitto/conf.d/
#
# A full description of the configuration file is at
# /usr/share/doc/mosquitto/examples/mosquitto.conf.example

pid_file /run/mosquitto/mosquitto.pid

persistence true
persistence_location /var/lib/mosquitto/

log_dest file /var/log/mosquitto/mosquitto.log

include_dir /etc/mosquitto/conf.d
"""

# /etc/default/victoria-metrics as Debian 12's victoria-metrics package installs it.
DEBIAN_VM_DEFAULTS = """\
# Set the command-line arguments to pass to the server.
# Due to shell escaping, to pass backslashes for regexes, you need to double
# them (\\\\d for \\d). If running under systemd, you need to double them again
# (\\\\\\\\d to mean \\d), and escape newlines too.
ARGS="-storageDataPath=/var/lib/victoria-metrics"
"""


def documented(page: str, first_word: str) -> list[list[str]]:
    """The shell commands of `page`'s ```sh blocks that start with `first_word`
    (continuation lines joined), split as the shell would."""
    text = (REPO / "docs" / page).read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            command = line.split(" #", 1)[0].strip()
            if command.startswith(first_word + " "):
                out.append(shlex.split(command))
    return out


def unit_command(unit: Path, env_extra: dict[str, str] | None = None) -> tuple[
        list[str], dict[str, str], str, Path | None]:
    """ExecStart (split), its environment (EnvironmentFile= and Environment=), User=
    and WorkingDirectory= of a unit, as systemd would use them."""
    service = unit_settings(unit)["Service"]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    for item in service.get("EnvironmentFile", []):
        path = Path(item.lstrip("-"))
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                key, sep, value = line.partition("=")
                if sep and not key.startswith("#"):
                    env[key.strip()] = value.strip()
    for item in service.get("Environment", []):
        key, _, value = item.partition("=")
        env[key] = value
    env.update(env_extra or {})
    argv = [os.path.expandvars(a) if "$" in a else a
            for a in shlex.split(service["ExecStart"][-1])]
    argv = [re.sub(r"\$\{(\w+)\}", lambda m: env.get(m[1], m[0]), a) for a in argv]
    workdir = service.get("WorkingDirectory", [None])[-1]
    return argv, env, service.get("User", ["root"])[-1], Path(workdir) if workdir else None


@contextmanager
def reachable_by_others(path: Path) -> Iterator[None]:
    """Let unprivileged service users reach `path` (the checkout and its virtualenv may
    sit under a folder only root can enter, e.g. /root): o+x on the ancestors that
    lack it, for the test's duration only. Traversal only, nothing listable."""
    changed: list[tuple[Path, int]] = []
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            changed.append((folder, stat.S_IMODE(mode)))
            folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    try:
        yield
    finally:
        for folder, mode in changed:
            folder.chmod(mode)


def as_user(user: str, argv: list[str]) -> list[str]:
    runuser = shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin")
    assert runuser is not None, "runuser (util-linux) is missing"
    return argv if user == "root" else [runuser, "-u", user, "--", *argv]


def spawn(argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
          ) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=cwd, start_new_session=True)


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM to the process group (runuser and its child), SIGKILL after 30 s."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
