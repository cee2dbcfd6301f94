"""The training process: ``python -m ste_mcp.finetune.train --config JOB.json``.

Runs apart from the server so that serving and exploration never stall. In ``job.work_dir`` it reads
``dataset.jsonl`` and ``heldout.jsonl`` (written by ``rounds.py``), trains a LoRA adapter with TRL's
``SFTTrainer`` (checkpoints in ``checkpoints/``: a killed run resumes from the last one), saves the
adapter to ``adapter/`` (atomically), evaluates it and the baseline on the held-out exemplars, and
writes ``result.json``. It never touches the registry: the parent registers the adapter. It dies with
its parent (``die_with_parent``): a killed ``ste-mcp serve`` / ``train`` leaves no orphan training.

Several GPUs (``finetune.gpus`` > 1): the round starts it under ``torchrun --nproc_per_node=N``; each
process trains on its GPU (``LOCAL_RANK``) and TRL/accelerate run data-parallel (DDP); process 0 alone
saves the adapter, evaluates it and writes ``result.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ste_mcp.finetune.settings import FinetuneSettings

PARENT_PID_ENV = "STE_MCP_TRAIN_PARENT_PID"
"""Set by the parent (``rounds.py``) to its pid: the training process ends when that process dies."""

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int | None = None, *, pdeathsig: bool = True, interval: float = 1.0) -> None:
    """End this process (SIGKILL) as soon as ``parent_pid`` dies, even when it was killed with SIGKILL.

    ``parent_pid`` defaults to ``$STE_MCP_TRAIN_PARENT_PID`` (removed from the environment, so helper
    processes do not inherit it); with neither, nothing is done. On Linux the kernel delivers the signal
    (``PR_SET_PDEATHSIG``); everywhere a daemon thread also checks every ``interval`` s whether this
    process was re-parented. Dying abruptly is safe: a killed round resumes from its last checkpoint.
    """
    if parent_pid is None:
        value = os.environ.pop(PARENT_PID_ENV, "").strip()
        if not value.isdigit():
            return
        parent_pid = int(value)
    # under torchrun the parent is its agent: die with the agent, and also when the round's process is gone
    launcher = os.getppid() if _rank() is not None else None
    if pdeathsig and sys.platform.startswith("linux"):
        _set_pdeathsig(signal.SIGKILL)
    if launcher is None and os.getppid() != parent_pid:  # it died before the signal was armed
        _die()
    watcher = threading.Thread(
        target=_watch_parent,
        args=(parent_pid, interval, launcher),
        name="ste-mcp-parent-watch",
        daemon=True,
    )
    watcher.start()


def _set_pdeathsig(sig: int) -> None:
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            print(f"prctl(PR_SET_PDEATHSIG) failed: errno {ctypes.get_errno()}", file=sys.stderr)
    except (OSError, AttributeError) as exc:  # no prctl: the watcher thread still covers it
        print(f"prctl(PR_SET_PDEATHSIG) unavailable: {exc}", file=sys.stderr)


def _watch_parent(parent_pid: int, interval: float, launcher: int | None = None) -> None:
    while (
        (os.getppid() == parent_pid)
        if launcher is None
        else (os.getppid() == launcher and pid_alive(parent_pid))
    ):
        time.sleep(interval)
    print(f"parent process {parent_pid} is gone: stopping training", file=sys.stderr, flush=True)
    _die()


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _rank() -> int | None:
    """This process's global rank when torchrun / accelerate launched it, else None."""
    value = os.environ.get("RANK", "")
    return int(value) if value.isdigit() and "LOCAL_RANK" in os.environ else None


