"""Nearest-neighbour search over event embeddings, in numpy: exact for small libraries, IVF for large ones.

Scores are cosine similarities: every vector is L2-normalised when it enters an index, and queries are
normalised before the search. :class:`ExactIndex` scores every vector (one matrix product and an
``argpartition``). :class:`IVFIndex` is an inverted file: spherical k-means splits the vectors into
``nlist`` lists around centroids, and a query scores only the vectors of its ``nprobe`` nearest lists.

Both indexes are safe to search from many threads while another thread adds or removes vectors: a write
builds new arrays and swaps one immutable snapshot in, and a search reads the snapshot it started with.

Example:
    >>> index = build_vector_index(vectors, ids)
    >>> hit_ids, scores = index.search(query, k=10)
"""

from __future__ import annotations

import logging
import math
import os
import threading
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
EXACT_BELOW = 50_000
"""Below this many vectors :func:`build_vector_index` returns an exact index (fast enough, perfect recall)."""
MAX_TRAIN_PER_LIST = 64
"""k-means trains on at most this many sampled vectors per list (FAISS uses 39 to 256)."""
KMEANS_ITERATIONS = 10
SEED = 1234
_CHUNK = 8192  # rows per matrix product when assigning vectors or scoring query batches


def build_vector_index(
    vectors: np.ndarray, ids: np.ndarray, *, exact_below: int = EXACT_BELOW
) -> ExactIndex | IVFIndex:
    """An exact index for fewer than ``exact_below`` vectors, an IVF index (default settings) above.

    Args:
        vectors: ``(n, d)`` embeddings (any float dtype; stored as normalised float32).
        ids: ``(n,)`` unique int64 ids returned by searches.
        exact_below: The size from which an approximate index is built.

    Returns:
        An :class:`ExactIndex` or a trained :class:`IVFIndex`.
    """
    if len(vectors) < exact_below:
        return ExactIndex(vectors, ids)
    return IVFIndex.build(vectors, ids)


def load_vector_index(path: str | os.PathLike[str]) -> ExactIndex | IVFIndex:
    """Load an index written by ``save`` (either kind)."""
    with np.load(path, allow_pickle=False) as data:
        kind = str(data["kind"])
    return ExactIndex.load(path) if kind == "exact" else IVFIndex.load(path)


