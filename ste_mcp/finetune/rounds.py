"""One fine-tuning round: data -> training process -> gate -> registry (-> promotion).

``run_round`` is what ``ste-mcp train`` and the trigger in ``ste-mcp serve`` call. The heavy work runs
in a child process (``python -m ste_mcp.finetune.train``), so the caller's event loop keeps serving.
Only one round runs at a time per adapters folder (a file lock). A round killed part-way leaves its
work folder behind; running the same round again (same data, same id) resumes from its checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from ste_mcp.finetune.dataset import (
    GENERAL_PROMPTS,
    DatasetBuilder,
    Embed,
    RoundData,
    load_chat_tokens,
    write_jsonl,
)
from ste_mcp.finetune.gate import Decision, decide
from ste_mcp.finetune.registry import AdapterRegistry, Manifest, write_json_atomic
from ste_mcp.finetune.settings import FinetuneSettings
from ste_mcp.finetune.train import PARENT_PID_ENV, TrainJob
from ste_mcp.memory.exemplars import Exemplar
from ste_mcp.upstream.tools import Tool

if TYPE_CHECKING:
    from ste_mcp.config import Settings
    from ste_mcp.upstream.specs import Toolset


class RoundError(Exception):
    """A round could not run or its training process failed; the message says where to look."""


class BaseModelRef(BaseModel):
    """The model being adapted: a local Hugging Face folder and the id adapters name as their base."""

    path: str
    base_id: str


class RoundResult(BaseModel):
    status: Literal["skipped", "promoted", "rejected", "registered"]
    reason: str
    adapter: Manifest | None = None


@contextlib.contextmanager
def _exclusive(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RoundError(f"another fine-tuning round is running on {root}") from None
        yield


async def _run_process(cmd: list[str], log: IO[str] | None, pid_file: Path, threads: int | None) -> int:
    """Run the training process in its own process group; cancelling the caller kills the group.

    The child gets this process's pid (``PARENT_PID_ENV``): ``ste_mcp.finetune.train`` dies with it.
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1", PARENT_PID_ENV: str(os.getpid())}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=log, stderr=log, env=env, start_new_session=True)
    pid_file.write_text(str(proc.pid))
    try:
        return await proc.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise


# Settings that say when and where rounds run, not what they learn.
_SCHEDULING = {
    "train_every_n_exemplars",
    "schedule_minutes",
    "poll_s",
    "enabled_in_serve",
    "cpu_threads",
    "serve_merged",
}
# Settings that leave the trained adapter unchanged (memory for speed, how often to checkpoint, the
# gate's thresholds, applied after training): changing one does not make a new round, so a round killed
# for memory resumes from its checkpoint after one of them is changed.
_SAME_RESULT = {
    "gradient_checkpointing",
    "save_steps",
    "save_minutes",
    "gate_min_delta",
    "gate_min_heldout",
    "gate_worse_p",
    "gate_stop_early",
}


def hyperparameters(settings: FinetuneSettings) -> dict[str, Any]:
    """The settings a round trains with (recorded in its manifest)."""
    return settings.model_dump(exclude=_SCHEDULING)


def round_key(settings: FinetuneSettings) -> dict[str, Any]:
    """The settings that make a round a different round (part of its adapter id)."""
    return settings.model_dump(exclude=_SCHEDULING | _SAME_RESULT)


def _exit_hint(code: int) -> str:
    """What a training process's exit status most likely means, for the error message."""
    if code != -signal.SIGKILL:
        return ""
    return (
        ": killed (SIGKILL) from outside, on Linux most often by the out-of-memory killer. Turn"
        " finetune.gradient_checkpointing on and run the round again (it resumes from its last saved"
        " checkpoint), or lower finetune.batch_size (it starts over)"
    )


