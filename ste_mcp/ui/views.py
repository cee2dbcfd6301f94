"""What the dashboard pages show, read afresh from the data dir on every request through the stores the
CLI uses (``DescriptionStore``, ``ExemplarStore``, ``TrialStore``, ``AdapterRegistry``,
``collect_status``). Synchronous: the routes call these in a worker thread."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ste_mcp.memory.db import open_settings_db

if TYPE_CHECKING:
    from ste_mcp.config import Settings
    from ste_mcp.memory.descriptions import DescriptionStore, DescriptionVersion
    from ste_mcp.memory.exemplars import Exemplar, ExemplarStore
    from ste_mcp.memory.trials import TrialRecord, TrialStore

MAX_TRIALS_LISTED = 300
MAX_EVAL_FILES = 200
OUTCOMES = ("success", "failure", "accepted", "rejected", "unjudged")
EVAL_DIR = "eval"


class Stores:
    """The stores of one data dir, opened for one request (so each page sees every process's writes)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._db: Any = None

    @property
    def db(self) -> Any:
        if self._db is None:
            self._db = open_settings_db(self.settings)  # a folder, or memory.uri
        return self._db

    def descriptions(self) -> DescriptionStore:
        from ste_mcp.memory.descriptions import DescriptionStore

        return DescriptionStore(self.db)

    def exemplars(self) -> ExemplarStore:
        from ste_mcp.memory.exemplars import ExemplarStore

        return ExemplarStore(self.db)

    def trials(self) -> TrialStore:
        from ste_mcp.memory.trials import TrialStore

        return TrialStore(self.db)

    def adapters(self) -> Any:
        from ste_mcp.finetune.registry import AdapterRegistry

        return AdapterRegistry(self.settings.adapters_dir)


# ---- tools -------------------------------------------------------------------------------------
def tools_page(settings: Settings, served: Sequence[str] = ()) -> dict[str, Any]:
    """``ste-mcp status``'s document (per tool fields, totals, the live explorer, paused), with a row
    for each ``served`` tool that has learned nothing yet."""
    from ste_mcp.explorer.status import collect_status

    status = collect_status(settings)
    for name in served:
        status["tools"].setdefault(name, {"trials": 0, "successful_trials": 0, "episodes": 0})
    status["tools"] = dict(sorted(status["tools"].items()))
    return status


def set_paused(settings: Settings, paused: bool) -> Path:
    """Pause / resume exploration in every process of this data dir, like ``ste-mcp explore --pause``:
    the explorers of ``serve`` and ``explore`` follow the marker file."""
    from ste_mcp.explorer.status import pause_marker

    marker = pause_marker(settings)
    if paused:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    else:
        marker.unlink(missing_ok=True)
    return marker


# ---- trials ------------------------------------------------------------------------------------
def outcome_of(trial: TrialRecord) -> dict[str, Any]:
    """The trial's own reflection and the judge's verdict, for display and filtering."""
    verdict = trial.verdict
    judged = None if verdict is None else bool(verdict.get("accepted"))
    return {"success": trial.success, "judged": judged}


def matches(trial: TrialRecord, outcome: str | None) -> bool:
    o = outcome_of(trial)
    return {
        None: True,
        "": True,
        "success": o["success"],
        "failure": not o["success"],
        "accepted": o["judged"] is True,
        "rejected": o["judged"] is False,
        "unjudged": o["judged"] is None,
    }.get(outcome, True)


def trials_page(stores: Stores, tool: str | None, outcome: str | None) -> dict[str, Any]:
    store = stores.trials()
    all_trials = store.trials(tool or None)
    chosen = [t for t in all_trials if matches(t, outcome)]
    chosen.reverse()  # newest first
    return {
        "trials": chosen[:MAX_TRIALS_LISTED],
        "shown": min(len(chosen), MAX_TRIALS_LISTED),
        "matching": len(chosen),
        "tools": sorted(store.stats()),
        "tool": tool or "",
        "outcome": outcome or "",
        "outcomes": OUTCOMES,
    }


def trial_page(stores: Stores, trial_id: str) -> dict[str, Any] | None:
    trial = stores.trials().get(trial_id)
    if trial is None:
        return None
    verdict = trial.verdict or {}
    return {
        "trial": trial,
        "outcome": outcome_of(trial),
        "verdict": {
            k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in verdict.items()
        },
    }


# ---- exemplars ---------------------------------------------------------------------------------
@dataclass
class ExemplarGroup:
    """An exemplar with its paraphrases (approved / rejected together)."""

    original: Exemplar
    paraphrases: list[Exemplar] = field(default_factory=list)


def exemplars_page(stores: Stores, tool: str | None, status: str | None) -> dict[str, Any]:
    from ste_mcp.memory.exemplars import STATUSES

    store = stores.exemplars()
    status = status if status in STATUSES else None
    rows = store.find(tool or None, status)  # type: ignore[arg-type]
    groups: dict[str, ExemplarGroup] = {}
    orphans = []
    for ex in rows:
        if ex.variant_of is None:
            groups[ex.id] = ExemplarGroup(ex)
    for ex in rows:
        if ex.variant_of is not None:
            if ex.variant_of in groups:
                groups[ex.variant_of].paraphrases.append(ex)
            else:
                orphans.append(ex)  # a paraphrase whose original has another status
    counts = store.counts()
    return {
        "groups": list(groups.values()),
        "orphans": orphans,
        "tools": sorted(counts),
        "counts": counts,
        "tool": tool or "",
        "status": status or "",
        "statuses": STATUSES,
    }


def exemplar_ids_for(stores: Stores, ids: list[str], all_candidates: bool, tool: str | None) -> list[str]:
    """The ids an approve / reject applies to, as ``ste-mcp exemplars approve|reject`` computes them;
    raises ``LookupError`` naming unknown ids."""
    store = stores.exemplars()
    chosen = list(ids)
    if all_candidates:
        chosen += [ex.id for ex in store.find(tool or None, "candidate", originals_only=True)]
    if not chosen:
        raise LookupError("select exemplars (or all candidates) first")
    missing = [i for i in chosen if store.get(i) is None]
    if missing:
        raise LookupError(f"no exemplar with id {', '.join(missing)}")
    return chosen


def set_exemplar_status(stores: Stores, ids: list[str], status: str, reason: str) -> int:
    return stores.exemplars().set_status(ids, status, reason)  # type: ignore[arg-type]


# ---- descriptions ------------------------------------------------------------------------------
def descriptions_page(stores: Stores) -> dict[str, Any]:
    store = stores.descriptions()
    latest = store.current_all()
    served = store.served_all()
    pending = {v.tool: v for v in store.pending()}
    rows = [
        {"tool": tool, "latest": latest[tool], "served": served.get(tool), "pending": pending.get(tool)}
        for tool in sorted(latest)
    ]
    return {"rows": rows, "pending": list(pending.values())}


@dataclass
class DiffRow:
    """One line pair of a side-by-side diff; ``kind`` is equal, replace, delete or insert."""

    kind: str
    left_no: int | None
    left: str
    right_no: int | None
    right: str


def side_by_side(old: str, new: str) -> list[DiffRow]:
    a, b = old.splitlines(), new.splitlines()
    rows: list[DiffRow] = []
    for kind, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        for k in range(max(i2 - i1, j2 - j1)):
            i, j = i1 + k, j1 + k
            rows.append(
                DiffRow(
                    kind,
                    i + 1 if i < i2 else None,
                    a[i] if i < i2 else "",
                    j + 1 if j < j2 else None,
                    b[j] if j < j2 else "",
                )
            )
    return rows


def default_pair(
    history: list[DescriptionVersion], served: DescriptionVersion | None
) -> tuple[DescriptionVersion | None, DescriptionVersion]:
    """The versions ``ste-mcp descriptions diff TOOL`` compares: served -> pending when one waits, else
    the previous version -> the newest."""
    new = history[-1]
    if new.status == "pending" and served is not None and served.version < new.version:
        return served, new
    older = [v for v in history if v.version < new.version]
    return (older[-1] if older else None), new


def description_page(
    stores: Stores, tool: str, from_version: int | None, to_version: int | None
) -> dict[str, Any] | None:
    store = stores.descriptions()
    history = store.history(tool)
    if not history:
        return None
    served = store.served(tool)
    by_number = {v.version: v for v in history}
    old, new = default_pair(history, served)
    if to_version in by_number:
        new = by_number[to_version]
    if from_version in by_number:
        old = by_number[from_version]
    return {
        "tool": tool,
        "history": list(reversed(history)),
        "served": served,
        "old": old,
        "new": new,
        "diff": side_by_side(old.text, new.text) if old is not None else [],
        "waiting": [
            v for v in history if v.status == "pending" and (served is None or v.version > served.version)
        ],
    }


# ---- adapters ----------------------------------------------------------------------------------
METRICS = ("correct", "api_match", "wellformed")


def adapters_page(stores: Stores) -> dict[str, Any]:
    registry = stores.adapters()
    manifests = registry.list()
    current = registry.current()
    rows = []
    for m in manifests:
        ev, base = m.metrics.get("eval") or {}, m.metrics.get("baseline") or {}
        rows.append(
            {
                "m": m,
                "metrics": [(name, ev.get(name), base.get(name)) for name in METRICS],
                "train": m.metrics.get("train") or {},
            }
        )
    return {
        "rows": rows,
        "current": current,
        "history": registry.history(),
        "root": registry.root,
        "curve": curve(manifests),
    }


def curve(manifests: list[Any]) -> list[dict[str, Any]]:
    """Held-out ``correct`` % of each round and of its baseline: the points of the learning chart."""
    points = []
    for m in manifests:
        ev, base = m.metrics.get("eval") or {}, m.metrics.get("baseline") or {}
        if isinstance(ev.get("correct"), int | float):
            points.append(
                {
                    "label": f"r{m.round} {m.id}",
                    "value": float(ev["correct"]),
                    "baseline": base.get("correct"),
                }
            )
    return points


# ---- evals -------------------------------------------------------------------------------------
def eval_dir(settings: Settings) -> Path:
    return settings.data_dir / EVAL_DIR


def evals_page(settings: Settings) -> dict[str, Any]:
    """The eval summaries (``summary.json``) and charts (PNG) under ``<data_dir>/eval``."""
    root = eval_dir(settings)
    summaries, charts = [], []
    if root.is_dir():
        for path in sorted(root.rglob("summary.json"))[:MAX_EVAL_FILES]:
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                summaries.append({"name": str(path.parent.relative_to(root)), "error": str(exc), "rows": []})
                continue
            rows = (
                [(k, v) for k, v in data.items() if isinstance(v, str | int | float | bool)]
                if isinstance(data, dict)
                else []
            )
            summaries.append({"name": str(path.parent.relative_to(root)) or ".", "error": "", "rows": rows})
        charts = [str(p.relative_to(root)) for p in sorted(root.rglob("*.png"))[:MAX_EVAL_FILES]]
    return {"root": root, "summaries": summaries, "charts": charts}


def eval_file(settings: Settings, relative: str) -> Path | None:
    """A PNG under the eval folder (``None`` for anything else, e.g. ``../`` escapes)."""
    root = eval_dir(settings).resolve()
    path = (root / relative).resolve()
    if path.suffix.lower() != ".png" or not path.is_file() or not path.is_relative_to(root):
        return None
    return path
