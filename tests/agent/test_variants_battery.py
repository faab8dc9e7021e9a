"""Battery output variants across vendors and OS versions (issue 15 item 4).

The rule under test everywhere: health = full / design from whatever full-charge and
design capacities the machine gives, never null when both are there."""

from __future__ import annotations

import pytest

from agent.parsers.linux_sysfs import to_battery
from agent.parsers.macos_ioreg import parse_ioreg_battery, to_battery_reading
from agent.parsers.windows_battery_html import parse_installed_batteries
from agent.parsers.windows_battery_report import parse_battery_report


@pytest.mark.parametrize(
    ("attrs", "health"),
    [
        ({"energy_full_design": "50000000", "energy_full": "40000000"}, 80.0),
        ({"charge_full_design": "4000000", "charge_full": "4100000"}, 102.5),
        # energy family incomplete, charge family complete: charge decides
        (
            {"energy_full": "30000000", "charge_full_design": "4000000", "charge_full": "3000000"},
            75.0,
        ),
        (
            {"energy_full_design": "0", "energy_full": "1", "charge_full_design": "10"}
            | {"charge_full": "9"},
            90.0,
        ),
        # no design anywhere: unknown, never 100 by default
        ({"energy_full": "30000000"}, None),
        # design in energy, full in charge: the charge at the design voltage
        (
            {"energy_full_design": "57000000", "charge_full": "4000000"}
            | {"voltage_min_design": "11400000"},
            80.0,
        ),
        # the same without a design voltage: cannot be compared, unknown
        ({"energy_full_design": "57000000", "charge_full": "4000000"}, None),
        # design in charge, full in energy
        (
            {"charge_full_design": "5000000", "energy_full": "34200000"}
            | {"voltage_min_design": "7600000"},
            90.0,
        ),
    ],
)
def test_linux_health_from_the_complete_family(attrs: dict[str, str], health: float) -> None:
    reading = to_battery("BAT0", {"type": "Battery", **attrs})
    assert reading is not None
    assert reading.health_pct == health


def test_linux_bq27xxx_energy_now_only_with_charge_pair() -> None:
    attrs = {
        "type": "Battery",
        "energy_now": "20000000",
        "charge_full_design": "5000000",
        "charge_full": "4500000",
        "charge_now": "2250000",
        "voltage_min_design": "7600000",
    }
    reading = to_battery("BAT0", attrs)
    assert reading is not None
    assert (reading.health_pct, reading.design_capacity_mwh) == (90.0, 38000.0)
    assert reading.percent == 50.0


@pytest.mark.parametrize(
    ("lines", "health", "cycles"),
    [
        # Apple Silicon: MaxCapacity is a percentage, AppleRawMaxCapacity the mAh
        (
            ['"MaxCapacity" = 100', '"AppleRawMaxCapacity" = 4000', '"DesignCapacity" = 5000'],
            80.0,
            None,
        ),
        # no raw key: NominalChargeCapacity is the full charge
        (
            ['"MaxCapacity" = 100', '"NominalChargeCapacity" = 4500', '"DesignCapacity" = 5000'],
            90.0,
            None,
        ),
        # design and cycles only inside BatteryData
        (
            [
                '"MaxCapacity" = 100',
                '"AppleRawMaxCapacity" = 4750',
                '"BatteryData" = {"DesignCapacity"=5000,"CycleCount"=42,"LifetimeData"={"CycleCount"=1}}',
            ],
            95.0,
            42,
        ),
        # Intel: MaxCapacity is mAh
        (['"MaxCapacity" = 6000', '"DesignCapacity" = 6500', '"CycleCount" = 300'], 92.31, 300),
        # top-level values win over BatteryData's
        (
            [
                '"AppleRawMaxCapacity" = 4000',
                '"DesignCapacity" = 4000',
                '"CycleCount" = 7',
                '"BatteryData" = {"DesignCapacity"=1,"CycleCount"=9}',
            ],
            100.0,
            7,
        ),
    ],
)
def test_macos_health_across_generations(
    lines: list[str], health: float, cycles: int | None
) -> None:
    facts = parse_ioreg_battery("\n".join(f"      {line}" for line in lines))
    assert facts is not None
    reading = to_battery_reading(facts)
    assert (reading.health_pct, reading.cycle_count) == (health, cycles)


HTML_HEAD = '<html xmlns:bat="http://schemas.microsoft.com/battery/2012"><body>'
INFO_TABLE = '<table><tr><td class="label">COMPUTER NAME</td><td>X</td></tr></table>'


def html(rows: list[tuple[str, list[str]]]) -> str:
    body = "".join(
        f'<tr><td><span class="label">{label}</span></td>'
        + "".join(f"<td>{v}</td>" for v in values)
        + "</tr>"
        for label, values in rows
    )
    return f"{HTML_HEAD}{INFO_TABLE}<table><thead><tr><td></td><td>B 1</td></tr></thead>{body}</table></body></html>"


def rows(design: str, full: str, cycles: str) -> list[tuple[str, list[str]]]:
    return [
        ("N", ["PABAS0241231"]),
        ("M", ["Hewlett-Packard"]),
        ("S", ["41167"]),
        ("C", ["LION"]),
        ("D", [design]),
        ("F", [full]),
        ("Y", [cycles]),
    ]


@pytest.mark.parametrize(
    ("design", "full", "cycles", "expected"),
    [
        # the real HP report's "52.500 mWh" (dot grouping) and "-" cycle count
        ("52.500 mWh\n      ", "36.520 mWh\n      ", "\n        -\n      ", (52500, 36520, None)),
        ("52,500 mWh", "36,520 mWh", "12", (52500, 36520, 12)),
        ("52\u202f500 mWh", "36&#160;520 mWh", "0", (52500, 36520, None)),
        ("52500 mWh", "-", "3", (52500, None, 3)),
    ],
)
def test_html_report_numbers_in_any_locale(
    design: str, full: str, cycles: str, expected: tuple[float, float | None, int | None]
) -> None:
    [pack] = parse_installed_batteries(html(rows(design, full, cycles))) or []
    assert (pack.design_mwh, pack.full_mwh, pack.cycle_count) == expected


def test_html_report_through_the_report_parser() -> None:
    [battery] = parse_battery_report(html(rows("45,600 mWh", "38,914 mWh", "212"))) or []
    assert (battery.health_pct, battery.technology, battery.model) == (
        85.34,
        "Li-ion",
        "PABAS0241231",
    )


def test_html_report_without_batteries_and_other_html() -> None:
    desktop = (
        f"{HTML_HEAD}{INFO_TABLE}<h2>Installed batteries</h2><p>No batteries</p></body></html>"
    )
    assert parse_installed_batteries(desktop) == []
    assert parse_installed_batteries("<html><body>not a report</body></html>") is None
    assert parse_installed_batteries("<?xml version='1.0'?><BatteryReport/>") is None
