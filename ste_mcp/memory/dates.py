"""The day a request asks about, read mechanically (judge checks ``result_date`` and ``present_arguments``).

A small judge accepts "the exact date of tomorrow's meeting" answered by a today's-date endpoint: the
call succeeded and the result is a date. What it cannot read, arithmetic can: a request that names one
day relative to today ("tomorrow", "3 days ago", "two weeks from now", "in a year") asks for that day,
and a result that gives dates but not that one does not answer it. A request that names a weekday counted
from now ("next Monday", "this Friday", "last Tuesday") asks for a day of that weekday: a result that gives
dates, none of them on it, does not answer it (today's date for "the date of next Monday").

An explorer also brings its own idea of today — the time its model was trained — and sends "one year
from today" as ``date = 2023-04-01`` and "at the current time" as a 2021 timestamp: a request about the
present may not send a date or timestamp from before the trial's day (``present_problem``).

A verified call for a request counted from today is right only on the day it was made: served later as a
demonstration, "10 days from today" → ``date = 2026-12-05`` teaches a client a day that has passed.
``as_of`` moves such an exemplar's days (ISO dates in its arguments, result and answer; timestamps in
time-named parameters) by the days since, as if it had run today; a text it cannot move reliably (a month
name, a weekday, the bare year) is left out rather than shown wrong.

Only what is certain is read: one such expression, no date stated in the request (then the anchor is
that date, not today), no other quantity of time beside it ("one year from today plus 5 days"), and
"today" is the trial's own day (its start and end, in UTC and local time: a trial across midnight or
an upstream in another time zone is not refused for it).
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ste_mcp.memory.exemplars import Exemplar

# a calendar month or year is not a fixed number of days: an explorer's "+ 90 days" for "3 months" passes
CALENDAR_SLACK_DAYS = 3
NUMBER_WORDS = {  # the count words a span of time is read with ("two weeks"); checks.py reads more
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30,
}  # fmt: skip
_COUNT = r"(\d{1,4}|" + "|".join(NUMBER_WORDS) + r")"
_UNIT = r"(day|week|month|year)s?"
_AFTER = r"(?:from\s+(?:now|today)|after\s+today|hence)"
_BEFORE = r"(?:ago|before\s+today|earlier\s+than\s+today)"
DAYS = (  # (pattern, sign or fixed offset in days); longest first: "the day after tomorrow" is not also "tomorrow"
    (re.compile(r"\bday\s+after\s+tomorrow\b", re.I), 2),
    (re.compile(r"\bday\s+before\s+yesterday\b", re.I), -2),
    (re.compile(r"\btomorrow\b", re.I), 1),
    (re.compile(r"\byesterday\b", re.I), -1),
    (re.compile(rf"\b{_COUNT}\s+{_UNIT}\s+{_AFTER}", re.I), 1),
    (re.compile(rf"\b{_COUNT}\s+{_UNIT}\s+{_BEFORE}", re.I), -1),
    (re.compile(rf"\bin\s+{_COUNT}\s+{_UNIT}\b(?!\s+(?:of|from|before|after|ago))", re.I), 1),
)
_TIME_QUANTITY = re.compile(rf"\b{_COUNT}\s+{_UNIT}\b", re.I)
# a date the request states: 2023-06-15, 15/06/2023, "June 15", "15 June 2023"
_MONTHS = "|".join(m for m in calendar.month_name if m) + "|" + "|".join(m for m in calendar.month_abbr if m)
_STATED_DATE = re.compile(
    rf"\b\d{{4}}-\d{{1,2}}-\d{{1,2}}\b|\b\d{{1,2}}[/.]\d{{1,2}}[/.]\d{{2,4}}\b"
    rf"|\b(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTHS})\b",
    re.I,
)
ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")  # alone or in a timestamp
# the request speaks of the present, and of no day before it
_PRESENT = re.compile(
    r"\b(?:today|now|currently|(?:current|present)\s+(?:time|date|day|moment)|at\s+the\s+moment|at\s+present"
    r"|this\s+moment|tonight)\b",
    re.I,
)
# "the current offsets", "the current exchange rate": the present too, unless a year is named
_CURRENT = re.compile(r"\bcurrent\b", re.I)
_PAST = re.compile(r"\b(?:ago|yesterday|last|past|previous|since|before|earlier|history|historical)\b", re.I)
_WEEKDAY = re.compile(
    r"\b(?:" + "|".join(calendar.day_name) + "|" + "|".join(calendar.day_abbr) + r")\b", re.I
)
# a weekday counted from now: "next Monday", "this coming Friday", "last Tuesday" (full names only)
_RELATIVE_WEEKDAY = re.compile(
    r"\b(?:next|this|coming|upcoming|following|last|previous|past)\s+(?:coming\s+)?("
    + "|".join(calendar.day_name)
    + r")\b",
    re.I,
)
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")
_TIME_NAME = re.compile(r"time|stamp|date|epoch|(?:^|_)ts$", re.I)
# Unix timestamps of 2001-09-09 .. 2096-10-02, in seconds or milliseconds
_SECONDS = (1_000_000_000, 4_000_000_000)


@dataclass(frozen=True)
class AskedDay:
    """One day relative to today a request asks about: ``phrase``, as an offset of ``amount`` units."""

    phrase: str
    amount: int
    unit: str

    @classmethod
    def read(cls, match: re.Match[str], sign: int) -> AskedDay:
        """From a match of ``DAYS``: a fixed offset in days, or a count of units with its sign."""
        if match.lastindex is None:
            return cls(match[0], sign, "day")
        count = int(match[1]) if match[1].isdigit() else NUMBER_WORDS[match[1].lower()]
        return cls(match[0], sign * count, match[2].lower())

    def on(self, today: date) -> date:
        """The day asked, counted from ``today``."""
        if self.unit == "day":
            return today + timedelta(days=self.amount)
        if self.unit == "week":
            return today + timedelta(weeks=self.amount)
        months = self.amount * (12 if self.unit == "year" else 1)
        year, month = divmod(today.month - 1 + months, 12)
        year += today.year
        return date(year, month + 1, min(today.day, calendar.monthrange(year, month + 1)[1]))

    @property
    def slack(self) -> int:
        """Days a result may differ by (months and years have no fixed length)."""
        return CALENDAR_SLACK_DAYS if self.unit in ("month", "year") else 0


def asked_day(request: str) -> AskedDay | None:
    """The one day relative to today that ``request`` asks about, or None (none, several, a stated
    date as the anchor, or another quantity of time beside it)."""
    if _STATED_DATE.search(request):
        return None
    found: list[tuple[tuple[int, int], AskedDay]] = []
    for pattern, sign in DAYS:
        for m in pattern.finditer(request):
            if not any(a <= m.start() < b for (a, b), _ in found):
                found.append((m.span(), AskedDay.read(m, sign)))
    if len(found) != 1:
        return None
    (start, end), day = found[0]
    if any(not (start <= m.start() < end) for m in _TIME_QUANTITY.finditer(request)):
        return None  # "one year from today plus 5 days": a sum this reader does not add up
    return day


def asked_weekday(request: str) -> tuple[str, int] | None:
    """The weekday counted from now that ``request`` asks about, as (phrase, weekday: Monday 0), or None
    (none, several weekdays, a stated date, a quantity of time beside it: "3 days after next Monday", or a
    day relative to today: ``asked_day`` reads that)."""
    if _STATED_DATE.search(request) or _TIME_QUANTITY.search(request) or asked_day(request) is not None:
        return None
    found = list(_RELATIVE_WEEKDAY.finditer(request))
    names = {m[1].casefold() for m in found}
    if len(names) != 1:
        return None
    weekday = [name.casefold() for name in calendar.day_name].index(names.pop())
    return found[0][0], weekday


def asks_a_day(request: str) -> bool:
    """Whether ``request`` asks about a day relative to now that ``date_problem`` reads."""
    return asked_day(request) is not None or asked_weekday(request) is not None


def result_dates(observation: str) -> set[date]:
    """Every ISO date (YYYY-MM-DD, alone or in a timestamp) a result gives."""
    out = set()
    for year, month, day in ISO_DATE.findall(observation or ""):
        try:
            out.add(date(int(year), int(month), int(day)))
        except ValueError:
            continue
    return out


_MONTH_NUMBER = {name.casefold(): i for i, name in enumerate(calendar.month_name) if name} | {
    name.casefold(): i for i, name in enumerate(calendar.month_abbr) if name
}
_NAMED_DAY = re.compile(  # "January 15, 2023", "Jan. 15th", "15 January 2023", "the 15th of January"
    rf"\b(?P<m1>{_MONTHS})\.?\s+(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<y1>\d{{4}})\b)?"
    rf"|\b(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m2>{_MONTHS})\b\.?(?:,?\s+(?P<y2>\d{{4}})\b)?",
    re.I,
)
_NUMERIC_DAY = re.compile(r"(?<![\d/.-])(\d{1,4})[-/.](\d{1,2})[-/.](\d{1,4})(?![\d/-]|\.\d)")


def states_day(text: str, day: date) -> bool:
    """Whether ``text`` writes ``day``: as 2023-01-15, 15/01/2023 or 01/15/2023 (either reading), or with
    the month's name ("January 15, 2023", "15th of Jan"; without a year, any year)."""
    for a, b, c in _NUMERIC_DAY.findall(text or ""):
        readings = [(a, b, c)] if len(a) == 4 else [(c, b, a), (c, a, b)]  # y-m-d; d/m/y or m/d/y
        for year, month, dom in readings:
            full = int(year) + (2000 if len(year) == 2 else 0)
            if (full, int(month), int(dom)) == (day.year, day.month, day.day):
                return True
    for m in _NAMED_DAY.finditer(text or ""):
        month = _MONTH_NUMBER[(m["m1"] or m["m2"]).casefold()]
        dom, year = int(m["d1"] or m["d2"]), m["y1"] or m["y2"]
        if (month, dom) == (day.month, day.day) and (year is None or int(year) == day.year):
            return True
    return False


