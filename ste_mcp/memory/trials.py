"""The trial store: every STE trial, recorded in LanceDB before the next one begins.

A trial's id is deterministic (``tool:episode:slot``) and records are inserted only when absent, so a
process killed at any point and restarted never duplicates a trial; episode progress per tool is derived
from the store. Everything is redacted (``safety/redact.py``) before it is written.

The judge reads ``unjudged()`` and writes ``set_verdict()``; the explorer reads ``ltm()`` and
``episode_progress()``; status reads ``stats()``.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

import lancedb
import pyarrow as pa
from pydantic import BaseModel, Field

from ste_mcp.memory.db import insert_new, keyed_table, open_db, quote
from ste_mcp.safety.redact import Redactor

TABLE = "trials"
TrialStatus = Literal["answered", "turns_exhausted", "stopped"]
# "repeat": the same call as the one before, not executed again (the model is asked for its answer)
TurnKind = Literal["call", "final", "parse_error", "repeat"]


class Turn(BaseModel):
    """One model turn of a trial and what it led to."""

    raw: str  # the model's output (text, or the native tool call rendered as JSON)
    kind: TurnKind
    tool: str | None = None
    arguments: dict[str, Any] | None = None
    thought: str = ""
    observation: str = ""  # tool result (truncated) or the corrective message of a parse error
    is_error: bool = False
    error_kind: str | None = None  # the ToolResult's error_kind ("validation", "http", ...) or "parse"
    http_status: int | None = None
    llm_ms: float = 0.0
    tool_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class TrialRecord(BaseModel):
    """One imagine -> try -> reflect trial (slot ``slot`` of episode ``episode`` of ``tool``)."""

    tool: str
    episode: int
    slot: int
    spec_hash: str = ""
    query: str
    turns: list[Turn] = Field(default_factory=list)
    final_answer: str | None = None
    reflection: str = ""  # "yes" | "no" | "" (unclear)
    reflection_raw: str = ""
    status: TrialStatus = "answered"
    messages: list[dict[str, Any]] = Field(
        default_factory=list, description="Messages this trial added to the episode conversation (STM)."
    )
    model: str = ""
    protocol: str = ""
    prompt_version: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    recorded_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    elapsed_ms: float = 0.0
    llm_ms: float = 0.0
    tool_ms: float = 0.0
    verdict: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return trial_id(self.tool, self.episode, self.slot)

    @property
    def calls(self) -> int:
        return sum(1 for t in self.turns if t.kind == "call")

    @property
    def successful_calls(self) -> int:
        return sum(1 for t in self.turns if t.kind == "call" and not t.is_error)

    @property
    def parse_errors(self) -> int:
        return sum(1 for t in self.turns if t.kind == "parse_error")

    @property
    def success(self) -> bool:
        """At least one successful call, a final answer, and the model's own reflection says yes."""
        return self.judgeable and self.reflection == "yes"

    @property
    def judgeable(self) -> bool:
        """Ended with a final answer after at least one successful call (what the judge looks at)."""
        return self.final_answer is not None and self.successful_calls > 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def last_call(self) -> Turn | None:
        """The last successful call of the trial (the one an exemplar is made of)."""
        ok = [t for t in self.turns if t.kind == "call" and not t.is_error]
        return ok[-1] if ok else None


def _succeeded(row: dict[str, Any]) -> bool | None:
    """Whether a stored trial succeeded, for long-term memory (``TrialStore.ltm``)."""
    if row.get("verdict"):
        verdict = json.loads(row["verdict"])
        return bool(verdict.get("accepted")) and not verdict.get("refused")
    return None if row["judgeable"] and not row["reflection"] else bool(row["success"])


def trial_id(tool: str, episode: int, slot: int) -> str:
    return f"{tool}:{episode}:{slot}"


_TS = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        ("tool", pa.string()),
        ("episode", pa.int32()),
        ("slot", pa.int32()),
        ("spec_hash", pa.string()),
        ("query", pa.string()),
        ("turns", pa.string()),  # JSON list of Turn
        ("final_answer", pa.string()),
        ("reflection", pa.string()),
        ("reflection_raw", pa.string()),
        ("status", pa.string()),
        ("messages", pa.string()),  # JSON list of chat messages
        ("calls", pa.int32()),
        ("successful_calls", pa.int32()),
        ("parse_errors", pa.int32()),
        ("success", pa.bool_()),
        ("judgeable", pa.bool_()),
        ("model", pa.string()),
        ("protocol", pa.string()),
        ("prompt_version", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("started_at", _TS),
        ("recorded_at", _TS),
        ("elapsed_ms", pa.float64()),
        ("llm_ms", pa.float64()),
        ("tool_ms", pa.float64()),
        ("verdict", pa.string()),  # JSON, null until judged
    ]
)
_STATS_COLUMNS = ["tool", "episode", "slot", "calls", "successful_calls", "parse_errors", "success"]
_STATS_COLUMNS += ["prompt_tokens", "completion_tokens", "recorded_at"]


