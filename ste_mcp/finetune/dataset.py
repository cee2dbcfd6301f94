"""Training data for one round, in the paper's shape, from approved exemplars.

Each exemplar gives a conversational prompt/completion pair (TRL renders it with the base model's own
chat template and puts the loss on the completion only):

* system (the ReAct protocol's prompt over a few tools) + query -> ``Action: <tool>\\nAction Input: {json}``
* optionally + that call + the observation -> ``Final Answer: ...`` (the observation is the typed
  summary of the upstream result, ``safety/sanitize.py``: no upstream free text is trained on)

``prompt = must-call`` writes the rows in the evaluation's must-call prompt instead (the bare call, no
final answer); ``demonstrations = k`` puts the row's k nearest exemplars of other requests into its
system prompt as the retrieval setting shows them, so that an adapter learns the setting it is served in.
``foreign_examples`` writes a share of those rows with other tools' examples only, as a request for a
tool nobody explored is served (its tool listed without an example), so that it does not learn to call
the examples' tool.

Leave-tools-out (``heldout_tools``): while some served tool has no approved exemplar, a round leaves a few
explored tools unlearned, and the gate asks each of their exemplars twice: as a tool nobody explored is
asked (``unexplored``: other tools' examples only) and as the left-out tool is served until the next
round learns it (``served``: its own exemplars among the examples).

A row longer than ``max_length`` tokens (under the base model's chat template) lists fewer tools, down to
the target alone, rather than be cut through its completion by the trainer.

A round trains on the exemplars no earlier round of the current lineage learned, plus every earlier
round's exemplars again (``replay = cumulative``) or ``replay_fraction`` of them (``replay = fraction``;
continual learning, STE.md), plus general-ability
rows (the base model's answers to ordinary prompts, produced in the training process). Exemplar
groups (an original and its paraphrases) whose stable hash falls under ``heldout_fraction`` are never
trained on: they are the gate's held-out set. A call right only on the day it was made (a request
counted from today whose arguments give a day, ``memory.dates.dated_call``) is neither: the retrieval
serves it moved to the current day, an adapter could only learn that day. Where only the result or the
answer gives the day ("what is today's date?" → ``get_today_date {}``), the call row is trained and
the final-answer row is not (``memory.dates.goes_stale``). Replayed exemplars are written again as
they are now, in this round's settings: a lineage trains in one prompt format after ``finetune.prompt``
or ``demonstrations`` changed, and a secret added since is redacted from the old rounds' rows too.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field

from ste_mcp.finetune.gate import LEFT_OUT
from ste_mcp.finetune.settings import FinetuneSettings
from ste_mcp.memory.dates import dated_call, goes_stale
from ste_mcp.safety.redact import Redactor
from ste_mcp.safety.sanitize import typed_summary

if TYPE_CHECKING:  # the training process imports this module: no LanceDB or upstream stack there
    from ste_mcp.memory.exemplars import Exemplar
    from ste_mcp.upstream.tools import Tool

Row = dict[str, Any]

# ordinary requests whose base-model answers keep general ability (no download needed)
GENERAL_PROMPTS: tuple[str, ...] = (
    "Explain in two sentences why the sky is blue.",
    "Write a short, friendly email declining a meeting invitation.",
    "What are three tips for staying focused while studying?",
    "Summarize the plot of Romeo and Juliet in three sentences.",
    "Give me a simple recipe for pancakes.",
    "What is the difference between a list and a tuple in Python?",
    "Translate 'Good morning, how are you?' into French.",
    "Write a haiku about autumn leaves.",
    "How do I convert Celsius to Fahrenheit?",
    "Name three renewable sources of energy and describe one of them.",
    "What is photosynthesis? Answer briefly.",
    "Suggest a name for a small coffee shop and explain why.",
    "What should I pack for a weekend hiking trip?",
    "Explain what a prime number is to a ten-year-old.",
    "Write one sentence encouraging a friend before an exam.",
    "What are the main causes of inflation?",
    "List four countries in South America.",
    "How can I improve my sleep?",
    "Describe the water cycle in a few sentences.",
    "What is the capital of Japan, and what is it known for?",
    "Give two reasons why regular exercise is healthy.",
    "Rewrite this sentence more politely: 'Send me the report now.'",
    "What does HTTP stand for?",
    "Write a two-line poem about the sea.",
)


class RoundData(BaseModel):
    """Everything a training process needs, already rendered (no tools or database needed there)."""

    rows: list[Row]  # {"prompt": [...], "completion": [...], "source", "exemplar_id", "tool"}
    heldout: list[Row]  # {"id", "tool", "query", "arguments", "prompt": [...]}, "unexplored"/"served": True
    new_exemplar_ids: list[str] = Field(default_factory=list)
    left_out: list[str] = Field(default_factory=list)  # not learned; the gate asks them (leave-tools-out)
    foreign: float = 0.0  # share of rows written with other tools' examples only (foreign_examples)
    skipped: dict[str, int] = Field(default_factory=dict)
    shortened: int = 0  # exemplars whose rows list fewer than tools_in_prompt tools, to fit max_length

    @property
    def counts(self) -> dict[str, int]:
        apart = {part: sum(1 for h in self.heldout if h.get(part)) for part in LEFT_OUT}
        out = {"new": 0, "replay": 0, "heldout": len(self.heldout) - sum(apart.values())}
        out.update((part, n) for part, n in apart.items() if n)
        for row in self.rows:
            out[row["source"]] = out.get(row["source"], 0) + 1
        return out

    @property
    def tools(self) -> list[str]:
        return sorted({row["tool"] for row in self.rows if row.get("tool")})

    def data_hash(self, extra: dict[str, Any] | None = None) -> str:
        """Stable hash of the rows, the held-out set and ``extra`` (e.g. base model, hyperparameters)."""
        blob = json.dumps([self.rows, self.heldout, extra or {}], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()


def _fraction(key: str) -> float:
    """A stable number in [0, 1) for a key."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:12], 16) / 16**12


