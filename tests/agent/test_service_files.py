"""The service definitions under provisioning/agent/ start the agent the way its CLI
expects, with the restart, battery, priority and hardening settings the install
guide promises.

The Linux unit goes through `systemd-analyze verify` and `security --offline` when
systemd-analyze is installed. The Windows and macOS files cannot be loaded here (no
Windows or macOS machine): they are parsed, and their command lines are parsed by
the agent's own argument parser (with the command replaced, so nothing runs).
"""

from __future__ import annotations

import argparse
import plistlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import agent.cli
from tests.units import analyze_unit
from tests.units import unit_settings as read_unit

PROVISIONING = Path(__file__).resolve().parents[2] / "provisioning" / "agent"
UNIT = PROVISIONING / "linux" / "lordi-agent.service"
TASK = PROVISIONING / "windows" / "lordi-agent-task.xml"
INSTALL_PS1 = PROVISIONING / "windows" / "install.ps1"
PLIST = PROVISIONING / "macos" / "fr.lordi.agent.plist"
TASK_NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
SPOOL_ENV = "LORDI_AGENT_SPOOL__PATH"


def parse_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> argparse.Namespace:
    """`argv` as agent.cli's own parser reads it; the subcommand is replaced, not run."""
    seen: list[argparse.Namespace] = []

    def fake(args: argparse.Namespace) -> int:
        seen.append(args)
        return 0

    for name in ("cmd_run", "cmd_sample", "cmd_capture", "cmd_check_config"):
        monkeypatch.setattr(agent.cli, name, fake)
    assert agent.cli.main(argv) == 0
    assert len(seen) == 1
    return seen[0]


def test_no_secret_in_any_service_file() -> None:
    # Environment variables and command lines are readable by other local users
    # (`systemctl show`, `launchctl print`, Task Scheduler): secrets stay in the file.
    for path in (UNIT, TASK, INSTALL_PS1, PLIST):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"LORDI_AGENT_(MQTT__PASSWORD|PRIVACY__BSSID_KEY)", text), path


# --- Linux: systemd ---------------------------------------------------------------


def unit_settings() -> dict[str, dict[str, list[str]]]:
    return read_unit(UNIT)


def test_systemd_unit_identity_restart_and_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    s = unit_settings()["Service"]
    one = {k: v[-1] for k, v in s.items()}
    assert one["DynamicUser"] == "yes"
    assert one["StateDirectory"] == "lordi-agent"
    assert one["ConfigurationDirectory"] == "lordi-agent"
    assert one["LogsDirectory"] == "lordi-agent"
    assert one["Restart"] == "on-failure"
    assert "RestartSec" in one
    assert unit_settings()["Unit"]["StartLimitIntervalSec"] == ["0"]  # never give up
    assert unit_settings()["Install"]["WantedBy"] == ["multi-user.target"]
    # The config (with the password) reaches the dynamic user as a credential.
    assert one["LoadCredential"] == "agent.toml:/etc/lordi-agent/agent.toml"
    # The spool goes to the state directory, through the config's env format.
    assert f"{SPOOL_ENV}=/var/lib/lordi-agent/spool.sqlite3" in s["Environment"]
    exe, *argv = one["ExecStart"].split()
    assert exe == "/opt/lordi-agent/bin/lordi-agent"
    args = parse_cli(argv, monkeypatch)
    assert args.command == "run"
    assert args.config == "${CREDENTIALS_DIRECTORY}/agent.toml"
    assert args.log_file is None  # stderr -> journald, which rotates
    assert args.replay is None


def test_systemd_unit_hardening() -> None:
    s = unit_settings()["Service"]
    one = {k: v[-1] for k, v in s.items()}
    for key in (
        "NoNewPrivileges",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectControlGroups",
        "RestrictNamespaces",
        "RestrictSUIDSGID",
        "LockPersonality",
        "MemoryDenyWriteExecute",
    ):
        assert one[key] == "yes", key
    assert one["ProtectSystem"] == "strict"
    assert one["CapabilityBoundingSet"] == ""
    assert s["SystemCallFilter"][0] == "@system-service"
    # iw talks nl80211 over netlink; MQTT over IP; DNS via nss over AF_UNIX.
    assert set(one["RestrictAddressFamilies"].split()) == {
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
        "AF_NETLINK",
    }
    # ProcSubset=pid would hide /proc/net/wireless; nothing may hide /sys.
    assert "ProcSubset" not in one
    assert not any(k in one for k in ("InaccessiblePaths", "TemporaryFileSystem"))
    assert one["IOSchedulingClass"] == "idle"
    assert int(one["Nice"]) > 0
    assert one["MemoryMax"].endswith("M") and int(one["MemoryMax"][:-1]) <= 128
    assert one["CPUQuota"].endswith("%") and int(one["CPUQuota"][:-1]) <= 25


def test_systemd_analyze_verify_and_security(tmp_path: Path) -> None:
    analyze_unit(UNIT, "/opt/lordi-agent/bin/lordi-agent", tmp_path)


# --- Windows: Task Scheduler ------------------------------------------------------


def task_root() -> ET.Element:
    # Our own file from the repository, not untrusted input.
    return ET.parse(TASK).getroot()  # noqa: S314


def task_text(path: str) -> str:
    root = task_root()
    node = root.find(path, TASK_NS)
    assert node is not None, path
    return (node.text or "").strip()


def windows_split(command_line: str) -> list[str]:
    """Arguments as Windows splits them, for the simple case used here (no \\" escapes)."""
    return [
        m.group(1) if m.group(1) is not None else m.group(2)
        for m in re.finditer(r'"([^"]*)"|(\S+)', command_line)
    ]


