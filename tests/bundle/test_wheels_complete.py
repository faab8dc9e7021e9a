"""Every dependency of the agent, resolved from the project's own metadata and then
each wheel's, has a wheel in the package that a 64-bit Windows CPython of each
supported version accepts (tags checked with `packaging`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from packaging.tags import Tag
from packaging.utils import canonicalize_name

from lordi.bundle import DEFAULT_PYTHONS
from lordi.bundle.build import Bundle
from lordi.bundle.wheels import PROJECT, Wheel, resolve, target_tags


def wheels_of(folder: Path) -> list[Wheel]:
    return [Wheel.read(p) for p in sorted(folder.glob("*.whl"))]


def test_every_dependency_has_a_win_amd64_wheel_for_each_python(windows_bundle: Bundle) -> None:
    wheels = wheels_of(windows_bundle.out / "wheels")
    (project,) = [w for w in wheels if w.name == PROJECT]
    # The project's own metadata names the base dependencies (pyproject's
    # [project] dependencies), without markers or extras today.
    direct = {canonicalize_name(r.name) for r in project.requirements() if not r.marker}
    assert {"paho-mqtt", "psutil"} <= direct
    result = resolve(wheels, DEFAULT_PYTHONS, ("win_amd64",))
    assert result.problems == []
    for python in DEFAULT_PYTHONS:
        chosen = result.chosen[python]
        assert direct | {PROJECT, "pip"} <= set(chosen)
        tags = target_tags(python, ("win_amd64",))
        cp = f"cp{python.replace('.', '')}"
        assert Tag(cp, cp, "win_amd64") in tags and Tag("py3", "none", "any") in tags
        assert Tag(cp, cp, "manylinux2014_x86_64") not in tags
        for wheel in chosen.values():
            assert wheel.tags & tags, (python, wheel.path.name)
            assert all(t.platform in ("win_amd64", "any") for t in wheel.tags)
            assert wheel.supports_python(python)
            # and each of its own requirements for Windows is in the package too
            for req in wheel.requirements():
                env = {"python_version": python, "sys_platform": "win32",
                       "platform_system": "Windows", "extra": ""}
                if req.marker is None or req.marker.evaluate(env):
                    assert canonicalize_name(req.name) in chosen, (wheel.name, str(req))
        # psutil is the one compiled dependency: its Windows build, not another's
        assert any(t.platform == "win_amd64" for t in chosen[canonicalize_name("psutil")].tags)


def test_a_missing_wheel_is_named_for_each_python(windows_bundle: Bundle, tmp_path: Path) -> None:
    for wheel in (windows_bundle.out / "wheels").glob("*.whl"):
        if not wheel.name.startswith("psutil-"):
            shutil.copy(wheel, tmp_path)
    result = resolve(wheels_of(tmp_path), DEFAULT_PYTHONS, ("win_amd64",))
    assert len(result.problems) == len(DEFAULT_PYTHONS)
    assert all("no wheel for psutil>=5.9" in p for p in result.problems)


def test_a_wheel_for_another_platform_or_python_does_not_count(
    windows_bundle: Bundle, tmp_path: Path
) -> None:
    # The Windows psutil renamed as a Linux one, and a pip requiring a future Python.
    for wheel in (windows_bundle.out / "wheels").glob("*.whl"):
        name = wheel.name.replace("win_amd64", "manylinux2014_x86_64")
        shutil.copy(wheel, tmp_path / name)
    result = resolve(wheels_of(tmp_path), ("3.12",), ("win_amd64",))
    assert result.problems == ["Python 3.12, win_amd64: no wheel for psutil>=5.9 "
                               f"(required by {PROJECT} {windows_bundle.version})"]
    result = resolve(wheels_of(windows_bundle.out / "wheels"), ("3.10",), ("win_amd64",))
    assert result.problems[0] == f"Python 3.10, win_amd64: {PROJECT} does not run on it"
