"""The language a request asks its answer in, and the language a tool's result is written in.

Small judges do not read languages: the packaged 1.5B accepted "… in English" answered by an endpoint that
writes Spanish, and asked which of two results a request wants it answered "both" (BENCHMARKS, session
20). Sibling endpoints that differ only by the language they write exist in many APIs, and a mislabelled
exemplar teaches a client to call the wrong one. So this is checked mechanically: a request that asks for
one named language ("in English", "into Spanish", "en español", "Spanish words") and a result whose text
is clearly in another (lingua, a statistical language detector that ships its models in its wheel).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

from ste_mcp.upstream.tools import Tool, ToolResult

# language -> the words that name it (English, the language's own, and Spanish/French forms), lower case
NAMES: dict[str, tuple[str, ...]] = {
    "ENGLISH": ("english", "inglés", "ingles", "anglais", "englisch"),
    "SPANISH": ("spanish", "español", "espanol", "española", "castellano", "espagnol", "spanisch"),
    "FRENCH": ("french", "français", "francais", "francés", "frances", "französisch"),
    "GERMAN": ("german", "deutsch", "alemán", "aleman", "allemand"),
    "ITALIAN": ("italian", "italiano", "italien", "italienisch"),
    "PORTUGUESE": ("portuguese", "português", "portugues", "portugués", "portugais"),
    "DUTCH": ("dutch", "nederlands", "holandés", "néerlandais"),
    "RUSSIAN": ("russian", "русский", "ruso", "russe"),
    "CHINESE": ("chinese", "中文", "chino", "chinois"),
    "JAPANESE": ("japanese", "日本語", "japonés", "japonais"),
    "KOREAN": ("korean", "한국어", "coreano", "coréen"),
    "ARABIC": ("arabic", "árabe", "arabe", "العربية"),
    "HINDI": ("hindi", "हिन्दी"),
}
_BY_NAME = {name: lang for lang, names in NAMES.items() for name in names}
_NAME = "|".join(sorted(map(re.escape, _BY_NAME), key=len, reverse=True))
# the answer's language, not a topic ("Spanish restaurants"): "in/into/to/en/a/al <name>", "<name> words",
# Spanish order "letras/texto <name>" ("en texto español")
_ASKED = re.compile(
    rf"(?:\b(?:in|into|to|en|a|al|auf|en\s+idioma)\s+(?:the\s+|el\s+)?({_NAME})(?!\w))"
    rf"|(?:(?<!\w)({_NAME})\s+(?:words?|letters?|text|spelling|translation|version|palabras?|letras?))"
    rf"|(?:\b(?:words?|letters?|palabras?|letras?|texto)\s+({_NAME})(?!\w))",
    re.IGNORECASE,
)
_LETTERS = re.compile(r"[^\W\d_]{2,}", re.UNICODE)
MIN_LETTERS = 8  # shorter texts ("London", "OK") say nothing about a language
CLEAR = 0.9  # the other language's confidence against the asked one, the two alone compared
# Number words: a number-to-words result ("One quintillion", "MIL EUROS 00/100") is too short for a
# statistical detector, but its number words say the language. Languages that write a number's parts as
# separate words only (German and Italian join them into one word)
_NUMBER_WORDS: dict[str, frozenset[str]] = {
    language: frozenset(words.split())
    for language, words in {
        "ENGLISH": "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred "
        "thousand million billion trillion quadrillion quintillion sextillion septillion octillion",
        "SPANISH": "cero uno una dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince "
        "dieciséis veinte veintiún veintidós veintitrés veintiséis treinta cuarenta cincuenta sesenta setenta "
        "ochenta noventa cien ciento doscientos trescientos cuatrocientos quinientos seiscientos setecientos "
        "ochocientos novecientos mil millón millones billón billones trillón trillones",
        "FRENCH": "zéro deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize "
        "vingt trente quarante cinquante soixante cent cents mille millions milliard milliards",
        "PORTUGUESE": "zero um uma dois duas três quatro cinco seis sete oito nove dez onze doze treze catorze "
        "quinze dezesseis vinte trinta quarenta cinquenta sessenta setenta oitenta noventa cem cento duzentos "
        "trezentos quatrocentos quinhentos seiscentos setecentos oitocentos novecentos mil milhão milhões",
    }.items()
}
_NUMBER_PREFIXES = {"SPANISH": ("dieci", "veinti")}  # "diecisiete", "veinticinco"


def asked_language(request: str) -> str | None:
    """The one language ``request`` asks its answer in ("ENGLISH"), or None (none, or several named)."""
    found = {_BY_NAME[next(g for g in m.groups() if g).lower()] for m in _ASKED.finditer(request)}
    return found.pop() if len(found) == 1 else None


def result_text(observation: str) -> str:
    """The words of a result: a JSON result's string values (not its keys), else the text itself."""
    try:
        data = json.loads(observation)
    except (ValueError, TypeError):
        data = observation
    strings: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(data)
    return " ".join(_LETTERS.findall(" ".join(strings))).lower()