def days_of(moments: Iterable[datetime]) -> set[date]:
    """The calendar days of these moments, in UTC and in local time."""
    out = set()
    for moment in moments:
        out.add(moment.date())
        out.add(moment.astimezone().date())
    return out


def date_problem(request: str, observation: str, today: Iterable[date]) -> str | None:
    """Why the result does not give the day the request asks about, or None (it does, the request asks
    no such day, or the result gives no date). ``today``: the day(s) the trial ran on."""
    asked = asked_day(request)
    given = result_dates(observation)
    if not given:
        return None
    if asked is None:
        return _weekday_problem(request, given)
    wanted = sorted({asked.on(day) for day in today})
    if not wanted:
        return None
    if any(abs((got - want).days) <= asked.slack for got in given for want in wanted):
        return None
    shown = ", ".join(d.isoformat() for d in sorted(given)[:3])
    return f"the request asks about {asked.phrase} ({wanted[-1].isoformat()}), the result gives {shown}"


def _weekday_problem(request: str, given: set[date]) -> str | None:
    """Why dates ``given`` by a result do not answer a request about a weekday counted from now (none of
    them falls on it), or None."""
    asked = asked_weekday(request)
    if asked is None or any(day.weekday() == asked[1] for day in given):
        return None
    shown = ", ".join(f"{d.isoformat()} (a {calendar.day_name[d.weekday()]})" for d in sorted(given)[:3])
    return f"the request asks about {asked[0]}, the result gives {shown}"


