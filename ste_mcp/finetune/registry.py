"""Adapters on disk: every round's adapter, versioned, with a pointer to the one in use.

Layout under ``adapters_dir``::

    <id>/adapter_config.json, adapter_model.safetensors   the PEFT adapter (loadable by vLLM as is)
    <id>/manifest.json                                    base model, data hash, metrics, parent, status
    <id>/dataset.jsonl, heldout.jsonl                     what it was trained / gated on (for replay)
    current.json                                          {"id": ..., "history": [...]} (promotions)
    .work/<id>/                                           a round in progress (checkpoints); never listed

An adapter appears only by renaming a complete folder out of ``.work`` (atomic on one filesystem), so
a training process killed at any moment leaves no partial adapter registered.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["candidate", "promoted", "retired", "rejected"]
MANIFEST = "manifest.json"
EXPORT_MANIFEST = "ste-mcp-manifest.json"
PEFT_FILES = ("adapter_config.json", "adapter_model.safetensors")


class RegistryError(Exception):
    """An adapter operation cannot be done; the message names the adapter and the reason."""


class Manifest(BaseModel):
    """What is known about one adapter."""

    id: str
    base_model: str  # the base model's id (e.g. HuggingFaceTB/SmolLM2-135M-Instruct)
    base_model_path: str = ""  # the local folder it was trained on
    data_hash: str
    parent: str | None = None
    round: int = 1
    status: Status = "candidate"
    status_reason: str = ""
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    tools: list[str] = Field(default_factory=list)
    exemplar_ids: list[str] = Field(default_factory=list)  # new exemplars learned in this round
    left_out: list[str] = Field(default_factory=list)  # tools the round did not learn (the gate's unexplored)
    counts: dict[str, int] = Field(default_factory=dict)  # rows: new, replay, general, heldout; skipped_*
    metrics: dict[str, Any] = Field(default_factory=dict)  # train, eval (candidate), baseline, unexplored
    hyperparameters: dict[str, Any] = Field(default_factory=dict)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class AdapterRegistry:
    """The adapters under one folder."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # ---- reading -------------------------------------------------------------------------------
    def path(self, adapter_id: str) -> Path:
        return self.root / adapter_id

    def get(self, adapter_id: str) -> Manifest:
        file = self.path(adapter_id) / MANIFEST
        if adapter_id.startswith(".") or "/" in adapter_id or not file.is_file():
            known = ", ".join(m.id for m in self.list()) or "none"
            raise RegistryError(f"no adapter {adapter_id!r} in {self.root} (known: {known})")
        return Manifest.model_validate_json(file.read_text())

    def list(self) -> list[Manifest]:
        """All registered adapters, oldest first."""
        if not self.root.is_dir():
            return []
        out = [
            Manifest.model_validate_json((d / MANIFEST).read_text())
            for d in self.root.iterdir()
            if d.is_dir() and not d.name.startswith(".") and (d / MANIFEST).is_file()
        ]
        return sorted(out, key=lambda m: (m.created_at, m.id))

    def _state(self) -> dict[str, Any]:
        file = self.root / "current.json"
        return json.loads(file.read_text()) if file.is_file() else {"id": None, "history": []}

    def current(self) -> Manifest | None:
        """The promoted adapter in use, or ``None`` (the base model)."""
        current_id = self._state()["id"]
        return self.get(current_id) if current_id else None

    def history(self) -> list[str]:
        """The adapters promoted before the current one, oldest first (``rollback`` pops the last)."""
        return list(self._state()["history"])

    def lineage(self, adapter_id: str | None) -> list[Manifest]:
        """The adapter and its ancestors, newest first."""
        out: list[Manifest] = []
        while adapter_id:
            manifest = self.get(adapter_id)
            out.append(manifest)
            adapter_id = manifest.parent
        return out

    # ---- writing -------------------------------------------------------------------------------
    def work_dir(self, adapter_id: str) -> Path:
        """Where a round builds this adapter (kept across a crash so that training resumes)."""
        return self.root / ".work" / adapter_id

    def register(self, folder: Path, manifest: Manifest) -> Manifest:
        """Move a complete adapter folder into the registry (atomic rename)."""
        missing = [f for f in PEFT_FILES if not (folder / f).is_file()]
        if missing:
            raise RegistryError(f"adapter folder {folder} is incomplete: missing {', '.join(missing)}")
        target = self.path(manifest.id)
        if target.exists():
            raise RegistryError(f"adapter {manifest.id!r} is already registered")
        write_json_atomic(folder / MANIFEST, manifest.model_dump(mode="json"))
        self.root.mkdir(parents=True, exist_ok=True)
        os.replace(folder, target)
        return manifest

    def _save(self, manifest: Manifest) -> None:
        write_json_atomic(self.path(manifest.id) / MANIFEST, manifest.model_dump(mode="json"))

    def set_status(self, adapter_id: str, status: Status, reason: str = "") -> Manifest:
        manifest = self.get(adapter_id).model_copy(update={"status": status, "status_reason": reason})
        self._save(manifest)
        return manifest

    def promote(self, adapter_id: str, reason: str = "promoted by operator") -> Manifest:
        """Make an adapter the one in use; the previous one is retired (and kept for rollback)."""
        manifest = self.get(adapter_id)
        state = self._state()
        if state["id"] == adapter_id:
            return manifest
        if state["id"]:
            self.set_status(state["id"], "retired", f"superseded by {adapter_id}")
            state["history"].append(state["id"])
        state["id"] = adapter_id
        manifest = self.set_status(adapter_id, "promoted", reason)
        write_json_atomic(self.root / "current.json", state)
        return manifest

    def rollback(self) -> Manifest | None:
        """Go back to the previously promoted adapter (or the base model); returns the one now in use."""
        state = self._state()
        if not state["id"]:
            raise RegistryError("nothing to roll back: no adapter is promoted (the base model is in use)")
        self.set_status(state["id"], "retired", "rolled back")
        previous = state["history"].pop() if state["history"] else None
        state["id"] = previous
        write_json_atomic(self.root / "current.json", state)
        return self.set_status(previous, "promoted", "restored by rollback") if previous else None

    # ---- export --------------------------------------------------------------------------------
    def export(self, adapter_id: str, dest: Path | str) -> tuple[Path, Path]:
        """Copy an adapter to ``dest`` (a PEFT folder + manifest) and write ``dest.tar.gz`` beside it.

        The folder loads unchanged with ``vllm serve BASE --enable-lora --lora-modules NAME=dest``.
        """
        manifest = self.get(adapter_id)
        dest = Path(dest).expanduser().resolve()
        if dest.exists() and any(dest.iterdir()):
            raise RegistryError(f"export folder {dest} exists and is not empty")
        dest.mkdir(parents=True, exist_ok=True)
        source = self.path(adapter_id)
        for name in PEFT_FILES:
            shutil.copy2(source / name, dest / name)
        public = manifest.model_dump(mode="json", exclude={"exemplar_ids", "base_model_path"})
        write_json_atomic(dest / EXPORT_MANIFEST, public)
        tarball = dest.with_name(dest.name + ".tar.gz")
        with tarfile.open(tarball, "w:gz") as tar:
            tar.add(dest, arcname=dest.name)
        return dest, tarball


def status_fields(settings: Any) -> dict[str, dict[str, Any]]:
    """Per tool (status contributor for ``ste-mcp status``): the promoted adapter that learned it and
    its held-out ``correct`` % for that tool when the gate measured one."""
    registry = AdapterRegistry(settings.adapters_dir)
    current = registry.current()
    if current is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for manifest in reversed(registry.lineage(current.id)):  # oldest first: newer rounds overwrite
        per_tool = (manifest.metrics.get("eval") or {}).get("per_tool") or {}
        for tool in manifest.tools:
            fields: dict[str, Any] = {"adapter": current.id}
            if tool in per_tool:
                fields["adapter_correct"] = per_tool[tool].get("correct")
            out.setdefault(tool, {}).update(fields)
    return out