def is_heldout(exemplar: Exemplar, fraction: float) -> bool:
    """Whether the exemplar's group (original + paraphrases) is kept for evaluation, stably across rounds."""
    return _fraction(f"heldout:{exemplar.tool}:{exemplar.group}") < fraction


AUTO_FOREIGN = 0.5  # foreign_examples = auto, while some served tool has no exemplar (session 30)


def is_foreign(exemplar: Exemplar, fraction: float) -> bool:
    """Whether the exemplar's row shows only other tools' examples (``finetune.foreign_examples``), stably."""
    return _fraction(f"foreign:{exemplar.id}") < fraction


def left_out_tools(
    exemplars: Sequence[Exemplar], n: int, learned: Iterable[str] = (), spent: Iterable[str] = ()
) -> list[str]:
    """The tools a round leaves out (``finetune.heldout_tools``): up to ``n`` of the tools with exemplars,
    at most a quarter of them, in a stable order of their names' hashes. Never one the lineage learned
    (an exemplar id in ``learned``) or left out before (``spent``), and never every tool that has new
    exemplars: the round must still have something to learn."""
    learned = set(learned)
    tools = {ex.tool for ex in exemplars}
    taught = {ex.tool for ex in exemplars if ex.id in learned}
    new = {ex.tool for ex in exemplars if ex.id not in learned}
    fresh = sorted(tools - taught - set(spent), key=lambda t: _fraction(f"heldout-tool:{t}"))
    return sorted(fresh[: max(0, min(n, len(tools) // 4, len(new) - 1))])


def format_call(tool: str, arguments: dict[str, Any], prompt: str = "paper") -> str:
    """The completion of a call step in ``prompt``'s format (the explorer and the evaluation parse both)."""
    from ste_mcp.evaluate.prompts import format_call as format_in

    return format_in(prompt, tool, arguments)


def system_prompt(tools: Sequence[Tool], prompt: str = "paper") -> str:
    """The system prompt listing ``tools`` in the ``prompt`` variant (``finetune.prompt``)."""
    if prompt == "must-call":
        from ste_mcp.evaluate.prompts import MustCallProtocol

        return MustCallProtocol().system_prompt(list(tools))
    from ste_mcp.llm.protocols import ReActProtocol

    return ReActProtocol().system_prompt(list(tools))


def observation_message(text: str) -> dict[str, str]:
    from ste_mcp.llm.protocols import observation_message as message

    return message(text)


Messages = list[dict[str, str]]
TokenCounter = Callable[[Messages], int]
Embed = Callable[[Sequence[str]], Any]  # texts -> normalised vectors, one row each (Embedder.embed)


def chat_tokens(tokenizer: Any) -> TokenCounter:
    """Tokens of a conversation under ``tokenizer``'s chat template: the length TRL trains on."""

    def count(messages: Messages) -> int:
        return len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])

    return count


def load_chat_tokens(model_path: str | Path) -> TokenCounter | None:
    """A token counter from the base model's folder; ``None`` where it holds no tokenizer with a chat
    template (rows are then kept at ``tools_in_prompt`` tools, and the trainer drops any that are too long)."""
    from ste_mcp.imports import ML_IMPORT_LOCK

    with ML_IMPORT_LOCK:  # the server builds rounds' datasets beside its embedder
        from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    except (OSError, ValueError, KeyError):
        return None
    return chat_tokens(tokenizer) if getattr(tokenizer, "chat_template", None) else None


def _shown_tools(
    target: Tool, toolset: Sequence[Tool], k: int, seed: str, near: Sequence[str] = ()
) -> list[Tool]:
    """The target tool and ``k - 1`` others (first the ``near`` ones, in order; then random ones), in a
    stable shuffled order."""
    rng = random.Random(seed)
    by_name = {t.name: t for t in toolset}
    first = [by_name[n] for n in dict.fromkeys(near) if n != target.name and n in by_name][: k - 1]
    taken = {target.name, *(t.name for t in first)}
    others = [t for t in toolset if t.name not in taken]
    shown = [target, *first, *rng.sample(others, min(k - 1 - len(first), len(others)))]
    rng.shuffle(shown)
    return shown


def nearest_others(
    exemplars: Sequence[Exemplar], embed: Embed, limit: int, shown: Callable[[Exemplar], bool] | None = None
) -> dict[str, list[Exemplar]]:
    """For each exemplar, up to ``limit`` nearest exemplars of other groups that may be ``shown`` (by
    request, one per group), nearest first: the demonstrations a retrieval would show beside it."""
    if not exemplars:
        return {}
    vectors = np.asarray(embed([ex.query for ex in exemplars]), dtype=np.float32)
    similarity = vectors @ vectors.T
    if shown is not None:
        similarity[:, np.array([not shown(ex) for ex in exemplars], dtype=bool)] = -np.inf
    out: dict[str, list[Exemplar]] = {}
    for i, ex in enumerate(exemplars):
        near: list[Exemplar] = []
        groups = {ex.group}
        for j in np.argsort(-similarity[i], kind="stable"):
            if similarity[i, j] == -np.inf:
                break
            if exemplars[j].group not in groups:
                groups.add(exemplars[j].group)
                near.append(exemplars[j])
                if len(near) == limit:
                    break
        out[ex.id] = near
    return out


class DatasetBuilder:
    """Turns exemplars into rows for one round."""

    def __init__(
        self,
        tools: Sequence[Tool],
        settings: FinetuneSettings,
        secrets: Iterable[str] = (),
        count_tokens: TokenCounter | None = None,
        embed: Embed | None = None,
    ) -> None:
        if settings.demonstrations and embed is None:
            raise ValueError("finetune.demonstrations needs an embedder to find each row's nearest exemplars")
        self.tools = {t.name: t for t in tools}
        self.settings = settings
        self.redactor = Redactor(secrets)
        self.count_tokens = count_tokens
        self.embed = embed
        self._near: dict[str, list[Exemplar]] = {}  # exemplar id -> nearest of other groups (demonstrations)
        self._served_near: dict[str, list[Exemplar]] = {}  # the same among every exemplar (left-out tools)
        share = settings.foreign_examples
        self._foreign = AUTO_FOREIGN if share == "auto" else share  # build() resolves auto

    def _prompt(self, ex: Exemplar, k: int | None = None, served: bool = False) -> Messages:
        """The row's messages; ``served``: with the nearest of all exemplars as examples, as the pool
        serves a request (a left-out tool's own exemplars among them)."""
        from ste_mcp.evaluate.prompts import format_demo, with_demonstrations

        k = self.settings.tools_in_prompt if k is None else k
        near = (self._served_near if served else self._near).get(ex.id, [])
        if not served and is_foreign(ex, self._foreign):  # as a tool nobody explored is asked for
            near = [d for d in near if d.tool != ex.tool]
        shown = _shown_tools(self.tools[ex.tool], list(self.tools.values()), k, ex.id, [n.tool for n in near])
        names = {t.name for t in shown}
        prompt = self.settings.prompt
        shots = [
            format_demo(
                prompt, self.redactor.redact(d.query), d.tool, self.redactor.redact_value(d.arguments)
            )
            for d in near
            if d.tool in names  # as the retrieval shows a client only the listed tools' examples
        ][: self.settings.demonstrations]
        return [
            {"role": "system", "content": with_demonstrations(system_prompt(shown, prompt), shots)},
            {"role": "user", "content": self.redactor.redact(ex.query)},
        ]

    def _fits(self, rows: list[Row]) -> bool:
        if self.count_tokens is None:
            return True
        limit = self.settings.max_length
        return all(self.count_tokens(r["prompt"] + r["completion"]) <= limit for r in rows)

    def rows_for(self, ex: Exemplar) -> tuple[list[Row], int]:
        """The call row (and the final-answer row) of one exemplar, and how many tools they list: as
        many of ``tools_in_prompt`` as fit in ``max_length`` tokens (the target always)."""
        k = self.settings.tools_in_prompt
        rows = self._rows(ex, k)
        while k > 1 and not self._fits(rows):
            k -= 1
            rows = self._rows(ex, k)
        return rows, k

    def _rows(self, ex: Exemplar, k: int) -> list[Row]:
        prompt = self._prompt(ex, k)
        call = format_call(ex.tool, self.redactor.redact_value(ex.arguments), self.settings.prompt)
        meta = {"source": "new", "exemplar_id": ex.id, "tool": ex.tool}
        rows = [{"prompt": prompt, "completion": [{"role": "assistant", "content": call}], **meta}]
        answers = self.settings.include_final_answer and self.settings.prompt == "paper"
        if (
            answers and ex.observation and ex.final_answer and not goes_stale(ex)
        ):  # today's date: that day only
            followed = [
                *prompt,
                {"role": "assistant", "content": call},
                observation_message(self.redactor.redact(typed_summary(ex.observation))),
            ]
            answer = "Final Answer: " + self.redactor.redact(ex.final_answer)
            rows.append(
                {"prompt": followed, "completion": [{"role": "assistant", "content": answer}], **meta}
            )
        return rows

    def build(
        self,
        exemplars: Sequence[Exemplar],
        learned: set[str],
        earlier: Sequence[Sequence[str]],
        spent: Iterable[str] = (),
    ) -> RoundData:
        """Rows for a round.

        ``learned``: exemplar ids that earlier rounds of the lineage trained on; ``earlier``: each earlier
        round's new exemplar ids (replayed: all, or ``replay_fraction`` of each round), written again from
        the approved exemplars in this round's settings; ``spent``: tools an earlier round of the lineage
        left out (never left out twice: this round learns them).
        """
        skipped = {"unknown_tool": 0, "dated": 0}
        rows: list[Row] = []
        heldout: list[Row] = []
        new_ids: list[str] = []
        shortened = 0
        usable: list[Exemplar] = []
        for ex in exemplars:
            if ex.tool not in self.tools:
                skipped["unknown_tool"] += 1
            elif dated_call(ex):  # "10 days from today" sends the day it was made: weights cannot move it
                skipped["dated"] += 1
            else:
                usable.append(ex)
        fraction = self.settings.heldout_fraction
        explored = {ex.tool for ex in usable}
        partly = any(name not in explored for name in self.tools)  # a served tool nobody explored
        if self.settings.foreign_examples == "auto":
            self._foreign = AUTO_FOREIGN if partly else 0.0
        left_out = set(left_out_tools(usable, self.settings.heldout_tools if partly else 0, learned, spent))

        def held(ex: Exemplar) -> bool:
            return ex.tool in left_out or is_heldout(ex, fraction)

        if self.settings.demonstrations and self.embed is not None:  # never a held-out one as an example
            # enough to leave some when the listed tools (and a foreign row's own tool) filter them
            limit = (8 if self._foreign else 4) * self.settings.demonstrations
            self._near = nearest_others(usable, self.embed, limit, lambda ex: not held(ex))
            if left_out:
                self._served_near = nearest_others(usable, self.embed, limit)
        for ex in usable:
            if held(ex):
                item = {
                    "id": ex.id,
                    "tool": ex.tool,
                    "query": self.redactor.redact(ex.query),
                    "arguments": self.redactor.redact_value(ex.arguments),
                }
                if ex.tool not in left_out:
                    heldout.append({**item, "prompt": self._prompt(ex)})
                    continue
                heldout.append({**item, "prompt": self._prompt(ex), "unexplored": True})
                if self._served_near:  # with its own exemplars as examples (none without demonstrations)
                    heldout.append({**item, "prompt": self._prompt(ex, served=True), "served": True})
            elif ex.id not in learned:
                own, listed = self.rows_for(ex)
                rows.extend(own)
                new_ids.append(ex.id)
                shortened += listed < self.settings.tools_in_prompt
        held_ids = {h["id"] for h in heldout}  # before the cap: none of them is ever trained on
        cap = self.settings.max_heldout  # each part on its own: the gate reads them apart
        asked = _cap([h for h in heldout if h.get("unexplored")], cap)
        kept = {h["id"] for h in asked}  # a left-out exemplar is asked both ways, or not at all
        heldout = (
            _cap([h for h in heldout if not any(h.get(p) for p in LEFT_OUT)], cap)
            + asked
            + [h for h in heldout if h.get("served") and h["id"] in kept]
        )
        replayable = {ex.id: ex for ex in usable if ex.id not in held_ids}
        for ex in self._replay(earlier, replayable):
            own, listed = self.rows_for(ex)
            rows.extend({**row, "source": "replay"} for row in own)
            shortened += listed < self.settings.tools_in_prompt
        return RoundData(
            rows=rows,
            heldout=heldout,
            new_exemplar_ids=new_ids,
            left_out=sorted(left_out),
            foreign=self._foreign if self.settings.demonstrations else 0.0,
            skipped=skipped,
            shortened=shortened,
        )

    def _replay(self, earlier: Sequence[Sequence[str]], replayable: dict[str, Exemplar]) -> list[Exemplar]:
        """The exemplars of earlier rounds to learn again: all of them (cumulative) or a stable sample of
        each round's. Only those still ``replayable`` (approved, not held out now, not stale), once each."""
        out: dict[str, Exemplar] = {}
        for index, ids in enumerate(earlier):
            kept = [replayable[i] for i in dict.fromkeys(ids) if i in replayable]
            if self.settings.replay == "fraction":
                n = math.ceil(self.settings.replay_fraction * len(kept))
                kept = random.Random(f"replay:{index}").sample(kept, min(n, len(kept)))
            out.update((ex.id, ex) for ex in kept if ex.id not in out)
        return list(out.values())


def _cap(items: list[Row], limit: int) -> list[Row]:
    """At most ``limit`` items, spread over tools (round-robin), in a stable order."""
    by_tool: dict[str, list[Row]] = {}
    for item in sorted(items, key=lambda r: _fraction(r["id"])):
        by_tool.setdefault(item["tool"], []).append(item)
    out: list[Row] = []
    while len(out) < min(limit, len(items)):
        for group in by_tool.values():
            if group and len(out) < limit:
                out.append(group.pop(0))
    return out


def general_rows(answers: Sequence[tuple[str, str]]) -> list[Row]:
    """Rows from (prompt, base-model answer) pairs."""
    return [
        {
            "prompt": [{"role": "user", "content": q}],
            "completion": [{"role": "assistant", "content": a}],
            "source": "general",
            "exemplar_id": None,
            "tool": None,
        }
        for q, a in answers
        if a.strip()
    ]


def write_jsonl(path: Path, rows: Iterable[Row]) -> None:
    with path.open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[Row]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