class ExactIndex:
    """Brute-force cosine search: every stored vector is scored.

    Args:
        vectors: ``(n, d)`` embeddings.
        ids: ``(n,)`` unique int64 ids.
    """

    def __init__(self, vectors: np.ndarray, ids: np.ndarray):
        vecs, ids = _check_vectors(vectors, ids)
        self._lock = threading.Lock()
        self._state = (vecs, ids)

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self._state[0].shape[1]

    def __len__(self) -> int:
        return len(self._state[1])

    def search(self, query: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` stored vectors most similar to ``query``.

        Args:
            query: ``(d,)`` or ``(m, d)``.
            k: How many hits per query (fewer when the index holds fewer vectors).

        Returns:
            ``(ids, scores)``, best first: shapes ``(k,)`` for one query, ``(m, k)`` for a batch.
        """
        vecs, ids = self._state
        queries, single = _check_query(query, vecs.shape[1])
        k = _check_k(k)
        k = min(k, len(ids))
        out_ids = np.empty((len(queries), k), dtype=np.int64)
        out_scores = np.empty((len(queries), k), dtype=np.float32)
        for start in range(0, len(queries), 64):
            block = queries[start : start + 64]
            scores = block @ vecs.T
            top = _top_k(scores, k)
            out_ids[start : start + len(block)] = ids[top]
            out_scores[start : start + len(block)] = np.take_along_axis(scores, top, axis=1)
        return (out_ids[0], out_scores[0]) if single else (out_ids, out_scores)

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add vectors; their ids must not be in the index yet."""
        new_vecs, new_ids = _check_vectors(vectors, ids, dim=self.dim)
        with self._lock:
            vecs, old_ids = self._state
            _check_new_ids(new_ids, old_ids)
            self._state = (np.concatenate([vecs, new_vecs]), np.concatenate([old_ids, new_ids]))

    def remove(self, ids: np.ndarray) -> int:
        """Remove vectors by id; unknown ids are ignored. Returns how many were removed."""
        gone = np.asarray(ids, dtype=np.int64).ravel()
        with self._lock:
            vecs, old_ids = self._state
            keep = ~np.isin(old_ids, gone)
            self._state = (vecs[keep], old_ids[keep])
            return int(len(keep) - keep.sum())

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to a ``.npz`` file (atomically)."""
        vecs, ids = self._state
        _save_npz(path, kind=np.array("exact"), vectors=vecs, ids=ids)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ExactIndex:
        """Read an index written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            _check_format(path, data, "exact")
            index = cls(np.zeros((0, data["vectors"].shape[1]), np.float32), np.zeros(0, np.int64))
            index._state = (data["vectors"], data["ids"])  # stored normalised: no second rounding
            return index


@dataclass(frozen=True, slots=True)
class _Lists:
    """One immutable snapshot of an IVF index: centroids and, per list, its vectors and ids."""

    centroids: np.ndarray  # (nlist, d) float32, unit length
    vectors: tuple[np.ndarray, ...]  # per list (n_i, d) float32, contiguous
    ids: tuple[np.ndarray, ...]  # per list (n_i,) int64


class IVFIndex:
    """Inverted-file index: vectors grouped by their nearest k-means centroid; searches scan ``nprobe`` lists.

    Build one with :meth:`IVFIndex.build` or :meth:`IVFIndex.load`.

    Attributes:
        nprobe: Lists scanned per query when :meth:`search` is not given ``nprobe``.
    """

    def __init__(self, lists: _Lists, nprobe: int | None = None):
        self._lists = lists
        self._lock = threading.Lock()
        self.nprobe = nprobe if nprobe is not None else default_nprobe(self.nlist)

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        ids: np.ndarray,
        nlist: int | None = None,
        *,
        nprobe: int | None = None,
        seed: int = SEED,
    ) -> IVFIndex:
        """Train centroids on a sample of ``vectors`` and file every vector under its nearest centroid.

        Args:
            vectors: ``(n, d)`` embeddings.
            ids: ``(n,)`` unique int64 ids.
            nlist: Number of lists (default ``round(sqrt(n))``, at least 1).
            nprobe: Default lists scanned per query (default :func:`default_nprobe`).
            seed: k-means seed; the same inputs and seed give the same index.

        Returns:
            The trained index.
        """
        vecs, ids = _check_vectors(vectors, ids)
        if len(ids) == 0:
            raise ValueError("Invalid vectors: an empty array. It must hold at least one vector to train on.")
        if nlist is None:
            nlist = max(1, round(math.sqrt(len(ids))))
        if not 1 <= nlist <= len(ids):
            raise ValueError(
                f"Invalid nlist: {nlist}. It must be between 1 and the number of vectors ({len(ids)})."
            )
        centroids = _train_centroids(vecs, nlist, seed)
        assign = _nearest(vecs, centroids)
        order = np.argsort(assign, kind="stable")
        bounds = np.searchsorted(assign[order], np.arange(nlist + 1))
        sorted_vecs, sorted_ids = vecs[order], ids[order]
        lists = _Lists(
            centroids=centroids,
            vectors=tuple(sorted_vecs[bounds[i] : bounds[i + 1]] for i in range(nlist)),
            ids=tuple(sorted_ids[bounds[i] : bounds[i + 1]] for i in range(nlist)),
        )
        return cls(lists, nprobe)

    @property
    def nlist(self) -> int:
        """Number of lists."""
        return len(self._lists.centroids)

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self._lists.centroids.shape[1]

    def __len__(self) -> int:
        return sum(len(i) for i in self._lists.ids)

    def search(
        self, query: np.ndarray, k: int = 10, nprobe: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar vectors among the ``nprobe`` lists nearest to each query.

        Args:
            query: ``(d,)`` or ``(m, d)``.
            k: Hits per query. When the scanned lists hold fewer than ``k`` vectors, a single query gets
                fewer hits, and a batch row is padded with id ``-1`` and score ``-inf``.
            nprobe: Lists to scan (default :attr:`nprobe`); ``nlist`` makes the search exact.

        Returns:
            ``(ids, scores)``, best first: shapes ``(k,)`` for one query, ``(m, k)`` for a batch.
        """
        lists = self._lists
        queries, single = _check_query(query, lists.centroids.shape[1])
        k = _check_k(k)
        nprobe = self.nprobe if nprobe is None else nprobe
        if not isinstance(nprobe, (int, np.integer)) or nprobe < 1:
            raise ValueError(f"Invalid nprobe: {nprobe!r}. It must be a positive integer.")
        nprobe = min(int(nprobe), len(lists.centroids))
        probes = _top_k(queries @ lists.centroids.T, nprobe)
        out_ids = np.full((len(queries), k), -1, dtype=np.int64)
        out_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        for row, (q, probe) in enumerate(zip(queries, probes, strict=True)):
            scores = np.concatenate([lists.vectors[i] @ q for i in probe])
            if not len(scores):
                continue
            found = np.concatenate([lists.ids[i] for i in probe])
            top = _top_k(scores[None, :], min(k, len(scores)))[0]
            out_ids[row, : len(top)] = found[top]
            out_scores[row, : len(top)] = scores[top]
        if single:
            found_ids = out_ids[0] >= 0
            return out_ids[0][found_ids], out_scores[0][found_ids]
        return out_ids, out_scores

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """File new vectors under their nearest centroids (the centroids are not retrained).

        Raises:
            ValueError: An id is already in the index or repeated in ``ids``.
        """
        new_vecs, new_ids = _check_vectors(vectors, ids, dim=self.dim)
        with self._lock:
            lists = self._lists
            _check_new_ids(new_ids, np.concatenate(lists.ids))
            assign = _nearest(new_vecs, lists.centroids)
            vecs, found = list(lists.vectors), list(lists.ids)
            for i in np.unique(assign):
                rows = assign == i
                vecs[i] = np.concatenate([vecs[i], new_vecs[rows]])
                found[i] = np.concatenate([found[i], new_ids[rows]])
            self._lists = _Lists(lists.centroids, tuple(vecs), tuple(found))

    def remove(self, ids: np.ndarray) -> int:
        """Remove vectors by id; unknown ids are ignored. Returns how many were removed."""
        gone = np.asarray(ids, dtype=np.int64).ravel()
        removed = 0
        with self._lock:
            lists = self._lists
            vecs, found = list(lists.vectors), list(lists.ids)
            for i, list_ids in enumerate(lists.ids):
                hit = np.isin(list_ids, gone)
                if hit.any():
                    removed += int(hit.sum())
                    vecs[i], found[i] = vecs[i][~hit], list_ids[~hit]
            self._lists = _Lists(lists.centroids, tuple(vecs), tuple(found))
        return removed

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to a ``.npz`` file (atomically): centroids, vectors grouped by list, offsets."""
        lists = self._lists
        sizes = np.array([len(i) for i in lists.ids], dtype=np.int64)
        dim = lists.centroids.shape[1]
        _save_npz(
            path,
            kind=np.array("ivf"),
            centroids=lists.centroids,
            vectors=np.concatenate(lists.vectors) if lists.vectors else np.zeros((0, dim), np.float32),
            ids=np.concatenate(lists.ids),
            offsets=np.concatenate([[0], np.cumsum(sizes)]),
            nprobe=np.array(self.nprobe),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> IVFIndex:
        """Read an index written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            _check_format(path, data, "ivf")
            vecs, ids, offsets = data["vectors"], data["ids"], data["offsets"]
            spans = list(zip(offsets[:-1], offsets[1:], strict=True))
            lists = _Lists(
                centroids=data["centroids"],
                vectors=tuple(vecs[a:b] for a, b in spans),
                ids=tuple(ids[a:b] for a, b in spans),
            )
            return cls(lists, int(data["nprobe"]))


def default_nprobe(nlist: int) -> int:
    """Lists scanned per query by default: a twelfth of the lists, at least 16 (all of them if fewer).

    With ``nlist = sqrt(n)`` that scans about 11 % of the vectors at 20k events and 8 % at 1M; see
    ``docs/benchmarks.md`` ("Library search") for the recall and latency this buys.
    """
    return min(nlist, max(16, math.ceil(nlist / 12)))


def _train_centroids(vecs: np.ndarray, nlist: int, seed: int) -> np.ndarray:
    """Spherical k-means (Lloyd) on a seeded sample; empty clusters are re-seeded from the sample."""
    rng = np.random.default_rng(seed)
    n = len(vecs)
    sample_size = min(n, nlist * MAX_TRAIN_PER_LIST)
    sample = vecs[np.sort(rng.choice(n, sample_size, replace=False))] if sample_size < n else vecs
    centroids = sample[rng.choice(len(sample), nlist, replace=False)].copy()
    for _ in range(KMEANS_ITERATIONS):
        assign = _nearest(sample, centroids)
        sums = np.zeros_like(centroids)
        _scatter_sum(sums, assign, sample)
        counts = np.bincount(assign, minlength=nlist)
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            sums[empty] = sample[rng.choice(len(sample), len(empty), replace=False)]
        centroids = _normalise(sums)
    logger.debug("trained %d centroids on %d of %d vectors", nlist, len(sample), n)
    return centroids


def _scatter_sum(sums: np.ndarray, assign: np.ndarray, rows: np.ndarray) -> None:
    """``sums[assign[i]] += rows[i]`` (sort once, then ``np.add.reduceat``; faster than ``np.add.at``)."""
    order = np.argsort(assign, kind="stable")
    sorted_assign = assign[order]
    starts = np.flatnonzero(np.r_[True, sorted_assign[1:] != sorted_assign[:-1]])
    sums[sorted_assign[starts]] += np.add.reduceat(rows[order], starts, axis=0)


def _nearest(vecs: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the most similar centroid for each row, in chunks to bound memory."""
    out = np.empty(len(vecs), dtype=np.int64)
    for start in range(0, len(vecs), _CHUNK):
        out[start : start + _CHUNK] = np.argmax(vecs[start : start + _CHUNK] @ centroids.T, axis=1)
    return out


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` largest scores per row, best first (ties broken by position)."""
    if k >= scores.shape[1]:
        part = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    else:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.lexsort((part, -np.take_along_axis(scores, part, axis=1)), axis=1)
    return np.take_along_axis(part, order, axis=1)


def _normalise(vecs: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vecs, axis=-1, keepdims=True)
    return (vecs / np.where(norms > 0, norms, 1)).astype(np.float32, copy=False)


def _check_vectors(
    vectors: np.ndarray, ids: np.ndarray, dim: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    vecs = np.asarray(vectors)
    if vecs.ndim != 2 or not np.issubdtype(vecs.dtype, np.floating):
        raise ValueError(
            f"Invalid vectors: shape {vecs.shape}, dtype {vecs.dtype}. It must be a 2-D float array."
        )
    if dim is not None and vecs.shape[1] != dim:
        raise ValueError(f"Invalid vectors: dimension {vecs.shape[1]}. It must be {dim}, as in the index.")
    if not np.isfinite(vecs).all():
        raise ValueError("Invalid vectors: they hold NaN or inf. They must be finite.")
    id_array = np.asarray(ids)
    if id_array.shape != (len(vecs),) or not np.issubdtype(id_array.dtype, np.integer):
        raise ValueError(
            f"Invalid ids: shape {id_array.shape}, dtype {id_array.dtype}. "
            f"They must be {len(vecs)} integers, one per vector."
        )
    id_array = id_array.astype(np.int64, copy=False)
    if len(np.unique(id_array)) != len(id_array):
        raise ValueError("Invalid ids: some repeat. Each vector needs a unique id.")
    return _normalise(vecs.astype(np.float32, copy=False)), id_array


def _check_new_ids(new_ids: np.ndarray, old_ids: np.ndarray) -> None:
    clash = new_ids[np.isin(new_ids, old_ids)]
    if len(clash):
        raise ValueError(f"Invalid ids: {clash[:5].tolist()} already in the index. Remove them first.")


def _check_query(query: np.ndarray, dim: int) -> tuple[np.ndarray, bool]:
    q = np.asarray(query, dtype=np.float32)
    single = q.ndim == 1
    if single:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != dim:
        raise ValueError(f"Invalid query: shape {np.shape(query)}. It must be ({dim},) or (m, {dim}).")
    return _normalise(q), single


def _check_k(k: int) -> int:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"Invalid k: {k!r}. It must be a positive integer.")
    return int(k)


def _save_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    """``np.savez`` to a temporary file beside ``path``, then rename (no half-written index)."""
    target = os.fspath(path)
    tmp = f"{target}.{os.getpid()}.{threading.get_ident()}.tmp.npz"
    try:
        np.savez(tmp, **{"format_version": np.array(FORMAT_VERSION), **arrays})  # type: ignore[arg-type]
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _check_format(path: str | os.PathLike[str], data: np.lib.npyio.NpzFile, kind: str) -> None:
    version = int(data["format_version"]) if "format_version" in data else None
    found = str(data["kind"]) if "kind" in data else None
    if version != FORMAT_VERSION or found != kind:
        raise ValueError(
            f"Invalid index file: {os.fspath(path)} (kind {found}, format {version}). "
            f"It must be a vidspan {kind} index, format {FORMAT_VERSION}."
        )
