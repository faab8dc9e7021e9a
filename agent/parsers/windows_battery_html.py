"""Parse the HTML `powercfg /batteryreport` (the default output, what a user sends
when asked for "the battery report"), in any display language.

The agent itself asks for `/xml` (`agent.parsers.windows_battery_report`); this
reads the HTML a technician attaches to a bug report, saved under the capture's
file name, so that laptop can be replayed too.

Labels are translated ("DESIGN CAPACITY", "CAPACITÉ ...") and numbers use the
display locale's grouping ("52,500 mWh", "52.500 mWh", "52 500 mWh" with a
no-break space), so no label is read. What does not change: the "Installed
batteries" table is the first one whose labels are `<span class="label">` (the
system table above it uses `<td class="label">`), one row per property in a fixed
order, one value column per pack:

    NAME, MANUFACTURER, SERIAL NUMBER, CHEMISTRY, DESIGN CAPACITY,
    FULL CHARGE CAPACITY, CYCLE COUNT

(layout checked on a real Windows 10 report, Fla20035/battery-report on GitHub).
The serial number row is never read (privacy). Capacities are integers in mWh:
every non-digit is a grouping mark. A cycle count of "-" or 0 is unknown.
"""

from __future__ import annotations

import re
from html import unescape
from typing import NamedTuple

_TABLE = re.compile(r"<table\b.*?</table>", re.I | re.S)
_ROW = re.compile(r"<tr\b[^>]*>(.*?)</tr>", re.I | re.S)
_CELL = re.compile(r"<td\b[^>]*>(.*?)</td>", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")
_LABEL_SPAN = re.compile(r'<span\s+class="label"', re.I)
_MWH = re.compile(r"^([\d\s.,\u00a0\u202f']{1,20})\s*mWh$", re.I)
_ROWS = 7  # name, manufacturer, serial, chemistry, design, full, cycles
_NAME, _MAKER, _CHEM, _DESIGN, _FULL, _CYCLES = 0, 1, 3, 4, 5, 6


class HtmlPack(NamedTuple):
    """One column of the installed-batteries table (None: not printed or "-")."""

    design_mwh: float | None
    full_mwh: float | None
    cycle_count: int | None
    manufacturer: str | None
    model: str | None
    chemistry: str | None


def looks_like_html_report(text: str) -> bool:
    head = text[:4096].lower()
    return "<html" in head and "battery/2012" in head


def _cell_text(raw: str) -> str:
    return " ".join(unescape(_TAG.sub(" ", raw)).split())


def _battery_rows(html: str) -> list[list[str]] | None:
    """The value cells of the installed-batteries table, row by row."""
    for table in _TABLE.findall(html):
        if not _LABEL_SPAN.search(table):
            continue
        rows = []
        for row in _ROW.findall(table):
            cells = [_cell_text(c) for c in _CELL.findall(row)]
            if len(cells) >= 2 and _LABEL_SPAN.search(row):
                rows.append(cells[1:])
        return rows if len(rows) == _ROWS else None
    return None


def _mwh(value: str) -> float | None:
    match = _MWH.match(value.strip())
    if match is None:
        return None
    digits = re.sub(r"\D", "", match.group(1))
    return float(digits) if digits and int(digits) > 0 else None


def _cycles(value: str) -> int | None:
    digits = value.strip()
    return int(digits) if digits.isdigit() and 0 < int(digits) < 100_000 else None


def _text(value: str) -> str | None:
    value = value.strip()
    return value if value and value != "-" else None


def _pack(rows: list[list[str]], column: int) -> HtmlPack:
    def cell(row: int) -> str:
        values = rows[row]
        return values[column] if column < len(values) else ""

    return HtmlPack(
        design_mwh=_mwh(cell(_DESIGN)),
        full_mwh=_mwh(cell(_FULL)),
        cycle_count=_cycles(cell(_CYCLES)),
        manufacturer=_text(cell(_MAKER)),
        model=_text(cell(_NAME)),
        chemistry=_text(cell(_CHEM)),
    )


def parse_installed_batteries(text: str) -> list[HtmlPack] | None:
    """The packs of an HTML battery report ([] when it lists none, as on a desktop),
    or None when the text is not one."""
    if not looks_like_html_report(text):
        return None
    rows = _battery_rows(text)
    if rows is None:
        return []  # "No batteries are currently installed": no such table
    return [_pack(rows, c) for c in range(max(len(r) for r in rows))]
