"""Numbers in words (num2words): RapidAPI "Numbers Translator" and "NumbersToLetters" (MXN invoices).

Numbers Translator writes American English without "and" or commas, capitalised ("Twenty-three
quadrillion eight hundred ..."). NumbersToLetters writes the amount as on a Mexican invoice: words in
capitals, the currency, the cents as ``NN/100`` and ``M.N.`` (moneda nacional) for pesos.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from num2words import num2words

from ste_mcp.toolbox.api import Endpoint, invalid

MAX_DIGITS = 60  # num2words names groups of thousands up to 10^63 (vigintillion)
MAX_AMOUNT = Decimal(10) ** 15
_INTEGER = re.compile(r"[+-]?\d+")
_CURRENCY = re.compile(r"[A-ZÁÉÍÓÚÜÑ][A-ZÁÉÍÓÚÜÑ .]{0,39}")
_PESOS = {"PESO", "PESOS", "MXN", "PESOS MEXICANOS"}
_ENGLISH_CURRENCY = {"DOLARES": "DOLLARS", "DÓLARES": "DOLLARS"}  # the API's documented types in English


def english_words(n: int) -> str:
    """``n`` in American English words: no "and", no commas."""
    words = num2words(n, lang="en").replace(",", "")
    return re.sub(r"\band ", "", words)


def spanish_words(n: int) -> str:
    """``n`` in Spanish words, apocopated before a noun ("veintiún", "un millón")."""
    words = num2words(n, lang="es")
    words = re.sub(r"veintiuno$", "veintiún", words)
    return re.sub(r"\buno$", "un", words)


def numbers_translator(text: str) -> dict[str, str]:
    """An integer written with digits (thousands separators allowed) in English words."""
    digits = re.sub(r"[\s,_]", "", text)
    if not _INTEGER.fullmatch(digits):
        raise invalid("text", f"must be an integer written with digits, got {text!r}")
    if len(digits.lstrip("+-")) > MAX_DIGITS:
        raise invalid("text", f"has more than {MAX_DIGITS} digits")
    words = english_words(int(digits))
    return {"text": words[0].upper() + words[1:]}


def _amount(monto: str) -> Decimal:
    try:
        value = Decimal(monto.strip().replace(",", "").lstrip("$"))
    except InvalidOperation:
        raise invalid("monto", f"must be an amount such as 1234.56, got {monto!r}") from None
    if not value.is_finite() or value < 0 or value >= MAX_AMOUNT:
        raise invalid("monto", f"must be an amount from 0 to {MAX_AMOUNT - 1}, got {monto!r}")
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _currency(moneda: str) -> str:
    name = " ".join(moneda.split()).upper()
    if not _CURRENCY.fullmatch(name):
        raise invalid("moneda", f"must be a currency name such as PESOS, DOLARES or EUROS, got {moneda!r}")
    return name


def _invoice_text(words: str, currency: str, amount: Decimal) -> str:
    cents = int((amount % 1) * 100)
    suffix = " M.N." if currency in _PESOS else ""
    return f"{words.upper()} {currency} {cents:02d}/100{suffix}"


def letras_espanol(moneda: str, monto: str) -> dict[str, str]:
    """Amount in Spanish words: ``MIL DOSCIENTOS TREINTA Y CUATRO EUROS 56/100``."""
    amount, currency = _amount(monto), _currency(moneda)
    words = spanish_words(int(amount))
    if words.endswith(("millón", "millones")):
        words += " de"  # "un millón de pesos"
    return {"value": _invoice_text(words, currency, amount)}


def letras_ingles(moneda: str, monto: str) -> dict[str, str]:
    """Amount in English words: ``ONE THOUSAND TWO HUNDRED THIRTY-FOUR DOLLARS 56/100``."""
    amount, currency = _amount(monto), _currency(moneda)
    currency = _ENGLISH_CURRENCY.get(currency, currency)
    return {"value": _invoice_text(english_words(int(amount)), currency, amount)}


ENDPOINTS = [
    Endpoint("Numbers_Translator__Numbers_Translator", "/numbers-translator", numbers_translator),
    Endpoint(
        "NumbersToLetters__Convertir_cantidad_a_letra_Moneda_MXN_Espanol",
        "/numbers-to-letters/espanol",
        letras_espanol,
    ),
    Endpoint(
        "NumbersToLetters__Convertir_cantidad_a_letra_Moneda_MXN_Ingles",
        "/numbers-to-letters/ingles",
        letras_ingles,
    ),
]
