"""README.txt of the package: what it holds, what the laptop still needs, how a
deployment tool runs it, and the exit codes (those of install.ps1)."""

from __future__ import annotations

from collections.abc import Sequence

EXIT_CODES = (
    (0, "installed (or removed with -Uninstall); the task is registered and started"),
    (10, "no suitable Python: none of the versions above, 64-bit, installed for all users"),
    (11, "the package is incomplete or altered (a file missing or not matching SHA256SUMS)"),
    (12, "no configuration: no agent.toml in the package, none installed, no -ConfigFile"),
    (13, "pip could not install the agent from the package's wheels"),
    (14, "the agent refused the configuration (check-config; the reason is in the log)"),
    (15, "the scheduled task could not be registered or started"),
    (1, "any other error (the log says which)"),
)
GPO_PARAMETERS = (
    r"-NoProfile -ExecutionPolicy Bypass -File \\SERVER\SHARE\lordi\install.ps1 -Silent"
)
SILENT = f"powershell.exe {GPO_PARAMETERS}"


def readme(
    version: str,
    *,
    pythons: Sequence[str],
    platforms: Sequence[str],
    wheels: Sequence[str],
    has_ca: bool,
    has_msi: bool,
    msi_name: str,
) -> str:
    versions = ", ".join(pythons)
    lines = [
        f"Lordi telemetry agent {version}: offline package for a deployment share",
        "",
        "Made by `lordi bundle windows`. Installing it needs no network access: pip",
        "installs the agent from wheels\\ only (--no-index --find-links), with the",
        "package's own pip. The agent then reports to the broker named in agent.toml.",
        "",
        "CONTENTS",
        "  install.ps1               installs, upgrades or removes the agent (-Uninstall)",
        "  lordi-agent-task.xml      the scheduled task \\Lordi\\LordiAgent (SYSTEM, at boot)",
        "  agent.toml                the school configuration, copied as given",
    ]
    if has_ca:
        lines.append(
            "  ca.crt                    the broker's CA, installed as "
            "C:\\ProgramData\\Lordi\\ca.crt"
        )
    lines += [
        "  wheels\\                   " + wheels[0],
        *(f"                            {w}" for w in wheels[1:]),
        "  bundle.json               version, Python versions, wheels chosen per version",
        "  SHA256SUMS                hashes of every file above (install.ps1 checks them)",
    ]
    if has_msi:
        lines += [
            f"  {msi_name:<25} the same files as an MSI that runs install.ps1 -Silent",
            f"  {msi_name + '.sha256':<25} its hash",
        ]
    lines += [
        "",
        "WHAT THE LAPTOP STILL NEEDS",
        "  Windows 10 or 11, 64-bit, and a 64-bit CPython " + versions + " installed for",
        "  all users (the region's software catalogue; python.org's installer with",
        "  InstallAllUsers=1). The package holds no Python. install.ps1 finds it in the",
        "  registry (newest supported version first) or takes -Python C:\\...\\python.exe,",
        "  and builds the agent's own environment in C:\\Program Files\\Lordi\\agent\\venv:",
        "  the catalogue's Python is not modified. If that Python is removed or replaced",
        "  by another minor version, run install.ps1 again.",
        f"  Wheels: {', '.join(platforms)}.",
        "",
        "SILENT INSTALLATION (as SYSTEM or an administrator; it never prompts)",
        "  " + SILENT,
        "  Once installed, the same package is not installed again (exit code 0 at",
        "  once; -Force reinstalls): a startup script may run it at every boot.",
        "  GPO: Computer Configuration > Windows Settings > Scripts > Startup, Scripts",
        "  tab: script powershell.exe, parameters:",
        "  " + GPO_PARAMETERS,
        "  The computer accounts (Domain Computers) need read access to the share.",
        "  SCCM/MECM, Intune (Win32 app) or another MDM: the same command as the install",
        "  command, run as SYSTEM; -Uninstall as the uninstall command; detection: the",
        "  file C:\\Program Files\\Lordi\\agent\\venv\\Scripts\\pythonw.exe.",
    ]
    if has_msi:
        lines += [
            f"  MSI: msiexec /i {msi_name} /qn /l*v %WINDIR%\\Temp\\lordi-msi.log",
            f"       (remove: msiexec /x {msi_name} /qn). It copies this folder to",
            "       C:\\ProgramData\\Lordi\\package and runs install.ps1 -Silent from there;",
        "       when install.ps1 fails, msiexec rolls back and returns 1603.",
        ]
    lines += [
        "  Log: C:\\ProgramData\\Lordi\\logs\\install.log (then logs\\agent.log).",
        "",
        "EXIT CODES OF install.ps1",
        *(f"  {code:>2}  {text}" for code, text in EXIT_CODES),
        "",
        "CHECKING THE PACKAGE",
        "  Linux: sha256sum -c SHA256SUMS"
        + (f" && sha256sum -c {msi_name}.sha256" if has_msi else "")
        + ". Windows: install.ps1",
        "  checks SHA256SUMS before installing anything.",
        "  agent.toml holds the school's enrolment secret: give read access to the",
        "  share's folder to the computers and administrators only.",
        "",
    ]
    return "\n".join(lines)
