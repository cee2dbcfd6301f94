"""Fine-tuning benchmark: training tokens/s of our path (TRL SFTTrainer in the training process) against a
plain transformers + peft loop on the same rows, and the wall time of one whole round (data -> training
-> gate on held-out -> registry) on the packaged SmolLM2-135M.

    .venv/bin/python scripts/bench/train.py [--steps 20] [--batch-size 4] [--models-dir .cache/models]

``--only-ours --model packaged:qwen2.5-coder-0.5b-instruct --dtype float32|bfloat16 [--no-gc]`` times just our
training code on another model, dtype and gradient-checkpointing setting (one table row per run).

Prints a Markdown table (paste it under "## Fine-tuning" in docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from pathlib import Path

from ste_mcp.finetune.dataset import DatasetBuilder, read_jsonl, write_jsonl
from ste_mcp.finetune.rounds import BaseModelRef, run_round
from ste_mcp.finetune.settings import FinetuneSettings
from ste_mcp.finetune.train import TrainJob, run_job
from ste_mcp.llm.sources import prepare_model
from ste_mcp.memory.exemplars import Exemplar
from ste_mcp.upstream.tools import Tool

CITIES = [
    "Paris",
    "Rome",
    "Madrid",
    "Berlin",
    "Lisbon",
    "Vienna",
    "Oslo",
    "Dublin",
    "Prague",
    "Athens",
    "Cairo",
    "Lima",
]
WORDS = [
    "serendipity",
    "ephemeral",
    "ubiquitous",
    "gregarious",
    "laconic",
    "meticulous",
    "pragmatic",
    "resilient",
]


def _tool(name: str, prop: str, description: str) -> Tool:
    schema = {"type": "object", "properties": {prop: {"type": "string"}}, "required": [prop]}
    return Tool(
        name=name, description=description, input_schema=schema, method="GET", path="/", base_url="http://x"
    )


TOOLS = [
    _tool("get_weather", "city", "Current weather for a city."),
    _tool("define_word", "word", "Dictionary definition of an English word."),
    _tool("get_population", "country", "Population of a country."),
    _tool("stock_price", "symbol", "Latest price of a stock symbol."),
]


def exemplars() -> list[Exemplar]:
    out = [
        Exemplar(
            id=f"w-{c}",
            tool="get_weather",
            query=f"What's the weather in {c}?",
            arguments={"city": c},
            observation=f'{{"city": "{c}", "temp_c": 18, "sky": "cloudy"}}',
            final_answer=f"It is 18 °C and cloudy in {c}.",
        )
        for c in CITIES
    ]
    out += [
        Exemplar(
            id=f"d-{w}",
            tool="define_word",
            query=f"What does '{w}' mean?",
            arguments={"word": w},
            observation=f'{{"word": "{w}", "definition": "..."}}',
            final_answer=f"'{w}' means ...",
        )
        for w in WORDS
    ]
    return out


def plain_loop(
    model_dir: Path, rows: list[dict], settings: FinetuneSettings, steps: int
) -> tuple[int, float]:
    """The same LoRA training written directly against transformers + peft (completion-only loss)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(
        r=settings.lora_rank,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=settings.target_modules,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, config)
    examples = []
    for row in rows:
        prompt = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        ids = tokenizer(full, add_special_tokens=False)["input_ids"][: settings.max_length]
        examples.append((ids, [-100] * len(p_ids) + ids[len(p_ids) :]))
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=settings.learning_rate
    )
    model.train()
    tokens, started = 0, time.perf_counter()
    for step in range(steps):
        batch = [
            examples[(step * settings.batch_size + i) % len(examples)] for i in range(settings.batch_size)
        ]
        width = max(len(ids) for ids, _ in batch)
        pad = tokenizer.pad_token_id or 0
        input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in batch])
        labels = torch.tensor([lab[: len(ids)] + [-100] * (width - len(ids)) for ids, lab in batch])
        mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch])
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        tokens += int(mask.sum())
    return tokens, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--epochs", type=float, default=1.0, help="epochs of the whole-round measurement")
    parser.add_argument("--models-dir", default=os.environ.get("STE_MCP_TEST_MODELS_DIR", ".cache/models"))
    parser.add_argument("--model", default="packaged:smollm2-135m-instruct")
    parser.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default="float32")
    parser.add_argument("--no-gc", action="store_true", help="without gradient checkpointing")
    parser.add_argument("--only-ours", action="store_true", help="time only our training code")
    args = parser.parse_args()
    prepared = prepare_model(args.model, Path(args.models_dir))
    settings = FinetuneSettings(
        max_steps=args.steps,
        batch_size=args.batch_size,
        general_examples=0,
        heldout_fraction=0.2,
        save_steps=10_000,
        dtype=args.dtype,
        gradient_checkpointing=not args.no_gc,
    )
    data = DatasetBuilder(TOOLS, settings).build(exemplars(), set(), [])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        write_jsonl(work / "dataset.jsonl", data.rows)
        job = TrainJob(
            base_model_path=str(prepared.path),
            base_model_id=prepared.base_id,
            work_dir=str(work),
            settings=settings,
            evaluate=False,
        )
        ours = run_job(job)["train"]
        if args.only_ours:
            print(
                f"| {args.model} | {args.dtype} | {'off' if args.no_gc else 'on'} | {ours['steps']} x "
                f"{args.batch_size} | {ours['tokens']} | {ours['seconds']:.1f} | {ours['tokens_per_s']:.0f} |"
            )
            return
        plain_tokens, plain_s = plain_loop(
            prepared.path, read_jsonl(work / "dataset.jsonl"), settings, args.steps
        )

        round_settings = settings.model_copy(
            update={"max_steps": None, "epochs": args.epochs, "general_examples": 8}
        )
        started = time.perf_counter()
        result = asyncio.run(
            run_round(
                adapters_dir=Path(tmp) / "adapters",
                base=BaseModelRef(path=str(prepared.path), base_id=prepared.base_id),
                tools=TOOLS,
                exemplars=exemplars(),
                settings=round_settings,
            )
        )
        round_min = (time.perf_counter() - started) / 60
    m = result.adapter.metrics if result.adapter else {}
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, SmolLM2-135M fp32, LoRA r=8"
    )
    print()
    print("| path | steps x batch | tokens | seconds | tokens/s |")
    print("|---|---|---|---|---|")
    print(
        f"| ste-mcp training code (TRL SFTTrainer + peft) | {ours['steps']} x {args.batch_size} | {ours['tokens']} "
        f"| {ours['seconds']:.1f} | {ours['tokens_per_s']:.0f} |"
    )
    print(
        f"| plain transformers + peft loop | {args.steps} x {args.batch_size} | {plain_tokens} | {plain_s:.1f} "
        f"| {plain_tokens / plain_s:.0f} |"
    )
    print()
    print(
        f"One round ({len(data.rows)} rows + 8 general, {args.epochs:g} epochs = {m.get('train', {}).get('steps')} steps, "
        f"gate on {m.get('eval', {}).get('n')} held-out, base model vs candidate): {round_min:.1f} min; "
        f"result: {result.status} ({result.reason})"
    )


if __name__ == "__main__":
    main()
