"""Small school registries written as TOML, for the reload tests."""

from __future__ import annotations

import os
from pathlib import Path

FALLBACK = "registre-lordi@example.org"


def technician(uai: str) -> str:
    return f"technicien-{uai.lower()}@lycee.example.org"


def registry_toml(
    schools: dict[str, str],
    *,
    hardware: str = "repar",
    repar_email: str = "sav@repar.example.org",
    asset_tags: dict[str, dict[str, str]] | None = None,
    hardware_of: dict[str, str] | None = None,
) -> str:
    """`schools`: UAI -> its level-1 technician's e-mail; two contractors, `repar`
    (hardware) and `reseau` (network); `hardware` is every school's hardware one
    unless `hardware_of` names another for a school."""
    lines = [
        f'fallback_email = "{FALLBACK}"',
        "",
        "[contractors.repar]",
        'name = "Répar Lycées"',
        'category = "hardware"',
        f'emails = ["{repar_email}"]',
        "",
        "[contractors.reseau]",
        'name = "Réseau Sud"',
        'category = "network"',
        'emails = ["noc@reseau.example.org"]',
        "",
    ]
    for uai, email in schools.items():
        lines += [
            f"[schools.{uai}]",
            f'name = "Lycée {uai}"',
            'town = "Sète"',
            f'level1 = [{{ name = "Technicien {uai}", email = "{email}" }}]',
            'ssids = ["LORDI-EDU"]',
            f'hardware_contractor = "{(hardware_of or {}).get(uai, hardware)}"',
            'network_contractor = "reseau"',
            "",
        ]
        tags = (asset_tags or {}).get(uai, {})
        if tags:
            lines.append(f"[schools.{uai}.asset_tags]")
            lines += [f'"{device}" = "{tag}"' for device, tag in tags.items()]
            lines.append("")
    return "\n".join(lines)


def replace_file(path: Path, text: str) -> None:
    """Write beside `path`, then rename over it (as `lordi provision` and editors do)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
