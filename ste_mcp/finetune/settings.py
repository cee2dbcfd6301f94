"""Settings of LoRA fine-tuning rounds."""

from typing import Annotated, Literal

from pydantic import BaseModel, Field


class FinetuneSettings(BaseModel):
    # LoRA and optimisation (the paper: 2 epochs, warm-up 3%; LoRA needs a higher rate than full FT)
    lora_rank: int = Field(8, ge=1, le=256)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | str = Field("all-linear", description="peft target_modules.")
    epochs: float = Field(2.0, gt=0)
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many optimiser steps (overrides epochs)."
    )
    learning_rate: float = Field(2e-4, gt=0)
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0)
    warmup_steps: int = Field(
        2,
        ge=0,
        description="At least this many warm-up steps in every round: each round re-warms the learning rate "
        "from 0, so a round continuing an earlier adapter does not start at the full rate "
        "(the larger of this and warmup_ratio x the round's steps).",
    )
    batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_length: int = Field(
        1024,
        ge=64,
        description="Tokens per training row: a longer row lists fewer tools; one still too long is left out.",
    )
    save_steps: int = Field(
        50, ge=1, description="Checkpoint every N steps (a killed round resumes from it)."
    )
    save_minutes: float | None = Field(
        10.0,
        gt=0,
        description="Also checkpoint when this many minutes passed since the last one (CPU steps take minutes).",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="Weights and compute of the training process. auto: bfloat16 where the device computes "
        "it natively (a GPU with bf16; a CPU with AVX512-BF16 or AMX, ~1.9x float32's speed), else float32.",
    )
    gradient_checkpointing: bool = Field(
        True,
        description="Recompute activations in the backward pass: less memory, 10-40% slower on a CPU.",
    )
    gpus: int = Field(
        1,
        ge=1,
        description="GPUs of this machine the training runs on: above 1 the round starts it with torchrun "
        "(one process per GPU, data-parallel through TRL/accelerate); batch_size is per GPU.",
    )
    cpu_threads: int | None = Field(
        None, ge=1, description="Torch threads of the training process (None: torch's default, all cores)."
    )
    seed: int = 0
    # data
    replay: Literal["cumulative", "fraction"] = Field(
        "cumulative",
        description="What a round keeps of earlier rounds. cumulative: every earlier round's exemplars are trained "
        "again (the adapter remembers every round; rounds grow). fraction: replay_fraction of each. "
        "Replayed exemplars are written as this round's own rows are (its prompt, examples, secrets).",
    )
    replay_fraction: float = Field(
        0.1, ge=0.0, le=1.0, description="replay = fraction: share of every earlier round replayed."
    )
    general_examples: int = Field(
        16, ge=0, description="Ordinary prompts answered by the base model, mixed in to keep general ability."
    )
    include_final_answer: bool = Field(
        True, description="Also train (query, call, observation) -> final answer."
    )
    tools_in_prompt: int = Field(4, ge=1, description="Tools listed in each example's system prompt.")
    prompt: Literal["paper", "must-call"] = Field(
        "paper",
        description="The prompt the rows are written in, as the evaluation names its variants. paper: the "
        "ReAct prompt the explorer uses (a thought, the call; and final-answer rows); must-call: the tools, "
        "then 'call exactly one of them' and the bare call, the prompt a client asks a small model best in "
        "(no final-answer rows). The gate asks the held-out rows in the same prompt.",
    )
    demonstrations: int = Field(
        0,
        ge=0,
        le=8,
        description="Worked examples in each call row's prompt, as the retrieval setting shows a client its "
        "demonstrations: the round's nearest exemplars of other requests (never the row's own group or a "
        "held-out one), and the listed tools are the row's tool and the tools of its nearest exemplars, so "
        "a demonstration of the wrong tool sits beside the right one. 0: no examples, random other tools.",
    )
    foreign_examples: Annotated[float, Field(ge=0.0, le=1.0)] | Literal["auto"] = Field(
        "auto",
        description="With demonstrations: the share of rows (and of the gate's held-out prompts) whose "
        "examples are all of other tools, as a client is served a request for a tool nobody explored: the "
        "answer is a listed tool with no example beside it, and the examples show only the format. 0: every "
        "row shows its nearest exemplars, most often of its own tool, and an adapter learns to call the "
        "tool of the examples: right where every served tool has examples, wrong on the others (measured: "
        "0.2 still does, 0.5 does not; BENCHMARKS, session 30). auto: 0.5 while some served tool has no "
        "approved exemplar, else 0.",
    )
    heldout_fraction: float = Field(
        0.2, ge=0.0, lt=1.0, description="Share of exemplar groups kept for the gate."
    )
    max_heldout: int = Field(
        40, ge=0, description="At most this many held-out rows (and left-out tools' exemplars)."
    )
    heldout_tools: int = Field(
        2,
        ge=0,
        description="Leave-tools-out, while some served tool has no approved exemplar (the case it stands "
        "for): in the first round that could learn them, up to this many tools with "
        "exemplars (at most a quarter of them; stable) are not learned, and the gate asks their exemplars as "
        "requests for a tool nobody explored and (with demonstrations) as they are served until the next "
        "round, beside their own exemplars: a candidate that answers either worse than the current model "
        "(beyond gate_worse_p) is refused. The next round of the lineage learns them. 0: the gate sees only "
        "explored tools.",
    )
    min_new_exemplars: int = Field(1, ge=1, description="A round needs at least this many new exemplars.")
    # gate
    eval_max_new_tokens: int = Field(96, ge=8)
    gate_min_delta: float = Field(0.0, ge=0.0, description="Points of 'correct' a candidate must gain.")
    gate_worse_p: float = Field(
        0.2,
        gt=0,
        le=1,
        description="A loss on the left-out tools refuses a candidate when the one-sided sign test over "
        "the answers that changed gives p at most this (as memory.gate_worse_p); its questions to them (as "
        "unexplored, as served) share it, each at this divided by their number. 1.0: any loss refuses.",
    )
    gate_stop_early: bool = Field(
        True,
        description="The gate asks the left-out tools first and stops as soon as the candidate is refused "
        "whatever the rows not yet asked would answer (same verdict, less time; the manifest then holds "
        "the rows asked). False: every held-out row is asked, for complete metrics.",
    )
    gate_min_heldout: int = Field(
        8,
        ge=1,
        description="Fewer held-out rows than this: the gate does not judge; the adapter stays a candidate.",
    )
    # serving the promoted adapter
    serve_merged: Literal["auto", "always", "never"] = Field(
        "auto",
        description="Serve the promoted adapter merged into the base weights (the managed vLLM restarts on "
        "the merged folder: base-model speed) or as a runtime LoRA. auto: merged on a CPU, LoRA on a GPU.",
    )
    # triggers in `ste-mcp serve`
    train_every_n_exemplars: int = Field(
        50, description="Trigger a round in `serve` after N new approved exemplars."
    )
    schedule_minutes: float | None = Field(None, gt=0, description="Also try a round this often (minutes).")
    poll_s: float = Field(30.0, gt=0, description="How often `serve` checks the exemplar count.")
    enabled_in_serve: bool = Field(True, description="Run the periodic trigger in `ste-mcp serve`.")
