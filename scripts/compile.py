"""`make compile`: the collector's hot modules compiled in this checkout, by the path a
server's install takes (LORDI_COMPILE=1 pip wheel: build_backend/, setup.py), then the
wheel's extensions and `_compiled.json` copied beside their sources, where the
checkout's Python imports them (collector/compiled.py checks they match).

Does nothing when the checkout's extensions already match its sources. The wheel stays
in build/compiled/ (tests/compiled/ installs it). Needs gcc and the Python headers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELS = ROOT / "build" / "compiled"


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from collector import compiled  # noqa: PLC0415

    before = compiled.inspect(ROOT / "collector", environ={})
    if before.compiled:
        print(f"compile: up to date, {before.describe()}")
        return 0
    print(f"compile: building ({before.reason})", flush=True)
    started = time.monotonic()
    # A fresh build directory: setuptools packs whatever build/lib holds.
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    env = dict(os.environ, LORDI_COMPILE="1")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-build-isolation", "--wheel-dir", str(WHEELS), str(ROOT)],
        check=True, env=env, cwd=ROOT,
    )  # fmt: skip
    (wheel,) = WHEELS.glob("*.whl")
    for stale in compiled.extensions(ROOT / "collector").values():
        stale.unlink()
    wanted = (*compiled.EXTENSION_SUFFIXES, compiled.MANIFEST)
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith("collector/") and name.endswith(wanted):
                (ROOT / name).write_bytes(archive.read(name))
    after = compiled.inspect(ROOT / "collector", environ={})
    print(f"compile: {wheel.name} in {time.monotonic() - started:.0f} s, {after.describe()}")
    return 0 if after.compiled else 1


if __name__ == "__main__":
    sys.exit(main())
