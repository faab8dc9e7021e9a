"""Which code runs the collector's hot modules: their `.py`, or the same source compiled
to C extensions by mypyc (`LORDI_COMPILE=1 pip install '.[collector]'`, or `make
compile` in a checkout; docs/server-stack.md).

A compiled extension beside its `.py` is what Python imports first, so a stale one
would silently run old code. `collector/__init__.py` therefore calls `activate()`,
which checks, before any of these modules is imported, that every one of them has its
extension, that no other module of the package has one, and that each `.py` is byte
for byte the source its extension was built from (`_compiled.json`, written by the
build beside the extensions: SHA-256 of each source). All or nothing: one missing,
extra or changed, or `LORDI_PURE_PYTHON=1` in the environment, and every module is
imported from its `.py` (a finder placed first on `sys.meta_path`), so a build never
runs half old code. The collector logs which at
start (`lordi-collector compiled` prints it, and `/metrics` has
`lordi_collector_compiled_modules`).

Only the standard library here: setup.py reads `MODULES` and `manifest()` from this
file before anything is installed.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

# Measured (BENCHMARKS.md, "mypyc"): the rules, the alerting's per-school state and
# the line protocol, where the collector's CPU per sample is. collector/fastpath.py
# cannot be compiled (msgspec's class keywords).
MODULES = (
    "collector.lineproto",
    "collector.rules.battery",
    "collector.rules.forecast",
    "collector.rules.history",
    "collector.rules.state",
    "collector.rules.tally",
    "collector.rules.trust",
    "collector.alerting.evaluation",
    "collector.alerting.school",
)
# mypyc's shared library of the group (its runtime and the modules' code); each module's
# own extension is a small shim that loads it: collector/compiled__mypyc.<abi>.so
GROUP = "collector.compiled"
LIBRARY = GROUP + "__mypyc"
MANIFEST = "_compiled.json"
PURE_ENV = "LORDI_PURE_PYTHON"
PACKAGE_DIR = Path(__file__).resolve().parent
EXTENSION_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)


@dataclass(frozen=True)
class Build:
    """What `activate()` chose: `compiled` modules (all of MODULES, or none) and why."""

    compiled: tuple[str, ...]
    reason: str

    def describe(self) -> str:
        mode = f"compiled ({len(self.compiled)} modules)" if self.compiled else "pure Python"
        return f"{mode}: {self.reason}"


def source_path(module: str, package_dir: Path = PACKAGE_DIR) -> Path:
    """collector.rules.battery -> <package_dir>/rules/battery.py"""
    return package_dir.joinpath(*module.split(".")[1:]).with_suffix(".py")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest(package_dir: Path, compiler: str) -> dict[str, object]:
    """What the build writes to `_compiled.json`: each module's source digest."""
    return {
        "compiler": compiler,
        "modules": {m: digest(source_path(m, package_dir)) for m in MODULES},
    }


def extensions(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Every extension module for this interpreter under the package: name -> file."""
    found: dict[str, Path] = {}
    for folder, subfolders, files in os.walk(package_dir):
        subfolders[:] = [d for d in subfolders if d != "__pycache__"]
        for name in files:
            suffix = next((s for s in EXTENSION_SUFFIXES if name.endswith(s)), None)
            if suffix is not None:
                path = Path(folder, name)
                parts = path.relative_to(package_dir.parent).parts
                found[".".join((*parts[:-1], name[: -len(suffix)]))] = path
    return found


def inspect(
    package_dir: Path = PACKAGE_DIR,
    environ: Mapping[str, str] | None = None,
    found: dict[str, Path] | None = None,
) -> Build:
    """Decide, without importing anything: all of MODULES compiled, or none (`found`:
    the package's `extensions()`, when the caller has them already)."""
    env = os.environ if environ is None else environ
    found = extensions(package_dir) if found is None else found
    if not found:
        return Build((), "no compiled modules (LORDI_COMPILE=1 pip install, or make compile)")
    if env.get(PURE_ENV, "") not in ("", "0"):
        return Build((), f"{PURE_ENV}={env[PURE_ENV]} in the environment")
    problem, compiler = _check(package_dir, set(found))
    return Build((), problem) if problem else Build(MODULES, f"built by {compiler}")


def _check(package_dir: Path, found: set[str]) -> tuple[str, str]:
    """("", the compiler) when the extensions are exactly the build of these sources,
    else (why not, "")."""
    stray = sorted(found - {*MODULES, LIBRARY})
    if stray:  # left by a build that compiled more modules
        return f"{stray[0]} has an extension this build does not list (make compile)", ""
    missing = [m for m in (*MODULES, LIBRARY) if m not in found]
    if missing:
        return f"{missing[0]} has no compiled module ({len(missing)} missing)", ""
    try:
        recorded = json.loads((package_dir / MANIFEST).read_text(encoding="utf-8"))
        digests = recorded["modules"]
        compiler = str(recorded["compiler"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{MANIFEST} unreadable ({exc.__class__.__name__}: {exc})", ""
    for module in MODULES:
        source = source_path(module, package_dir)
        if source.is_file() and digests.get(module) != digest(source):
            rel = source.relative_to(package_dir.parent)
            return f"{rel} changed since it was compiled (rebuild: make compile)", ""
    return "", compiler


class SourceFinder(importlib.abc.MetaPathFinder):
    """Imports the given modules from their `.py`, ahead of their extensions."""

    def __init__(self, package_dir: Path, modules: Iterable[str]) -> None:
        self.sources = {m: source_path(m, package_dir) for m in modules}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        source = self.sources.get(fullname)
        if source is None or not source.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def activate(package_dir: Path = PACKAGE_DIR) -> Build:
    """Called once by collector/__init__.py, before any of MODULES is imported: when
    not all compiled, every extension of the package is passed over for its `.py`
    (without the modules' shims, the group's library is never imported)."""
    found = extensions(package_dir)
    build = inspect(package_dir, found=found)
    if found and not build.compiled and not any(isinstance(f, SourceFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, SourceFinder(package_dir, found))
    return build


def loaded() -> list[str]:
    """The `collector` modules imported so far from a compiled extension."""
    return sorted(
        name
        for name, module in list(sys.modules.items())
        if name.startswith("collector")
        and str(getattr(module, "__file__", "")).endswith(EXTENSION_SUFFIXES)
    )