def _ts(value: datetime) -> str:
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return f"TIMESTAMP '{value.strftime('%Y-%m-%d %H:%M:%S.%f')}'"


class TrialStore:
    """All trials of all tools in one LanceDB table. Thread-safe; methods are synchronous
    (call them with ``anyio.to_thread.run_sync`` from async code)."""

    def __init__(self, db: lancedb.DBConnection, *, secrets: Iterable[str] = ()) -> None:
        self._db = db
        self._table = keyed_table(db, TABLE, SCHEMA, "id")
        self._redactor = Redactor(secrets)
        self._write_lock = threading.Lock()
        self._writes = 0

    @classmethod
    def open(cls, db_dir: Any, *, secrets: Iterable[str] = ()) -> TrialStore:
        """Open the store in ``db_dir`` (e.g. ``settings.db_dir``)."""
        return cls(open_db(db_dir), secrets=secrets)

    # ---- writing -------------------------------------------------------------------------------
    def record(self, trial: TrialRecord) -> bool:
        """Store ``trial`` (redacted). Returns False when a trial with this id already exists."""
        return self.record_many([trial]) == 1

    def record_many(self, trials: list[TrialRecord]) -> int:
        """Store several trials in one commit (ids already stored are skipped); returns how many were new."""
        if not trials:
            return 0
        rows = [self._row(t) for t in trials]
        with self._write_lock:
            inserted = insert_new(self._table, "id", rows)
            self._writes += 1
            if self._writes % 200 == 0:
                self._table.optimize()
        return inserted

    def set_verdict(self, trial_id: str, verdict: dict[str, Any] | str) -> None:
        """Attach the judge's verdict (a JSON object) to a trial."""
        text = verdict if isinstance(verdict, str) else json.dumps(verdict)
        json.loads(text)  # must be JSON
        with self._write_lock:
            result = self._table.update(where=f"id = {quote(trial_id)}", values={"verdict": text})
        if result.rows_updated == 0:
            raise KeyError(f"no trial with id {trial_id!r}")

    def _row(self, trial: TrialRecord) -> dict[str, Any]:
        r = self._redactor
        turns = [
            t.model_copy(
                update={
                    "raw": r.redact(t.raw),
                    "thought": r.redact(t.thought),
                    "observation": r.redact(t.observation),
                    "arguments": r.redact_value(t.arguments),
                }
            ).model_dump()
            for t in trial.turns
        ]
        return {
            "id": trial.id,
            "tool": trial.tool,
            "episode": trial.episode,
            "slot": trial.slot,
            "spec_hash": trial.spec_hash,
            "query": r.redact(trial.query),
            "turns": json.dumps(turns),
            "final_answer": None if trial.final_answer is None else r.redact(trial.final_answer),
            "reflection": trial.reflection,
            "reflection_raw": r.redact(trial.reflection_raw),
            "status": trial.status,
            "messages": json.dumps(r.redact_value(trial.messages)),
            "calls": trial.calls,
            "successful_calls": trial.successful_calls,
            "parse_errors": trial.parse_errors,
            "success": trial.success,
            "judgeable": trial.judgeable,
            "model": trial.model,
            "protocol": trial.protocol,
            "prompt_version": trial.prompt_version,
            "prompt_tokens": trial.prompt_tokens,
            "completion_tokens": trial.completion_tokens,
            "started_at": trial.started_at,
            "recorded_at": trial.recorded_at,
            "elapsed_ms": trial.elapsed_ms,
            "llm_ms": trial.llm_ms,
            "tool_ms": trial.tool_ms,
            "verdict": None if trial.verdict is None else json.dumps(trial.verdict),
        }

    # ---- reading -------------------------------------------------------------------------------
    def _query(self, where: list[str], columns: list[str] | None = None) -> list[dict[str, Any]]:
        q = self._table.search()
        if where:
            q = q.where(" AND ".join(f"({w})" for w in where))
        if columns:
            q = q.select(columns)
        return q.limit(None).to_list()

    def trials(
        self,
        tool: str | None = None,
        since: datetime | None = None,
        status: TrialStatus | None = None,
        *,
        episode: int | None = None,
    ) -> list[TrialRecord]:
        """Trials, oldest first, optionally of one tool / recorded after ``since`` / with one status."""
        where = []
        if tool is not None:
            where.append(f"tool = {quote(tool)}")
        if since is not None:
            where.append(f"recorded_at > {_ts(since)}")
        if status is not None:
            where.append(f"status = {quote(status)}")
        if episode is not None:
            where.append(f"episode = {int(episode)}")
        rows = self._query(where)
        return sorted((_record(row) for row in rows), key=lambda t: (t.recorded_at, t.slot))

    def get(self, trial_id: str) -> TrialRecord | None:
        rows = self._query([f"id = {quote(trial_id)}"])
        return _record(rows[0]) if rows else None

    def unjudged(self, tool: str | None = None) -> list[TrialRecord]:
        """Judgeable trials (final answer after >= 1 successful call) without a verdict yet."""
        where = ["judgeable", "verdict IS NULL"]
        if tool is not None:
            where.append(f"tool = {quote(tool)}")
        return sorted((_record(r) for r in self._query(where)), key=lambda t: t.recorded_at)

    def ltm(self, tool: str) -> list[tuple[str, bool | None]]:
        """Long-term memory of a tool: every earlier query, oldest first, and whether it succeeded: by the
        judge's verdict once it has one (accepted and kept by every check), else by the explorer's own
        reflection (None: an answered trial the explorer was not asked about, ``explorer.reflect`` off).

        The verdict first: a small explorer says "yes" to nearly every call that returned, so its own marks
        tell the next episode little (session 35's teacher run: 61 of the 62 trials the checks refused were
        "fulfilled" by reflection, and four tools were asked the same kind of unanswerable request in each
        of four passes)."""
        rows = self._query(
            [f"tool = {quote(tool)}"],
            ["query", "success", "judgeable", "reflection", "verdict", "recorded_at"],
        )
        rows.sort(key=lambda r: r["recorded_at"])
        return [(r["query"], _succeeded(r)) for r in rows]

    def episode_progress(self, tool: str | None = None) -> dict[str, dict[int, int]]:
        """Per tool, per episode: how many slots are recorded (slots are recorded in order)."""
        where = [f"tool = {quote(tool)}"] if tool is not None else []
        out: dict[str, dict[int, int]] = defaultdict(dict)
        for r in self._query(where, ["tool", "episode", "slot"]):
            episodes = out[r["tool"]]
            episodes[r["episode"]] = max(episodes.get(r["episode"], 0), r["slot"] + 1)
        return dict(out)

    def episode_trials(self, tool: str, episode: int) -> list[TrialRecord]:
        """The recorded trials of one episode, in slot order (to rebuild its STM on resume)."""
        return sorted(self.trials(tool, episode=episode), key=lambda t: t.slot)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per tool: trials, successful_trials, episodes, calls, successful_calls, parse_errors,
        tokens, success_rate, last_trial_at."""
        out: dict[str, dict[str, Any]] = {}
        episodes: dict[str, set[int]] = defaultdict(set)
        for r in self._query([], _STATS_COLUMNS):
            s = out.setdefault(
                r["tool"],
                {
                    "trials": 0,
                    "successful_trials": 0,
                    "episodes": 0,
                    "calls": 0,
                    "successful_calls": 0,
                    "parse_errors": 0,
                    "tokens": 0,
                    "last_trial_at": None,
                },
            )
            episodes[r["tool"]].add(r["episode"])
            s["trials"] += 1
            s["successful_trials"] += int(bool(r["success"]))
            s["calls"] += r["calls"]
            s["successful_calls"] += r["successful_calls"]
            s["parse_errors"] += r["parse_errors"]
            s["tokens"] += r["prompt_tokens"] + r["completion_tokens"]
            at = r["recorded_at"]
            if s["last_trial_at"] is None or at > s["last_trial_at"]:
                s["last_trial_at"] = at
        for tool, s in out.items():
            s["episodes"] = len(episodes[tool])
            s["success_rate"] = round(s["successful_trials"] / s["trials"], 4) if s["trials"] else 0.0
            s["last_trial_at"] = s["last_trial_at"].isoformat() if s["last_trial_at"] else None
        return out

    def count(self, tool: str | None = None) -> int:
        return self._table.count_rows(f"tool = {quote(tool)}" if tool is not None else None)


def _record(row: dict[str, Any]) -> TrialRecord:
    data = {k: v for k, v in row.items() if k in TrialRecord.model_fields}
    data["turns"] = json.loads(row["turns"] or "[]")
    data["messages"] = json.loads(row["messages"] or "[]")
    data["verdict"] = json.loads(row["verdict"]) if row.get("verdict") else None
    return TrialRecord.model_validate(data)