def argument_days(arguments: Mapping[str, Any]) -> Iterator[tuple[str, Any, date]]:
    """Each argument that gives a day: an ISO date in a text value, or a Unix timestamp (seconds or
    milliseconds) in a parameter whose name says time, date or stamp; as (name, value, day)."""
    for key, value in arguments.items():
        if isinstance(value, str):
            for day in sorted(result_dates(value)):
                yield key, value, day
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not _TIME_NAME.search(key):
            continue
        if (day := stamp_day(value)) is not None:
            yield key, value, day


def stamp_day(value: float | Decimal) -> date | None:
    """The day of ``value`` read as a Unix timestamp in seconds or milliseconds, or None (out of range)."""
    for scale in (1, 1000):
        if _SECONDS[0] * scale <= value < _SECONDS[1] * scale:
            return datetime.fromtimestamp(float(value) / scale, UTC).date()
    return None


def other_day(request: str, arguments: Mapping[str, Any], sent: Iterable[Any]) -> str | None:
    """Why a call that counts a span of time itself sends a day the request does not write, or None.

    "30 days from June 15, 2023" called as ``date = 2023-10-15, days = 30``: the call sends the request's
    span (30 days) as a number, so the day it counts from must be the one the request writes, however it
    is written (``states_day``). Read only where the request writes a day and the call sends one of its
    spans; a tool that takes the day counted to (``date = 2023-06-18`` for "3 days after June 15") sends no
    span and is not read. ``sent``: the numbers the call sends. A timestamp may be a day off (time zones)."""
    if not (_NAMED_DAY.search(request or "") or _NUMERIC_DAY.search(request or "")):
        return None
    spans = set()
    for m in _TIME_QUANTITY.finditer(request):
        count = int(m[1]) if m[1].isdigit() else NUMBER_WORDS[m[1].lower()]
        spans |= {count, 7 * count} if m[2].lower() == "week" else {count}  # "two weeks" sent as 14 days
    if not spans & {abs(number) for number in sent}:
        return None
    for key, value, day in argument_days(arguments):
        near = [day] if isinstance(value, str) else [day + timedelta(days=d) for d in (-1, 0, 1)]
        if not any(states_day(request, d) for d in near):
            shown = json.dumps(value, ensure_ascii=False)
            return f"the request writes the day to count from, the call sends {key} = {shown} ({day.isoformat()})"
    return None


