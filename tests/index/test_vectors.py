"""Vector search: the exact index against brute force, the IVF index's recall, updates and persistence."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from vidspan.library.vectors import ExactIndex, IVFIndex, build_vector_index, load_vector_index

DIM = 384


def clustered(n: int, *, num_clusters: int = 200, noise: float = 1.5, seed: int = 0) -> np.ndarray:
    """Embedding-like unit vectors: a shared direction + one of ``num_clusters`` random centroids + noise.

    ``noise`` is the expected norm of the Gaussian noise relative to the unit centroid; 1.5 gives a mean
    nearest-neighbour cosine of about 0.43 and a mean pairwise cosine of about 0.05, in the range of
    sentence embeddings.
    """
    rng = np.random.default_rng(seed)
    common = rng.standard_normal(DIM)
    centroids = rng.standard_normal((num_clusters, DIM))
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    x = 0.4 * common / np.linalg.norm(common) + centroids[rng.integers(0, num_clusters, n)]
    x += rng.standard_normal((n, DIM)) * noise / np.sqrt(DIM)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """20,000 indexed vectors with ids 1000.., and 100 held-out queries from the same distribution."""
    x = clustered(20_100)
    return x[:20_000], np.arange(1000, 21_000, dtype=np.int64), x[20_000:]


@pytest.fixture(scope="module")
def ivf(data) -> IVFIndex:
    vectors, ids, _ = data
    return IVFIndex.build(vectors, ids)


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)]))


def test_exact_index_matches_brute_force(data):
    vectors, ids, queries = data
    index = ExactIndex(vectors * 3.0, ids)  # scale does not matter: cosine on normalised vectors
    found, scores = index.search(queries, k=10)
    sims = queries @ vectors.T
    truth = np.argsort(-sims, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(found, ids[truth])
    np.testing.assert_allclose(scores, np.take_along_axis(sims, truth, axis=1), rtol=1e-5, atol=1e-5)
    one_ids, one_scores = index.search(queries[0], k=3)
    assert one_ids.shape == (3,) and one_scores[0] >= one_scores[1] >= one_scores[2]
    np.testing.assert_array_equal(one_ids, found[0, :3])


def test_exact_index_returns_at_most_n_hits():
    index = ExactIndex(np.eye(3, DIM, dtype=np.float32), np.array([7, 8, 9]))
    found, scores = index.search(np.eye(1, DIM)[0], k=10)
    assert found.tolist()[0] == 7 and len(found) == 3


def test_ivf_recall_at_default_settings(data, ivf):
    vectors, ids, queries = data
    truth, _ = ExactIndex(vectors, ids).search(queries, k=10)
    found, scores = ivf.search(queries, k=10)
    assert ivf.nlist == 141 and ivf.nprobe == 16
    assert recall_at_10(found, truth) >= 0.95
    assert np.all(np.diff(scores, axis=1) <= 0)
    exact_found, _ = ivf.search(queries, k=10, nprobe=ivf.nlist)
    np.testing.assert_array_equal(exact_found, truth)


def test_ivf_pads_batches_and_trims_single_queries(data):
    vectors, ids, queries = data
    index = IVFIndex.build(vectors[:400], ids[:400], nlist=20)
    found, scores = index.search(queries[:2], k=400, nprobe=1)
    assert found.shape == (2, 400) and (found == -1).any() and np.isneginf(scores[found == -1]).all()
    one, one_scores = index.search(queries[0], k=400, nprobe=1)
    assert 0 < len(one) < 400 and (one >= 0).all() and np.isfinite(one_scores).all()


def test_ivf_build_is_deterministic(data, ivf):
    vectors, ids, queries = data
    again = IVFIndex.build(vectors, ids)
    np.testing.assert_array_equal(again._lists.centroids, ivf._lists.centroids)
    for a, b in zip(ivf.search(queries, 10), again.search(queries, 10), strict=True):
        np.testing.assert_array_equal(a, b)


def test_ivf_add_and_remove(data):
    vectors, ids, queries = data
    index = IVFIndex.build(vectors[:15_000], ids[:15_000])
    index.add(vectors[15_000:], ids[15_000:])
    assert len(index) == 20_000
    hit, score = index.search(vectors[19_999], k=1)
    assert hit[0] == ids[19_999] and score[0] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match=r"Invalid ids: \[20999\] already in the index"):
        index.add(vectors[-1:], ids[-1:])
    assert index.remove(np.array([ids[19_999], 123_456_789])) == 1
    assert len(index) == 19_999
    hit, _ = index.search(vectors[19_999], k=10)
    assert ids[19_999] not in hit


def test_exact_add_and_remove(data):
    vectors, ids, _ = data
    index = ExactIndex(vectors[:10], ids[:10])
    index.add(vectors[10:20], ids[10:20])
    assert index.remove(ids[:5]) == 5 and len(index) == 15
    assert index.search(vectors[12], k=1)[0][0] == ids[12]


@pytest.mark.parametrize("small", [True, False])
def test_save_load_round_trip(tmp_path, data, ivf, small):
    vectors, ids, queries = data
    index = ExactIndex(vectors[:500], ids[:500]) if small else ivf
    path = tmp_path / "vectors.npz"
    index.save(path)
    loaded = load_vector_index(path)
    assert type(loaded) is type(index) and len(loaded) == len(index)
    for a, b in zip(index.search(queries, 10), loaded.search(queries, 10), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not [p for p in tmp_path.iterdir() if p.name != "vectors.npz"]


def test_load_rejects_the_wrong_kind(tmp_path, data):
    vectors, ids, _ = data
    path = tmp_path / "exact.npz"
    ExactIndex(vectors[:10], ids[:10]).save(path)
    with pytest.raises(ValueError, match="Invalid index file: .*It must be a vidspan ivf index"):
        IVFIndex.load(path)


def test_build_vector_index_picks_by_size(data):
    vectors, ids, _ = data
    assert isinstance(build_vector_index(vectors[:100], ids[:100]), ExactIndex)
    assert isinstance(build_vector_index(vectors[:2000], ids[:2000], exact_below=1000), IVFIndex)


def test_concurrent_reads_during_writes(data):
    vectors, ids, queries = data
    index = IVFIndex.build(vectors[:5000], ids[:5000])
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for q in queries[:30]:
                found, scores = index.search(q, k=10)
                assert len(found) == 10 and np.all(np.isfinite(scores))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for t in readers:
        t.start()
    for start in range(5000, 6000, 100):
        index.add(vectors[start : start + 100], ids[start : start + 100])
        index.remove(ids[start - 5000 : start - 4900])
    for t in readers:
        t.join()
    assert not errors and len(index) == 5000


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ExactIndex(np.zeros((2, 3, 4), np.float32), np.arange(2)), "Invalid vectors: shape"),
        (lambda: ExactIndex(np.ones((2, 4), np.float32), np.array([1, 1])), "Invalid ids: some repeat"),
        (lambda: ExactIndex(np.ones((2, 4), np.float32), np.arange(3)), "Invalid ids: shape"),
        (
            lambda: ExactIndex(np.ones((2, 4), np.float32), np.arange(2)).search(np.ones(5), 1),
            "Invalid query",
        ),
        (lambda: ExactIndex(np.ones((2, 4), np.float32), np.arange(2)).search(np.ones(4), 0), "Invalid k: 0"),
        (lambda: IVFIndex.build(np.ones((2, 4), np.float32), np.arange(2), nlist=3), "Invalid nlist: 3"),
    ],
)
def test_invalid_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
