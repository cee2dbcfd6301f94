"""Training on each device this machine has: the same job (our TRL path, ``python -m ste_mcp.finetune.train``)
on CUDA (bf16) and on the CPU (fp32), tokens/s and wall time, for the GPU-box path.

    .venv/bin/python scripts/bench/train_devices.py make --out .gpu    # here: a job folder to carry
    python3 scripts/bench/train_devices.py run --out .gpu              # on each machine to compare

``make`` writes a small random-weight Llama (the packaged SmolLM2's tokenizer, so no weights need to
travel: ~19 MB) and a real round's rows over the 13 toolbox tools (synthetic exemplars) into ``--out``;
``run`` trains that job once per device (``--devices cuda cpu``, those present) with the settings given
at ``make`` time and prints a Markdown table. The weights are random, so the gate's held-out scores say
nothing here: the point is that the device path runs end to end and how fast.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def make(out: Path, models_dir: Path, steps: int, batch_size: int) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from ste_mcp.finetune.dataset import DatasetBuilder, write_jsonl
    from ste_mcp.finetune.settings import FinetuneSettings
    from ste_mcp.finetune.train import TrainJob
    from ste_mcp.llm.sources import prepare_model
    from ste_mcp.memory.exemplars import Exemplar
    from ste_mcp.upstream.tools import Tool

    source = prepare_model("packaged:smollm2-135m-instruct", models_dir, progress=False).path
    model_dir = out / "tiny"
    shutil.rmtree(model_dir, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(source)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    shutil.copy(source / "chat_template.jinja", model_dir / "chat_template.jinja")

    served = {t["mcp_name"] for t in json.loads((REPO / "ste_mcp/toolbox/data/tools.json").read_text())}
    bench = json.loads((REPO / "bench/ste50/tools.json").read_text())
    tools = [
        Tool(
            name=t["mcp_name"],
            description=t["description"],
            input_schema=t["parameters"],
            method="GET",
            path="/",
            base_url="http://127.0.0.1:9",
        )
        for t in bench
        if t["mcp_name"] in served
    ]
    rng = random.Random(0)
    exemplars = [
        Exemplar(
            id=f"ex-{t.name}-{i}",
            tool=t.name,
            query=f"Request {i} for {t.name}: case {rng.randint(1, 999)}",
            arguments={"n": str(rng.randint(1, 99))},
            observation='{"ok": true}',
            final_answer="done",
            status="approved",
        )
        for t in tools
        for i in range(12)
    ]
    settings = FinetuneSettings(
        max_steps=steps, batch_size=batch_size, learning_rate=1e-3, general_examples=0, max_heldout=16
    )
    data = DatasetBuilder(tools, settings).build(exemplars, set(), [])
    job_dir = out / "job"
    shutil.rmtree(job_dir, ignore_errors=True)
    job_dir.mkdir(parents=True)
    write_jsonl(job_dir / "dataset.jsonl", data.rows)
    write_jsonl(job_dir / "heldout.jsonl", data.heldout)
    job = TrainJob(
        base_model_path=str(model_dir.resolve().relative_to(REPO)),
        base_model_id="tiny-random-llama",
        work_dir="",  # set per device by `run`
        settings=settings,
        tool_names=[t.name for t in tools],
    )
    (job_dir / "job.json").write_text(job.model_dump_json(indent=2))
    print(f"wrote {model_dir} and {job_dir}: {data.counts}")


def run(out: Path, devices: list[str]) -> list[dict[str, object]]:
    import torch

    rows = []
    for device in devices:
        if device == "cuda" and not torch.cuda.is_available():
            continue
        work = out / f"work-{device}"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(out / "job", work)
        job = json.loads((work / "job.json").read_text())
        job["work_dir"] = str(work)
        job["settings"]["device"] = device
        (work / "job.json").write_text(json.dumps(job))
        t0 = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "ste_mcp.finetune.train", "--config", str(work / "job.json")],
            check=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])},
        )
        train = json.loads((work / "result.json").read_text())["train"]
        rows.append(
            {
                "device": torch.cuda.get_device_name()
                if device == "cuda"
                else f"CPU ({os.cpu_count()} cores)",
                "steps": train["steps"],
                "tokens": train["tokens"],
                "train s": train["seconds"],
                "tokens/s": train["tokens_per_s"],
                "round s": round(time.monotonic() - t0, 1),
                "adapter": (work / "adapter" / "adapter_model.safetensors").is_file(),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    cols = list(rows[0]) if rows else []
    print(f"\n{platform.machine()}, torch {torch.__version__}\n")
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["make", "run"])
    p.add_argument("--out", type=Path, default=REPO / ".gpu")
    p.add_argument("--models-dir", type=Path, default=REPO / ".cache" / "models")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--devices", nargs="+", default=["cuda", "cpu"])
    args = p.parse_args()
    if args.action == "make":
        make(args.out, args.models_dir, args.steps, args.batch_size)
    else:
        run(args.out, args.devices)


if __name__ == "__main__":
    main()
