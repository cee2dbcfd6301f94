"""Numbers API ``/{number}/math``: a mathematical fact about an integer, computed (sympy), not looked up.

Facts are tried from the most to the least remarkable (taxicab, perfect, factorial, Fibonacci, prime,
powers, triangular, repdigit, palindrome, Harshad) and the factorization is the fact of last resort.
Answers are Numbers-API shaped: ``{"text", "number", "found", "type": "math"}``, or plain text; with
``fragment`` the text is a lower-case noun phrase without the "N is" and the final period.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator

from starlette.responses import PlainTextResponse
from sympy import factorint, integer_nthroot, isprime, primepi

from ste_mcp.toolbox.api import Endpoint, invalid, parse_bool

MAX_DIGITS = 100
TAXICAB_LIMIT = 10**12  # cube sums are enumerated up to here (b <= 10^4)
SMALLEST_CHECK_LIMIT = 10**9  # ~500k cube sums to compare with
PRIME_INDEX_LIMIT = 10**11  # primepi stays well under a second below this
FACTOR_LIMIT = 10**24


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _cube_sums(n: int) -> list[tuple[int, int]]:
    """All (a, b), 1 <= a <= b, with a^3 + b^3 = n."""
    out = []
    b = integer_nthroot(n, 3)[0]
    a = 1
    while a <= b:
        total = a**3 + b**3
        if total == n:
            out.append((a, b))
            a, b = a + 1, b - 1
        elif total < n:
            a += 1
        else:
            b -= 1
    return out


def taxicab(n: int) -> str | None:
    if n > TAXICAB_LIMIT:
        return None
    ways = _cube_sums(n)
    if len(ways) < 2:
        return None
    sums = " = ".join(f"{a}³ + {b}³" for a, b in ways)
    kind = "a"
    if n <= SMALLEST_CHECK_LIMIT:  # is any smaller number a sum of two cubes in as many ways?
        top = integer_nthroot(n, 3)[0]
        counts = Counter(a**3 + b**3 for a in range(1, top + 1) for b in range(a, top + 1) if a**3 + b**3 < n)
        kind = "a" if any(c >= len(ways) for c in counts.values()) else "the smallest"
    return (
        f"{kind} number expressible as the sum of two positive cubes in {len(ways)} different ways ({sums})"
    )


def perfect(n: int) -> str | None:
    if n < 2 or n > FACTOR_LIMIT:
        return None
    divisor_sum = 1
    for p, k in factorint(n).items():
        divisor_sum *= (p ** (k + 1) - 1) // (p - 1)
    return "a perfect number: the sum of its proper divisors" if divisor_sum == 2 * n else None


def factorial(n: int) -> str | None:
    k, value = 1, 1
    while value < n:
        k += 1
        value *= k
    return f"the factorial of {k} ({k}!)" if value == n and n > 2 else None


def fibonacci(n: int) -> str | None:
    a, b, k = 0, 1, 1
    while b < n:
        a, b, k = b, a + b, k + 1
    return f"the {ordinal(k)} Fibonacci number" if b == n and n > 3 else None


def prime(n: int) -> str | None:
    if not isprime(n):
        return None
    return f"the {ordinal(int(primepi(n)))} prime number" if n <= PRIME_INDEX_LIMIT else "a prime number"


def power(n: int) -> str | None:
    for k, name in ((2, "square"), (3, "cube")):
        root, exact = integer_nthroot(n, k)
        if exact and n > 1:
            return f"the {name} of {root} ({root}{'²' if k == 2 else '³'})"
    if n > 2 and n & (n - 1) == 0:
        return f"2 to the power of {n.bit_length() - 1}"
    return None


def triangular(n: int) -> str | None:
    root, exact = integer_nthroot(8 * n + 1, 2)
    return (
        f"the {ordinal((root - 1) // 2)} triangular number (1 + 2 + ... + {(root - 1) // 2})"
        if exact and n > 3
        else None
    )


def repdigit(n: int) -> str | None:
    digits = str(n)
    if len(digits) > 2 and len(set(digits)) == 1:
        return f"a repdigit: all of its {len(digits)} digits are {digits[0]}"
    return None


def palindrome(n: int) -> str | None:
    digits = str(n)
    return (
        "a palindromic number: it reads the same backwards"
        if len(digits) > 2 and digits == digits[::-1]
        else None
    )


def harshad(n: int) -> str | None:
    digit_sum = sum(map(int, str(n)))
    return (
        f"a Harshad number: divisible by the sum of its digits ({digit_sum})"
        if n > 9 and n % digit_sum == 0
        else None
    )


def factorization(n: int) -> str:
    if n > FACTOR_LIMIT:
        return f"a {len(str(n))}-digit number whose digits sum to {sum(map(int, str(n)))}"
    factors = factorint(n)
    divisors = 1
    for k in factors.values():
        divisors *= k + 1
    product = " × ".join(f"{p}^{k}" if k > 1 else str(p) for p, k in sorted(factors.items()))
    return f"a number with {divisors} divisors, the product {product}"


FACTS: tuple[Callable[[int], str | None], ...] = (
    taxicab,
    perfect,
    factorial,
    fibonacci,
    prime,
    power,
    triangular,
    repdigit,
    palindrome,
    harshad,
)


def facts(n: int) -> Iterator[str]:
    """Every fact found about the positive integer ``n``, most remarkable first."""
    for fact in FACTS:
        text = fact(n)
        if text:
            yield text
    yield factorization(n)


def fact_about(n: int) -> str:
    """A noun phrase that is true of ``n`` (any integer)."""
    if n == 0:
        return "the additive identity: adding it to a number leaves the number unchanged"
    if n == 1:
        return "the multiplicative identity: multiplying a number by it leaves the number unchanged"
    if n < 0:
        return f"a negative integer whose absolute value is {fact_about(-n)}"
    return next(facts(n))


def math_fact(number: str, fragment: str = "false", json: str = "false"):
    """A math fact about ``number``, as JSON or plain text, as a sentence or a fragment."""
    text = number.strip()
    if not re.fullmatch(rf"[+-]?\d{{1,{MAX_DIGITS}}}", text):
        raise invalid("number", f"must be an integer (up to {MAX_DIGITS} digits), got {number!r}")
    n = int(text)
    phrase = fact_about(n)
    answer = phrase if parse_bool("fragment", fragment) else f"{n} is {phrase}."
    if parse_bool("json", json):
        return {"text": answer, "number": n, "found": True, "type": "math"}
    return PlainTextResponse(answer)


ENDPOINTS = [Endpoint("Numbers__Get_math_fact", "/numbers/math", math_fact)]