def build_data(
    base: BaseModelRef,
    tools: Sequence[Tool],
    settings: FinetuneSettings,
    secrets: Sequence[str],
    exemplars: Sequence[Exemplar],
    learned: set[str],
    earlier: Sequence[Sequence[str]],
    embed: Embed | None = None,
    spent: Sequence[str] = (),
) -> RoundData:
    """The round's rows, each measured with the base model's tokenizer (blocking: run it in a thread)."""
    builder = DatasetBuilder(tools, settings, secrets, count_tokens=load_chat_tokens(base.path), embed=embed)
    return builder.build(exemplars, learned, earlier, spent)


async def run_round(
    *,
    adapters_dir: Path,
    base: BaseModelRef,
    tools: Sequence[Tool],
    exemplars: Sequence[Exemplar],
    settings: FinetuneSettings,
    secrets: Sequence[str] = (),
    gate: bool = True,
    from_scratch: bool = False,
    log: IO[str] | None = None,
    embed: Embed | None = None,
) -> RoundResult:
    """Train an adapter on the exemplars the current adapter has not learned, gate it, register it.

    ``log``: where the training process writes its progress (``None``: the caller's stdout/stderr);
    ``embed``: the exemplar store's embedder (needed by ``finetune.demonstrations``).
    """
    registry = AdapterRegistry(adapters_dir)
    with _exclusive(registry.root):
        current = registry.current()
        if current is not None and current.base_model != base.base_id:
            current = None  # adapters of another base model are not a starting point
        lineage = [] if from_scratch or current is None else registry.lineage(current.id)
        learned = {i for m in lineage for i in m.exemplar_ids}
        earlier = [m.exemplar_ids for m in lineage]  # replayed as the exemplars are now
        spent = sorted({t for m in lineage for t in m.left_out})  # left out once: learned now
        data = await asyncio.to_thread(
            build_data, base, tools, settings, secrets, exemplars, learned, earlier, embed, spent
        )
        if len(data.new_exemplar_ids) < settings.min_new_exemplars:
            return RoundResult(
                status="skipped",
                reason=f"{len(data.new_exemplar_ids)} new approved exemplars to learn "
                f"(a round needs {settings.min_new_exemplars})",
            )
        parent = lineage[0] if lineage else None
        hyper = hyperparameters(settings)
        data_hash = data.data_hash(
            {"base": base.base_id, "parent": parent and parent.id, "hyper": round_key(settings)}
        )
        adapter_id = f"r{len(lineage) + 1:03d}-{data_hash[:10]}"
        if (registry.path(adapter_id)).exists():
            return RoundResult(
                status="skipped", reason=f"adapter {adapter_id} was already trained on this data"
            )

        work = registry.work_dir(adapter_id)
        work.mkdir(parents=True, exist_ok=True)
        write_jsonl(work / "dataset.jsonl", data.rows)
        write_jsonl(work / "heldout.jsonl", data.heldout)
        baseline = registry.path(current.id) if current is not None else None
        job = TrainJob(
            base_model_path=base.path,
            base_model_id=base.base_id,
            work_dir=str(work),
            settings=settings,
            parent_adapter=str(registry.path(parent.id)) if parent else None,
            baseline_adapter=str(baseline) if baseline else None,
            general_prompts=list(GENERAL_PROMPTS[: settings.general_examples]),
            general_cache=str(registry.root / ".general"),
            tool_names=[t.name for t in tools],
            evaluate=gate,
        )
        write_json_atomic(work / "job.json", job.model_dump(mode="json"))
        cmd = [sys.executable, "-m", "ste_mcp.finetune.train", "--config", str(work / "job.json")]
        if settings.gpus > 1:  # data-parallel on this machine's GPUs: one training process per GPU
            cmd[1:1] = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={settings.gpus}"]
        code = await _run_process(cmd, log, work / "train.pid", settings.cpu_threads)
        if code != 0:
            raise RoundError(
                f"training process for {adapter_id} exited with status {code}{_exit_hint(code)} "
                f"(work folder: {work})"
            )
        result = read_json(work / "result.json")
        decision = (
            decide(
                result["eval"],
                result["baseline"],
                settings.gate_min_delta,
                settings.gate_min_heldout,
                unexplored=result.get("unexplored"),
                worse_p=settings.gate_worse_p,
                served=result.get("served"),
            )
            if gate
            else Decision(promote=False, judged=False, reason="not gated (registered as a candidate)")
        )
        if stopped := result.get("stopped_early"):
            decision.reason += f" (asked {stopped['asked']} of {stopped['rows']} held-out rows: the rest could not change it)"
        manifest = Manifest(
            id=adapter_id,
            base_model=base.base_id,
            base_model_path=base.path,
            data_hash=data_hash,
            parent=parent.id if parent else None,
            round=len(lineage) + 1,
            status="rejected" if decision.judged else "candidate",
            status_reason=decision.reason,
            tools=data.tools,
            exemplar_ids=data.new_exemplar_ids,
            left_out=data.left_out,
            counts={
                **data.counts,
                "general": int(result["train"].get("general_rows", 0)),
                "shortened": data.shortened,
                **{f"skipped_{why}": n for why, n in data.skipped.items() if n},  # exemplars not trained on
            },
            metrics={
                k: result[k]
                for k in ("train", "eval", "baseline", "unexplored", "served", "stopped_early")
                if k in result
            },
            hyperparameters={**hyper, "foreign_examples": data.foreign},  # auto, resolved
        )
        folder = work / "adapter"
        for name in ("dataset.jsonl", "heldout.jsonl"):
            shutil.copy2(work / name, folder / name)
        if "predictions" in result:
            write_jsonl(folder / "predictions.jsonl", result["predictions"])
        registry.register(folder, manifest)
        shutil.rmtree(work, ignore_errors=True)
        if decision.promote:
            manifest = registry.promote(adapter_id, decision.reason)
            return RoundResult(status="promoted", reason=decision.reason, adapter=manifest)
        return RoundResult(
            status="rejected" if decision.judged else "registered", reason=decision.reason, adapter=manifest
        )


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise RoundError(f"the training process left no result at {path}")
    return json.loads(path.read_text())


