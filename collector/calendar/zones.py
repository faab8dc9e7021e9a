"""The school holiday zones, their names in the Ministry's files, and their public
holidays.

Canonical names: "A", "B", "C" (metropolitan zones), "Corse", and the overseas
territories the Ministry's calendar lists one by one. A zone is recognised whatever
its spelling in a file or the registry: case, accents, "Zone "/"Zones " and "La "
prefixes, hyphens and spaces do not matter ("zone c", "Zone C", "La Réunion",
"Nouvelle Calédonie"...).

Public holidays (non-school days in every zone) come from the `holidays` package:
France's national list, plus the territory's own days for the overseas zones (e.g.
the abolition of slavery in Réunion on 20 December). Alsace-Moselle's two extra days
(Good Friday, 26 December) are not applied: the zones do not say which schools are
there.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from datetime import date

# Canonical zone -> the `holidays` package's subdivision of France (None: national list).
ZONES: dict[str, str | None] = {
    "A": None,
    "B": None,
    "C": None,
    "Corse": None,
    "Guadeloupe": "971",
    "Martinique": "972",
    "Guyane": "973",
    "Réunion": "974",
    "Mayotte": "976",
    "Polynésie": "PF",
    "Nouvelle-Calédonie": "NC",
    "Saint-Pierre-et-Miquelon": "PM",
    "Wallis-et-Futuna": "WF",
}


def key(text: str) -> str:
    """Lower case, no accent, words separated by one space."""
    plain = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in plain if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain).split())


_PREFIXES = ("zones ", "zone ", "la ", "l ")
_ALIASES = {key(name): name for name in ZONES} | {
    "polynesie francaise": "Polynésie",
    "caledonie": "Nouvelle-Calédonie",
}


def _bare(text: str) -> str:
    k = key(text)
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if k.startswith(prefix):
                k, changed = k[len(prefix) :], True
    return k


def canonical_zone(text: str) -> str | None:
    """The canonical name of one zone (None: not a zone)."""
    return _ALIASES.get(_bare(text))


def known_zones() -> str:
    return ", ".join(ZONES)


def parse_zones(text: str) -> tuple[list[str], list[str]]:
    """Zones named by an official field: "Zone A", "Zones A/B/C - Corse", "Corse",
    "Guadeloupe"... -> (canonical zones, parts not understood)."""
    zones: list[str] = []
    unknown: list[str] = []
    for piece in text.split(" - "):
        part = piece.strip()
        if not part:
            continue
        whole = canonical_zone(part)
        if whole is not None:
            zones.append(whole)
            continue
        bare = _bare(part)
        letters = [canonical_zone(p) for p in bare.split() if p != "et"]  # "a b c": A/B/C
        if letters and all(z is not None for z in letters):
            zones += [z for z in letters if z is not None]
        else:
            unknown.append(part)
    return list(dict.fromkeys(zones)), unknown


class PublicHolidays:
    """A zone's public holidays, computed a year at a time (thread-safe reads)."""

    def __init__(self, zone: str | None = None) -> None:
        self.subdiv = ZONES.get(zone) if zone else None
        self._years: dict[int, frozenset[date]] = {}
        self._lock = threading.Lock()

    def __contains__(self, day: object, /) -> bool:
        if not isinstance(day, date):
            return False
        days = self._years.get(day.year)
        if days is None:
            days = self._year(day.year)
        return day in days

    def _year(self, year: int) -> frozenset[date]:
        import holidays  # noqa: PLC0415 - only when a day is asked

        with self._lock:
            days = self._years.get(year)
            if days is None:
                found = holidays.country_holidays("FR", subdiv=self.subdiv, years=year)
                days = self._years[year] = frozenset(found)
            return days

    def names(self, year: int) -> dict[date, str]:
        import holidays  # noqa: PLC0415

        found = holidays.country_holidays("FR", subdiv=self.subdiv, years=year, language="fr")
        return dict(sorted(found.items()))
