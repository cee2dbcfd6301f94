"""The names a request gives, and whether its call deals with them (``named_terms``).

An imagined request often names something its call never touches: "the car manufacturers based in
**Europe**" answered by a list of every make, "… to words in **Swedish**" by an English-only endpoint, "a
password for user **'AliceJohnson'**" by a generator that takes no user. The small judge passes these
because the call ran and its result looks like an answer; a client shown the pair learns that the tool
filters, translates or personalises what it cannot. A name is read mechanically: a capitalised word past a
sentence's first word, an acronym, or a quoted value. Each must be found — as written, without accents or
case — in the call's arguments, the tool's result, or the tool's own name, description and schema. Words
that other checks read are left to them: month and weekday names (the date checks), the languages that
``result_language`` knows.
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ste_mcp.memory.language import NAMES
from ste_mcp.memory.text import leaves as _leaves
from ste_mcp.memory.text import plain as _plain

if TYPE_CHECKING:
    from ste_mcp.upstream.tools import Tool

__all__ = ["added_names", "documentation_of", "named_terms", "unnamed_terms"]

MIN_CHARS = 2  # "Z" or 'a' is a letter, not a name
MAX_SOURCE_CHARS = 200_000  # how much of a result is read
_BOUNDARY = re.compile(r"[.?!:;](?:\s|$)|[\n\r¿¡\"“”«»()\[\]]")  # a new sentence (or a quotation) starts
_WORD = re.compile(r"[^\W\d_][\w'’&-]*(?:\.\w+)*")  # "U.S", "AT&T", "O'Brien"
_QUALIFIER = re.compile(
    r"\s*,\s*|\s+(?:(?:in|of|de|en)\s+(?:the\s+)?)?", re.I
)  # "Tokyo, Japan", "… in the US"
_QUOTED = re.compile(r"(?<!\w)['\"‘“«]([^'\"’”»\n]{2,60}?)['\"’”»](?!\w)")
# Spanish, French and Portuguese months and weekdays (the toolbox serves Spanish APIs)
_OTHER_CALENDAR = (
    "enero febrero marzo abril mayo junio julio agosto septiembre setiembre octubre noviembre diciembre lunes "
    "martes miércoles jueves viernes sábado domingo janvier février mars avril mai juin juillet août septembre "
    "octobre novembre décembre lundi mardi mercredi jeudi vendredi samedi dimanche janeiro fevereiro março maio "
    "junho julho setembro outubro novembro dezembro segunda terça quarta quinta sexta"
)
_ENGLISH_CALENDAR = (*calendar.month_name, *calendar.month_abbr, *calendar.day_name, *calendar.day_abbr)
# read by other checks (the date checks, ``result_language``), or capitalised for the reader, naming nothing
_NOT_NAMES = frozenset(
    _plain(word)
    for word in (
        *filter(None, _ENGLISH_CALENDAR),
        *_OTHER_CALENDAR.split(),
        *(name for names in NAMES.values() for name in names),
        *["I", "I'm", "I've", "I'd", "I'll", "OK", "Okay", "Mr", "Mrs", "Ms", "Dr", "Please"],
    )
)


def named_terms(request: str) -> list[str]:
    """The names ``request`` gives: quoted values, then capitalised words and acronyms past each
    sentence's first word (without months, weekdays, language names and "I"), in order, each once."""
    found: list[str] = []
    for term, _, _ in _names(request):
        if _plain(term) not in map(_plain, found):
            found.append(term)
    return found


def unnamed_terms(
    request: str, arguments: Mapping[str, Any], observation: str, documentation: str = ""
) -> str | None:
    """Why a name the request gives is in none of the call's arguments, its result and the tool's
    ``documentation`` (its name, description and schema), or None.

    A name that qualifies one the call sends ("Tokyo, Japan", "Central Park in the United States": after a
    comma, "in", "of", "de" or "en") is read as part of it: the place is what the call looks up."""
    missing = _missing(request, arguments, [observation, documentation, _format_of(observation)])
    return (
        missing
        and f"the request names {missing}, which neither the call nor its result nor the tool deals with"
    )


def added_names(
    original: str, paraphrase: str, arguments: Mapping[str, Any], observation: str = ""
) -> str | None:
    """Why ``paraphrase`` gives a name that neither its ``original`` request (which was held to the real
    result) nor the call's arguments or stored result summary (``observation``) has, or None: "the
    coordinates of Tokyo" reworded as "… of Tokyo, for my trip from Canada" asks about what no call touched."""
    missing = _missing(paraphrase, arguments, [original, observation])
    return missing and f"the paraphrase names {missing}, which its original and its call do not"


def _format_of(observation: str) -> str:
    """The word JSON for a result that is JSON ("" else): a request for it "as JSON" names its own format."""
    try:
        json.loads(observation)
    except ValueError:
        return ""
    return "JSON"


def _missing(request: str, arguments: Mapping[str, Any], texts: list[str]) -> str | None:
    """The names of ``request`` found in none of the arguments and ``texts`` (quoted, at most 3), or None."""
    sent = _plain(" ".join(_leaves(arguments)))
    sources = " ".join([sent, *(_plain(text[:MAX_SOURCE_CHARS]) for text in texts)])
    missing: list[str] = []
    anchor = -1  # where the last name the call sends (or one qualifying it) ends
    for term, start, end in _names(request):
        if (anchor >= 0 and _QUALIFIER.fullmatch(request[anchor:start])) or _plain(term) in sent:
            anchor = end
        elif _plain(term) not in sources and _plain(term) not in map(_plain, missing):
            missing.append(term)
    return ", ".join(f'"{term}"' for term in missing[:3]) or None


def documentation_of(tool: Tool) -> str:
    """What a tool says of itself, for ``unnamed_terms``: its name, prose and schema."""
    schema = json.dumps(tool.input_schema or {}, ensure_ascii=False)
    return "\n".join([tool.name.replace("_", " "), tool.documentation, schema])


def _names(request: str) -> list[tuple[str, int, int]]:
    """Every name of ``request`` with where it stands, in order (quoted values, capitalised words)."""
    found = [(m[1].strip(), m.start(1), m.end(1)) for m in _QUOTED.finditer(request)]
    end = 0
    for match in _WORD.finditer(request):
        first = match.start() == 0 or _BOUNDARY.search(request[end : match.start()]) is not None
        end = match.end()
        word = match[0].rstrip("'’-")
        if not first and word[:1].isupper() and _plain(word) not in _NOT_NAMES:
            found.append((word, match.start(), match.start() + len(word)))
    return sorted((t for t in found if len(t[0]) >= MIN_CHARS and _plain(t[0])), key=lambda t: t[1])