async def round_from_settings(
    settings: Settings,
    *,
    toolset: Toolset | None = None,
    gate: bool = True,
    from_scratch: bool = False,
    log: IO[str] | None = None,
) -> RoundResult:
    """A round over what the settings point at: the configured model, the toolset and the exemplar store."""
    inputs = await round_inputs(settings, toolset)
    return await run_round(**inputs, gate=gate, from_scratch=from_scratch, log=log)


async def round_inputs(settings: Settings, toolset: Toolset | None = None) -> dict[str, Any]:
    """What a round over the settings reads, as ``run_round``'s keyword arguments: the adapters folder,
    the prepared base model, the served tools and their secrets, the approved exemplars, the store's
    embedder and the fine-tuning settings."""
    from ste_mcp.app import App
    from ste_mcp.llm.sources import ModelSourceError, prepare_model
    from ste_mcp.memory.db import Memory
    from ste_mcp.upstream.specs import SpecError

    try:
        prepared = await asyncio.to_thread(prepare_model, settings.llm.model, settings.models_dir)
    except ModelSourceError as exc:
        raise RoundError(f"cannot prepare the base model {settings.llm.model!r}: {exc}") from exc
    if toolset is None:  # the App loads the specs (starting the offline toolbox when there are none)
        try:
            async with App(settings, features=[]) as app:
                toolset = app.toolset
        except SpecError as exc:
            raise RoundError(f"cannot load the tool specs: {exc}") from exc
    store = await asyncio.to_thread(lambda: Memory.open(settings).exemplars)
    exemplars = await asyncio.to_thread(store.approved)
    return {
        "adapters_dir": settings.adapters_dir,
        "base": BaseModelRef(path=str(prepared.path), base_id=prepared.base_id),
        "tools": list(toolset),
        "exemplars": exemplars,
        "settings": settings.finetune,
        "secrets": toolset.secret_values(),
        "embed": store.embedder.embed,
    }
