"""Every prompt the explorer sends, in one place, versioned.

The wording follows STE (Wang et al. 2024) but is written for today's instruction-tuned chat models:
short, direct, one job per message. The call format itself (ReAct text or native tool calls) comes
from the call protocol (``ste_mcp.llm.protocols``); these texts only say what to do. Bump
``PROMPT_VERSION`` whenever a text changes: it is stored with every trial.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from ste_mcp.memory.dates import speaks_of_time, time_parameters

PROMPT_VERSION = "ste-explore-9"

EXPLORER_INSTRUCTIONS = """\
You are practising how to use a tool. You will invent realistic requests a user might make, \
fulfil each one by really calling the tool, look at what it returns, and then say honestly \
whether the request was fulfilled."""

_IMAGINE_FIRST = """\
The tool `{name}`: {description}

{memory}Invent ONE new, specific request that a real user could make and that this tool can help with. \
Write it as the user would: natural and concrete (real names, places, values), without naming the tool \
or copying its description.{settings}{novelty}
Reply with the request only, on one line. Do not answer it yet."""

# What a call can set, without the spec's example values. A request that leaves a required value open gets
# the example in the call (BENCHMARKS, "Placeholders"); one that asks for what no argument expresses ("the top
# 5 car makes", "a password of 20 characters" from tools without arguments, Paris "in French" where lang is en
# or ru) is answered partly or not at all: of session 35's 108 teacher trials, 34 were refused for a stated number
# no call sent (memory.judge_checks request_numbers) and 9 never got past the Places API's lang error
_NO_SETTINGS = (
    " The tool takes no arguments: a call cannot set a number, a count, a length, a date, a filter or anything "
    "else, so ask only for what it gives as it is."
)
_SETTINGS = " A call can set {only}{params}.{required} Ask for nothing these cannot express."
_REQUIRED = " The request must state {names} in the user's own terms."
_MEMORY = "Requests already tried with this tool ([ok] = fulfilled, [failed] = not):\n{items}\n\n"
_MEMORY_UNMARKED = "Requests already tried with this tool:\n{items}\n\n"  # explorer.reflect off
_NOVELTY = " Make it clearly different from the requests already tried: other parameters, other values or another kind of use."

IMAGINE_NEXT = """\
Based on what you just learned about the tool, invent ONE new request that explores it further: \
a different parameter, value or kind of use than earlier in this conversation. \
Reply with the request only, on one line. Do not answer it yet."""

IMAGINE_RETRY = "Reply with one user request only, on a single line, without answering it."
IMAGINE_DIFFERENT = (
    "That request was already tried. Invent a different one: other values or another kind of use."
)
IMAGINE_NATURAL = (
    "Write that request again as a user who has never seen the tool would: ask for the result you want "
    "in your own words, with concrete values, without naming the tool or talking about tools, APIs or "
    "functions."
)
IMAGINE_OWN_VALUES = (
    "That request uses the example values of the tool's documentation ({values}). A real user asks about "
    "their own: write it again with other concrete values."
)
IMAGINE_NO_NUMBERS = (
    "The tool takes no arguments, so a call cannot send {numbers}. Write the request again without a number, "
    "a count, a length or a date it would need: ask for what the tool gives as it is."
)
# the request comes back in one JSON field (constrained decoding): a small model otherwise often writes
# it in the ReAct format of the system prompt, or answers it (prompt development: docs/BENCHMARKS.md)
REQUEST_SCHEMA = {
    "type": "object",
    "properties": {"request": {"type": "string", "maxLength": 300}},
    "required": ["request"],
}
REQUEST_FORMAT = {"type": "json_schema", "json_schema": {"name": "request", "schema": REQUEST_SCHEMA}}
NO_QUERY = "(no request was written)"  # recorded when imagination fails twice; the trial still runs

# the day: a model otherwise takes the day it was trained for today, and sends "one year from today" as
# date = 2023-04-01 (judge check present_arguments; BENCHMARKS, session 22). Only where the day matters: told
# it for "the square root of 16", the packaged 1.5B sent "What is the square root of 16? on 2026-12-07?" to
# Wolfram|Alpha, which fails on it (BENCHMARKS, session 38)
_TRIAL = """\
Now fulfil this request by calling the tool: {query}
{today}Make one call at a time and read its result before going on. If a call fails, fix what \
its error names and call again. When you have what you need, give the final answer to the user."""

_REFLECT = """\
Did your final answer really fulfil the request "{query}" using results returned by the tool? \
Answer yes or no."""

REFLECT_CHOICES = ("yes", "no")
TURNS_EXHAUSTED = "No more tool calls are allowed for this request."
REPEATED_CALL = """\
You already made exactly this call; its result is above. Give the final answer to the user now."""


def imagine_first(
    name: str,
    description: str,
    ltm: Sequence[tuple[str, bool | None]],
    *,
    max_items: int,
    schema: Mapping[str, Any] | None = None,
) -> str:
    """The first imagination prompt of an episode, carrying the long-term memory of the tool and what a call
    can set (``schema``'s parameters by name, description and allowed values, required ones named; never
    their example values). ``schema`` None: nothing said of the arguments."""
    recent = list(ltm)[-max_items:] if max_items > 0 else []
    marks = {True: "[ok] ", False: "[failed] ", None: ""}
    items = "\n".join(f"- {marks[ok]}{_one_line(q, 200)}" for q, ok in recent)
    marked = any(ok is not None for _, ok in recent)
    return _IMAGINE_FIRST.format(
        name=name,
        description=_one_line(description, 1500),
        memory=(_MEMORY if marked else _MEMORY_UNMARKED).format(items=items) if items else "",
        settings="" if schema is None else call_settings(schema),
        novelty=_NOVELTY if items else "",
    )


def call_settings(schema: Mapping[str, Any], *, most: int = 8) -> str:
    """What a call can set, as a sentence: "A call can set only lat (The latitude …), lng and lang (…; one
    of: en, ru). The request must state lat and lng …", or that the tool takes no arguments. Required
    parameters first; at most ``most`` named ("… and 4 more" beyond), descriptions cut to one short line."""
    properties = parameters(schema)
    if not properties:
        return _NO_SETTINGS
    required = [k for k in (schema.get("required") or []) if k in properties]
    names = (required + [k for k in properties if k not in required])[:most]
    shown = [_parameter(key, properties[key]) for key in names]
    if len(properties) > most:
        shown.append(f"{len(properties) - most} more")
    return _SETTINGS.format(
        only="" if len(properties) > most else "only ",
        params=_and(shown),
        required=_REQUIRED.format(names=_and(required)) if required else "",
    )


def parameters(schema: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    """The parameters a call can set: ``schema``'s properties by name (empty: the tool takes no arguments)."""
    properties = (schema or {}).get("properties") or {}
    return {key: spec for key, spec in properties.items() if isinstance(spec, Mapping)}


