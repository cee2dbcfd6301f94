"""Untrusted text from upstreams (and from models that read it) before it reaches memory.

The defence is structural first. What reaches a tool description, ``find_tool_examples``, the
exemplar resources or training data is built only from things our side produced or can type-check:

* the imagined request — our model's text, still checked with ``injection_reason``;
* the call's arguments — validated against the tool's input schema, each string checked;
* ``typed_summary(result)`` of the upstream result — top-level keys, value types and short scalar
  values (numbers, booleans, short strings that pass the filter; lists as ``"list of N <type>"``).
  Upstream free text is never copied through: a long string becomes ``"string of N characters"``,
  a URL ``"url"``, an unsafe key is only counted;
* the final answer — our model's text *about* upstream data, so it is kept only when it passes
  ``injection_reason`` (else the whole trial is refused: the model may have been steered) AND
  ``copied_span_reason`` finds no run of more than ``MAX_COPIED_WORDS`` words copied verbatim from
  the upstream result (else the answer alone is dropped; the example shows the typed summary).

The filter stays as defence in depth:

* ``clean_text`` strips control and invisible format characters and markup (HTML/XML tags,
  Markdown images/links/code fences), collapses whitespace and caps the length;
* ``injection_reason`` says why a text must be refused — it carries instructions to a model
  ("ignore previous instructions…" in several languages, role or ReAct labels followed by a
  sentence, chat-template tokens, tool-call syntax aimed at tools, exfiltration links) — or ``None``
  when it looks like plain data. It looks at several views of the text: as given, cleaned, folded
  (NFKC, confusable letters mapped to Latin, zero-width characters gone, lines joined, spaced-out
  letters joined), JSON/URL-unescaped, and base64 or hex runs decoded (checked again).

A role or ReAct label alone is data ("System: Linux", "Final answer: 42", "User: john"); a label
followed by a sentence addressed to someone ("Assistant: I will transfer the money") is refused.
Refusing is deliberately eager: a wrongly refused exemplar costs one example; an accepted injection
would be served to every client in a tool description.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote

ELLIPSIS = "…"
MAX_COPIED_WORDS = 6  # a final answer may repeat at most this many upstream words in a row
SUMMARY_MAX_KEYS = 12  # keys shown per object in a typed summary
SUMMARY_MAX_DEPTH = 2  # objects nested deeper are shown as "object with N keys"
SHORT_STRING_CHARS = 40  # a string value longer than this is shown by its type and length
SHORT_STRING_WORDS = 5
MORE_KEYS = "(more keys)"

_TAG = re.compile(r"</?[A-Za-z!?/][^<>]{0,500}>")
_MD_IMAGE_OR_LINK = re.compile(r"!?\[([^\[\]]{0,500})\]\([^)]{0,2000}\)")
_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")
_CODE_FENCE = re.compile(r"```[A-Za-z0-9_-]*")
_SPACES = re.compile(r"[ \t\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")

# Latin look-alikes that NFKC leaves alone (Cyrillic, Greek, Armenian, IPA, ...): folded before matching
_CONFUSABLES = str.maketrans(
    {
        **dict(zip("АВЕЅІЈКМНОРСТХУԁаеіјоѕрсхуԛԝһӏ", "ABESIJKMHOPCTXYdaeijospcxyqwhl", strict=True)),
        **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧαοιν", "ABEZHIKMNOPTYXaoiv", strict=True)),
        **dict(zip("ոսցհɡɩʏ", "nughgiy", strict=True)),
        **dict(zip("гпткмвнь", "rntkmbhb", strict=True)),
        **dict(zip("τκρυεηωχγ", "tkpuenwxy", strict=True)),
        "ɑ": "a",
        "ı": "i",
        "ȷ": "j",
        "ℓ": "l",
        "@": "a",
        "$": "s",
    }
)
_SPACED_LETTERS = re.compile(r"(?<!\w)(?:\w[ .\-_*·]{1,2}){3,}\w(?!\w)")
_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_RUN = re.compile(r"\b(?:[0-9a-fA-F]{2}){12,}\b")
_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\([nrt\"/\\])")

_STRONG_VERBS = r"ignore|disregard|forget|pay\s+no\s+attention\s+to|do\s+not\s+follow|don'?t\s+follow|stop\s+following|no\s+longer\s+follow"
_WEAK_VERBS = r"override|bypass|skip|discard|abandon|neglect|set\s+aside|drop|circumvent|get\s+around"
_OWN_DETS = (
    r"previous|prior|above|earlier|preceding|foregoing|original|initial|your|my|system|developer|safety"
)
_ANY_DETS = r"all|any|every|the|these|those|of"
_NOUNS = r"instructions?|prompts?|messages?|rules|guidelines|directions|directives|context|commands?|orders|constraints|restrictions|polic(?:y|ies)|programming|training|safeguards|guardrails|filters|system\s+prompt|conversation|guidance"
_STRONG_NOUNS = r"instructions?|prompts?|rules|guidelines|directions|directives|system\s+prompt|programming|safeguards|guardrails|safety\s+(filters|rules|guidelines|policies)"

# (reason, pattern, flags) — checked on every view, case-insensitively
_RULES: list[tuple[str, str, int]] = [
    (
        "instruction to the model (override of earlier instructions)",
        rf"\b({_STRONG_VERBS})\b[^.\n]{{0,40}}\b({_OWN_DETS})\b[^.\n]{{0,40}}\b({_NOUNS})\b"
        rf"|\b({_STRONG_VERBS})\b[^.\n]{{0,40}}\b({_ANY_DETS})\b[^.\n]{{0,40}}\b({_STRONG_NOUNS})\b"
        rf"|\b({_WEAK_VERBS})\b[^.\n]{{0,40}}\b({_OWN_DETS}|all|any)\b[^.\n]{{0,40}}\b({_STRONG_NOUNS})\b"
        rf"|\b({_WEAK_VERBS})\b[^.\n]{{0,20}}\b(previous|prior|above|earlier|preceding|your|safety)\b[^.\n]{{0,30}}\b({_NOUNS})\b"
        rf"|\b({_STRONG_VERBS}|{_WEAK_VERBS})\s+({_STRONG_NOUNS})\b"
        r"|(ignore|disregard|forget)\s+(everything|anything|all)\s+(written\s+|said\s+|stated\s+)?(above|before|prior|previous|earlier)"
        r"|(forget|ignore|disregard)\s+(everything|anything|all|whatever)\s+(that\s+)?(you\s+were|you've\s+been|you\s+have\s+been|you\s+got|i)\s+(told|said|taught|given)",
        0,
    ),
    (
        "instruction to the model (new role or instructions)",
        r"\b(you\s+are\s+now\s+(an?\s+)?(ai|assistant|bot|chatbot|model|different|new|unrestricted|unfiltered|evil|hacker|dan|free|jailbroken|operating|acting|playing|in\s+(developer|god|dan|admin|unrestricted|debug)\s+mode)"
        r"|you\s+are\s+no\s+longer\s+(an?\s+)?(ai|assistant|bound|restricted|limited|chatgpt|claude)"
        r"|from\s+now\s+on,?\s+you\s+(will|must|are|should|shall|answer|respond|reply|act|only|can)"
        r"|new\s+instructions?\s*:|(here\s+are|these\s+are|follow)\s+(your|the|my)\s+(new|updated|real)\s+instructions"
        r"|do\s+anything\s+now|dan\s+mode|god\s+mode"
        r"|system\s+(override|message|notice|update|instruction)\s*:|new\s+(system|developer|admin)\s+(message|prompt|instructions?)"
        r"|your\s+(next|first|only)\s+(step|task|action|job)\s+(is|will\s+be)\s+to"
        r"|\byou\s+(must|should|will|need\s+to|have\s+to)\s+(now\s+)?(ignore|disregard|forget|obey|comply)"
        r"|your\s+(instructions|rules|guidelines|task|goal|orders)\s+(have|has)\s+(changed|been\s+updated|been\s+replaced)"
        r"|(please\s+)?pretend\s+(to\s+be|you\s+are)\s+(my|a|an)\b"
        r"|your\s+(new|real|true|actual|only)\s+(task|job|goal|role|purpose|objective|mission|instructions?)"
        r"|(pretend|act|behave|roleplay)\s+(to\s+be|as\s+if|as|like)\s+(you|an?\s+|the\s+)?[^.\n]{0,30}\b(unrestricted|unfiltered|evil|jailbroken|without\s+(any\s+)?(rules|limits|restrictions))"
        r"|do\s+not\s+(tell|inform|mention|reveal|show)[^.\n]{0,30}\buser|without\s+(telling|informing|alerting|asking)\s+the\s+user"
        r"|(reveal|print|show|output|repeat|display|leak|dump|disclose)\s+(me\s+)?(your|the|all)\s+(\w+\s+)?(system\s+prompt|instructions|hidden\s+prompt|initial\s+prompt|conversation|chat\s+history|previous\s+messages)"
        r"|(reveal|print|output|leak|dump|disclose)\s+(your|all)\s+(\w+\s+)?(api\s+keys?|passwords?|secrets?|credentials|tokens?)"
        r"|(note|message|reminder|instructions?|memo|notice)\s+(to|for)\s+(the\s+|any\s+|all\s+)?(ai|assistant|model|llm|chatbot|language\s+model|ai\s+agent)s?\b"
        r"|if\s+you\s+are\s+(an?\s+|the\s+)?(ai|llm|assistant|language\s+model|ai\s+agent|chatbot|gpt|claude)\b"
        r"|\b(hey|dear|attention|hello|hi|listen)\s*,?\s+(ai|assistant|chatgpt|claude|gpt(-?\d+)?|llm|chatbot|gemini|copilot)\b"
        r"|\b(the|any|an?)\s+(ai|assistant|model|llm|ai\s+agent|chatbot)(\s+model)?\s+(reading|processing|parsing|summari[sz]ing|seeing|viewing)\s+(this|these|the)\b"
        r"|(tell|inform|convince|instruct)\s+the\s+user\s+(that|to)\b"
        r"|(assistant|ai|model|llm|chatbot)s?,?\s+(you\s+)?(must|should|shall|will|needs?\s+to|has\s+to|is\s+required\s+to)\s+(now\s+|immediately\s+|also\s+)?"
        r"(always|never|call|run|use|send|reply|respond|ignore|say|tell|output|print|execute|invoke|transfer|delete|forward|email|include|append|visit|open|click|reveal|stop|obey|follow)\b)",
        0,
    ),
    (
        "chat-template role tag",
        r"<\|[a-z_]{2,30}\|>|\[/?INST\]|<</?SYS>>|</s>\s*<s>|<s>\s*\[|<\s*/?\s*(im_start|im_end|start_of_turn|end_of_turn|eot_id)\b"
        r"|\|(im_start|im_end|endoftext|eot_id)\|"
        r"|^\s*#{1,6}\s*(system|assistant|developer)(\s+(prompt|message|instructions?))?\s*:?\s*$",
        re.M,
    ),
    (
        "tool-call syntax",
        r"\baction\s+input\s*:|<\s*/?\s*(tool_call|function_call|tool_use|invoke|function_calls|antml)\b"
        r"|\"(tool_calls|function_call|tool_use)\"\s*:"
        r"|\b(call|invoke|use|run|execute|trigger)\s+(the\s+|a\s+)?(tool|function)\s+([`'\"]\w|\w*_\w|(named|called)\s+\w)",
        0,
    ),
    (
        "hidden-instruction marker",
        r"<\s*(important|instructions?|secret|hidden|system[-_ ]?(prompt|message|note)|admin|override)\s*>"
        r"|\bIMPORTANT\s*[:!]\s*(the\s+)?(assistant|ai|model|llm|chatbot)\b"
        r"|\b(hidden|secret)\s+instructions?\b",
        0,
    ),
    (
        "exfiltration link",
        r"!\[[^\]]*\]\(\s*https?://"
        r"|\b(send|post|upload|forward|leak|exfiltrate|transmit|email|mail|share|append|submit)\b[^\n]{0,60}"
        r"\b(conversation|chat\s+history|history|system\s+prompt|previous\s+messages|all\s+messages|user'?s?\s+data|personal\s+data|passwords?|secrets|private\s+keys?|ssh\s+keys?|cookies|everything)\b"
        r"[^\n]{0,80}(https?://|\b[\w.+-]+@[\w-]+\.\w|\b(to|at|in)\s+(the\s+|this\s+)?(url|link|webhook)\b)"
        r"|https?://[^\s\"'<>]*(\$\{|\{\{|%7B%7B|\{(history|conversation|chat|secret|data|user_?data|prompt|messages|context|password|token|key|api_key|credentials)\})",
        0,
    ),
]
_INJECTION_RULES = [(reason, re.compile(pattern, flags | re.I)) for reason, pattern, flags in _RULES]

# a label a model reads as a turn or a ReAct step; refused when a sentence follows it. Weak labels
# ("user:", "tool:", "action:") are common in data mid-line, so they count only at a line's start.
_ROLE_LABEL = re.compile(
    r"(?:(?:^|(?<=[\s.;,!?>)\]}\"'|*:-]))"
    r"(?P<word>system|assistant|human|ai|developer|thought|observation|final\s+answer|instruction)\s*:"
    r"|^\s*[#>*-]*\s*(?P<weak>user|bot|model|tool|function|action|admin|root|operator)\s*:"
    r"|[<\[(](?P<tag>system|assistant|user|human|developer|admin|sys|inst)(?:[\s_-]*(?:message|prompt|note|override|turn))?[>\])])"
    r"\s*(?P<rest>[^\n]{0,200})",
    re.I | re.M,
)
# words that make a label's text a sentence addressed to someone, not a value
_CUE_TEXT = """i i'll i'm i've we we'll you you're you'll your yours me my us our please now must should shall will
    would need needs ignore ignoring always never don't tell send call transfer reveal forward delete execute
    switch enter enable disable activate grant give show print output reply respond say obey follow comply
    override bypass reset wire pay visit open click let's instead immediately instructions"""
