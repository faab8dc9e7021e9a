"""`lordi bundle windows`: lay out the offline package in a folder.

The folder is built next to `--out` under a temporary name and renamed at the end, so
a failed build never leaves a package that looks complete. Everything is checked
before that: the wheels resolve for every Python asked (`wheels.resolve`), and with
`--msi` the MSI's tables match the folder (`msi.check`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from lordi.bundle import CA_ON_LAPTOP, DEFAULT_PYTHONS, SOURCE, WINDOWS_PLATFORMS
from lordi.bundle import msi as msi_tools
from lordi.bundle.notes import readme
from lordi.bundle.wheels import (
    PIP,
    PROJECT,
    BundleError,
    Resolution,
    Wheel,
    build_project_wheel,
    download,
    resolve,
)

WINDOWS_FILES = ("install.ps1", "lordi-agent-task.xml")  # provisioning/agent/windows/


@dataclass(frozen=True)
class Request:
    config: Path
    out: Path
    pythons: tuple[str, ...] = DEFAULT_PYTHONS
    platforms: tuple[str, ...] = WINDOWS_PLATFORMS
    ca_file: Path | None = None
    wheel: Path | None = None  # the project's wheel, already built; default: built here
    source: Path = SOURCE
    msi: bool = False


@dataclass
class Bundle:
    out: Path
    version: str
    files: list[str]  # relative, "/"-separated, sorted
    resolution: Resolution
    seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum((self.out / f).stat().st_size for f in self.files)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _check_request(req: Request) -> list[str]:
    """Refuse what cannot work; return warnings about what may not."""
    for python in req.pythons:
        if not re.fullmatch(r"3\.\d{1,2}", python):
            raise BundleError(f"--python {python}: expected a version such as 3.12")
    if not req.config.is_file():
        raise BundleError(f"--config {req.config}: no such file")
    try:
        config = tomllib.loads(req.config.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"--config {req.config}: not a TOML file ({exc})") from None
    if req.ca_file is not None and not req.ca_file.is_file():
        raise BundleError(f"--ca-file {req.ca_file}: no such file")
    if req.wheel is not None and Wheel.read(req.wheel).name != PROJECT:
        raise BundleError(f"--wheel {req.wheel}: not a {PROJECT} wheel")
    for name in WINDOWS_FILES:
        if not (req.source / "provisioning" / "agent" / "windows" / name).is_file():
            raise BundleError(f"{req.source}: no provisioning/agent/windows/{name} (--source)")
    if req.out.exists() and (not req.out.is_dir() or any(req.out.iterdir())):
        raise BundleError(f"--out {req.out}: exists and is not an empty folder")
    warnings = []
    mqtt = config.get("mqtt", {})
    ca = mqtt.get("ca_file", "") if isinstance(mqtt, dict) else ""
    if req.ca_file is not None and ca != CA_ON_LAPTOP:
        warnings.append(f"--ca-file is installed as {CA_ON_LAPTOP}, but the configuration's "
                        f"[mqtt] ca_file is {ca!r}")
    elif req.ca_file is None and ca:
        warnings.append(f"the configuration's [mqtt] ca_file is {ca!r} and no --ca-file is "
                        "given: that file must already be on every laptop")
    return warnings


def build(req: Request) -> Bundle:
    started = time.monotonic()
    warnings = _check_request(req)
    req.out.parent.mkdir(parents=True, exist_ok=True)
    staging = req.out.parent / f".{req.out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    wheels = staging / "wheels"
    wheels.mkdir(parents=True)
    try:
        if req.wheel is not None:
            project = Path(shutil.copy2(req.wheel, wheels))
        else:
            project = build_project_wheel(req.source, wheels)
        for python in req.pythons:
            download([str(project), "pip"], wheels, python, req.platforms)
        resolution = resolve(
            (Wheel.read(p) for p in sorted(wheels.glob("*.whl"))), req.pythons, req.platforms
        )
        if resolution.problems:
            raise BundleError("incomplete wheels:\n" + "\n".join(resolution.problems))
        version = str(Wheel.read(project).version)
        _lay_out(req, staging, project, resolution, version)
        files = _files(staging)
        if req.msi:
            target = staging / msi_tools.MSI_NAME
            msi_tools.build(staging, files, version, target)
            problems = msi_tools.check(target, staging, files, version)
            if problems:
                raise BundleError("the MSI's tables are not as built:\n" + "\n".join(problems))
            (staging / f"{msi_tools.MSI_NAME}.sha256").write_text(
                f"{sha256(target)}  {msi_tools.MSI_NAME}\n", encoding="ascii"
            )
        if req.out.exists():
            req.out.rmdir()
        staging.rename(req.out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Bundle(
        req.out, version, _files(req.out), resolution, time.monotonic() - started, warnings
    )


def _lay_out(
    req: Request, folder: Path, project: Path, resolution: Resolution, version: str
) -> None:
    windows = req.source / "provisioning" / "agent" / "windows"
    for name in WINDOWS_FILES:
        shutil.copyfile(windows / name, folder / name)
    shutil.copyfile(req.config, folder / "agent.toml")
    (folder / "agent.toml").chmod(0o600)  # the school's enrolment secret
    if req.ca_file is not None:
        shutil.copyfile(req.ca_file, folder / "ca.crt")
    used = sorted({w.path.name for chosen in resolution.chosen.values() for w in chosen.values()})
    for extra in set(_files(folder / "wheels")) - set(used):  # e.g. an older pip
        (folder / "wheels" / extra).unlink()
    manifest = {
        "format": 1,
        "project": PROJECT,
        "version": version,
        "platforms": list(req.platforms),
        "pythons": list(req.pythons),
        "project_wheel": f"wheels/{project.name}",
        "pip_wheels": {
            py: f"wheels/{chosen[PIP].path.name}" for py, chosen in resolution.chosen.items()
        },
        "wheels": {
            py: sorted(f"wheels/{w.path.name}" for w in chosen.values())
            for py, chosen in resolution.chosen.items()
        },
        "built_by": f"lordi bundle windows (Python {sys.version.split()[0]})",
    }
    (folder / "bundle.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    text = readme(
        version,
        pythons=req.pythons,
        platforms=req.platforms,
        wheels=used,
        has_ca=req.ca_file is not None,
        has_msi=req.msi,
        msi_name=msi_tools.MSI_NAME,
    )
    (folder / "README.txt").write_text(text, encoding="utf-8", newline="\r\n")
    sums = [f"{sha256(folder / f)}  {f}\n" for f in _files(folder)]
    (folder / "SHA256SUMS").write_text("".join(sums), encoding="ascii")
