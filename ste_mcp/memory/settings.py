"""Settings of exemplar memory and live descriptions, and where the database lives."""

from typing import Any, Literal, get_args
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, Field, field_validator

OBJECT_SCHEMES = ("s3", "s3+ddb", "gs", "az")  # object storage LanceDB opens (memory.uri)
JudgeCheck = Literal[
    "soft_failure",
    "grounded_answer",
    "request_numbers",
    "placeholder_arguments",
    "stated_numbers",
    "request_units",
    "result_language",
    "result_date",
    "present_arguments",
    "added_asks",
    "float_noise",
    "named_terms",
]  # memory/checks.py


NotesArguments = Literal["model", "evidence"]  # memory.notes_arguments: who writes the argument line


class MemorySettings(BaseModel):
    uri: str | None = Field(
        None,
        description="The database on object storage shared by every process (serving replicas, explorers, "
        "trainer), e.g. s3://bucket/prefix (also gs://, az://, s3+ddb://bucket/prefix?ddbTableName=T). "
        "Credentials and endpoint from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
        "AWS_ENDPOINT_URL, AWS_REGION, AWS_ALLOW_HTTP for plain http). Unset: the folder data_dir/lancedb.",
    )
    approval: Literal["auto", "manual"] = Field(
        "auto", description="auto: exemplars the judge accepts are approved; manual: they wait as candidates."
    )
    description_approval: Literal["auto", "manual"] = Field(
        "auto",
        description="auto: a newly rendered description is served at once; manual: it waits (pending) until "
        "`ste-mcp descriptions approve TOOL`, clients keep the last approved text.",
    )
    description_render: Literal["notes", "examples", "both", "requests", "none"] = Field(
        "notes",
        description="What is added to a tool's original description: usage notes (written by the explorer's "
        "model from the tool's trials: `ste-mcp descriptions rewrite`, and learn and serve as "
        "notes_rewrite_after says), examples of verified calls, both, the requests of those examples "
        "without their calls, or none. Chosen on bench/dev "
        "(BENCHMARKS, Usage notes and the description gate).",
    )
    notes_rewrite_after: int = Field(
        2,
        ge=0,
        description="With usage notes shown (description_render notes or both), `ste-mcp learn` and the "
        "server rewrite a tool's notes (gated) once this many new approved exemplar groups (an exemplar and "
        "its paraphrases) exist since its last notes attempt; 0: only `ste-mcp descriptions rewrite` does.",
    )
    notes_arguments: NotesArguments = Field(
        "model",
        description="Who writes the usage notes' line on arguments. model: the notes model, from the typed "
        "evidence with a few values that worked. evidence: one line built from the verified calls (each "
        "argument by name, the format that worked; values only for codes and words), the model shown no "
        "values and its own argument lines left out. Measured in session 44 (BENCHMARKS): not better for "
        "either packaged client, so model stays the default.",
    )
    notes_budget_tokens: int = Field(
        100,
        ge=16,
        description="Max tokens of the usage notes the model writes per tool (its max_tokens); with "
        "notes_arguments = evidence the argument line comes on top.",
    )
    description_gate: Literal["measure", "off"] = Field(
        "measure",
        description="measure: a rewritten description is promoted only if the evaluators (the app's model "
        "and llm.evaluators, must-call prompt) answer the tool's held-out exemplars better with it than with "
        "the served one (none worse, one better), the nearest tools shown as distractors; off: promoted "
        "unmeasured.",
    )
    gate_min_heldout: int = Field(
        4,
        ge=1,
        description="Held-out queries (exemplars and their paraphrases) the gate needs; with fewer the "
        "candidate is stored refused ('too few held-out exemplars'), for the operator to serve or not.",
    )
    gate_max_queries: int | None = Field(
        24,
        ge=1,
        description="Most of the tool's held-out queries the gate asks each evaluator per description, and "
        "most of its distractors' (memory.gate_neighbour_queries), sampled the same on every run (one "
        "query of each exemplar group before a second, the distractors in turn), so a rewrite costs the "
        "same however far the API has been explored; null: every held-out query.",
    )
    gate_heldout_fraction: float = Field(
        0.5, gt=0, lt=1, description="Share of a tool's approved exemplar groups held out from the notes."
    )
    gate_distractors: int = Field(
        4, ge=0, description="Nearest other tools shown with the tool when the gate asks the evaluator."
    )
    gate_worse_p: float = Field(
        0.2,
        gt=0,
        le=1,
        description="An evaluator vetoes a candidate only when its loss is unlikely to be noise: the "
        "one-sided sign test over the held-out answers that changed (right with one description only) "
        "gives p at most this, on any of correct, API match and well-formed (a gain on one does not buy a "
        "loss on another). 1.0: any loss vetoes.",
    )
    gate_decoding: Literal["constrained", "free"] = Field(
        "constrained",
        description="How the gate's evaluators decode their answers: constrained (a grammar holds each reply "
        "to one call of a listed tool with its declared arguments, as a tool-calling client's API does; both "
        "packaged clients' best zero-shot decoding on bench/dev) or free (the reply as the model writes it, "
        "scored with the paper's closest-name mapping, under which a name the notes led the evaluator to "
        "invent, e.g. Password_of_length_15, counts as the listed tool it resembles: session 45).",
    )
    gate_neighbour_queries: bool = Field(
        True,
        description="The gate also asks the distractors' own held-out queries: a tool's notes that pull "
        "its neighbours' requests to it are refused even when its own requests gain.",
    )
    judge_model: str | None = Field(
        None,
        description="Served model name the judge (and a paraphraser on the same server) asks its server for, "
        "e.g. a second model on one vLLM; unset: that server's model. A judge on another model or server: "
        "llm.judge.",
    )
    hindsight: Literal["off", "repair", "always"] = Field(
        "repair",
        description="Hindsight (memory/hindsight.py): the judge's model writes the request a trial's call really "
        "answers from the call alone (the tool, the arguments, the result; not the imagined request) and answers "
        "it from the result; the imagined request stays in the trial's verdict record. always: before the judge "
        "reads any trial (far fewer mismatched exemplars, hand-checked 95 vs 57-65 %, but fewer and plainer ones "
        "in twice the time, and a 0.5B student retrieving them answered no better: BENCHMARKS, Hindsight, Session "
        "23). repair: only for a trial the judge accepted whose request a check then finds at odds with the call "
        "(a number, unit, day or language the call did not serve, an answer with numbers the result lacks, a "
        "request naming the tool or copying its description: REPAIRABLE in memory/exploit.py); the restated "
        "trial is judged and checked again (the default: on three teacher runs it kept 26 more originals, 23 good by "
        "hand, where 67 % of what the judge and checks keep is good; BENCHMARKS, Session 37). true / false read as "
        "always / off.",
    )

    @field_validator("hindsight", mode="before")
    @classmethod
    def _hindsight_bool(cls, value: Any) -> Any:
        """The setting was a bool: true meant always."""
        if isinstance(value, bool):
            return "always" if value else "off"
        return value

    judge_checks: list[JudgeCheck] = Field(
        default_factory=lambda: list(get_args(JudgeCheck)),
        description="Deterministic checks a trial the judge accepted must pass to become an exemplar "
        "(memory/checks.py): soft_failure (the result does not say the call failed), grounded_answer (every "
        "number of 2+ significant digits in the final answer is in the result, the request or the arguments), "
        "request_numbers (every number the request states is in the call's arguments), placeholder_arguments "
        "(no argument is the spec's example value, e.g. a required parameter's default, unless the request "
        "states it), stated_numbers (every whole number an argument sends, but 0 and 1 and paging ones, is one "
        "the request gives, in digits, in words or converted to the parameter's unit: no invented values), "
        'request_units (a quantity the request states with a unit, "12 hours", is not sent as the '
        "same number to a parameter whose name gives another unit of its kind, days = 12; a length counts "
        "characters, not bits), result_language (a request that asks for one named language gets a result in "
        "it: one answered in another language moves to a sibling tool whose result for the same call is in "
        "the asked language, else is refused when the result is clearly in another), result_date (a request "
        'about one day relative to today, "tomorrow", "3 days ago", gets a result that gives that day when '
        'it gives dates; "next Monday" one that gives a Monday), present_arguments (a request about today '
        "or now sends no date or timestamp from before the trial's day: the explorer's own idea of today), "
        'added_asks (a request that goes on with "but", "only", "also", "except", "sorted", "specifically", '
        '"and its", … states from there a value the call sends: "but only for weekdays" sent as days = 10 is '
        "refused), float_noise (no argument sends a number with a binary float's rounding noise, "
        '"2500.00000000000001" for 2500, unless the request writes it so), named_terms (every name the request '
        "gives, a capitalised word past a sentence's start, an acronym or a quoted value, is in the call's "
        "arguments, its result or the tool's own name, description and schema: \"the car makers based in "
        'Europe" answered by a list of every make is refused; months, weekdays and language names are left '
        "to the date and language checks); []: the judge alone. "
        "request_numbers, placeholder_arguments, stated_numbers, request_units, present_arguments, added_asks "
        "and float_noise also hold for "
        "paraphrases, imported exemplars and recheck (present_arguments against the day the exemplar was "
        "made; served, such an exemplar's days move to the current day).",
    )
    description_budget_chars: int = Field(
        1200, ge=0, description="Max characters of examples added per tool."
    )
    examples_per_tool: int = Field(3, ge=0, description="Examples rendered into each tool's description.")
    paraphrases_per_exemplar: int = Field(3, ge=0, le=6, description="Paper: at most 6.")
    paraphrase_situations: int = Field(
        0,
        ge=0,
        le=6,
        description="How many of those paraphrases put the request in a user's everyday situation "
        "(``memory/paraphrase.py``, style ``situation``); the others reword it.",
    )
    poll_s: float = Field(
        2.0, gt=0, description="How often the server judges new trials and picks up new description versions."
    )
    judge_concurrency: int = Field(
        4, ge=1, description="Trials judged at once (keeps a vLLM server batching)."
    )
    claim_ttl_s: float = Field(
        1800.0,
        gt=0,
        description="How long a process's claim on a trial it is judging holds (replicas and `ste-mcp "
        "learn` sharing one database judge each trial once); a claim older than this, left by a process "
        "that died, is taken over.",
    )
    duplicate_similarity: float = Field(
        0.95,
        ge=0.5,
        le=1.0,
        description="An accepted trial whose query is at least this similar (MiniLM cosine) to a stored "
        "exemplar of its tool with the same arguments, or has the same words, is refused as a repeat.",
    )
    max_query_chars: int = Field(300, ge=20, description="Queries (and paraphrases) kept in an exemplar.")
    max_observation_chars: int = Field(300, ge=20, description="Observation summary kept in an exemplar.")
    max_answer_chars: int = Field(400, ge=20, description="Final answer kept in an exemplar.")
    max_argument_chars: int = Field(200, ge=8, description="Per string argument value.")
    tool_search: Literal["vector", "hybrid", "text"] = Field(
        "vector",
        description="How search_tools ranks tools: MiniLM vectors, hybrid (RRF of vectors and full text) or "
        "full text. Chosen on bench/dev (BENCHMARKS, Tool search).",
    )
    search_examples: int = Field(
        3,
        ge=0,
        le=10,
        description="Worked examples search_tools returns with the tools it finds: the nearest approved "
        "exemplars (request, tool, arguments) of those tools; 0: none. Measured: BENCHMARKS, Search and "
        "demonstrations together.",
    )
    index_min_rows: int = Field(
        5000, ge=1, description="Build the vector index once this many exemplars exist."
    )

    @field_validator("uri")
    @classmethod
    def _object_uri(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in OBJECT_SCHEMES or not parts.netloc:
            raise ValueError(
                f"memory.uri must be an object-storage URI ({', '.join(s + '://bucket/prefix' for s in OBJECT_SCHEMES)});"
                " a local database is data_dir/lancedb"
            )
        if "@" in parts.netloc:
            raise ValueError("memory.uri must not carry credentials: set them in the environment")
        if {k for k, _ in parse_qsl(parts.query)} - {"ddbTableName"}:
            raise ValueError("memory.uri may only carry the query ddbTableName (for s3+ddb://)")
        return value