_CUE_WORDS = frozenset(_CUE_TEXT.split())
_TOKEN = re.compile(r"[\w']+")
# "ignore previous instructions" in other languages: a verb and an instruction noun close together
_ML_VERBS = (
    r"ignorez|ignorer|ignore|ignora|ignorare|ignoriere|ignorieren|ignoriert|vergiss|vergessen|missachte|oubliez|oublie|olvida|olvide|olvidad"
    r"|dimentica|dimenticate|esqueça|esqueca|esquece|negeer|vergeet|zignoruj|zapomnij|pomiń|ignoruj|yok\s+say|unut"
    r"|игнорируй|игнорируйте|проигнорируй|забудь|забудьте|не\s+обращай|ігноруй|забудь"
    r"|忽略|忽视|無視|无视|忘记|忘掉|忘れ|不要理会|무시|잊어|تجاهل|انس|अनदेखा|भूल\s+जा|αγνόησε|ξέχασε"
)
_ML_NOUNS = (
    r"instructions|consignes|règles|regles|instrucciones|indicaciones|reglas|istruzioni|regole|instruções|instrucoes|regras"
    r"|anweisungen|anweisung|befehle|vorgaben|regeln|instructies|regels|instrukcje|instrukcji|polecenia|zasady|talimatları|talimatlar|kuralları"
    r"|инструкции|инструкций|указания|указаний|правила|команды|інструкції|вказівки"
    r"|指令|指示|说明|提示|规则|規則|命令|ルール|プロンプト|지시|지침|명령|규칙|프롬프트|التعليمات|تعليمات|निर्देश|निर्देशों|οδηγίες"
)
_MULTILINGUAL = [
    (
        "instruction to the model in another language (override of earlier instructions)",
        re.compile(
            rf"({_ML_VERBS})[^\n]{{0,60}}?({_ML_NOUNS})|({_ML_NOUNS})[^\n]{{0,30}}?({_ML_VERBS})", re.I
        ),
    ),
    (
        "instruction to the model in another language (new role)",
        re.compile(
            r"tu\s+es\s+maintenant|vous\s+êtes\s+maintenant|du\s+bist\s+jetzt|ahora\s+eres|ora\s+sei|agora\s+você\s+é|теперь\s+ты"
            r"|你现在是|从现在开始你|今からあなたは|あなたは今|지금부터\s*너는|prompt\s+(du\s+)?système|prompt\s+del\s+sistema|systemprompt|системный\s+промпт|系统提示|システムプロンプト",
            re.I,
        ),
    ),
]
_TEXT_RULES = [*_INJECTION_RULES, *_MULTILINGUAL]


