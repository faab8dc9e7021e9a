"""The collector's hot modules compiled with mypyc (collector/compiled.py, setup.py,
build_backend/, scripts/compile.py), as `make test` builds them before the suite.

- the checkout and a real collector process run them compiled (the rest of the suite
  then tests the compiled code: tests/metrics checks the process's gauge);
- compiled and pure Python give the same line protocol, dead letters, alerts,
  transitions and notifications on one week of telemetry with faults, spooled, after
  an outage and replayed in bulk;
- the server's wheel (`LORDI_COMPILE=1 pip wheel`, which `make compile` builds) installs
  and runs compiled; the default wheel (the laptops') stays pure Python;
- the guard: an extension never runs when its source changed, one is missing, or
  LORDI_PURE_PYTHON=1; then every module runs from its `.py` (all or nothing).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import collector
from collector import compiled

ROOT = Path(__file__).resolve().parents[2]
WHEELS = ROOT / "build" / "compiled"
NOT_BUILT = "the hot modules are not compiled in this checkout: run `make compile` (make test does)"


def _environ(without: str = compiled.PURE_ENV, **env: str) -> dict[str, str]:
    """This process's environment less `without`, plus `env`."""
    return {k: v for k, v in os.environ.items() if k != without} | env


def _python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=_environ(**env), capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip


# --- the checkout, as make test leaves it ---------------------------------------------


def test_the_checkout_runs_the_hot_modules_compiled() -> None:
    assert collector.BUILD.compiled == compiled.MODULES, f"{NOT_BUILT}: {collector.BUILD.reason}"
    for module in compiled.MODULES:
        __import__(module)
    assert set(compiled.loaded()) == {*compiled.MODULES, compiled.LIBRARY}


def _equivalence(now: str, **env: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.compiled.equivalence", now],
        cwd=ROOT, env=_environ(**env),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def test_compiled_and_pure_python_give_the_same_lines_and_alerts() -> None:
    now = datetime.now(UTC).isoformat()
    fast = _equivalence(now)
    pure = _equivalence(now, **{compiled.PURE_ENV: "1"})
    assert fast["build"].startswith("compiled"), f"{NOT_BUILT}: {fast['build']}"
    assert set(fast["loaded"]) == {*compiled.MODULES, compiled.LIBRARY}
    assert pure["loaded"] == [], pure["build"]
    # Something to compare: every flavour wrote lines, refused the bad input by name,
    # and the week's faults opened alerts and notifications.
    for flavour in ("influxdb", "victoriametrics"):
        result = fast[flavour]
        assert result["samples"] > 1000 and len(result["lines"]) > result["samples"]
        assert sorted(r for _, r, _ in result["dead_letters"]) == [
            "payload: not JSON (Expecting value: line 1 column 27 (char 26))",
            "samples[1].batteries[0].percent: Input should be less than or equal to 100 "
            "(got 250.0)",
        ]
        assert result == pure[flavour], flavour
    for schedule in ("spooled_with_outage", "bulk"):
        result = fast[schedule]
        assert len(result["alerts"]) >= 6 and result["sent"] and result["late"] == 0
        assert result == pure[schedule], schedule


# --- wheels ---------------------------------------------------------------------------


def test_the_server_wheel_installs_and_runs_compiled(tmp_path: Path) -> None:
    wheels = sorted(WHEELS.glob("*.whl"))
    assert len(wheels) == 1, f"{NOT_BUILT} (no wheel in build/compiled)"
    (wheel,) = wheels
    assert "-cp3" in wheel.name and "-none-any" not in wheel.name, wheel.name
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for module in (*compiled.MODULES, compiled.LIBRARY):
        stem = "/".join(module.split("."))
        assert any(n.startswith(stem + ".") and n.endswith(".so") for n in names), module
    assert f"collector/{compiled.MANIFEST}" in names
    assert "collector/rules/battery.py" in names  # the source too (the guard hashes it)
    assert not any(n.startswith("collector__mypyc") for n in names)  # nothing at top level
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--target", str(target), str(wheel)],
        check=True, timeout=300,
    )  # fmt: skip
    # Run from the installed tree (first on sys.path), the venv's dependencies beside it.
    done = _python(
        "import collector, collector.alerting.school as s, collector.rules.battery as b;"
        "from collector.compiled import loaded;"
        "print(collector.__file__); print(b.__file__); print(collector.BUILD.describe());"
        "print(len(loaded()))",
        cwd=target,
    )
    assert done.returncode == 0, done.stderr
    package, battery, build, count = done.stdout.splitlines()
    assert Path(package).parent == target / "collector"
    assert Path(battery).parent == target / "collector" / "rules" and battery.endswith(".so")
    assert build.startswith("compiled (9 modules): built by mypyc"), build
    assert int(count) >= 3  # collector.compiled__mypyc and the two imported


def _tracked_copy(dest: Path) -> Path:
    """The checkout's tracked files, plus its built extensions and manifest."""
    files = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    built = [
        p.relative_to(ROOT).as_posix() for p in compiled.extensions(ROOT / "collector").values()
    ]
    for name in [f for f in files if f] + built + [f"collector/{compiled.MANIFEST}"]:
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def test_the_default_wheel_stays_pure_python(tmp_path: Path) -> None:
    """Without LORDI_COMPILE (the laptops' agent, docs/install-agent.md), even from a
    tree holding compiled extensions: py3-none-any, no extension, no manifest."""
    tree = _tracked_copy(tmp_path / "tree")
    assert compiled.extensions(tree / "collector"), NOT_BUILT
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-build-isolation", "--wheel-dir", str(tmp_path / "w"), str(tree)],
        env=_environ(without="LORDI_COMPILE"),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "w").glob("*.whl")
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "collector/compiled.py" in names and "agent/cli.py" in names
    assert not [n for n in names if n.endswith(".so") or n.endswith(compiled.MANIFEST)]


