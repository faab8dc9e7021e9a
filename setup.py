"""Build options pyproject.toml cannot express: the collector's hot modules compiled
with mypyc, only when asked (LORDI_COMPILE=1, or `--config-settings compile=1`):

    LORDI_COMPILE=1 pip install '.[collector]'      # a server (gcc and Python headers)
    make compile         # a checkout: that wheel, its extensions copied beside the sources

Without it the wheel is pure Python (py3-none-any), as the laptops' agent needs.
build_backend/lordi_build.py adds mypy to the build's requirements when compiling;
collector/compiled.py lists the modules and decides at import which code runs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
COMPILE_ENV = "LORDI_COMPILE"


def _compiled_list() -> Any:
    """collector/compiled.py, loaded by path (the package's dependencies may be absent)."""
    spec = importlib.util.spec_from_file_location("_lordi_compiled", ROOT / "collector/compiled.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


class BuildExtWithManifest(build_ext):
    """build_ext, then `_compiled.json` beside the extensions (in the wheel's tree, or in
    the checkout with --inplace): the digests of the sources they were built from."""

    def run(self) -> None:
        super().run()
        import mypy.version  # noqa: PLC0415

        compiled = _compiled_list()
        target = ROOT if self.inplace else Path(self.build_lib)
        record = compiled.manifest(ROOT / "collector", f"mypyc {mypy.version.__version__}")
        path = target / "collector" / compiled.MANIFEST
        path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def _options() -> dict[str, Any]:
    if os.environ.get(COMPILE_ENV, "") in ("", "0"):
        return {}
    from mypyc.build import mypycify  # noqa: PLC0415

    compiled = _compiled_list()
    files = [str(compiled.source_path(m, Path("collector"))) for m in compiled.MODULES]
    return {
        "ext_modules": mypycify(
            ["--ignore-missing-imports", *files], opt_level="3", group_name=compiled.GROUP
        ),
        "cmdclass": {"build_ext": BuildExtWithManifest},
    }


setup(**_options())
