"""The package's wheels: the project's own, the dependencies' for a target platform and
Python versions (pip download, binary only), and the check that they are complete.

The check resolves the project's requirements from the wheels' own metadata,
recursively (markers evaluated for the target, extras followed), and takes only
wheels whose tags the target accepts: what `pip install --no-index --find-links`
will need on the laptop, found before the package leaves the build machine.
"""

from __future__ import annotations

import email.message
import email.parser
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags, sys_tags
from packaging.utils import NormalizedName, canonicalize_name, parse_wheel_filename
from packaging.version import Version

PROJECT = canonicalize_name("lordi-telemetry")
PIP = canonicalize_name("pip")
_ARCHES = ("x86_64", "aarch64", "arm64", "amd64", "i686", "ppc64le", "s390x", "armv7l")


class BundleError(Exception):
    """The package cannot be built as asked; the message says why."""


@dataclass(frozen=True)
class Wheel:
    path: Path
    name: NormalizedName
    version: Version
    tags: frozenset[Tag]

    @classmethod
    def read(cls, path: Path) -> Wheel:
        name, version, _build, tags = parse_wheel_filename(path.name)
        return cls(path, name, version, frozenset(tags))

    def metadata(self) -> email.message.Message:
        with zipfile.ZipFile(self.path) as zf:
            names = [n for n in zf.namelist() if n.count("/") == 1]
            (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
            return email.parser.Parser().parsestr(zf.read(meta).decode("utf-8"))

    def requirements(self) -> list[Requirement]:
        return [Requirement(r) for r in self.metadata().get_all("Requires-Dist") or []]

    def supports_python(self, python: str) -> bool:
        spec = self.metadata().get("Requires-Python")
        return spec is None or SpecifierSet(spec).contains(python, prereleases=True)


@dataclass
class Resolution:
    """For each Python version: the wheels installed with the project, by name."""

    chosen: dict[str, dict[NormalizedName, Wheel]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def run_pip(args: Sequence[str], what: str) -> None:
    cmd = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise BundleError(f"{what} failed (pip exit code {done.returncode}):\n{tail}")


def _source_ignore(root: Path) -> object:
    """Files never part of a build: VCS, environments, caches, previous builds."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n.startswith(".") or n == "__pycache__"}
        skip |= {n for n in names if n.endswith(".egg-info")}
        if Path(folder) == root:
            skip |= {"build", "dist", "node_modules"} & set(names)
        return skip

    return ignore


def build_project_wheel(source: Path, dest: Path) -> Path:
    """The project's wheel, built from a clean copy of `source` (setuptools' build/
    folder in a working tree can put deleted modules back into a wheel)."""
    if not (source / "pyproject.toml").is_file():
        raise BundleError(f"{source}: no pyproject.toml (give the project's checkout)")
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.glob("*.whl"))
    with tempfile.TemporaryDirectory(prefix="lordi-wheel-") as tmp:
        copy = Path(tmp) / "src"
        shutil.copytree(source, copy, ignore=_source_ignore(source))  # type: ignore[arg-type]
        run_pip(["wheel", "--no-deps", "--wheel-dir", str(dest), str(copy)], "building the wheel")
    built = [w for w in set(dest.glob("*.whl")) - before if Wheel.read(w).name == PROJECT]
    if len(built) != 1:
        raise BundleError(f"building the wheel gave {len(built)} project wheels in {dest}")
    return built[0]


def download(
    requirements: Sequence[str], dest: Path, python: str, platforms: Sequence[str]
) -> None:
    """Binary wheels of `requirements` and their dependencies for one target."""
    args = ["download", "--only-binary=:all:", "--implementation", "cp"]
    args += ["--python-version", python, "--dest", str(dest)]
    for platform in platforms:
        args += ["--platform", platform]
    run_pip([*args, *requirements], f"downloading wheels for Python {python} on {platforms[0]}")


def target_tags(python: str, platforms: Sequence[str]) -> frozenset[Tag]:
    """The wheel tags a CPython `python` (e.g. "3.12") accepts on `platforms`."""
    major, minor = (int(x) for x in python.split("."))
    tags = set(cpython_tags((major, minor), platforms=list(platforms)))
    tags |= set(compatible_tags((major, minor), f"cp{major}{minor}", platforms=list(platforms)))
    return frozenset(tags)


def marker_environment(python: str, platforms: Sequence[str]) -> dict[str, str]:
    """PEP 508 marker values of the target machine (for the dependencies' markers)."""
    platform = platforms[0]
    arch = next((a for a in _ARCHES if platform.endswith(a)), platform.rpartition("_")[2])
    if platform.startswith("win"):
        machine = {"win_amd64": "AMD64", "win_arm64": "ARM64", "win32": "x86"}.get(platform, arch)
        system, sys_platform, os_name = "Windows", "win32", "nt"
    elif "linux" in platform:
        machine, system, sys_platform, os_name = arch, "Linux", "linux", "posix"
    elif platform.startswith("macosx"):
        machine, system, sys_platform, os_name = arch, "Darwin", "darwin", "posix"
    else:
        raise BundleError(f"--platform {platform}: not a Windows, Linux or macOS wheel platform")
    return {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "implementation_version": f"{python}.0",
        "os_name": os_name,
        "sys_platform": sys_platform,
        "platform_system": system,
        "platform_machine": machine,
        "platform_release": "",
        "platform_version": "",
    }


def host_platforms() -> tuple[str, ...]:
    """This machine's wheel platforms, most specific first (a package to try here)."""
    seen: dict[str, None] = {}
    for tag in sys_tags():
        seen.setdefault(tag.platform, None)
    return tuple(p for p in seen if p != "any")


def resolve(
    wheels: Iterable[Wheel], pythons: Sequence[str], platforms: Sequence[str]
) -> Resolution:
    """The project's dependencies, recursively, each matched to a wheel the target
    accepts; `problems` names each requirement no wheel satisfies, per Python."""
    wheels = list(wheels)
    result = Resolution()
    roots = [w for w in wheels if w.name == PROJECT]
    if len(roots) != 1:
        result.problems.append(f"{len(roots)} wheels of {PROJECT} (one expected)")
        return result
    for python in pythons:
        tags, env = target_tags(python, platforms), marker_environment(python, platforms)
        usable = [w for w in wheels if w.tags & tags and w.supports_python(python)]
        if roots[0] not in usable:
            result.problems.append(f"Python {python}, {platforms[0]}: {PROJECT} does not run on it")
        chosen: dict[NormalizedName, Wheel] = {PROJECT: roots[0]}
        todo: list[tuple[Wheel, frozenset[str]]] = [(roots[0], frozenset())]
        seen: set[tuple[NormalizedName, frozenset[str]]] = set()
        while todo:
            wheel, extras = todo.pop()
            if (wheel.name, extras) in seen:
                continue
            seen.add((wheel.name, extras))
            for req in wheel.requirements():
                wanted = extras or frozenset({""})
                if req.marker and not any(req.marker.evaluate({**env, "extra": e}) for e in wanted):
                    continue
                name = canonicalize_name(req.name)
                fits = [
                    w
                    for w in usable
                    if w.name == name and req.specifier.contains(w.version, prereleases=True)
                ]
                if not fits:
                    result.problems.append(
                        f"Python {python}, {platforms[0]}: no wheel for {req} "
                        f"(required by {wheel.name} {wheel.version})"
                    )
                    continue
                best = max(fits, key=lambda w: w.version)
                chosen[name] = best
                todo.append((best, frozenset(req.extras)))
        pips = [w for w in usable if w.name == PIP]
        if pips:
            chosen[PIP] = max(pips, key=lambda w: w.version)
        else:
            result.problems.append(f"Python {python}, {platforms[0]}: no pip wheel")
        result.chosen[python] = chosen
    return result