def present_problem(request: str, arguments: Mapping[str, Any], today: Iterable[date]) -> str | None:
    """Why a call for a request about the present ("today", "now", "at the current time") sends a day
    from before the trial's day (more than a day before: time zones), or None. A request that states a
    date or speaks of the past ("3 days ago", "last week") is not read."""
    days = sorted(set(today))
    if not days or not _speaks_of_present(request) or _STATED_DATE.search(request) or _PAST.search(request):
        return None
    for key, value, day in argument_days(arguments):
        if (days[0] - day).days > 1:
            sent = json.dumps(value, ensure_ascii=False)
            return f"the request speaks of the present ({days[-1].isoformat()}), the call sends {key} = {sent} ({day.isoformat()})"
    return None


# words whose meaning depends on the day they are said in ("tomorrow", "this week", "expires", "latest")
_TIME_WORDS = re.compile(
    r"\b(?:tomorrow|yesterday|tonight|days?|weeks?|weekends?|months?|years?|dates?|hours?|minutes?|times?"
    r"|expir\w*|valid\w*|deadlines?|schedul\w*|ages?|old|recent\w*|latest|upcoming|future|forecasts?)\b",
    re.I,
)
_MOMENT_NAME = re.compile(_TIME_NAME.pattern + "|day|hour|week|month|year", re.I)  # a moment, or a span
_TIME_FORMATS = {"date", "date-time", "time"}


def speaks_of_time(request: str) -> bool:
    """Whether ``request`` speaks of time at all: a day, a date, a weekday, a year, a span, the present
    or the past."""
    return about_present(request) or any(
        pattern.search(request)
        for pattern in (_STATED_DATE, _YEAR, _PAST, _WEEKDAY, _TIME_QUANTITY, _TIME_WORDS)
    )


def time_parameters(schema: Mapping[str, Any]) -> list[str]:
    """The parameters of a tool's input ``schema`` that take a moment or a span of time: named for a time,
    a date, a stamp, a day, an hour, a week, a month or a year, or of a date / time format."""
    properties = schema.get("properties") or {}
    return [
        name
        for name, spec in properties.items()
        if _MOMENT_NAME.search(name) or (isinstance(spec, Mapping) and spec.get("format") in _TIME_FORMATS)
    ]


