"""The MSI made by wixl, read back with msitools: its tables (`msiinfo`), and its
embedded files (`msiextract`) against the package folder. No msiexec runs here (no
Windows): what it does on a laptop is read from the tables, not observed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lordi.bundle import msi
from lordi.bundle.build import Bundle
from tests.bundle.conftest import need_tool


@pytest.fixture(scope="module")
def built(windows_bundle: Bundle) -> Path:
    need_tool("wixl")
    need_tool("msiinfo")
    target = windows_bundle.out / msi.MSI_NAME
    assert target.is_file()
    return target


def test_the_tables_are_as_built(built: Path, windows_bundle: Bundle) -> None:
    tables = subprocess.run(["msiinfo", "tables", str(built)], capture_output=True, text=True,
                            check=True).stdout.split()
    assert {"File", "Component", "Directory", "CustomAction", "InstallExecuteSequence",
            "Upgrade", "Media", "Property"} <= set(tables)
    payload = [f for f in windows_bundle.files if not f.startswith(msi.MSI_NAME)]
    assert msi.check(built, windows_bundle.out, payload, windows_bundle.version) == []
    info = subprocess.run(["msiinfo", "suminfo", str(built)], capture_output=True, text=True,
                          check=True).stdout
    assert "Template: x64;1033" in info  # refuses 32-bit Windows (the wheels are win_amd64)


def test_it_runs_install_ps1_as_system_and_fails_with_it(built: Path) -> None:
    actions = {row[0]: row for row in msi.table(built, "CustomAction")}
    kind = int(actions["RunInstall"][1])
    assert kind & 0x3F == 50  # an executable named by a property (POWERSHELLEXE)
    assert kind & 1024 and kind & 2048  # deferred, not impersonated: LocalSystem
    assert not kind & 64  # its exit code counts: a failed install.ps1 rolls the MSI back
    assert actions["RunInstall"][3].endswith('-File "[INSTALLDIR]install.ps1" -Silent')
    assert int(actions["RunUninstall"][1]) & 64  # a removal is never blocked by it
    assert actions["SetPowerShell"][3] == r"[System64Folder]WindowsPowerShell\v1.0\powershell.exe"
    directories = {row[0]: row for row in msi.table(built, "Directory")}
    assert directories["INSTALLDIR"][1:] == ["LordiData", "package"]
    assert directories["LordiData"][1:] == ["CommonAppDataFolder", "Lordi"]


def test_an_msi_replaces_any_earlier_one(built: Path) -> None:
    (row,) = msi.table(built, "Upgrade")
    assert row[0] == "{" + msi.UPGRADE_CODE + "}"
    assert row[1:3] == ["0.0.0", ""]  # from 0.0.0 with no maximum: same version included
    assert int(row[4]) & 256  # minimum inclusive
    assert not int(row[4]) & 2  # not detect-only: removed
    seq = {r[0]: int(r[2]) for r in msi.table(built, "InstallExecuteSequence")}
    assert seq["FindRelatedProducts"] < seq["InstallValidate"] < seq["RemoveExistingProducts"]


def test_its_files_are_the_package(built: Path, windows_bundle: Bundle, tmp_path: Path) -> None:
    subprocess.run(["msiextract", "-C", str(tmp_path), str(built)], capture_output=True,
                   check=True)
    root = tmp_path / "Lordi" / "package"
    extracted = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    expected = [f for f in windows_bundle.files if not f.startswith(msi.MSI_NAME)]
    assert extracted == expected
    for name in expected:
        assert (root / name).read_bytes() == (windows_bundle.out / name).read_bytes(), name


def test_without_wixl_the_build_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(msi.shutil, "which", lambda _name: None)
    with pytest.raises(msi.BundleError, match="apt-get install wixl msitools"):
        msi.build(tmp_path, [], "0.1.0", tmp_path / msi.MSI_NAME)
