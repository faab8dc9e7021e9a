"""The package as an MSI, made with msitools' `wixl` (Debian package `wixl`) and checked
with `msiinfo` (package `msitools`).

What the MSI does, and only that: it copies the package's files to
C:\\ProgramData\\Lordi\\package (after restricting C:\\ProgramData\\Lordi to SYSTEM and
Administrators, since agent.toml holds the school's secrets) and runs
`install.ps1 -Silent` from there as SYSTEM (a deferred custom action: a failure rolls
the MSI back and fails it). Removing it runs `install.ps1 -Uninstall`. Every build
has a new product code and the same upgrade code, and removes any earlier Lordi MSI
first (any version, the same one included: a school's new configuration is a rebuild
of the same version). No Python inside: the laptop's comes from the region's
catalogue, as with install.ps1 alone.

wixl implements a subset of WiX 3: the XML below keeps to what Debian's wixl 0.101
turns into tables, with explicit sequence numbers (its After=/Before= placement is
not reliable), and `check` reads the tables back.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import quoteattr

from packaging.version import Version

from lordi.bundle.wheels import BundleError

MSI_NAME = "lordi-agent.msi"
# The same for every build, so that each MSI replaces the previous one (major upgrade).
UPGRADE_CODE = "6F1C2D64-0A3E-4E4B-9A41-3B7C1A0E5D21"
DATA_SIDS = ("S-1-5-18", "S-1-5-32-544")  # SYSTEM, Administrators: as install.ps1

# Custom action types (msi.h): 50 runs the executable a property names, with
# arguments; 51 sets a property. Flags: 1024 deferred (in the script), 2048 as
# SYSTEM (no impersonation), 64 ignore the exit code.
CA_EXE_PROPERTY, CA_SET_PROPERTY = 50, 51
CA_DEFERRED, CA_NO_IMPERSONATE, CA_CONTINUE = 1024, 2048, 64

_PS = "-NoProfile -NonInteractive -ExecutionPolicy Bypass"
# No "$" in it: wixl's preprocessor would take it for a variable. powershell -Command
# exits 1 when its last command (icacls) failed.
_RESTRICT = (
    f"{_PS} -Command \"New-Item -ItemType Directory -Force -Path '[CommonAppDataFolder]Lordi' "
    "| Out-Null; icacls.exe '[CommonAppDataFolder]Lordi' /inheritance:r /grant:r "
    + " ".join(f"'*{sid}:(OI)(CI)F'" for sid in DATA_SIDS)
    + '"'
)
INSTALL_COMMAND = f'{_PS} -File "[INSTALLDIR]install.ps1" -Silent'
UNINSTALL_COMMAND = f'{_PS} -File "[INSTALLDIR]install.ps1" -Uninstall -Silent'
# (action, type, source property, target, condition, sequence)
ACTIONS = (
    (
        "SetPowerShell",
        CA_SET_PROPERTY,
        "POWERSHELLEXE",
        r"[System64Folder]WindowsPowerShell\v1.0\powershell.exe",
        "",
        1001,  # after CostFinalize (1000): directories resolved
    ),
    (
        "RunUninstall",
        CA_EXE_PROPERTY | CA_DEFERRED | CA_NO_IMPERSONATE | CA_CONTINUE,
        "POWERSHELLEXE",
        UNINSTALL_COMMAND,
        'REMOVE="ALL" AND NOT UPGRADINGPRODUCTCODE',
        3499,  # before RemoveFiles (3500): the script is still there
    ),
    (
        "RestrictData",
        CA_EXE_PROPERTY | CA_DEFERRED | CA_NO_IMPERSONATE,
        "POWERSHELLEXE",
        _RESTRICT,
        'NOT REMOVE="ALL"',
        3990,  # before InstallFiles (4000): the files land in a restricted folder
    ),
    (
        "RunInstall",
        CA_EXE_PROPERTY | CA_DEFERRED | CA_NO_IMPERSONATE,
        "POWERSHELLEXE",
        INSTALL_COMMAND,
        'NOT REMOVE="ALL"',
        4001,  # after InstallFiles (4000)
    ),
)
REMOVE_EXISTING_SEQUENCE = 1401  # after InstallValidate (1400): the old MSI goes first


def msi_version(version: str) -> str:
    """ProductVersion: major.minor.build, at most 255.255.65535."""
    release = (*Version(version).release, 0, 0)[:3]
    if release[0] > 255 or release[1] > 255 or release[2] > 65535:
        raise BundleError(f"version {version} does not fit an MSI ProductVersion")
    return ".".join(str(n) for n in release)


def _tree(files: Sequence[str]) -> dict[str, object]:
    root: dict[str, object] = {}
    for rel in files:
        *dirs, _name = rel.split("/")
        node = root
        for d in dirs:
            node = node.setdefault(d, {})  # type: ignore[assignment]
    return root


def wxs(files: Sequence[str], version: str) -> str:
    """WiX source installing `files` (paths relative to the folder wixl runs in, which
    takes no absolute Source) and running install.ps1."""
    components: list[str] = []
    counter = {"d": 0, "f": 0}

    def directory(rel: str, subdirs: dict[str, object], indent: str) -> list[str]:
        out = []
        here = sorted(f for f in files if f.rpartition("/")[0] == rel)
        for f in here:
            counter["f"] += 1
            n = counter["f"]
            components.append(f"c{n}")
            out += [
                f'{indent}<Component Id="c{n}" Guid="*">',
                f'{indent}  <File Id="f{n}" Name={quoteattr(f.rpartition("/")[2])} '
                f"Source={quoteattr(f)} KeyPath=\"yes\"/>",
                f"{indent}</Component>",
            ]
        for name, sub in sorted(subdirs.items()):
            counter["d"] += 1
            out.append(f'{indent}<Directory Id="d{counter["d"]}" Name={quoteattr(name)}>')
            out += directory(f"{rel}/{name}".lstrip("/"), sub, indent + "  ")  # type: ignore[arg-type]
            out.append(f"{indent}</Directory>")
        return out

    body = directory("", _tree(files), " " * 12)
    actions = []
    sequence = [f'      <RemoveExistingProducts Sequence="{REMOVE_EXISTING_SEQUENCE}"/>']
    for name, kind, prop, target, condition, seq in ACTIONS:
        if kind == CA_SET_PROPERTY:
            actions.append(  # Impersonate: else wixl 0.101 sets the deferred-only flag 2048
                f'    <CustomAction Id="{name}" Property="{prop}" Value={quoteattr(target)} '
                'Impersonate="yes"/>'
            )
        else:
            ret = "ignore" if kind & CA_CONTINUE else "check"
            actions.append(
                f'    <CustomAction Id="{name}" Property="{prop}" ExeCommand={quoteattr(target)} '
                f'Execute="deferred" Impersonate="no" Return="{ret}"/>'
            )
        cond = condition.replace("&", "&amp;").replace("<", "&lt;")
        sequence.append(f'      <Custom Action="{name}" Sequence="{seq}">{cond}</Custom>')
    refs = [f'      <ComponentRef Id="{c}"/>' for c in components]
    return "\n".join(
        [
            '<?xml version="1.0" encoding="utf-8"?>',
            '<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">',
            f'  <Product Id="*" Name="Lordi telemetry agent" Language="1033" '
            f'Version="{msi_version(version)}" Manufacturer="Lordi" UpgradeCode="{UPGRADE_CODE}">',
            '    <Package InstallerVersion="500" Compressed="yes" InstallScope="perMachine" '
            'Description="Lordi telemetry agent (offline package)" '
            'Comments="Runs install.ps1; needs a 64-bit CPython from the software catalogue"/>',
            '    <Media Id="1" Cabinet="payload.cab" EmbedCab="yes"/>',
            '    <Property Id="ARPNOMODIFY" Value="1"/>',
            f'    <Upgrade Id="{UPGRADE_CODE}">',
            '      <UpgradeVersion Minimum="0.0.0" IncludeMinimum="yes" Property="LORDIPREVIOUS"/>',
            "    </Upgrade>",
            '    <Directory Id="TARGETDIR" Name="SourceDir">',
            '      <Directory Id="CommonAppDataFolder">',
            '        <Directory Id="LordiData" Name="Lordi">',
            '          <Directory Id="INSTALLDIR" Name="package">',
            *body,
            "          </Directory>",
            "        </Directory>",
            "      </Directory>",
            "    </Directory>",
            '    <Feature Id="Agent" Level="1">',
            *refs,
            "    </Feature>",
            *actions,
            "    <InstallExecuteSequence>",
            *sequence,
            "    </InstallExecuteSequence>",
            "  </Product>",
            "</Wix>",
            "",
        ]
    )


def build(folder: Path, files: Sequence[str], version: str, out: Path) -> None:
    wixl = shutil.which("wixl")
    if wixl is None:
        raise BundleError("--msi needs wixl (Debian: apt-get install wixl msitools)")
    source = out.with_suffix(".wxs")
    source.write_text(wxs(files, version), encoding="utf-8")
    try:
        done = subprocess.run(
            [wixl, "--arch", "x64", "--output", str(out), str(source)],
            capture_output=True,
            text=True,
            check=False,
            cwd=folder,
        )
    finally:
        source.unlink()
    if done.returncode != 0 or not out.is_file():
        raise BundleError(f"wixl failed (exit code {done.returncode}): {done.stderr.strip()}")


def table(msi: Path, name: str) -> list[list[str]]:
    """One table's rows, as `msiinfo export` prints them (3 header lines, tab-separated)."""
    msiinfo = shutil.which("msiinfo")
    if msiinfo is None:
        raise BundleError("checking the MSI needs msiinfo (Debian: apt-get install msitools)")
    done = subprocess.run(
        [msiinfo, "export", str(msi), name], capture_output=True, text=True, check=True
    )
    return [line.split("\t") for line in done.stdout.splitlines()[3:] if line]


