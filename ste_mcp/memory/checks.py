"""Deterministic checks of a trial the judge accepted (``memory.judge_checks``).

Small judge models accept nearly every trial, so an accepted trial must also pass these before it
becomes an exemplar (``Exploiter.make_exemplar``); each looks at the raw observation of the trial's
last successful call, its arguments, the request and the final answer:

- ``soft_failure``: the call "succeeded" at HTTP level, but the result itself says it failed
  (``{"success": false}``, ``"error": "..."``, ``"status": "failed"``, at the top or one level down):
  a demonstration of a failed call teaches nothing, and its answer is usually invented.
- ``grounded_answer``: every number of at least 2 significant digits in the final answer is in the
  observation, the request or the arguments (as a number, or rounded to the answer's precision), and
  every ISO date it states is a day one of them writes (in any form, or as a timestamp): a number or a
  date found in none of them was made up by the explorer.
- ``request_numbers``: every number the request states is in the call's arguments: a call that drops
  a stated quantity ("a token that expires in 15 minutes" called without an expiry) does not answer
  the request, whatever the API returns. Nor does one that sends a span of time the other way
  ("Add 10 days to June 10" as ``days = -10``: ``wrong_sign``), nor one that counts the request's span
  from another day than the one it writes ("30 days from June 15, 2023" as ``date = 2023-10-15, days =
  30``: ``dates.other_day``).
- ``placeholder_arguments``: no argument is the documentation's example value unless the request states
  it. API specs give required parameters a "default" that is an example (a required parameter has no
  default: latitude 37.4666405, amount "1000", place "London"); an explorer that copies it into the call
  for "the time zone of a specific location" makes a demonstration that teaches a client to copy it too.
  Only values a request could be told apart by are checked: numbers of 3+ significant digits, text of
  4+ characters (found in the request as written, or as a close spelling: "dollars" for "DOLARES").
- ``stated_numbers``: the other way round, every number an argument sends is one the request
  gives — in digits, in words ("two weeks", "a dozen", "tomorrow"), or converted to the unit the
  parameter's name gives ("2 weeks" as ``days = 14``). A call that brings its own number
  (``add_date`` with ``days = 3`` for "convert 2023-10-15 to dd/mm/yyyy", ``length = 16`` for "a strong
  password", ``number = 6`` for "how many sides has a cube?") answers a request nobody made, and teaches
  a client to invent values, optional arguments as much as required ones (``length = 50``, the
  spec's default, for "a strong password with every character class" pulls a client from the sibling
  endpoint that takes no length). Only whole numbers of a parameter without an ``enum`` are read, and
  not those of paging parameters (``limit``, ``page``, ``offset``, … : ``PAGING``);
  0, 1 (a first page, a flag) and numbers of 7+ digits (timestamps, ids: ``present_arguments``) pass, as
  do fractions (coordinates of a named place, a converted quantity).
- ``request_units``: a quantity the request states with a unit ("12 hours") is not sent as the same number
  to a parameter whose name gives another unit of the same kind (``days = 12``); a conversion (``days =
  0.5``) is another number and passes. A ``length`` counts characters: "a 128-bit password" is not
  ``length = 128``.
- ``result_language``: a request that asks for one named language gets a result written in it
  (``memory/language.py``; the Exploiter first looks for a sibling tool that answers in it).
- ``result_date``: a request about one day relative to today ("tomorrow", "3 days ago", "in two weeks")
  gets a result that gives that day, when it gives dates at all (``memory/dates.py``; "today" is the
  trial's own day): a today's-date endpoint does not answer "the date of tomorrow's meeting". Nor does a
  result whose dates all fall on other weekdays answer "next Monday".
- ``present_arguments``: a request about the present ("today", "now", "at the current time") does not
  send a date or timestamp from before the trial's day: the explorer's model brings the day it was
  trained as "today" (``date = 2023-04-01`` for "one year from today"). An import or a recheck reads
  it against the day the exemplar was made; it is served moved to the current day (``dates.as_of``).
- ``added_asks``: a request that goes on with a condition or a second ask ("but only for weekdays", "and
  also its binary form", "sorted by reviews", "specifically its prime factors") states, from that word on,
  a value the call sends: else the call serves only the first part, and the judge passes it as served.
- ``float_noise``: no argument sends a number with a binary float's rounding noise ("2500.00000000000001",
  "0.30000000000000004", "19.999999999999996") that the request does not write so: the explorer's model
  printed the number through a float, and a client shown that call learns to send "610.00000000000001"
  for 610 (which an API that reads the amount as text spells out, or refuses). Not repairable: the call,
  not the request, is wrong.
- ``named_terms``: every name the request gives — a capitalised word past a sentence's first word, an
  acronym, a quoted value — is in the call's arguments, its result, or the tool's own name, description and
  schema (``memory/terms.py``): "the car makers based in Europe" answered by every make, "… to words in
  Swedish" by an English-only endpoint, "a password for user 'AliceJohnson'" by a generator that takes no
  user are refused. Months, weekdays and language names are the date and language checks' to read. A
  paraphrase may give only names its original or the call has (``terms.added_names``).

``check_trial`` runs the named checks on a trial, so stored trials can be replayed through them;
``check_call`` runs those that read only the request and the call (``CALL_CHECKS``), which is all an
exported exemplar keeps, so imports and paraphrases pass them too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from difflib import SequenceMatcher
from typing import Any, get_args

from ste_mcp.memory.dates import (
    DAYS,
    ISO_DATE,
    NUMBER_WORDS,
    date_problem,
    days_of,
    other_day,
    present_problem,
    result_dates,
    stamp_day,
    states_day,
)
from ste_mcp.memory.language import asked_language, language_problem
from ste_mcp.memory.settings import JudgeCheck
from ste_mcp.memory.terms import unnamed_terms
from ste_mcp.memory.text import leaves as _leaves
from ste_mcp.memory.text import plain as _plain
from ste_mcp.memory.trials import TrialRecord

ALL_CHECKS: tuple[JudgeCheck, ...] = get_args(JudgeCheck)
CALL_CHECKS: tuple[JudgeCheck, ...] = (
    "request_numbers",
    "placeholder_arguments",
    "stated_numbers",
    "request_units",
    "present_arguments",
    "added_asks",
    "float_noise",
)
# a placeholder is checked only if a request could be told apart by it (not 1, 10, "en", "bsa")
PLACEHOLDER_MIN_DIGITS = 3
PLACEHOLDER_MIN_CHARS = 4
SPELLING_RATIO = 0.8  # difflib's ratio for "the request states it in another spelling"
QUOTED_MIN_DIGITS = 6  # a request stating the spec's 37.4666405 copied it; "London" or 1729 a user may ask

FAILED_STATUS = {"error", "fail", "failed", "failure"}
NO_ERROR = {"", "false", "none", "null", "0"}  # "error" values that say there is none
# an answer may scale what the result says: a share as a percentage, 1234567 as "1.2 million"
ANSWER_SCALES = tuple(Decimal(s) for s in ("1", "100", "1e-3", "1e-6", "1e-9"))
# a request's quantity may reach an argument in another unit: minutes/hours/days as seconds, km as m
ARGUMENT_FACTORS = tuple(Decimal(f) for f in ("1", "60", "3600", "86400", "100", "1000", "0.01", "0.001"))

_NUMBER = re.compile(
    r"(?<![\w.])(?<![^\W\d_]-)"  # not inside a word or a number, not glued to a word (MP3, COVID-19)
    r"(\d{1,3}(?:[,_ ]\d{3})+(?!\d)|\d+)"  # digits, maybe in thousands: 1,000 1_000 1 000 -> group 1
    r"(\.\d+)?"  # decimals -> group 2
    r"(?:st|nd|rd|th)?(?!\w)"  # an ordinal's suffix (25th), else no letter right after (3D, 4K)
)
_DIGITS = re.compile(r"\d+(?:\.\d+)?(?:[eE][-+]?\d{1,3}(?!\d))?")  # any digits at all (sources: be lenient)
_LIST_MARKER = re.compile(r"^\s*\d+[.)]\s", re.MULTILINE)  # "10. " numbering a line of the answer


def soft_failure(observation: str) -> str | None:
    """Why the result (if JSON) says the call failed, or None."""
    try:
        data = json.loads(observation)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    places = [("", data)] + [(f"{key}.", value) for key, value in data.items() if isinstance(value, dict)]
    for prefix, fields in places:
        for key, value in fields.items():
            if _says_failed(str(key).lower(), value):
                shown = json.dumps(value, ensure_ascii=False)[:80]
                return f"the result says it failed: {prefix}{key} = {shown}"
    return None


def _says_failed(key: str, value: Any) -> bool:
    if key in ("success", "ok"):
        return value is False or (isinstance(value, str) and value.lower() == "false")
    if key == "error":
        if isinstance(value, str):
            return value.strip().lower() not in NO_ERROR
        return value is True or (isinstance(value, (dict, list)) and bool(value))
    if key == "status":
        return isinstance(value, str) and value.strip().lower() in FAILED_STATUS
    return False


def ungrounded_answer(
    answer: str, observation: str, request: str, arguments: Mapping[str, Any]
) -> str | None:
    """Why the answer states numbers found in none of its sources (up to 3 named), or None."""
    sources = set(_lenient_numbers(observation)) | set(_lenient_numbers(request))
    for text in _leaves(arguments):
        sources |= set(_lenient_numbers(text))
    numbers = ISO_DATE.sub(" ", _LIST_MARKER.sub(" ", answer))  # a date is read as a day, below
    invented = [
        digits
        for digits, value in _numbers(numbers)
        if _significant_digits(digits) >= 2 and not any(_rounds_to(value, s) for s in sources)
    ]
    texts = [observation, request, *_leaves(arguments)]
    invented += [day.isoformat() for day in sorted(_invented_days(answer, texts, sources))]
    if not invented:
        return None
    listed = ", ".join(list(dict.fromkeys(invented))[:3])
    return f"the answer states {listed}, found neither in the result, the request nor the arguments"


def _invented_days(answer: str, texts: list[str], numbers: set[Decimal]) -> set[date]:
    """The ISO dates of ``answer`` that none of the source ``texts`` writes (a date's numbers alone are in
    its sources: the year and month of the result's "2026-12-06" let "next Monday is 2026-12-12" through
    as numbers). A source writes a day as a date in any form (``states_day``), or as a Unix timestamp
    among its ``numbers`` (a day either side: time zones)."""
    stamped = {
        day + timedelta(days=d) for n in numbers if (day := stamp_day(n)) is not None for d in (-1, 0, 1)
    }
    return {
        day
        for day in result_dates(answer)
        if day not in stamped and not any(states_day(text, day) for text in texts)
    }


def numbers_stated(request: str) -> list[str]:
    """The numbers ``request`` states (digits without separators, each once): what request_numbers needs a
    call to send."""
    return list(dict.fromkeys(digits for digits, _ in _numbers(request)))


def unused_request_numbers(request: str, arguments: Mapping[str, Any]) -> str | None:
    """Why the call ignores numbers the request states (up to 3 named), or None."""
    texts = list(_leaves(arguments))
    values = {value for text in texts for value in _lenient_numbers(text)}
    unused = [
        digits
        for digits, value in _numbers(request)
        if not any(_written_in(digits, text) for text in texts)
        and not any(_sent_as(value, sent) for sent in values)
        and not converted(request, digits, arguments)
    ]
    if not unused:
        return None
    return f"the call ignores {', '.join(list(dict.fromkeys(unused))[:3])} stated in the request"


def _written_in(digits: str, text: str) -> bool:
    """Whether ``text`` writes the number ``digits`` whole: "15" in "2023-10-15", not "5" (its last digit)."""
    return re.search(rf"(?<!\d){re.escape(digits)}(?!\d)", text) is not None


def wrong_sign(request: str, arguments: Mapping[str, Any]) -> str | None:
    """Why the call sends a stated span of time with the sign its words deny, or None: "add 10 days",
    "10 days after", "in 3 weeks" go forward, "10 days before", "3 weeks ago", "subtract 5 days" go back; a
    call that sends only the opposite number (``days = -10`` for "Add 10 days to June 10") answers another
    request. Read only where the request says one direction for that number."""
    sent = {
        (key, number)
        for key, value in arguments.items()
        for leaf in _leaves(value)
        if (number := _as_number(leaf)) is not None
    }
    signs: dict[Decimal, set[int]] = {}
    for match in _SPAN.finditer(request):
        amount = Decimal(match["n1"] or match["n2"] or match["n3"])
        forward = bool(match["n1"] and match["after"]) or bool(match["n3"])
        signs.setdefault(amount, set()).add(1 if forward else -1)
    for amount, directions in signs.items():
        if len(directions) != 1 or amount == 0:
            continue
        sign = directions.pop()
        if any(number == sign * amount for _, number in sent):
            continue
        wrong = [(key, number) for key, number in sent if number == -sign * amount]
        if wrong:
            key, number = wrong[0]
            way = "forward" if sign > 0 else "back"
            return f"the request counts {amount} {way}, the call sends {key} = {number}"
    return None


# numbers written as words, read by ``stated_numbers``: the count words of ``dates`` and more
_UNITS = ("one first", "two second", "three third", "four fourth", "five fifth", "six sixth", "seven seventh",
          "eight eighth", "nine ninth")  # fmt: skip
_TENS = ("twenty twentieth", "thirty thirtieth", "forty fortieth", "fifty fiftieth", "sixty sixtieth",
         "seventy seventieth", "eighty eightieth", "ninety ninetieth")  # fmt: skip
_NUMBER_WORDS: dict[str, int] = NUMBER_WORDS | {
    word: value
    for value, words in enumerate(
        ("zero none", "single first", "couple second", *_UNITS[2:], "tenth", "eleventh", "twelfth dozen",
         "thirteen thirteenth", "fourteen fourteenth", "fifteenth", "sixteen sixteenth", "seventeen seventeenth",
         "eighteen eighteenth", "nineteen nineteenth")
    )
    for word in words.split()
} | {word: 10 * tens for tens, words in enumerate(_TENS, 2) for word in words.split()}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_COMPOUND = re.compile(  # "twenty-five", "thirty one"
    r"\b(" + "|".join(" ".join(_TENS).split()) + r")[- ](" + "|".join(" ".join(_UNITS).split()) + r")\b",
    re.IGNORECASE,
)
_WORD_NUMBER = re.compile(r"\b(" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")\b", re.I)
_SCALED = re.compile(r"\b(\d+)?\s*\b(" + "|".join(_SCALES) + r")s?\b", re.I)  # "2 hundred", "a million"
# relative days as spans: ``dates.DAYS``' fixed days ("tomorrow" is 1 day away), and a unit "next" or "last"
_FIXED_DAYS = tuple((pattern, abs(days)) for pattern, days in DAYS if not pattern.groups)
_NEXT_UNIT = re.compile(r"\b(?:next|last|this\s+coming)\s+(week|month|year)\b", re.I)
_FORTNIGHT = re.compile(r"\bfortnight\b", re.I)
STATED_MAX = 1_000_000  # numbers of 7+ digits are timestamps and ids (``present_arguments`` reads those)


def spelled_out(text: str) -> str:
    """``text`` with number words as digits and relative days as spans ("in two weeks" -> "in 2 weeks",
    "two hundred" -> "200", "a dozen" -> "1 12", "tomorrow" -> "1 day"), for ``stated_numbers``."""
    for pattern, days in _FIXED_DAYS:
        text = pattern.sub(f"{days} day" + "s" * (days > 1), text)
    text = _FORTNIGHT.sub("2 weeks", _NEXT_UNIT.sub(r"1 \1", text))
    text = _COMPOUND.sub(lambda m: str(_NUMBER_WORDS[m[1].lower()] + _NUMBER_WORDS[m[2].lower()]), text)
    text = _WORD_NUMBER.sub(lambda m: str(_NUMBER_WORDS[m[1].lower()]), text)
    return _SCALED.sub(lambda m: str(int(m[1] or 1) * _SCALES[m[2].lower()]), text)


# parameters that choose how much of a result comes back, not what it is about: a client may set them freely
PAGING = frozenset(
    {
        "limit",
        "offset",
        "page",
        "per_page",
        "perpage",
        "page_size",
        "pagesize",
        "max_results",
        "maxresults",
        "skip",
        "cursor",
    }
)


def unstated_numbers(
    request: str, arguments: Mapping[str, Any], schema: Mapping[str, Any] | None
) -> str | None:
    """Why arguments send whole numbers the request never gives (up to 3 named), or None: not in
    digits, not in words, not scaled by one of ``ARGUMENT_FACTORS`` ("2 km" as ``radius = 2000``), not as a
    quantity converted to the unit the parameter's name gives (``converted``).
    0 and 1, numbers of 7+ digits, fractions, parameters with an ``enum`` and ``PAGING`` ones are not read."""
    properties = (schema or {}).get("properties") or {}
    told = spelled_out(request)
    given = set(_lenient_numbers(told))
    invented = {}
    for key, value in arguments.items():
        spec = properties.get(key)
        if not isinstance(spec, Mapping) or "enum" in spec or key.casefold() in PAGING:
            continue
        number = _as_number(value)
        if number is None or number != number.to_integral_value() or not 1 < abs(number) < STATED_MAX:
            continue
        if any(_sent_as(stated, abs(number)) for stated in given) or any(
            converted(told, digits, {key: str(abs(number))}) for digits, _ in _QUANTITY.findall(told)
        ):
            continue  # as stated, scaled as request_numbers allows (2 km as 2000), or converted
        invented[key] = value
    if not invented:
        return None
    return f"the call sends {format_values(invented)}, which the request does not give"


# unit words -> (kind, unit): a quantity and a parameter name are compared only within one kind
_UNIT_WORDS: dict[str, tuple[str, str]] = {
    word: (kind, unit)
    for kind, units in {
        "time": {
            "millisecond": ("millisecond", "milliseconds", "ms"),
            "second": ("second", "seconds", "sec", "secs"),
            "minute": ("minute", "minutes", "min", "mins"),
            "hour": ("hour", "hours", "hr", "hrs"),
            "day": ("day", "days"),
            "week": ("week", "weeks"),
            "month": ("month", "months"),
            "year": ("year", "years"),
        },
        "distance": {
            "millimetre": ("mm", "millimeter", "millimeters", "millimetre", "millimetres"),
            "centimetre": ("cm", "centimeter", "centimeters", "centimetre", "centimetres"),
            "metre": ("meter", "meters", "metre", "metres"),
            "kilometre": ("km", "kilometer", "kilometers", "kilometre", "kilometres"),
            "mile": ("mile", "miles", "mi"),
            "foot": ("foot", "feet", "ft"),
        },
        "mass": {
            "gram": ("gram", "grams"),
            "kilogram": ("kg", "kilogram", "kilograms", "kilo", "kilos"),
            "pound": ("lb", "lbs"),
            "ounce": ("oz", "ounce", "ounces"),
        },
        "data": {
            "bit": ("bit", "bits"),
            "byte": ("byte", "bytes"),
            "kilobyte": ("kb", "kilobyte", "kilobytes"),
            "megabyte": ("mb", "megabyte", "megabytes"),
            "gigabyte": ("gb", "gigabyte", "gigabytes"),
            # a count of characters has no fixed size in bits: "a 128-bit key" is not 128 characters
            "character": ("character", "characters", "char", "chars"),
        },
    }.items()
    for unit, words in units.items()
    for word in words
}
# each unit in its kind's base unit (second, metre, gram, bit); a month is 30 days, a year 365
_BASE: dict[str, Decimal] = {
    unit: Decimal(size)
    for unit, size in {
        "millisecond": "0.001", "second": "1", "minute": "60", "hour": "3600", "day": "86400",
        "week": "604800", "month": "2592000", "year": "31536000",
        "millimetre": "0.001", "centimetre": "0.01", "metre": "1", "kilometre": "1000", "mile": "1609.344",
        "foot": "0.3048",
        "gram": "1", "kilogram": "1000", "pound": "453.59237", "ounce": "28.349523125",
        "bit": "1", "byte": "8", "kilobyte": "8000", "megabyte": "8000000", "gigabyte": "8000000000",
    }.items()
}  # fmt: skip
CONVERTED_WITHIN = Decimal("0.01")  # a rounded conversion ("100 feet" as 30.5 metres)
CALENDAR_WITHIN = Decimal("0.05")  # months and years vary in length
_QUANTITY = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)\s*-?\s*(" + "|".join(sorted(_UNIT_WORDS, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)
_TIME_UNIT = (
    "(?:"
    + "|".join(sorted((w for w, (kind, _) in _UNIT_WORDS.items() if kind == "time"), key=len, reverse=True))
    + ")"
)
_SPAN = re.compile(  # a span of time and its direction (``wrong_sign``)
    rf"(?<![\w.-])(?P<n1>\d+)\s+{_TIME_UNIT}\s+(?:(?P<after>after|later|from|hence|ahead)|before|ago|earlier|prior|back)\b"
    rf"|\b(?:subtract|minus|take\s+away)\s+(?P<n2>\d+)\s+{_TIME_UNIT}\b"
    rf"|\b(?:add|plus|in)\s+(?P<n3>\d+)\s+{_TIME_UNIT}\b",
    re.IGNORECASE,
)
_NAME_WORD = re.compile(r"[A-Za-z][a-z]*|[A-Z]+(?![a-z])")
_LENGTH_WORDS = {"length", "len"}  # a parameter of these names counts characters


def parameter_unit(name: str) -> tuple[str, str] | None:
    """The unit a parameter's name gives (``days`` -> day, ``timeout_ms`` -> millisecond; a ``length``
    or ``min_len`` counts characters), or None."""
    words = [w.lower() for w in _NAME_WORD.findall(name)]
    if _LENGTH_WORDS & set(words):
        return _UNIT_WORDS["characters"]
    found = {_UNIT_WORDS[w] for w in words if w in _UNIT_WORDS}
    return found.pop() if len(found) == 1 else None


def converted(request: str, digits: str, arguments: Mapping[str, Any]) -> bool:
    """Whether a quantity the request states as ``digits`` with a unit is sent converted to the unit a
    parameter's name gives ("2 weeks" as ``days = 14``, "90 minutes" as ``hours = 1.5``)."""
    for stated, word in _QUANTITY.findall(request):
        if stated != digits:
            continue
        kind, unit = _UNIT_WORDS[word.lower()]
        for key, value in arguments.items():
            sent, number = parameter_unit(key), _as_number(value)
            if sent is None or sent[0] != kind or number is None or {unit, sent[1]} - _BASE.keys():
                continue  # no conversion between characters and bits
            expected = Decimal(digits) * _BASE[unit] / _BASE[sent[1]]
            within = CALENDAR_WITHIN if {unit, sent[1]} & {"month", "year"} else CONVERTED_WITHIN
            if expected and abs(number - expected) <= within * abs(expected):
                return True
    return False