def about_present(request: str) -> bool:
    """Whether ``request`` counts from today ("today", "now", "tomorrow", "3 days ago", "in two weeks")
    and states no date of its own."""
    if _STATED_DATE.search(request):
        return False
    return _speaks_of_present(request) or any(pattern.search(request) for pattern, _ in DAYS)


def _speaks_of_present(request: str) -> bool:
    """Whether ``request`` names the present ("today", "now", "at the current time", "the current rate")."""
    return bool(_PRESENT.search(request) or (_CURRENT.search(request) and not _YEAR.search(request)))


def goes_stale(exemplar: Exemplar) -> bool:
    """Whether ``exemplar`` is right only on the day it was made: a request counted from today whose
    call, result or answer gives a day."""
    if not about_present(exemplar.query):
        return False
    return _sends_a_day(exemplar) or bool(
        result_dates(exemplar.observation) or result_dates(exemplar.final_answer)
    )


def dated_call(exemplar: Exemplar) -> bool:
    """Whether ``exemplar``'s call itself is right only on the day it was made: a request counted from
    today whose arguments give a day (``get_today_date {}`` for "what is today's date" is right on any
    day; only its result is not)."""
    return _sends_a_day(exemplar) and about_present(exemplar.query)


def _sends_a_day(exemplar: Exemplar) -> bool:
    return next(argument_days(exemplar.arguments), None) is not None


def made_on(exemplar: Exemplar) -> date:
    """The day ``exemplar`` was made, in this machine's time (the explorer's "today" is local too)."""
    return exemplar.provenance.created_at.astimezone().date()


def as_of(exemplar: Exemplar, today: date | None = None) -> Exemplar:
    """``exemplar`` as if it had run ``today`` (default: this machine's day): a stale one (``goes_stale``)
    with every ISO date and timestamp moved by the days since it was made, its result and answer left out
    where they give the day in a form that cannot be moved; any other exemplar unchanged."""
    made = made_on(exemplar)
    days = ((today or date.today()) - made).days
    if days == 0 or not goes_stale(exemplar):
        return exemplar
    year = made.year if (made + timedelta(days=days)).year != made.year else None
    return exemplar.model_copy(
        update={
            "arguments": {key: _moved(key, value, days) for key, value in exemplar.arguments.items()},
            "observation": _moved_text(exemplar.observation, days, year),
            "final_answer": _moved_text(exemplar.final_answer, days, year),
        }
    )


def _moved(key: str, value: Any, days: int) -> Any:
    """An argument value with its ISO dates (and, under a time-named key, its Unix timestamp) moved."""
    if isinstance(value, str):
        return _move_dates(value, days)
    if isinstance(value, dict):
        return {k: _moved(k, v, days) for k, v in value.items()}
    if isinstance(value, list):
        return [_moved(key, v, days) for v in value]
    if isinstance(value, bool) or not isinstance(value, int | float) or not _TIME_NAME.search(key):
        return value
    for scale in (1, 1000):
        if _SECONDS[0] * scale <= value < _SECONDS[1] * scale:
            return value + days * 86400 * scale
    return value


def _move_dates(text: str, days: int) -> str:
    def move(m: re.Match[str]) -> str:
        try:
            return (date(int(m[1]), int(m[2]), int(m[3])) + timedelta(days=days)).isoformat()
        except (ValueError, OverflowError):
            return m[0]

    return ISO_DATE.sub(move, text)


def _moved_text(text: str, days: int, year: int | None) -> str:
    """``text`` with its ISO dates moved, or "" when it also gives the day in a form not moved (a month
    name or a weekday; the bare ``year``, the year it was made when that is no longer the year)."""
    if not text:
        return text
    rest = ISO_DATE.sub(" ", text)
    if (
        _STATED_DATE.search(rest)
        or _WEEKDAY.search(rest)
        or (year is not None and str(year) in _YEAR.findall(rest))
    ):
        return ""
    return _move_dates(text, days)
