"""`lordi bundle windows`: the command line. The build's modules are imported when it
runs, so that `lordi`'s other commands do not need the `bundle` extra."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lordi.bundle import CA_ON_LAPTOP, DEFAULT_PYTHONS, SOURCE, WINDOWS_PLATFORMS


def cmd_windows(args: argparse.Namespace) -> int:
    try:
        from lordi.bundle.build import Request, build  # noqa: PLC0415
        from lordi.bundle.wheels import BundleError  # noqa: PLC0415
    except ImportError as exc:
        print(f"error: {exc}: install the bundle extra (lordi-telemetry[bundle])", file=sys.stderr)
        return 2
    req = Request(
        config=Path(args.config),
        out=Path(args.out),
        pythons=tuple(args.python or DEFAULT_PYTHONS),
        platforms=tuple(args.platform or WINDOWS_PLATFORMS),
        ca_file=Path(args.ca_file) if args.ca_file else None,
        wheel=Path(args.wheel) if args.wheel else None,
        source=Path(args.source),
        msi=args.msi,
    )
    try:
        bundle = build(req)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for warning in bundle.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    deps = sorted(
        {f"{w.name} {w.version}" for c in bundle.resolution.chosen.values() for w in c.values()}
    )
    print(
        f"{bundle.out}: lordi-telemetry {bundle.version}, {len(bundle.files)} files, "
        f"{bundle.size / 1e6:.1f} MB, Python {', '.join(req.pythons)} on "
        f"{', '.join(req.platforms)}, in {bundle.seconds:.0f} s\n  wheels: {', '.join(deps)}"
    )
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bundle", help="an offline package of the agent for a deployment share")
    kinds = p.add_subparsers(dest="kind", required=True)
    w = kinds.add_parser(
        "windows",
        help="Windows: wheels, install.ps1, scheduled task, school configuration [, MSI]",
        description="Build, on this machine, a folder that installs the agent on Windows "
        "laptops with no network access: the project's wheel and its dependencies' wheels "
        "for each Python version, install.ps1, the scheduled task, the school configuration, "
        "bundle.json, README.txt and SHA256SUMS. The laptops need a 64-bit CPython of one "
        "of those versions (not included). Downloads from the configured package index. "
        "Exit code 0, or 2 with the reason.",
    )
    w.add_argument("--config", required=True, help="the school configuration, copied as agent.toml")
    w.add_argument("--out", required=True, help="the package folder to create (absent or empty)")
    w.add_argument(
        "--python",
        action="append",
        metavar="X.Y",
        help="a Python version the laptops may have (repeatable; default "
        f"{', '.join(DEFAULT_PYTHONS)})",
    )
    w.add_argument(
        "--platform",
        action="append",
        metavar="TAG",
        help=f"wheel platform tag (repeatable; default {', '.join(WINDOWS_PLATFORMS)})",
    )
    w.add_argument("--ca-file", help=f"the broker's CA certificate, installed as {CA_ON_LAPTOP}")
    w.add_argument("--wheel", help="the project's wheel, already built (default: build it here)")
    w.add_argument(
        "--source", default=str(SOURCE), help="the project's checkout (default: this one)"
    )
    w.add_argument(
        "--msi",
        action="store_true",
        help="also an MSI running install.ps1 (needs Debian's wixl and msitools)",
    )
    w.set_defaults(func=cmd_windows)
