"""What `lordi bundle windows` puts in the package folder, and its manifests."""

from __future__ import annotations

import hashlib
import json
import re
import stat
from pathlib import Path

import pytest

from lordi.bundle import DEFAULT_PYTHONS
from lordi.bundle.build import Bundle
from lordi.bundle.msi import MSI_NAME
from lordi.bundle.notes import EXIT_CODES, SILENT
from lordi.cli import main as lordi_main
from tests.test_readme_commands import build_parser
from tests.walkthrough.debian import documented

REPO = Path(__file__).resolve().parents[2]
WINDOWS = REPO / "provisioning" / "agent" / "windows"


def test_the_package_holds_what_a_share_needs(
    windows_bundle: Bundle, school_files: tuple[Path, Path]
) -> None:
    out = windows_bundle.out
    config, ca = school_files
    wheels = sorted(f for f in windows_bundle.files if f.startswith("wheels/"))
    expected = {
        "README.txt", "SHA256SUMS", "agent.toml", "bundle.json", "ca.crt", "install.ps1",
        "lordi-agent-task.xml", *wheels,
    }
    if (out / MSI_NAME).exists():
        expected |= {MSI_NAME, f"{MSI_NAME}.sha256"}
    assert set(windows_bundle.files) == expected
    names = {re.sub(r"-.*", "", Path(w).name) for w in wheels}
    assert names == {"lordi_telemetry", "paho_mqtt", "psutil", "pip"}
    # Copied byte for byte: the school configuration whatever it holds, the CA, the
    # install script and the task definition of the repository.
    assert (out / "agent.toml").read_bytes() == config.read_bytes()
    assert stat.S_IMODE((out / "agent.toml").stat().st_mode) == 0o600
    assert (out / "ca.crt").read_bytes() == ca.read_bytes()
    for name in ("install.ps1", "lordi-agent-task.xml"):
        assert (out / name).read_bytes() == (WINDOWS / name).read_bytes()
    assert not list(out.parent.glob(".*partial*"))  # the staging folder was renamed


def test_sha256sums_covers_every_file_but_itself_and_the_msi(windows_bundle: Bundle) -> None:
    out = windows_bundle.out
    listed = {}
    for line in (out / "SHA256SUMS").read_text(encoding="ascii").splitlines():
        digest, name = re.fullmatch(r"([0-9a-f]{64})  (\S+)", line).groups()  # type: ignore[union-attr]
        listed[name] = digest
    payload = {f for f in windows_bundle.files if not f.startswith(("SHA256SUMS", MSI_NAME))}
    assert set(listed) == payload
    for name, digest in listed.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name
    if (out / MSI_NAME).exists():
        digest, name = (out / f"{MSI_NAME}.sha256").read_text().split()
        assert name == MSI_NAME
        assert hashlib.sha256((out / MSI_NAME).read_bytes()).hexdigest() == digest


def test_bundle_json_names_the_wheels_install_ps1_uses(windows_bundle: Bundle) -> None:
    out = windows_bundle.out
    manifest = json.loads((out / "bundle.json").read_text(encoding="utf-8"))
    assert manifest["pythons"] == list(DEFAULT_PYTHONS) == ["3.11", "3.12", "3.13"]
    assert manifest["platforms"] == ["win_amd64"]
    assert manifest["version"] == windows_bundle.version
    assert (out / manifest["project_wheel"]).is_file()
    assert manifest["project_wheel"].startswith("wheels/lordi_telemetry-")
    assert set(manifest["pip_wheels"]) == set(DEFAULT_PYTHONS)
    for python, wheels in manifest["wheels"].items():
        assert manifest["pip_wheels"][python] in wheels
        assert manifest["project_wheel"] in wheels
        assert all((out / w).is_file() for w in wheels)
    # install.ps1 reads exactly these keys
    ps1 = (out / "install.ps1").read_text(encoding="ascii")
    for key in ("pythons", "pip_wheels", "project_wheel", "version"):
        assert f"$bundle.{key}" in ps1


def test_readme_says_what_the_laptop_needs_and_how_to_run_it(windows_bundle: Bundle) -> None:
    text = (windows_bundle.out / "README.txt").read_bytes().decode("utf-8")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")  # for Notepad
    assert "64-bit CPython 3.11, 3.12, 3.13" in text
    assert "The package holds no Python" in text
    assert SILENT in text
    for code, _why in EXIT_CODES:
        assert re.search(rf"^ +{code} ", text, flags=re.M), code


def test_the_exit_codes_are_install_ps1s() -> None:
    ps1 = (WINDOWS / "install.ps1").read_text(encoding="ascii")
    constants = {int(n) for n in re.findall(r"^\$Exit\w+ = (\d+)$", ps1, flags=re.M)}
    documented = {code for code, _why in EXIT_CODES}
    assert constants | {0, 1} == documented
    assert re.search(r"^exit 0$", ps1, flags=re.M) and "exit 1" in ps1


def test_the_command_refuses_before_downloading(
    tmp_path: Path, school_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ca = school_files
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    bad = tmp_path / "bad.toml"
    bad.write_text("school = \n")
    cases = [
        (["--config", str(config), "--out", str(busy)], "exists and is not an empty folder"),
        (["--config", str(bad), "--out", str(tmp_path / "o")], "not a TOML file"),
        (["--config", str(tmp_path / "none"), "--out", str(tmp_path / "o")], "no such file"),
        (["--config", str(config), "--out", str(tmp_path / "o"), "--python", "3"], "3.12"),
    ]
    for argv, message in cases:
        assert lordi_main(["bundle", "windows", *argv]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_documented_commands_are_the_clis() -> None:
    parser = build_parser("lordi")
    commands = documented("install-agent.md", "lordi")
    assert [argv[1:3] for argv in commands] == [["bundle", "windows"]]
    for argv in commands:
        args = parser.parse_args(argv[1:])
        assert args.msi and args.ca_file and args.config.endswith("-agent.toml")
    page = (REPO / "docs" / "install-agent.md").read_text(encoding="utf-8")
    assert SILENT in page
    for code, _why in EXIT_CODES:
        assert f"| {code} |" in page