def _die() -> None:
    if os.getpgrp() == os.getpid():  # leader of its own group (start_new_session): end its helpers too
        with contextlib.suppress(OSError):
            os.killpg(os.getpid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


class TrainJob(BaseModel):
    """What the training process is asked to do."""

    base_model_path: str
    base_model_id: str
    work_dir: str
    settings: FinetuneSettings = Field(default_factory=FinetuneSettings)
    parent_adapter: str | None = None  # continue from these weights (continual learning)
    baseline_adapter: str | None = None  # the gate compares with this one (None: the base model)
    general_prompts: list[str] = Field(default_factory=list)
    general_cache: str | None = None  # JSONL of the base model's answers, reused across rounds
    tool_names: list[str] = Field(default_factory=list)  # every known tool (resolving predicted names)
    evaluate: bool = True


def pick_device(choice: str) -> str:
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if choice == "auto" else choice
    if device == "cuda" and "LOCAL_RANK" in os.environ:  # one GPU per process under torchrun
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return device


def pick_dtype(choice: str, device: str) -> str:
    """``auto``: bfloat16 where ``device`` computes it natively, else float32."""
    if choice != "auto":
        return choice
    if device == "cuda":
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    from ste_mcp.hardware import cpu_has_bf16

    return "bfloat16" if cpu_has_bf16() else "float32"


def load_base(path: str, dtype: str, device: str) -> tuple[Any, Any]:
    """The base model (in ``finetune.dtype``, resolved for ``device``) and its tokenizer, padded."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch_dtype = getattr(torch, pick_dtype(dtype, device))
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).to(device)
    return model, tokenizer


def general_answers(job: TrainJob, model: Any, tokenizer: Any) -> list[tuple[str, str]]:
    """The base model's answers to the general prompts (generated once, then read from the cache)."""
    from ste_mcp.finetune.gate import generate

    prompts = job.general_prompts
    if not prompts:
        return []
    key = hashlib.sha256(json.dumps([job.base_model_id, prompts]).encode()).hexdigest()[:16]
    cache = Path(job.general_cache) / f"{key}.json" if job.general_cache else None
    if cache is not None and cache.is_file():
        return [tuple(pair) for pair in json.loads(cache.read_text())]
    print(f"generating general-ability answers for {len(prompts)} prompts", file=sys.stderr)
    outputs = generate(
        model, tokenizer, [[{"role": "user", "content": p}] for p in prompts], max_new_tokens=96
    )
    pairs = list(zip(prompts, outputs, strict=True))
    if cache is not None:
        from ste_mcp.finetune.registry import write_json_atomic

        write_json_atomic(cache, pairs)
    return pairs


def _peft_model(job: TrainJob, model: Any) -> Any:
    from peft import LoraConfig, PeftModel, get_peft_model

    if job.parent_adapter:
        return PeftModel.from_pretrained(model, job.parent_adapter, is_trainable=True)
    s = job.settings
    config = LoraConfig(
        r=s.lora_rank,
        lora_alpha=s.lora_alpha,
        lora_dropout=s.lora_dropout,
        target_modules=s.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def checkpoint_every(seconds: float) -> Any:
    """A Trainer callback that also saves a checkpoint once ``seconds`` passed since the last save
    (or the start): on a CPU a step can take minutes, and ``save_steps`` alone would lose them all."""
    from transformers import TrainerCallback

    class CheckpointEvery(TrainerCallback):
        def __init__(self) -> None:
            self.last = time.monotonic()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if time.monotonic() - self.last >= seconds:
                control.should_save = True
            return control

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            self.last = time.monotonic()
            return control

    return CheckpointEvery()


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint the Trainer finished writing (its state file comes last); a half-written
    newer one (the process was killed while saving) is removed."""
    found = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]), reverse=True)
    for checkpoint in found:
        if (checkpoint / "trainer_state.json").is_file():
            return checkpoint
        shutil.rmtree(checkpoint, ignore_errors=True)
    return None


def optimizer_steps(settings: FinetuneSettings, rows: int) -> int:
    """The optimiser steps a round of ``rows`` rows takes (as the Trainer counts them)."""
    if settings.max_steps:
        return settings.max_steps
    batches = math.ceil(rows / settings.batch_size)
    per_epoch = max(batches // settings.gradient_accumulation_steps, 1)
    return math.ceil(settings.epochs * per_epoch)


def warmup_steps(settings: FinetuneSettings, rows: int) -> int:
    """Warm-up steps of a round: the learning rate re-warms from 0 in every round (a fresh scheduler),
    for ``max(warmup_steps, warmup_ratio x steps)`` steps, at most half the round's steps."""
    total = optimizer_steps(settings, rows)
    wanted = max(settings.warmup_steps, math.ceil(settings.warmup_ratio * total))
    return min(wanted, total // 2)


def train(
    job: TrainJob, model: Any, tokenizer: Any, rows: list[dict[str, Any]], device: str
) -> dict[str, Any]:
    """Train the adapter on ``rows`` (resuming from a checkpoint when there is one); returns train metrics."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    s = job.settings
    work = Path(job.work_dir)
    checkpoints = work / "checkpoints"
    fitting = rows_that_fit(rows, tokenizer, s.max_length)  # SFTConfig's max_length would cut the rest
    if not fitting:
        raise ValueError(f"no training row fits in finetune.max_length = {s.max_length} tokens")
    dataset = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in fitting])
    warmup = warmup_steps(s, len(fitting))
    config = SFTConfig(
        output_dir=str(checkpoints),
        per_device_train_batch_size=s.batch_size,
        gradient_accumulation_steps=s.gradient_accumulation_steps,
        num_train_epochs=s.epochs,
        max_steps=s.max_steps or -1,
        learning_rate=s.learning_rate,
        warmup_steps=warmup,
        lr_scheduler_type="cosine",
        max_length=s.max_length,
        gradient_checkpointing=s.gradient_checkpointing,
        completion_only_loss=True,
        logging_steps=1,
        save_strategy="steps",
        save_steps=s.save_steps,
        save_total_limit=1,
        report_to=[],
        seed=s.seed,
        use_cpu=device == "cpu",
        bf16=str(model.dtype) == "torch.bfloat16",
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    trainer = SFTTrainer(
        model=_peft_model(job, model),
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[checkpoint_every(s.save_minutes * 60)] if s.save_minutes else None,
    )
    resume = last_complete_checkpoint(checkpoints)
    if resume:
        print(f"resuming from {resume}", file=sys.stderr)
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - started
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    tokens = int(trainer.state.num_input_tokens_seen)
    if trainer.is_world_process_zero():
        _save_adapter(trainer.model, work, job.base_model_id)
    trainer.accelerator.wait_for_everyone()
    return {
        "steps": int(output.global_step),
        "rows": len(fitting),
        "too_long": len(rows) - len(fitting),
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "train_loss": float(output.training_loss),
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else None,
        "warmup_steps": warmup,
        "resumed": resume is not None,
        "device": device,
        "processes": int(config.world_size),  # data-parallel training processes (finetune.gpus)
    }


def _save_adapter(model: Any, work: Path, base_model_id: str) -> None:
    """Save the PEFT adapter to ``work/adapter`` in one rename; its config names the base model's id."""
    partial = work / "adapter.partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(str(partial))
    config_file = partial / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = base_model_id  # not the local folder it was trained from
    config_file.write_text(json.dumps(config, indent=2))
    target = work / "adapter"
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)


def rows_that_fit(rows: list[dict[str, Any]], tokenizer: Any, max_length: int) -> list[dict[str, Any]]:
    """The rows whose prompt and completion fit in ``max_length`` tokens. A longer row would be cut from
    the end, which is its completion: the very target it is there to teach. (The dataset builder lists
    fewer tools to make rows fit; this catches what it could not shorten.)"""

    from ste_mcp.finetune.dataset import chat_tokens

    count = chat_tokens(tokenizer)
    kept = [row for row in rows if count(row["prompt"] + row["completion"]) <= max_length]
    if len(kept) < len(rows):
        print(f"{len(rows) - len(kept)} rows longer than {max_length} tokens left out", file=sys.stderr)
    return kept


def run_job(job: TrainJob) -> dict[str, Any]:
    from ste_mcp.finetune.dataset import general_rows, read_jsonl
    from ste_mcp.finetune.gate import evaluate_adapters
    from ste_mcp.finetune.registry import write_json_atomic

    work = Path(job.work_dir)
    device = pick_device(job.settings.device)
    model, tokenizer = load_base(job.base_model_path, job.settings.dtype, device)
    rows = read_jsonl(work / "dataset.jsonl")
    general = general_rows(general_answers(job, model, tokenizer))
    result: dict[str, Any] = {"train": train(job, model, tokenizer, rows + general, device)}
    result["train"]["general_rows"] = len(general)
    if _rank() not in (None, 0):  # data-parallel training: process 0 evaluates and reports
        return result
    if job.evaluate:
        heldout = read_jsonl(work / "heldout.jsonl")
        model, tokenizer = load_base(
            job.base_model_path, job.settings.dtype, device
        )  # a clean base: SFTTrainer wrapped the trained one
        result.update(
            evaluate_adapters(
                model,
                tokenizer,
                heldout,
                candidate=str(work / "adapter"),
                baseline=job.baseline_adapter,
                tool_names=job.tool_names,
                max_new_tokens=job.settings.eval_max_new_tokens,
                prompt=job.settings.prompt,
                stop_worse_p=job.settings.gate_worse_p if job.settings.gate_stop_early else None,
            )
        )
    write_json_atomic(work / "result.json", result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ste_mcp.finetune.train", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--config", required=True, help="JSON file with the TrainJob")
    args = parser.parse_args(argv)
    die_with_parent()
    job = TrainJob.model_validate_json(Path(args.config).read_text())
    run_job(job)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