def unit_mismatch(request: str, arguments: Mapping[str, Any]) -> str | None:
    """Why the call sends a quantity of the request in another unit than stated, or None."""
    for digits, word in _QUANTITY.findall(request):
        kind, unit = _UNIT_WORDS[word.lower()]
        for key, value in arguments.items():
            sent = parameter_unit(key)
            if sent is None or sent[0] != kind or sent[1] == unit:
                continue
            if _as_number(value) == Decimal(digits):
                return f"the request states {digits} {word}, the call sends {key} = {json.dumps(value)}"
    return None


def spec_examples(schema: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    """The example values of each parameter the documentation gives: a required parameter's
    ``default``, any parameter's ``example`` and ``examples`` (an optional parameter's default is a
    real default: sending it changes nothing)."""
    properties = (schema or {}).get("properties") or {}
    required = set((schema or {}).get("required") or [])
    out: dict[str, list[Any]] = {}
    for key, spec in properties.items():
        if not isinstance(spec, Mapping):
            continue
        examples = [spec["default"]] if key in required and "default" in spec else []
        examples += [spec["example"]] if "example" in spec else []
        examples += spec["examples"] if isinstance(spec.get("examples"), list) else []
        if examples:
            out[key] = examples
    return out


def quoted_examples(request: str, schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """The documentation's example values a request quotes that no user would have typed (numbers of
    ``QUOTED_MIN_DIGITS``+ significant digits), by parameter."""
    return {
        key: ex
        for key, examples in spec_examples(schema).items()
        for ex in examples
        if _significant_digits(_digits(ex)) >= QUOTED_MIN_DIGITS and _states(request, ex)
    }


def format_values(values: Mapping[str, Any]) -> str:
    """``{"lat": 37.4}`` as "lat = 37.4" (up to 3)."""
    return ", ".join(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in list(values.items())[:3])


def placeholder_arguments(
    request: str, arguments: Mapping[str, Any], schema: Mapping[str, Any] | None
) -> str | None:
    """Why the call sends the documentation's example values (``spec_examples``) that the request does
    not state, or that the request quotes from the documentation (up to 3 named), or None."""
    examples = spec_examples(schema)
    copied = {
        key: value
        for key, value in arguments.items()
        if _distinctive(value)
        and any(_same_value(value, ex) for ex in examples.get(key, []))
        and not _states(request, value)
    }
    if copied:
        return f"the call sends {format_values(copied)}: the spec's example, which the request does not state"
    quoted = {k: v for k, v in quoted_examples(request, schema).items() if k in arguments}
    if quoted:
        return f"the request quotes the spec's example {format_values(quoted)}: no user's own value"
    return None


def dropped_values(original: str, paraphrase: str, arguments: Mapping[str, Any]) -> str | None:
    """Why a paraphrase of ``original`` no longer asks for this call: argument values (numbers of 2+
    digits, text of ``PLACEHOLDER_MIN_CHARS``+ characters) the original states and the paraphrase does
    not (up to 3 named), or None. "Generate a 128-character password" → "Generate a strong password"
    keeps the call's ``length = 128`` and teaches a client to invent it. A day is read however either
    writes it (``dates.states_day``: "January 15, 2023" for ``2023-01-15``). One-digit numbers are not
    read: paraphrases write them as words ("seven days", "one week"). Nor may it ask for another language
    than the original ("… in English" → "… en español": ``memory/language.py``)."""
    asked, again = asked_language(original), asked_language(paraphrase)
    if asked is not None and again != asked:
        if again is None:
            return f"does not ask for {asked.title()}, as the original does"
        return f"asks for {again.title()}, the original for {asked.title()}"
    dropped = {}
    for key, value in arguments.items():
        for leaf in _leaves(value):
            days = result_dates(leaf)
            if days:  # a day, however the requests write it ("January 15, 2023" for 2023-01-15)
                if any(states_day(original, d) and not states_day(paraphrase, d) for d in days):
                    dropped[key] = value if str(value) == leaf else leaf
                    break
                continue
            number = _as_number(leaf)
            if number is not None:
                if len(str(abs(number)).split(".")[0].lstrip("0")) < 2:
                    continue
            elif len(leaf.strip()) < PLACEHOLDER_MIN_CHARS:
                continue
            if _states(original, leaf) and not _states(paraphrase, leaf):
                dropped[key] = value if str(value) == leaf else leaf  # a scalar as the call sends it
                break
    if not dropped:
        return None
    return f"drops {format_values(dropped)}, which the original request states"


# words that add a condition or a second ask to a request: "but only weekdays", "and also its binary form",
# "sorted by reviews", "specifically its largest prime factor" (Spanish: "pero", "también", "además", ...)
_ADDED_ASK = re.compile(
    r"\b(?:but|only|also|as well|besides|except|excluding|instead|in addition|sorted|ordered|then|specifically"
    r"|and (?:its|their)|pero|s[oó]lo|solamente|tambi[eé]n|adem[aá]s|excepto|en vez|en lugar|luego)\b",
    re.I,
)


def added_ask(request: str, arguments: Mapping[str, Any]) -> str | None:
    """Why ``request`` adds a condition or a second ask that no argument of the call carries, or None.

    A request that goes on after "but", "only", "also", "except", "sorted", "specifically", "and its", …
    asks for more than the plain call: "Add 10 days to July 20, 2022, but only for weekdays" sent as
    ``days = 10``, "the number in words, and also its binary form" to a tool that writes words. The part
    from that word on must state a value the call sends ("a password of 16 characters, but only 12" is a
    call with ``length = 12``); else the call serves only the first part, and the pair teaches a client that
    the tool does what it does not. Such a word that ends the request ("the cities of France only") narrows
    what came before and passes. Hindsight's repair writes the request the call does serve."""
    match = _ADDED_ASK.search(request)
    if match is None or not re.search(r"\w", request[match.end() :]):
        return None
    clause = request[match.start() :]
    if any(
        (_as_number(value) is not None or len(value.strip()) >= 3) and _states(clause, value)
        for value in _leaves(arguments)
    ):
        return None
    return f'"{clause[:80]}" asks for more than the call, and none of its arguments carries it'


# a number printed through a binary float: a run of 6+ zeros or nines after the point, then more digits
_FLOAT_NOISE = re.compile(r"[-+]?\d*\.\d*?(?:0{6,}|9{6,})\d*[1-9]")


def float_noise(request: str, arguments: Mapping[str, Any]) -> str | None:
    """Why the call sends a number with a float's rounding noise that the request does not write, or None.

    "2500.00000000000001" for "2500 pesos" or "0.30000000000000004" for "0.3" is the explorer's model
    printing a number through a binary float; the API may take it, but a client shown the call learns to
    send "610.00000000000001" for 610. String and number values are read as Python writes them (a JSON
    number keeps noise a float can hold, 0.30000000000000004); one the request itself states passes."""
    noisy = {
        value.lstrip("+-")
        for value in map(str.strip, _leaves(arguments))
        if _FLOAT_NOISE.fullmatch(value) and not _states(request, value)
    }
    if not noisy:
        return None
    return f"the call sends {', '.join(sorted(noisy)[:3])}: a float's rounding noise, not a number the request writes"


def check_call(
    request: str,
    arguments: Mapping[str, Any],
    schema: Mapping[str, Any] | None,
    checks: Iterable[JudgeCheck] = CALL_CHECKS,
    today: Iterable[date] | None = None,
) -> str | None:
    """The first of ``checks`` that reads only the request and the call which they fail, as "name:
    reason", or None (checks that need the raw result or the answer are skipped). ``today``: the day(s)
    "today" means (default: now; an exemplar is read against the day it was made)."""
    days = set(today) if today is not None else days_of([datetime.now(UTC)])
    for name in checks:
        reason = _call_reason(name, request, arguments, schema, days)
        if reason is not None:
            return f"{name}: {reason}"
    return None


def check_trial(
    trial: TrialRecord,
    checks: Iterable[JudgeCheck] = ALL_CHECKS,
    schema: Mapping[str, Any] | None = None,
    documentation: str = "",
) -> str | None:
    """The first of ``checks`` the trial's last successful call fails, as "name: reason", or None.
    ``schema``: the tool's input schema (``placeholder_arguments`` checks nothing without it);
    ``documentation``: what the tool says of itself (``terms.documentation_of``), which ``named_terms``
    reads with the call and its result."""
    call = trial.last_call
    if call is None:
        return None  # nothing to check: such a trial is not judgeable
    arguments = call.arguments or {}
    for name in checks:
        if name == "soft_failure":
            reason = soft_failure(call.observation)
        elif name == "grounded_answer":
            reason = ungrounded_answer(trial.final_answer or "", call.observation, trial.query, arguments)
        elif name == "result_language":
            reason = language_problem(trial.query, call.observation)
        elif name == "result_date":
            reason = date_problem(trial.query, call.observation, days_of(_ran(trial)))
        elif name == "named_terms":
            reason = unnamed_terms(trial.query, arguments, call.observation, documentation)
        else:
            reason = _call_reason(name, trial.query, arguments, schema, days_of(_ran(trial)))
        if reason is not None:
            return f"{name}: {reason}"
    return None


def _ran(trial: TrialRecord) -> list:
    """When the trial ran (its "today")."""
    return [trial.started_at, trial.recorded_at]


def _call_reason(
    name: JudgeCheck,
    request: str,
    arguments: Mapping[str, Any],
    schema: Mapping[str, Any] | None,
    today: set[date],
) -> str | None:
    """Why the request and the call fail the check ``name`` (None: they pass, or it is no call check)."""
    if name == "request_numbers":
        return (
            unused_request_numbers(request, arguments)
            or wrong_sign(request, arguments)
            or other_day(
                request, arguments, (n for leaf in _leaves(arguments) if (n := _as_number(leaf)) is not None)
            )
        )
    if name == "stated_numbers":
        return unstated_numbers(request, arguments, schema)
    if name == "placeholder_arguments":
        return placeholder_arguments(request, arguments, schema)
    if name == "request_units":
        return unit_mismatch(request, arguments)
    if name == "present_arguments":
        return present_problem(request, arguments, today)
    if name == "added_asks":
        return added_ask(request, arguments)
    if name == "float_noise":
        return float_noise(request, arguments)
    return None


def _as_number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _sent_as(stated: Decimal, sent: Decimal) -> bool:
    """Whether a number a request states reaches a call as ``sent``: as is, or in another unit by one of
    ``ARGUMENT_FACTORS`` (15 minutes as 900 seconds, 2 km as 2000 m)."""
    return any(stated * factor == sent for factor in ARGUMENT_FACTORS)


def _distinctive(value: Any) -> bool:
    """Whether a request could be told apart by this value (see ``PLACEHOLDER_MIN_*``)."""
    if _as_number(value) is not None:
        return _significant_digits(_digits(value)) >= PLACEHOLDER_MIN_DIGITS
    return isinstance(value, str) and len(value.strip()) >= PLACEHOLDER_MIN_CHARS


def _digits(value: Any) -> str:
    """A number's significant digits, without sign, point or trailing zeros ("" for text): 1000 -> "1"."""
    number = _as_number(value)
    if number is None:
        return ""
    return "".join(map(str, abs(number).normalize().as_tuple().digits))


def _same_value(value: Any, example: Any) -> bool:
    a, b = _as_number(value), _as_number(example)
    if a is not None and b is not None:
        return a == b
    return isinstance(value, str) and isinstance(example, str) and _plain(value) == _plain(example)


def _states(request: str, value: Any) -> bool:
    """Whether the request states ``value``: the number, or the text as written or closely spelled."""
    number = _as_number(value)
    if number is not None and any(abs(number) == n for n in _lenient_numbers(request)):
        return True  # the request's numbers are read without their sign
    text, words = _plain(str(value)), _plain(request).split()
    if not text:
        return False
    if text in " ".join(words):
        return True
    size = len(text.split())
    return any(
        SequenceMatcher(None, text, " ".join(words[i : i + size])).ratio() >= SPELLING_RATIO
        for i in range(max(0, len(words) - size + 1))
    )


def _numbers(text: str) -> Iterator[tuple[str, Decimal]]:
    """The numbers written in ``text``: their digits without separators, and their (absolute) value."""
    for match in _NUMBER.finditer(text):
        digits = re.sub(r"[,_ ]", "", match[1]) + (match[2] or "")
        yield digits, Decimal(digits)


def _lenient_numbers(text: str) -> Iterator[Decimal]:
    """Every number ``text`` may mean: as ``_numbers`` reads it, and each run of digits alone."""
    yield from (value for _, value in _numbers(text))
    for digits in _DIGITS.findall(text):
        yield Decimal(digits)


def _significant_digits(digits: str) -> int:
    return len(digits.replace(".", "").lstrip("0"))


def _rounds_to(answer: Decimal, source: Decimal) -> bool:
    """Whether ``source``, maybe scaled, equals ``answer`` rounded or cut to the answer's decimals."""
    step = Decimal(1).scaleb(min(0, answer.as_tuple().exponent))
    for scale in ANSWER_SCALES:
        scaled = source * scale
        try:
            if scaled == answer or any(
                scaled.quantize(step, mode) == answer for mode in (ROUND_HALF_UP, ROUND_DOWN)
            ):
                return True
        except InvalidOperation:  # too many digits to round
            continue
    return False