def written_in(text: str) -> str | None:
    """The language ``text`` (``result_text``) most likely is, or None when too short to say."""
    if sum(len(w) for w in text.split()) < MIN_LETTERS:
        return None
    top = _detector(tuple(NAMES)).detect_language_of(text)
    return top.name if top is not None else None


def fit(text: str, language: str) -> float:
    """How likely ``text`` is in ``language`` (0-1, among the languages of ``NAMES``)."""
    from lingua import Language

    if sum(len(w) for w in text.split()) < MIN_LETTERS:
        return 0.0
    return _detector(tuple(NAMES)).compute_language_confidence(text, getattr(Language, language))


def other_language(text: str, asked: str) -> str | None:
    """The language ``text`` is clearly written in when that is not ``asked``, else None (it is, or the
    text is too short or too mixed to say). Number words decide where they say it (``number_words_in``)."""
    by_numbers = number_words_in(text, asked)
    if by_numbers is not None:
        return by_numbers
    top = written_in(text)
    if top is None or top == asked:
        return None
    pair = _detector(tuple(sorted((asked, top))))
    confidence = {c.language.name: c.value for c in pair.compute_language_confidence_values(text)}
    return top if confidence.get(top, 0.0) >= CLEAR else None


def number_words_in(text: str, asked: str) -> str | None:
    """The language of a text whose number words are all another language's than ``asked``, or None.

    Read only when ``asked`` has a list of number words (``_NUMBER_WORDS``), the text has ``MIN_LETTERS``
    letters and some number words, none of them
    is the asked language's, and they are a third of its letters or more ("MIL EUROS": a currency beside
    them): "One quintillion" for a request in Spanish is English. A word of several languages ("mil", "cinco")
    counts for each; the language that has the most of them is named."""
    words = text.split()
    if asked not in _NUMBER_WORDS or sum(map(len, words)) < MIN_LETTERS:
        return None
    counts: Counter[str] = Counter()
    letters = 0
    for word in words:
        languages = [
            language
            for language, known in _NUMBER_WORDS.items()
            if word in known or word.startswith(_NUMBER_PREFIXES.get(language, ()))
        ]
        if asked in languages:
            return None
        letters += len(word) if languages else 0
        counts.update(languages)
    if not counts or 3 * letters < sum(map(len, words)):
        return None
    return counts.most_common(1)[0][0]


def language_problem(request: str, observation: str) -> str | None:
    """Why the result does not answer ``request`` in the language it asks for, or None."""
    asked = asked_language(request)
    if asked is None:
        return None
    written = other_language(result_text(observation), asked)
    if written is None:
        return None
    return f"the request asks for {asked.title()}, the result is in {written.title()}"


@lru_cache(maxsize=32)
def _detector(languages: tuple[str, ...]) -> Any:
    from lingua import Language, LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_languages(*(getattr(Language, name) for name in languages)).build()


SiblingResults = Callable[[Tool, Mapping[str, Any]], Awaitable[list[tuple[Tool, str]]]]
"""``(tool, arguments)`` -> the results of the same call to other tools that take the same arguments
(``MemoryExtension.sibling_results``: only tools exploration may call)."""


async def answering_sibling(
    request: str, observation: str, tool: Tool, arguments: Mapping[str, Any], siblings: SiblingResults
) -> tuple[Tool, str] | None:
    """The sibling tool, with its result, that answers ``request`` in the language it asks for when
    ``tool``'s own result (``observation``) is in another one (by the detector, or by its number words as
    ``language_problem`` reads them); None when there is no such request, the own result is in the asked
    language (or too short to say), or no sibling's result is."""
    asked = asked_language(request)
    if asked is None:
        return None
    own = result_text(observation)
    if written_in(own) in (None, asked) and number_words_in(own, asked) is None:
        return None  # in the asked language, as far as the detector and the number words tell
    own_fit = fit(own, asked)
    for sibling, result in await siblings(tool, arguments):
        text = result_text(result)
        if written_in(text) == asked and fit(text, asked) > own_fit:
            return sibling, result
    return None


MAX_SIBLINGS = 3  # calls per moved trial at most


def sibling_caller(
    tools: Callable[[], Iterable[Tool]],
    call: Callable[[Tool, dict[str, Any]], Awaitable[ToolResult]],
    may_call: Callable[[Tool], bool],
) -> SiblingResults:
    """``SiblingResults`` over the served ``tools``: the other tools with the same parameter names that
    accept the arguments as they are and that ``may_call`` allows (exploration's rule: read-only or
    opted in), called with ``call`` (at most ``MAX_SIBLINGS``); failed calls are left out."""
    from ste_mcp.upstream.validation import validate_arguments

    async def results(tool: Tool, arguments: Mapping[str, Any]) -> list[tuple[Tool, str]]:
        names = set(tool.argument_names)
        if not names:
            return []
        out: list[tuple[Tool, str]] = []
        for other in tools():
            if len(out) >= MAX_SIBLINGS:
                break
            if other.name == tool.name or set(other.argument_names) != names:
                continue
            if not may_call(other) or validate_arguments(other, dict(arguments)) is not None:
                continue
            result = await call(other, dict(arguments))
            if not result.is_error:
                out.append((other, result.text))
        return out

    return results