# --- the guard ------------------------------------------------------------------------


@pytest.fixture
def fake_build(tmp_path: Path) -> Path:
    """A copy of the collector package whose "extensions" are not loadable (so any
    import of one fails loudly) with a manifest that matches its sources."""
    package = tmp_path / "collector"
    shutil.copytree(
        ROOT / "collector", package,
        ignore=shutil.ignore_patterns("*.so", "__pycache__", compiled.MANIFEST),
    )  # fmt: skip
    suffix = compiled.EXTENSION_SUFFIXES[0]
    for module in (*compiled.MODULES, compiled.LIBRARY):
        stem = compiled.source_path(module, package).with_suffix("")
        stem.with_name(stem.name + suffix).write_bytes(b"not an extension")
    manifest = compiled.manifest(package, "mypyc (test)")
    (package / compiled.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return tmp_path


IMPORT_ALL = (
    "import collector, collector.service, collector.alerting, collector.lineproto;"
    "import collector.rules.battery as b;"
    "print(collector.BUILD.describe()); print(b.__file__)"
)


def test_an_extension_beside_its_source_is_what_python_imports(fake_build: Path) -> None:
    """Why the guard exists: with a matching manifest the extensions are used, and
    these are broken, so the import fails (a stale one would run old code)."""
    done = _python(IMPORT_ALL, cwd=fake_build)
    assert done.returncode != 0
    assert "ImportError" in done.stderr, done.stderr[-500:]
    assert compiled.EXTENSION_SUFFIXES[0] in done.stderr, done.stderr[-500:]


def test_a_changed_source_runs_every_module_from_its_py(fake_build: Path) -> None:
    trust = fake_build / "collector" / "rules" / "trust.py"
    trust.write_text(trust.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    done = _python(IMPORT_ALL, cwd=fake_build)
    assert done.returncode == 0, done.stderr
    build, battery = done.stdout.splitlines()
    assert build == (
        "pure Python: collector/rules/trust.py changed since it was compiled "
        "(rebuild: make compile)"
    )
    assert battery == str(fake_build / "collector" / "rules" / "battery.py")


def test_a_missing_extension_runs_every_module_from_its_py(fake_build: Path) -> None:
    stem = compiled.source_path("collector.rules.tally", fake_build / "collector")
    stem.with_name("tally" + compiled.EXTENSION_SUFFIXES[0]).unlink()
    done = _python(IMPORT_ALL, cwd=fake_build)
    assert done.returncode == 0, done.stderr
    build, battery = done.stdout.splitlines()
    assert build == "pure Python: collector.rules.tally has no compiled module (1 missing)"
    assert battery.endswith("battery.py")


def test_a_stray_extension_runs_every_module_from_its_py(fake_build: Path) -> None:
    """An extension of a module the build no longer lists (left by a build that
    compiled more) would shadow its `.py` unchecked: it is passed over too."""
    ingest = fake_build / "collector" / ("ingest" + compiled.EXTENSION_SUFFIXES[0])
    ingest.write_bytes(b"not an extension")
    done = _python(IMPORT_ALL + ";import collector.ingest as i; print(i.__file__)", fake_build)
    assert done.returncode == 0, done.stderr
    build, battery, ingest_file = done.stdout.splitlines()
    assert build == (
        "pure Python: collector.ingest has an extension this build does not list (make compile)"
    )
    assert battery.endswith("battery.py") and ingest_file.endswith("ingest.py")


def test_the_environment_can_force_pure_python(fake_build: Path) -> None:
    done = _python(IMPORT_ALL, cwd=fake_build, **{compiled.PURE_ENV: "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"pure Python: {compiled.PURE_ENV}=1 in the environment",
        str(fake_build / "collector" / "rules" / "battery.py"),
    ]


def test_an_unreadable_manifest_runs_every_module_from_its_py(fake_build: Path) -> None:
    (fake_build / "collector" / compiled.MANIFEST).write_text("{", encoding="utf-8")
    build = compiled.inspect(fake_build / "collector", environ={})
    assert not build.compiled
    assert build.reason.startswith(f"{compiled.MANIFEST} unreadable (JSONDecodeError")
    done = _python(IMPORT_ALL, cwd=fake_build)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].endswith("battery.py")


def test_inspect_without_extensions_says_how_to_build(tmp_path: Path) -> None:
    package = tmp_path / "collector"
    shutil.copytree(ROOT / "collector", package, ignore=shutil.ignore_patterns("*.so"))
    build = compiled.inspect(package, environ={compiled.PURE_ENV: "1"})
    assert build == compiled.Build(
        (), "no compiled modules (LORDI_COMPILE=1 pip install, or make compile)"
    )
    assert build.describe().startswith("pure Python: no compiled modules")


def test_inspect_accepts_a_matching_build(fake_build: Path) -> None:
    build = compiled.inspect(fake_build / "collector", environ={compiled.PURE_ENV: "0"})
    assert build == compiled.Build(compiled.MODULES, "built by mypyc (test)")
    assert build.describe() == "compiled (9 modules): built by mypyc (test)"
