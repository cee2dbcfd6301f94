"""Car database: all makes.

Data choice: no maintained offline package carries vehicle makes (PyPI has only web-API clients and
scrapers), so ``data/car_makes.json`` ships a list of passenger-car makes (current and recent marques
of the world's car markets, by their usual brand names), compiled by hand for this toolbox. The
original RapidAPI "Car database" answered ``/makes`` with such a JSON array of names.
"""

from __future__ import annotations

import json
from importlib import resources

from ste_mcp.toolbox.api import Endpoint, load_once


@load_once
def makes() -> list[str]:
    """All makes, sorted."""
    text = (resources.files("ste_mcp.toolbox") / "data" / "car_makes.json").read_text(encoding="utf-8")
    return sorted(json.loads(text), key=str.casefold)


ENDPOINTS = [Endpoint("Car_database__Makes", "/cars/makes", makes)]