def installed_files(msi: Path) -> dict[str, int]:
    """Path under the package folder -> size, from the File, Component and Directory
    tables (what msiexec would write)."""
    parents = {row[0]: (row[1], row[2].rpartition("|")[2]) for row in table(msi, "Directory")}
    folder_of = {row[0]: row[2] for row in table(msi, "Component")}

    def path(directory: str) -> str:
        parts = []
        while directory != "INSTALLDIR":
            parent, name = parents[directory]
            parts.append(name)
            directory = parent
        return "/".join(reversed(parts))

    out = {}
    for row in table(msi, "File"):
        folder = path(folder_of[row[1]])
        out[f"{folder}/{row[2].rpartition('|')[2]}".lstrip("/")] = int(row[3])
    return out


def check(msi: Path, folder: Path, files: Sequence[str], version: str) -> list[str]:
    """What is wrong with the MSI's tables (nothing: an empty list)."""
    problems = []
    expected = {f: (folder / f).stat().st_size for f in files}
    if (got := installed_files(msi)) != expected:
        problems.append(f"File table {sorted(got.items())} != package {sorted(expected.items())}")
    props = {row[0]: row[1] for row in table(msi, "Property")}
    if props.get("ProductVersion") != msi_version(version):
        problems.append(f"ProductVersion {props.get('ProductVersion')} != {msi_version(version)}")
    code = props.get("UpgradeCode", "").strip("{}").upper()
    if code != UPGRADE_CODE or props.get("ALLUSERS") != "1":
        problems.append(f"UpgradeCode/ALLUSERS: {props}")
    upgrade = [r for r in table(msi, "Upgrade") if r[0].strip("{}").upper() == UPGRADE_CODE]
    if len(upgrade) != 1 or upgrade[0][1] != "0.0.0" or upgrade[0][2] != "":
        problems.append(f"Upgrade table: {upgrade} (any earlier version to be removed)")
    actions = {row[0]: (int(row[1]), row[2], row[3]) for row in table(msi, "CustomAction")}
    for name, kind, prop, target, _cond, _seq in ACTIONS:
        if actions.get(name) != (kind, prop, target):
            problems.append(f"CustomAction {name}: {actions.get(name)} != {(kind, prop, target)}")
    seq = {row[0]: (int(row[2]), row[1]) for row in table(msi, "InstallExecuteSequence")}
    for name, _kind, _prop, _target, cond, number in ACTIONS:
        if seq.get(name) != (number, cond):
            problems.append(f"InstallExecuteSequence {name}: {seq.get(name)} != {(number, cond)}")
    order = [
        ("InstallValidate", "RemoveExistingProducts"),
        ("RemoveExistingProducts", "InstallInitialize"),
        ("CostFinalize", "SetPowerShell"),
        ("InstallInitialize", "RunUninstall"),
        ("RunUninstall", "RemoveFiles"),
        ("RestrictData", "InstallFiles"),
        ("InstallFiles", "RunInstall"),
        ("RunInstall", "InstallFinalize"),
    ]
    for first, then in order:
        if first not in seq or then not in seq or seq[first][0] >= seq[then][0]:
            problems.append(f"InstallExecuteSequence: {first} must come before {then}")
    media = table(msi, "Media")
    if len(media) != 1 or not media[0][3].startswith("#"):
        problems.append(f"Media: {media} (one embedded cabinet expected)")
    return problems