def test_task_xml_schema_trigger_and_principal() -> None:
    raw = TASK.read_bytes()
    raw.decode("ascii")  # ASCII and no declaration: no encoding to disagree with
    assert not raw.lstrip().startswith(b"<?xml")
    root = task_root()
    assert root.tag == "{http://schemas.microsoft.com/windows/2004/02/mit/task}Task"
    assert root.get("version") == "1.4"
    assert root.find("t:Triggers/t:BootTrigger", TASK_NS) is not None
    assert task_text("t:Triggers/t:BootTrigger/t:Enabled") == "true"
    # The watchdog trigger: relaunches an agent that exited (IgnoreNew while it runs).
    assert task_text("t:Triggers/t:TimeTrigger/t:Repetition/t:Interval") == "PT5M"
    assert task_text("t:Triggers/t:TimeTrigger/t:Repetition/t:StopAtDurationEnd") == "false"
    assert root.find("t:Triggers/t:TimeTrigger/t:Repetition/t:Duration", TASK_NS) is None
    assert task_text("t:Principals/t:Principal/t:UserId") == "S-1-5-18"
    principal = root.find("t:Principals/t:Principal", TASK_NS)
    actions = root.find("t:Actions", TASK_NS)
    assert principal is not None and actions is not None
    assert actions.get("Context") == principal.get("id")


def test_task_xml_settings() -> None:
    st = "t:Settings/t:"
    assert task_text(st + "MultipleInstancesPolicy") == "IgnoreNew"
    assert task_text(st + "DisallowStartIfOnBatteries") == "false"
    assert task_text(st + "StopIfGoingOnBatteries") == "false"
    assert task_text(st + "ExecutionTimeLimit") == "PT0S"
    assert task_text(st + "Priority") == "7"
    assert task_text(st + "RestartOnFailure/t:Interval") == "PT1M"
    # The schema types Count as unsignedByte: 999 would not load.
    assert 1 <= int(task_text(st + "RestartOnFailure/t:Count")) <= 255
    assert task_text(st + "IdleSettings/t:StopOnIdleEnd") == "false"
    assert task_text(st + "RunOnlyIfIdle") == "false"
    assert task_text(st + "Enabled") == "true"


def test_task_xml_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    exe = windows_split(task_text("t:Actions/t:Exec/t:Command"))
    assert exe == [r"C:\Program Files\Lordi\agent\venv\Scripts\pythonw.exe"]
    argv = windows_split(task_text("t:Actions/t:Exec/t:Arguments"))
    # -I: isolated mode, so the working directory never lands on sys.path of a
    # process running as SYSTEM; -m agent.cli is the `lordi-agent` entry point.
    assert argv[:3] == ["-I", "-m", "agent.cli"]
    args = parse_cli(argv[3:], monkeypatch)
    assert args.command == "run"
    assert args.config == r"C:\ProgramData\Lordi\agent.toml"
    assert args.log_file == r"C:\ProgramData\Lordi\logs\agent.log"
    assert args.replay is None
    assert task_text("t:Actions/t:Exec/t:WorkingDirectory") == r"C:\ProgramData\Lordi"


def test_install_ps1_matches_the_task() -> None:
    ps1 = INSTALL_PS1.read_text(encoding="utf-8")
    ps1.encode("ascii")  # Windows PowerShell 5.1 reads BOM-less scripts as ANSI
    assert "#Requires -RunAsAdministrator" in ps1
    assert '$InstallDir = "C:\\Program Files\\Lordi\\agent"' in ps1
    assert '$DataDir = "C:\\ProgramData\\Lordi"' in ps1
    assert "lordi-agent-task.xml" in ps1
    assert re.search(r"Register-ScheduledTask\b[^\n]*-Xml \$xml", ps1)
    assert "Start-ScheduledTask" in ps1
    # ACL by SID (French Windows names the groups differently), inheritance cut.
    assert '"S-1-5-18"' in ps1 and '"S-1-5-32-544"' in ps1
    assert "/inheritance:r" in ps1
    # The restricted folder exists before the config is copied into it.
    assert ps1.index("/inheritance:r") < ps1.index("Copy-Item")
    assert "check-config" in ps1


# --- macOS: launchd ---------------------------------------------------------------


def test_launchd_plist(monkeypatch: pytest.MonkeyPatch) -> None:
    with PLIST.open("rb") as f:
        job = plistlib.load(f)
    assert job["Label"] == "fr.lordi.agent" == PLIST.stem
    assert job["RunAtLoad"] is True
    assert job["KeepAlive"] == {"SuccessfulExit": False}
    assert job["ThrottleInterval"] >= 10
    assert job["ProcessType"] == "Background"
    assert job["LowPriorityIO"] is True
    assert job["Nice"] > 0
    assert "UserName" not in job  # a LaunchDaemon runs as root: `wdutil info` needs it
    assert job["StandardErrorPath"].startswith("/Library/Logs/Lordi/")
    assert job["Umask"] == 0o077
    exe, *argv = job["ProgramArguments"]
    assert exe == "/opt/lordi-agent/bin/lordi-agent"
    args = parse_cli(argv, monkeypatch)
    assert args.command == "run"
    assert args.config == "/Library/Application Support/Lordi/agent.toml"
    assert args.log_file == "/Library/Logs/Lordi/agent.log"
    assert job["EnvironmentVariables"][SPOOL_ENV].startswith("/Library/Application Support/Lordi/")
