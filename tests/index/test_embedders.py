"""Library embedders: any sentence-transformers model (a tiny random one built here), recorded with the
vectors; a query or a write with another embedder refused in one sentence; --reembed converts a library."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from vidspan.models.torchvision_compat import ensure_torchvision  # noqa: E402

ensure_torchvision()  # sentence-transformers imports transformers' image utilities
pytest.importorskip("sentence_transformers")

from support.tiny_embedder import build_tiny_embedder  # noqa: E402
from vidspan.errors import EmbedderMismatchError  # noqa: E402
from vidspan.library.embed import EMBEDDING_MODEL, SentenceTransformerEmbedder, default_embedder  # noqa: E402
from vidspan.library.indexer import index_paths  # noqa: E402
from vidspan.library.open import open_index  # noqa: E402
from vidspan.testing.mock import MockVideoModel  # noqa: E402

LIGHT = {"fps": 0.5, "max_frames": 4, "min_frames": 2, "max_pixels": 64 * 64}
CLIPS = ("asl-walk.mkv", "car-detection.mp4", "bottle-detection.mp4")


def caption(clip, prompt):
    name = clip.video.path.rsplit("/", 1)[-1]
    return {
        "asl-walk.mkv": "Scene: a room.\nEvents:\n<0.0 - 1.0> A woman signs the word walk.\n",
        "car-detection.mp4": "Scene: a road.\nEvents:\n<1.0 - 4.0> A red car drives past the camera.\n",
    }.get(name, "Scene: a table.\nEvents:\n<0.0 - 3.0> A hand lifts a plastic bottle.\n")


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory):
    return build_tiny_embedder(tmp_path_factory.mktemp("st") / "tiny-st")


class CountingModel(MockVideoModel):
    calls = 0

    def generate(self, clip, prompt, *, max_new_tokens):
        CountingModel.calls += 1
        return super().generate(clip, prompt, max_new_tokens=max_new_tokens)


def build(db, shared_videos, embedder=None):
    paths = [shared_videos / c for c in CLIPS]
    return index_paths(paths, MockVideoModel([caption]), db, embedder=embedder, **LIGHT)


def test_a_library_keeps_its_embedder_and_refuses_others(tiny_st, shared_videos, tmp_path):
    db = tmp_path / "st.sqlite"
    tiny = SentenceTransformerEmbedder(str(tiny_st))
    report = build(db, shared_videos, tiny)
    assert len(report.indexed) == 3
    with open_index(db, create=False) as index:
        assert index.stored_embedder() == (str(tiny_st.resolve()), 32)
        assert index.embedder.name == tiny.name  # opened without one: the library's own
        hits = index.search("a red car drives past the camera", limit=1)
        assert hits and hits[0].video.endswith("car-detection.mp4")
    with open_index(db, create=False, embedder=default_embedder()) as index:
        with pytest.raises(
            EmbedderMismatchError,
            match=r"made by the embedder .*tiny-st \(32-d\), so it cannot "
            r"search it with all-minilm-l6-v2",
        ):
            index.search("a car")
    # indexing more videos with another embedder is refused before anything is captioned
    CountingModel.calls = 0
    with pytest.raises(EmbedderMismatchError, match="cannot add vectors from all-minilm-l6-v2"):
        index_paths(
            [shared_videos / "asl-eat.mkv"],
            CountingModel([caption]),
            db,
            embedder=default_embedder(),
            **LIGHT,
        )
    assert CountingModel.calls == 0


def test_reembed_converts_a_library_to_the_results_of_one_built_with_that_embedder(
    tiny_st, shared_videos, tmp_path
):
    converted, direct = tmp_path / "converted.sqlite", tmp_path / "direct.sqlite"
    build(converted, shared_videos, SentenceTransformerEmbedder(str(tiny_st)))
    build(direct, shared_videos)
    seen = []
    with open_index(converted, create=False) as index:
        n = index.status()["num_events"]
        assert n >= 3 and index.reembed(default_embedder(), progress=lambda d, t: seen.append((d, t))) == n
        assert index.stored_embedder() == (EMBEDDING_MODEL, 384) and seen[-1] == (n, n)
    for query in ("someone signs a word", "a vehicle on the road", "a bottle is picked up"):
        with open_index(converted, create=False) as a, open_index(direct, create=False) as b:
            got = [(h.video, h.start, h.end) for h in a.search(query, limit=3)]
            assert got == [(h.video, h.start, h.end) for h in b.search(query, limit=3)]


def test_cli_embedder_reembed_and_refusals(tiny_st, shared_videos, tmp_path):
    from vidspan.cli.main import cli

    db = tmp_path / "lib.sqlite"
    build(db, shared_videos)
    run = CliRunner().invoke
    refused = run(cli, ["search", "a car", "--db", str(db), "--embedder", str(tiny_st)])
    assert refused.exit_code == 1 and len(refused.output.strip().splitlines()) == 1
    assert "made by the embedder all-minilm-l6-v2 (384-d)" in refused.output and "--reembed" in refused.output
    converted = run(
        cli, ["index", "--reembed", "--embedder", str(tiny_st), "--db", str(db), "--json", "--no-progress"]
    )
    assert converted.exit_code == 0, converted.output
    report = json.loads(converted.stdout)
    with open_index(db, create=False) as index:
        assert report["events"] == index.status()["num_events"] and index.stored_embedder()[1] == 32
    assert (report["from"], report["dim"]) == (EMBEDDING_MODEL, 32)
    found = run(cli, ["search", "a red car drives past the camera", "--db", str(db), "--json"])
    assert found.exit_code == 0 and json.loads(found.stdout)["hits"][0]["video"].endswith("car-detection.mp4")
    for args, message in (
        (["index", "--reembed", "--db", str(db)], "--reembed takes --embedder"),
        (["index", "--db", str(db)], "Missing argument 'PATHS...'"),
    ):
        bad = run(cli, args)
        assert bad.exit_code == 2 and message in bad.output


def test_postgres_library_refuses_another_embedder_and_vectors_of_another_size(
    tiny_st, shared_videos, new_database
):
    url = new_database()
    build(url, shared_videos)
    with open_index(url, create=False, embedder=SentenceTransformerEmbedder(str(tiny_st))) as index:
        with pytest.raises(EmbedderMismatchError, match="made by the embedder all-minilm-l6-v2"):
            index.search("a car")
        with pytest.raises(ValueError, match="holds 384-d vectors"):
            index.reembed(SentenceTransformerEmbedder(str(tiny_st)))
    with open_index(url, create=False) as index:
        assert index.search("a red car drives past the camera", limit=1)[0].video.endswith(
            "car-detection.mp4"
        )


def no_events(clip, prompt):
    return "Scene: an empty room.\nEvents:\n"


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_library_without_vectors_yet_keeps_the_embedder_it_was_indexed_with(
    store, tiny_st, shared_videos, tmp_path, request
):
    db = tmp_path / "empty.sqlite" if store == "sqlite" else request.getfixturevalue("new_database")()
    embedder = default_embedder() if store == "postgres" else SentenceTransformerEmbedder(str(tiny_st))
    other = SentenceTransformerEmbedder(str(tiny_st)) if store == "postgres" else default_embedder()
    empty = MockVideoModel([no_events])
    report = index_paths([shared_videos / CLIPS[0]], empty, db, embedder=embedder, **LIGHT)
    assert report.indexed and report.num_events == 0
    with open_index(db, create=False) as index:
        assert index.stored_embedder() == (embedder.name, embedder.dim)  # recorded without any vector
        assert index.embedder.name == embedder.name
    with pytest.raises(EmbedderMismatchError, match=f"cannot add vectors from {other.name}"):
        index_paths([shared_videos / CLIPS[1]], MockVideoModel([caption]), db, embedder=other, **LIGHT)
    # a later run without --embedder uses the recorded one, so its vectors match
    index_paths([shared_videos / CLIPS[1]], MockVideoModel([caption]), db, **LIGHT)
    with open_index(db, create=False) as index:
        assert index.stored_embedder() == (embedder.name, embedder.dim)
        assert index.search("a red car drives past the camera", limit=1)[0].video.endswith(CLIPS[1])
