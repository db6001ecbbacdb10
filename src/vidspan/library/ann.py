"""Vector segments on disk: event ids, their float32 vectors, and a FAISS IVF-PQ index over them.

A segment is three files in the library's ``<db>.vectors/`` folder, all named after the segment:

- ``NAME.ids``: the event ids, int64, ascending (row ``i`` of the segment is event ``ids[i]``);
- ``NAME.f32``: their unit vectors, float32, row-major; memory-mapped, so only the rows a query re-ranks
  are read;
- ``NAME.faiss``: a FAISS ``IVF{nlist},PQ{m}x4fs`` index (4-bit PQ codes laid out for FastScan's SIMD
  lookups) whose ids are row positions (absent below :data:`EXACT_BELOW` rows, where the vectors are
  scanned exactly).

The ``.ids`` and ``.f32`` files only grow: a segment row count ``n`` means "the first ``n`` rows", so
appending the rows of a later checkpoint never disturbs a reader of an earlier one, and bytes past ``n``
(a crash during an append) are ignored and overwritten next time. The ``.faiss`` file is rewritten whole
(its PQ codes are 1/16 of the vectors' size: 96 bytes a 384-d vector) under a temporary name and renamed
into place.

Search is two-stage: IVF-PQ proposes :data:`RERANK` candidates from a share of the lists that grows with
the library (:func:`nprobe_for`), scanned with the compressed codes, and their exact float32 vectors
re-rank them, so scores are exact cosines and PQ's coarse distances only decide which rows are looked at.

Why the share grows: in the benchmark's synthetic sets at 10M events, the true top 10 of a query are
spread over the lists (at noise 1.0, 36% in the nearest list, 61% in the nearest 64 of 4,096, 95% in the
nearest 1,024), because among 10M draws many unrelated events come close by chance; at 1M, 16 lists
hold all of them. Recall is bounded by the share of the library scanned, whatever the codes. FastScan's 4-bit
codes are scanned about 10 times faster than 8-bit PQ codes of the same size (2.5M codes of 192
sub-quantizers in about 30 ms on one core), so scanning a quarter keeps a 10M query in tens of
milliseconds. Measured in ``benchmarks/search.py``.
"""

from __future__ import annotations

import logging
import math
import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidspan.errors import MissingDependencyError

logger = logging.getLogger(__name__)

EXACT_BELOW = 32_768
"""Segments with fewer rows have no IVF index: an exact scan of 32k 384-d vectors takes about 2 ms."""

PROBE_FULL = 40_000_000
"""A segment of ``n`` rows scans ``n / PROBE_FULL`` of its IVF lists (at least :data:`MIN_PROBE`): a
quarter at 10M (see the module docstring)."""

MIN_PROBE = 64
"""Fewest IVF lists a query scans."""

RERANK = 300
"""Fewest IVF-PQ candidates re-ranked with exact vectors (``4 * k`` when that is more). 4-bit codes rank
coarsely: at 10M, 100 candidates kept 0.930 of the true top 10, 300 kept 0.963, 1,000 kept 0.965."""

MAX_NLIST = 4096
"""Most IVF lists. Training k-means and assigning every vector to its list grow with ``nlist``: 4,096
lists train in about a minute on 2 cores and take 10M vectors in about 5 minutes (16,384 would take four
times as long, for lists the queries scan a quarter of anyway)."""

TRAIN_PER_LIST = 40
"""Training vectors per IVF list (FAISS asks for at least 39); capped by the segment size."""

_INSTALL_HINT = "Install with: pip install 'vidspan[index]'"


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:
        raise MissingDependencyError(
            f"The library's vector index needs FAISS (faiss-cpu). {_INSTALL_HINT}"
        ) from exc
    return faiss


