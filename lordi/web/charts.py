"""Charts as server-rendered SVG: a picture on any phone, no script, readable by a
screen reader (role="img" with a title and a one-sentence description)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from markupsafe import Markup

PARIS = ZoneInfo("Europe/Paris")
WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 28
COLOURS = ("#1f5fa8", "#b4451f", "#2d7d46")  # the same as .swatch.s0..s2 in style.css


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    points: Sequence[tuple[datetime, float]]


def line_chart(
    lines: Sequence[Line],
    *,
    title: str,
    unit: str,
    y_range: tuple[float, float],
    marks: Sequence[tuple[float, str]] = (),
) -> Markup:
    """An SVG line chart of the lines over their common time span; `marks` are
    horizontal reference lines (e.g. the 60 % replacement threshold)."""
    drawn = [line for line in lines if line.points]
    if not drawn:
        return Markup('<p class="empty">{} : aucune mesure sur la période.</p>').format(title)
    t0 = min(p[0] for line in drawn for p in line.points).timestamp()
    t1 = max(p[0] for line in drawn for p in line.points).timestamp()
    values = [p[1] for line in drawn for p in line.points]
    lo, hi = min(y_range[0], *values), max(y_range[1], *values)
    span_t, span_y = max(t1 - t0, 1.0), max(hi - lo, 1e-9)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: datetime) -> float:
        return LEFT + (at.timestamp() - t0) / span_t * plot_w

    def y(value: float) -> float:
        return TOP + (hi - value) / span_y * plot_h

    ident = "c" + hashlib.sha1(title.encode(), usedforsecurity=False).hexdigest()[:10]
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{ident}-t">{escape(title)}</title>',
        f'<desc id="{ident}-d">{escape(describe(drawn, unit))}</desc>',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fff" '
        'stroke="#767676"/>',
    ]
    for tick in _ticks(lo, hi):
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            'stroke="#ddd"/>'
            f'<text x="{LEFT - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11">'
            f"{tick:g}</text>"
        )
    for value, label in marks:
        if lo <= value <= hi:
            parts.append(
                f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                'stroke="#a00" stroke-dasharray="4 3"/>'
                f'<text x="{WIDTH - RIGHT - 4}" y="{y(value) - 4:.1f}" text-anchor="end" '
                f'font-size="11" fill="#a00">{escape(label)}</text>'
            )
    first, last = datetime.fromtimestamp(t0, PARIS), datetime.fromtimestamp(t1, PARIS)
    parts.append(
        f'<text x="{LEFT}" y="{HEIGHT - 8}" font-size="11">{first:%d/%m/%Y}</text>'
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" font-size="11" text-anchor="end">'
        f"{last:%d/%m/%Y}</text>"
    )
    for index, line in enumerate(drawn):
        colour = COLOURS[index % len(COLOURS)]
        path = " ".join(f"{x(at):.1f},{y(v):.1f}" for at, v in line.points)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        if len(line.points) == 1:
            at, v = line.points[0]
            parts.append(f'<circle cx="{x(at):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>')
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch s{i % len(COLOURS)}"></span>{escape(line.label)}</li>'
        for i, line in enumerate(drawn)
    )
    # Every text from outside (titles, labels) went through escape() above.
    return Markup(f'<figure>{"".join(parts)}<ul class="legend">{legend}</ul></figure>')  # noqa: S704


def describe(lines: Sequence[Line], unit: str) -> str:
    """One sentence a screen reader says instead of the picture."""
    out = []
    for line in lines:
        (a, first), (b, last) = line.points[0], line.points[-1]
        out.append(
            f"{line.label} : {first:.0f} {unit} le {a.astimezone(PARIS):%d/%m/%Y}, "
            f"{last:.0f} {unit} le {b.astimezone(PARIS):%d/%m/%Y}"
        )
    return " ; ".join(out) + "."


def _ticks(lo: float, hi: float) -> list[float]:
    span = hi - lo
    step = next((s for s in (1, 2, 5, 10, 20, 25, 50, 100, 250, 500, 1000) if span / s <= 6), 5000)
    first = int(lo // step + 1) * step
    return [float(v) for v in range(int(first), int(hi) + 1, int(step))]