def first_rule_match(rules: Iterable[tuple[str, re.Pattern[str]]], text: str) -> tuple[str, str] | None:
    """The reason and the matched text of the first ``(reason, pattern)`` of ``rules`` found in ``text``."""
    for reason, pattern in rules:
        match = pattern.search(text)
        if match is not None:
            return reason, match.group(0)
    return None


# signatures matched on the text with every non-letter removed ("I.g.n.o.r.e a-l-l ...")
_SQUASHED = re.compile(
    r"(ignore|disregard|forget|override)(all|any|the|your|of|every)*(previous|prior|above|earlier|preceding)"
    r"(instructions?|prompts?|rules|messages|directions|guidelines|context)|youarenow(dan|unrestricted|jailbroken|free)"
    r"|newinstructions|revealyoursystemprompt|imstart|endoftext"
    r"|(assistant|system|developer|finalanswer|thought|observation)(iwill|ill|youmust|youwill|youshould|iamgoingto|please)"
)


def clean_text(text: str, max_chars: int) -> str:
    """Plain, printable text of at most ``max_chars`` characters (``…`` marks a cut)."""
    text = unicodedata.normalize("NFKC", str(text))
    text = _ANSI.sub("", html.unescape(text))
    text = _MD_IMAGE_OR_LINK.sub(r"\1", text)
    text = _TAG.sub(" ", text)
    text = _CODE_FENCE.sub(" ", text)
    text = "".join(_keep(ch) for ch in text)
    text = _SPACES.sub(" ", text)
    text = _BLANK_LINES.sub("\n", text)
    text = "\n".join(line.strip() for line in text.split("\n")).strip()
    if len(text) > max_chars:
        text = text[: max(0, max_chars - 1)].rstrip() + ELLIPSIS
    return text