def ivf_layout(n: int, dim: int) -> tuple[int, int]:
    """``(nlist, m)`` for ``n`` vectors of ``dim`` values: ``nlist`` a power of two near ``4 * sqrt(n)``
    (at most :data:`MAX_NLIST` and ``n / 39``), ``m`` the largest even divisor of ``dim`` up to
    ``dim / 2`` (192 sub-quantizers of 4 bits for 384-d: 96 bytes a vector; with 96, 4-bit codes ranked
    too coarsely for 300 re-ranked candidates to hold the top 10 of queries far from every cluster)."""
    nlist = min(MAX_NLIST, 2 ** round(math.log2(4 * math.sqrt(max(n, 1)))))
    nlist = max(1, min(nlist, 2 ** math.floor(math.log2(max(n // 39, 1)))))  # FAISS wants 39 per list
    even = [d for d in range(2, max(2, dim // 2) + 1, 2) if dim % d == 0]
    return nlist, max(even) if even else dim


def nprobe_for(nlist: int, n: int) -> int:
    """The IVF lists a query of a segment of ``n`` rows scans: ``nlist * n / PROBE_FULL``, at least
    :data:`MIN_PROBE` (102 of 4,096 at 1M, 1,024 at 10M)."""
    return min(nlist, max(MIN_PROBE, round(nlist * n / PROBE_FULL)))


@dataclass
class Segment:
    """The first ``len(ids)`` rows of a segment's files, opened for search.

    Attributes:
        name: The file stem (``None`` for a segment that lives only in memory).
        ids: Event ids, ascending.
        vectors: ``(len(ids), dim)`` float32 (a memory map for a segment on disk).
        ivf: The FAISS index over row positions, or ``None`` (exact scan).
        trained_on: Rows the segment held when its IVF was trained (0 without one; retrained past 4x).
    """

    name: str | None
    ids: np.ndarray
    vectors: np.ndarray
    ivf: Any = None
    trained_on: int = 0
    mapping: mmap.mmap | None = None
    """The ``.f32`` file's memory map behind ``vectors`` (``None`` in memory): rows are read through it."""

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def kind(self) -> str:
        """``exact``, or the FAISS factory string of the IVF index."""
        if self.ivf is None:
            return "exact"
        return f"IVF{self.ivf.nlist},PQ{self.ivf.pq.M}x4fs"

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """The vectors at ``positions`` (ascending). From a file, every row's pages are first asked for at
        once (``MADV_WILLNEED``), so the reads of rows not yet in the page cache overlap instead of
        faulting in one by one: 100 rows of a 15 GB file took 1.5 s one by one on a busy disk, 15 ms so."""
        if self.mapping is not None and len(positions) and hasattr(mmap, "MADV_WILLNEED"):
            width, page = 4 * self.dim, mmap.PAGESIZE
            first, last = positions * width // page, ((positions + 1) * width - 1) // page
            breaks = np.flatnonzero(first[1:] > last[:-1] + 1) + 1  # runs of adjacent pages, one call each
            starts, ends = first[np.r_[0, breaks]].tolist(), last[np.r_[breaks - 1, -1]].tolist()
            for a, b in zip(starts, ends, strict=True):
                self.mapping.madvise(mmap.MADV_WILLNEED, a * page, (b - a + 1) * page)
        return self.vectors[positions]

    def positions(self, event_ids: np.ndarray) -> np.ndarray:
        """Row positions of those of ``event_ids`` (ascending) that are in this segment."""
        pos = np.searchsorted(self.ids, event_ids)
        inside = pos < len(self.ids)
        pos = pos[inside]
        return pos[self.ids[pos] == event_ids[inside]]

    def search(
        self, query: np.ndarray, k: int, keep: np.ndarray | None = None, *, nprobe: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar rows among those whose ``keep`` entry is true (all when ``None``):
        ``(event ids, cosines)``, best first."""
        n = len(self.ids)
        if n == 0 or k <= 0 or (keep is not None and not keep.any()):
            return _empty()
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        if self.ivf is None:
            return _top(self.ids, self.vectors @ query, k, keep)
        faiss = _faiss()
        nprobe = nprobe_for(self.ivf.nlist, n) if nprobe is None else min(nprobe, self.ivf.nlist)
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        if keep is not None:
            bits = np.packbits(keep, bitorder="little")
            params.sel = selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits))  # noqa: F841 (kept alive)
        fetch = min(n, max(RERANK, 4 * k))
        _, found = self.ivf.search(query[None, :], fetch, params=params)
        rows = np.sort(found[0][found[0] >= 0])  # ascending: the memory map is read front to back
        if not len(rows):
            return _empty()
        return _top(self.ids[rows], self.rows(rows) @ query, k)


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)


def _top(
    ids: np.ndarray, sims: np.ndarray, k: int, keep: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    if keep is not None:
        sims = np.where(keep, sims, -np.inf)
    k = min(k, len(sims))
    top = np.argpartition(-sims, k - 1)[:k] if k < len(sims) else np.arange(len(sims))
    top = top[np.lexsort((ids[top], -sims[top]))]  # best first, ties by event id
    top = top[np.isfinite(sims[top])]
    return np.asarray(ids[top], dtype=np.int64), np.asarray(sims[top], dtype=np.float32)


def merge_top(parts: list[tuple[np.ndarray, np.ndarray]], k: int) -> list[tuple[int, float]]:
    """The best ``k`` of several ``(ids, cosines)`` results, best first, ties by event id."""
    ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    sims = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, dtype=np.float32)
    if not len(ids):
        return []
    top_ids, top_sims = _top(ids, sims, k)
    return [(int(i), float(s)) for i, s in zip(top_ids, top_sims, strict=True)]


# ---------------------------------------------------------------------------------------------- building


def train_ivf(vectors: np.ndarray, seed: int = 0) -> Any:
    """A trained, empty ``IVF{nlist},PQ{m}x4fs`` inner-product index for vectors like ``vectors``.

    The k-means is spherical (unit centroids): the lists are then the nearest by cosine, where plain
    k-means centroids of unequal length would draw vectors to the longest ones under inner product."""
    faiss = _faiss()
    n, dim = vectors.shape
    nlist, m = ivf_layout(n, dim)
    sample = min(n, TRAIN_PER_LIST * nlist)
    rows = np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))
    index = faiss.index_factory(dim, f"IVF{nlist},PQ{m}x4fs", faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.cp.spherical = True
    index.pq.cp.seed = seed
    index.train(np.ascontiguousarray(vectors[rows], dtype=np.float32))
    return index


def add_rows(ivf: Any, vectors: np.ndarray, chunk: int = 65_536) -> None:
    """Append ``vectors`` to ``ivf`` (positions continue from ``ivf.ntotal``), in chunks."""
    for first in range(0, len(vectors), chunk):
        ivf.add(np.ascontiguousarray(vectors[first : first + chunk], dtype=np.float32))


def clone(ivf: Any) -> Any:
    """A copy of ``ivf`` that can grow while the original is being searched."""
    return _faiss().clone_index(ivf)


def in_memory(ids: np.ndarray, vectors: np.ndarray) -> Segment:
    """A segment that is never written (``:memory:`` libraries)."""
    ivf = None
    if len(ids) >= EXACT_BELOW:
        ivf = train_ivf(vectors)
        add_rows(ivf, vectors)
    return Segment(None, ids, vectors, ivf, len(ids) if ivf is not None else 0)


class SegmentFiles:
    """Reads and writes the segment files of one folder (``<db>.vectors``)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def _path(self, name: str, suffix: str) -> Path:
        return self.folder / f"{name}.{suffix}"

    def write_rows(self, name: str, first_row: int, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Write ``ids``/``vectors`` as rows ``first_row...`` of segment ``name`` (truncating anything past
        ``first_row`` first) and flush them to disk."""
        self.folder.mkdir(parents=True, exist_ok=True)
        dim = vectors.shape[1] if vectors.ndim == 2 else 0
        for suffix, data, width in (("ids", ids.astype("<i8"), 8), ("f32", vectors.astype("<f4"), 4 * dim)):
            path = self._path(name, suffix)
            with open(path, "r+b" if path.exists() else "wb") as f:
                f.truncate(first_row * width)
                f.seek(first_row * width)
                f.write(np.ascontiguousarray(data).tobytes())
                f.flush()
                os.fsync(f.fileno())

    def write_ivf(self, name: str, count: int, ivf: Any) -> None:
        """Write ``ivf`` (over the first ``count`` rows) as ``NAME.COUNT.faiss`` atomically (temporary file,
        fsync, rename): a reader of an earlier checkpoint keeps its own file."""
        faiss = _faiss()
        final = self._path(f"{name}.{count}", "faiss")
        tmp = final.with_suffix(".faiss.tmp")
        faiss.write_index(ivf, str(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(self.folder)

    def open(self, name: str, count: int, dim: int, has_ivf: bool, trained_on: int) -> Segment:
        """The first ``count`` rows of segment ``name``; ``ValueError`` when the files do not hold them."""
        ids_path, f32_path = self._path(name, "ids"), self._path(name, "f32")
        for path, need in ((ids_path, 8 * count), (f32_path, 4 * dim * count)):
            if not path.exists():
                raise ValueError(f"{path.name} is missing")
            if (size := path.stat().st_size) < need:
                raise ValueError(f"{path.name} holds {size} bytes, fewer than the {need} recorded")
        mapping = None
        if count == 0:
            ids, vectors = np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32)
        else:
            ids = np.memmap(ids_path, dtype="<i8", mode="r", shape=(count,))
            with open(f32_path, "rb") as f:
                mapping = mmap.mmap(f.fileno(), 4 * dim * count, access=mmap.ACCESS_READ)
            if hasattr(mmap, "MADV_RANDOM"):  # a query reads scattered rows: no read-ahead around each
                mapping.madvise(mmap.MADV_RANDOM)
            vectors = np.frombuffer(mapping, dtype="<f4", count=dim * count).reshape(count, dim)
        ivf = None
        if has_ivf:
            faiss = _faiss()
            path = self._path(f"{name}.{count}", "faiss")
            if not path.exists():
                raise ValueError(f"{path.name} is missing")
            ivf = faiss.read_index(str(path))
            if not isinstance(ivf, faiss.IndexIVFPQFastScan):  # an earlier vidspan's 8-bit IVF-PQ
                raise ValueError(f"{path.name} is a {type(ivf).__name__} of an earlier vidspan")
            if ivf.ntotal != count or ivf.d != dim:
                raise ValueError(f"{path.name} holds {ivf.ntotal} vectors of {ivf.d}, not {count} of {dim}")
        return Segment(name, ids, vectors, ivf, trained_on, mapping)

    def remove_others(self, name: str, count: int) -> None:
        """Delete every segment file that the checkpoint ``(name, count)`` does not use (earlier
        checkpoints, interrupted builds)."""
        if not self.folder.is_dir():
            return
        keep = {f"{name}.ids", f"{name}.f32", f"{name}.{count}.faiss"}
        for path in self.folder.iterdir():
            if path.name not in keep and path.suffix in {".ids", ".f32", ".faiss", ".tmp"}:
                path.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
