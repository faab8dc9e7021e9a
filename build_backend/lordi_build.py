"""The project's PEP 517 build backend: setuptools' own, plus mypy among the build's
requirements when the collector's hot modules are to be compiled (setup.py):

    LORDI_COMPILE=1 pip install '.[collector]'
    pip install --config-settings compile=1 '.[collector]'

pip builds in an isolated environment holding only what the backend asks for, so the
compiler must be asked for here; a pure build (the default, and the laptops' agent)
needs nothing more than setuptools.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (every other hook, unchanged)

COMPILE_ENV = "LORDI_COMPILE"
MYPY = "mypy>=1.10,<3"  # mypyc ships with mypy

ConfigSettings = dict[str, Any] | None


def _compiling(config_settings: ConfigSettings) -> bool:
    """Asked by the environment or by `--config-settings compile=1` (which setup.py,
    run in this process, then reads from the environment)."""
    if str((config_settings or {}).get("compile", "")) not in ("", "0", "false"):
        os.environ[COMPILE_ENV] = "1"
    return os.environ.get(COMPILE_ENV, "") not in ("", "0")


def _requires(hook: Callable[[ConfigSettings], list[str]], config: ConfigSettings) -> list[str]:
    """setuptools' requirements (it runs setup.py to find them: as a pure build, since
    mypyc is not installed yet), plus mypy when compiling."""
    compiling = _compiling(config)
    saved = os.environ.pop(COMPILE_ENV, None)
    try:
        requires = list(hook(config))
    finally:
        if saved is not None:
            os.environ[COMPILE_ENV] = saved
    return [*requires, MYPY] if compiling else requires


def get_requires_for_build_wheel(config_settings: ConfigSettings = None) -> list[str]:
    return _requires(_setuptools.get_requires_for_build_wheel, config_settings)


def get_requires_for_build_editable(config_settings: ConfigSettings = None) -> list[str]:
    return _requires(_setuptools.get_requires_for_build_editable, config_settings)


def build_wheel(
    wheel_directory: str,
    config_settings: ConfigSettings = None,
    metadata_directory: str | None = None,
) -> str:
    _compiling(config_settings)
    return str(_setuptools.build_wheel(wheel_directory, config_settings, metadata_directory))