def _keep(ch: str) -> str:
    if ch in "\n\t":
        return ch
    if ch == "\r":
        return "\n"
    category = unicodedata.category(ch)
    if category in ("Cc", "Cf", "Cs", "Co", "Cn"):  # controls, zero-width/bidi format chars, unassigned
        return ""
    if category in ("Zl", "Zp"):
        return "\n"
    return ch


def _fold(text: str) -> str:
    """Confusables mapped to Latin, combining marks dropped, spaced-out letters joined, lines joined."""
    text = text.translate(_CONFUSABLES)
    if not text.isascii():  # ASCII has no marks or compatibility forms: the slow part is skipped
        text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
        text = unicodedata.normalize("NFKC", text).translate(_CONFUSABLES)
    text = _SPACED_LETTERS.sub(lambda m: re.sub(r"[ .\-_*·]", "", m.group(0)), text)
    return " ".join(text.split())


def _unescape(text: str) -> str:
    """JSON string escapes and percent-encoding decoded (an upstream's raw JSON hides newlines)."""

    def one(match: re.Match[str]) -> str:
        if match.group(1):
            return chr(int(match.group(1), 16))
        return {"n": "\n", "r": "\n", "t": "\t"}.get(match.group(2), match.group(2))

    return unquote(_JSON_ESCAPE.sub(one, text))