def _parameter(key: str, spec: Mapping[str, Any]) -> str:
    about = _one_line(str(spec.get("description") or ""), 120).rstrip(".")
    items = spec.get("items")
    values = spec.get("enum") or (items.get("enum") if isinstance(items, Mapping) else None) or []
    if values and len(values) <= 10:
        about = (
            f"{about}; one of: {', '.join(map(str, values))}"
            if about
            else f"one of: {', '.join(map(str, values))}"
        )
    return f"{key} ({about})" if about else key


def _and(parts: Sequence[str]) -> str:
    return "".join(parts) if len(parts) < 2 else ", ".join(parts[:-1]) + " and " + parts[-1]


def trial_prompt(query: str, today: date | None = None, *, dated: bool = True) -> str:
    """The request to fulfil, with today's date (default: this machine's, as the upstreams it calls)
    unless ``dated`` is false (see ``dated``)."""
    day = today or date.today()
    sentence = f"Today is {day:%A} {day.day} {day:%B %Y} ({day.isoformat()}). " if dated else ""
    return _TRIAL.format(query=query, today=sentence)


def dated(query: str, input_schema: Mapping[str, Any]) -> bool:
    """Whether the trial prompt of ``query`` says what day it is: the request speaks of time, or the tool
    takes a moment (a date, a time, a timestamp). Elsewhere a model copies the day into its arguments."""
    return speaks_of_time(query) or bool(time_parameters(input_schema))


# trial_prompt's date sentence, any day: a model imagining its next request in the same conversation copies
# it into the request (the day counted on: "Today is Monday 7 December 2026 (2026-12-07)."), which then
# states numbers no call sends and is refused (memory.judge_checks request_numbers)
_TODAY_SENTENCE = re.compile(
    rf"\s*\bToday is (?:{'|'.join(calendar.day_name)}) \d{{1,2}} (?:{'|'.join(calendar.month_name[1:])}) \d{{4}}"
    r" \(\d{4}-\d{2}-\d{2}\)\.?"
)


def without_today_sentence(request: str) -> str:
    """``request`` without trial_prompt's date sentence copied into it."""
    return _TODAY_SENTENCE.sub("", request).strip()


def reflect_prompt(query: str) -> str:
    return _REFLECT.format(query=query)


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