def _views(text: str) -> list[str]:
    """The forms of ``text`` the rules are checked on (duplicates removed)."""
    raw = unicodedata.normalize("NFKC", text)
    unescaped = _unescape(raw)
    cleaned = clean_text(unescaped, max_chars=len(unescaped) + 1)
    views = [raw, unescaped, cleaned, _fold(cleaned), _fold(raw)]
    return list(dict.fromkeys(views))


def _decoded_runs(text: str) -> Iterator[tuple[str, str]]:
    """(encoding, text) of base64 and hex runs in ``text`` that decode to readable text."""
    for match in _B64_RUN.finditer(text):
        run = match.group(0)
        body = run.rstrip("=")
        if not re.search(r"[A-Z]", body) or not re.search(r"[a-z0-9]", body):
            continue  # identifiers in one case (snake_case names, hex ids) are not base64 text
        padded = body + "=" * (-len(body) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                data = decode(padded)
            except (binascii.Error, ValueError):
                continue
            decoded = _readable(data)
            if decoded:
                yield "base64", decoded
                break
    for match in _HEX_RUN.finditer(text):
        decoded = _readable(bytes.fromhex(match.group(0)))
        if decoded:
            yield "hex", decoded


def _readable(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\n\t")
    letters = sum(1 for ch in text if ch.isalpha())
    if len(text) < 8 or printable < 0.95 * len(text) or letters < 0.5 * len(text):
        return None
    return text


def _sentence_like(rest: str) -> bool:
    """Whether the text after a role label reads as a sentence addressed to someone."""
    words = [t.lower() for t in _TOKEN.findall(rest)[:20] if t.replace("'", "").isalpha()]
    return len(words) >= 2 and any(w in _CUE_WORDS for w in words)


def _role_reason(view: str, tool_names: Iterable[str]) -> str | None:
    names = {n.lower() for n in tool_names}
    for match in _ROLE_LABEL.finditer(view):
        rest = match.group("rest")
        label = (match.group("word") or match.group("weak") or "").lower()
        called = label == "action" and (rest.split() or [""])[0].strip("`'\"").lower() in names
        if _sentence_like(rest) or called:
            kind = (
                "ReAct label" if label in ("thought", "observation", "final answer", "action") else "role tag"
            )
            return f"{kind} followed by an instruction: {_snippet(match.group(0))!r}"
    return None


def injection_reason(text: str, *, tool_names: Iterable[str] = (), _depth: int = 0) -> str | None:
    """Why ``text`` must not be shown to a model as data, or ``None``.

    ``tool_names`` are the names of served tools: a text that names another tool as something to
    call (``send_email(...)``, ``use send_email``) is refused as tool-call syntax aimed at it.
    """
    tool_names = list(tool_names)
    views = _views(str(text))
    for view in views:
        hit = first_rule_match(_TEXT_RULES, view)
        if hit is not None:
            return f"{hit[0]}: {_snippet(hit[1])!r}"
        role = _role_reason(view, tool_names)
        if role is not None:
            return role
    squashed = re.sub(r"[^a-z]", "", views[-1].lower())
    match = _SQUASHED.search(squashed)
    if match is not None:
        return f"instruction to the model (letters split apart): {_snippet(match.group(0))!r}"
    for name in tool_names:
        for view in views:
            call = re.search(
                rf"\b{re.escape(name)}\s*\(|\b(call|invoke|use|run|execute)\s+[`'\"]?{re.escape(name)}\b",
                view,
                re.IGNORECASE,
            )
            if call is not None:
                return f"tool-call syntax aimed at tool {name!r}: {_snippet(call.group(0))!r}"
    if _depth < 2:
        for encoding, decoded in _decoded_runs(views[0]):
            reason = injection_reason(decoded, tool_names=tool_names, _depth=_depth + 1)
            if reason is not None:
                return f"{encoding}-encoded {reason}"
    return None


def _snippet(text: str, limit: int = 40) -> str:
    """A short, printable excerpt of a refused match (stored as the refusal reason)."""
    text = _SPACES.sub(" ", "".join(_keep(ch) for ch in text).replace("\n", " ")).strip()
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


# ---- structural: typed summaries and copied spans ---------------------------------------------
_TRUNCATED = re.compile(r"\.\.\. \[truncated, \d+ more characters\]\s*$")
_KEY = re.compile(r"^[A-Za-z_$@][A-Za-z0-9_.$@-]{0,39}$")
_URL = re.compile(r"^[a-z][a-z0-9+.-]{1,15}://", re.I)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def typed_summary(result: Any, *, tool_names: Iterable[str] = (), max_chars: int | None = None) -> str:
    """A compact JSON text that describes ``result`` by its shape, not its free text.

    ``result`` is the upstream's parsed JSON or its text (JSON, JSON cut short by the explorer's
    ``... [truncated, N more characters]``, or plain text). Objects keep at most
    ``SUMMARY_MAX_KEYS`` keys that look like identifiers and pass the filter, to depth
    ``SUMMARY_MAX_DEPTH``; numbers, booleans and null are kept; a string is kept only when it is
    short (``SHORT_STRING_CHARS``, ``SHORT_STRING_WORDS``), single-line, not a URL or e-mail
    address and passes the filter, else it becomes ``"string of N characters"``; a list becomes
    ``"list of N <type>"``. Over ``max_chars``, nested objects are shown by their key count, then
    keys are dropped from the end (counted under ``"(more keys)"``). The function is idempotent:
    a summary summarises to itself.
    """
    names = list(tool_names)
    value = _parse_result(result) if isinstance(result, str) else result
    summary = _summarise(value, 0, names)
    text = _dump(summary)
    if max_chars is None or len(text) <= max_chars:
        return text
    if isinstance(summary, dict):
        summary = {k: f"object with {len(v)} keys" if isinstance(v, dict) else v for k, v in summary.items()}
        hidden = summary.pop(MORE_KEYS, 0)
        while summary and len(_dump({**summary, MORE_KEYS: hidden})) > max_chars:
            summary.popitem()
            hidden += 1
        text = _dump({**summary, MORE_KEYS: hidden})
        if len(text) <= max_chars:
            return text
    return _dump(_type_name(value))


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _parse_result(text: str) -> Any:
    text = _TRUNCATED.sub("", text.strip())
    if not text:
        return ""
    try:
        return json.loads(text)
    except ValueError:
        pass
    if text[0] in "{[":
        partial = _partial_json(text)
        if partial is not None:
            return partial
    return _PlainText(text)


class _PlainText(str):
    """An upstream result that is not JSON (summarised as text, not as a string value)."""


class _Cut(dict):
    """An object whose text was cut short: the members before the cut."""


def _partial_json(text: str) -> Any:
    """The complete members of a JSON object or list cut short (or followed by other text)."""
    decoder = json.JSONDecoder()
    try:
        value, _end = decoder.raw_decode(text)
        return value
    except ValueError:
        pass
    pos, n = 1, len(text)

    def skip(i: int) -> int:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        return i

    if text[0] == "{":
        members: dict[str, Any] = _Cut()
        while True:
            pos = skip(pos)
            try:
                key, pos = decoder.raw_decode(text, pos)
                pos = skip(pos)
                if pos >= n or text[pos] != ":":
                    break
                value, pos = decoder.raw_decode(text, skip(pos + 1))
            except ValueError:
                break
            if not isinstance(key, str):
                break
            members[key] = value
        return members
    items: list[Any] = []
    while True:
        pos = skip(pos)
        try:
            value, pos = decoder.raw_decode(text, pos)
        except ValueError:
            break
        items.append(value)
    return _CutList(items)


class _CutList(list):
    """A list whose text was cut short: the items before the cut."""


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "value"


def _summarise(value: Any, depth: int, tool_names: list[str]) -> Any:
    if isinstance(value, _PlainText):
        short = _short_string(value, tool_names)
        return short if short is not None else f"text of {len(value)} characters"
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value if math.isfinite(value) else "number"
    if isinstance(value, str):
        short = _short_string(value, tool_names)
        return short if short is not None else f"string of {len(value)} characters"
    if isinstance(value, list):
        types = {_type_name(v) for v in value}
        kind = types.pop() if len(types) == 1 else "mixed"
        more = "+" if isinstance(value, _CutList) else ""
        return f"list of {len(value)}{more} {kind}" if value or more else "empty list"
    if isinstance(value, dict):
        if depth >= SUMMARY_MAX_DEPTH:
            return f"object with {len(value)} keys"
        out: dict[str, Any] = {}
        hidden = 0
        for key, item in value.items():
            if key == MORE_KEYS and isinstance(item, int) and not isinstance(item, bool):
                hidden += item
            elif len(out) < SUMMARY_MAX_KEYS and _safe_key(key, tool_names):
                out[key] = _summarise(item, depth + 1, tool_names)
            else:
                hidden += 1
        if isinstance(value, _Cut):
            out["(cut short)"] = True
        if hidden:
            out[MORE_KEYS] = hidden
        return out
    return _type_name(value)


def _safe_key(key: str, tool_names: list[str]) -> bool:
    if key == "(cut short)":
        return True
    if not _KEY.match(key):
        return False
    words = _CAMEL.sub(" ", key).replace("_", " ").replace("-", " ").replace(".", " ")
    return injection_reason(words, tool_names=tool_names) is None and injection_reason(key) is None


def _short_string(value: str, tool_names: list[str]) -> str | None:
    """``value`` itself when it is a short, plain, harmless string; else ``None``."""
    if not value:
        return value
    if _URL.match(value):
        return "url"
    if _EMAIL.match(value):
        return "email address"
    if (
        len(value) > SHORT_STRING_CHARS
        or len(value.split()) > SHORT_STRING_WORDS
        or clean_text(value, SHORT_STRING_CHARS + 1) != value.strip()
        or value != value.strip()
    ):
        return None
    words = _CAMEL.sub(" ", value).replace("_", " ")
    if injection_reason(value, tool_names=tool_names) is not None or injection_reason(words) is not None:
        return None
    return value


def _tokens(text: str) -> list[str]:
    return [w.lower() for w in re.findall(r"\w+", unicodedata.normalize("NFKC", text))]


def copied_span_reason(answer: str, upstream: str, max_words: int = MAX_COPIED_WORDS) -> str | None:
    """Why ``answer`` repeats upstream free text: a run of more than ``max_words`` words (``\\w+``
    tokens, case-insensitive) that also occurs in ``upstream``; ``None`` when there is none."""
    said, seen = _tokens(answer), _tokens(upstream)
    n = max_words + 1
    if len(said) < n or len(seen) < n:
        return None
    runs = {tuple(seen[i : i + n]) for i in range(len(seen) - n + 1)}
    for i in range(len(said) - n + 1):
        if tuple(said[i : i + n]) in runs:
            return f"it repeats more than {max_words} words of the upstream result verbatim: {' '.join(said[i : i + n])!r}"
    return None
