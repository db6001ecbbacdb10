"""Captioning jobs on a real local Ray cluster: eval generate-captions with a tiny random Qwen3-VL, annotate,
and index into PostgreSQL from many actors; each equal to its single-process run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("ray")

from support.ray_jobs import caption_reply  # noqa: E402
from vidspan.eval.benchmark import Benchmark  # noqa: E402
from vidspan.eval.captions.generate import generate_captions  # noqa: E402
from vidspan.eval.captions.samples import CaptionSample  # noqa: E402
from vidspan.library.indexer import index_paths  # noqa: E402
from vidspan.library.postgres import PgVideoIndex  # noqa: E402
from vidspan.models import families  # noqa: E402
from vidspan.scale import RayOptions  # noqa: E402
from vidspan.testing.mock import MockVideoModel  # noqa: E402
from vidspan.train.annotate import annotate_videos  # noqa: E402

LIGHT = {"num_cpus": 0.5, "decode_cpus": 0.5}
TINY = {"fps": 1.0, "max_frames": 4, "min_frames": 2, "max_pixels": 32 * 32 * 4, "max_new_tokens": 8}
FAST = {"fps": 0.5, "max_frames": 4, "min_frames": 2, "max_pixels": 64 * 64}
CLIPS = ("asl-eat.mkv", "asl-walk.mkv", "bottle-detection.mp4")


def caption_benchmark(shared_videos, broken: Path | None = None) -> Benchmark:
    names = list(CLIPS) + (["broken.mp4"] if broken else [])
    samples = tuple(
        CaptionSample(id=str(i), video=n, reference="ref", subset="all") for i, n in enumerate(names)
    )
    paths = {n: shared_videos / n for n in CLIPS} | ({"broken.mp4": broken} if broken else {})
    return Benchmark("test-captions", str(shared_videos / "events.coarse.json"), samples, str(shared_videos),
                     paths)  # fmt: skip


def jsonl(path: Path) -> dict[str, dict]:
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(rows) == len({r["id"] for r in rows}), "a record was written twice"
    return {r["id"]: r for r in rows}


def test_generate_captions_on_ray_equals_single_process_and_resumes(ray_cluster, shared_videos, tmp_path):
    model = MockVideoModel([caption_reply], family=families.MARLIN)
    bench = caption_benchmark(shared_videos, broken=_broken(tmp_path))
    one = generate_captions(bench, model, tmp_path / "one", **FAST)
    ray = generate_captions(bench, model, tmp_path / "ray", ray=RayOptions(workers=2, **LIGHT), **FAST)
    assert one["generated"] == ray["generated"] == 3
    assert [f["id"] for f in ray["failed"]] == [f["id"] for f in one["failed"]] == ["3"]
    assert jsonl(tmp_path / "ray" / "captions.jsonl") == jsonl(tmp_path / "one" / "captions.jsonl")
    # resuming the Ray run in one process finds nothing left to caption (same identity)
    again = generate_captions(bench, model, tmp_path / "ray", **FAST)
    assert again["generated"] == 0 and again["already_done"] == 3


def test_index_tiny_qwen3_vl_on_ray_equals_single_process(ray_cluster, shared_videos, tiny_model_dirs,
                                                          new_database):  # fmt: skip
    """The real transformers path in a model actor: the same rows as one process (greedy decoding)."""
    model = str(tiny_model_dirs["qwen3_vl"])
    videos = [shared_videos / n for n in CLIPS[:2]]
    one_url, ray_url = new_database(), new_database()
    one = index_paths(videos, model, one_url, device="cpu", **TINY)
    ray = index_paths(videos, model, ray_url, device="cpu", ray=RayOptions(workers=1, **LIGHT), **TINY)
    assert len(one.indexed) == len(ray.indexed) == 2 and not ray.failed
    with PgVideoIndex(one_url, create=False) as a, PgVideoIndex(ray_url, create=False) as b:
        assert [(v.path, v.model, v.scene, v.num_events) for v in a.videos()] == [
            (v.path, v.model, v.scene, v.num_events) for v in b.videos()
        ]
        raws = [a.caption(v.id).raw for v in a.videos()]
        assert raws == [b.caption(v.id).raw for v in b.videos()] and all(raws)  # the tiny model's own text
        assert sorted((h.video, h.start, h.end, h.caption) for h in a.search("a person", limit=20)) == sorted(
            (h.video, h.start, h.end, h.caption) for h in b.search("a person", limit=20)
        )  # as sets: ties are broken by row id, which follows the order the writes land in


def test_annotate_on_ray_equals_single_process(ray_cluster, shared_videos, tmp_path):
    model = MockVideoModel([caption_reply], family=families.MARLIN)
    videos = [shared_videos / n for n in CLIPS] + [_broken(tmp_path)]
    one = annotate_videos(videos, model, tmp_path / "one", **FAST)
    ray = annotate_videos(videos, model, tmp_path / "ray", ray=RayOptions(workers=2, **LIGHT), **FAST)
    assert (one.annotated, one.failed) == (ray.annotated, ray.failed) == (3, 1)
    assert jsonl(tmp_path / "ray" / "annotations.jsonl") == jsonl(tmp_path / "one" / "annotations.jsonl")


def test_index_writes_postgres_from_many_actors(ray_cluster, shared_videos, new_database, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in CLIPS:
        (folder / name).symlink_to(shared_videos / name)
    _broken(folder)
    model = MockVideoModel([caption_reply], family=families.MARLIN)
    one_url, ray_url = new_database(), new_database()
    one = index_paths([folder], model, one_url, **FAST)
    ray = index_paths([folder], model, ray_url, ray=RayOptions(workers=2, **LIGHT), **FAST)
    assert sorted(ray.indexed) == sorted(one.indexed) and len(ray.indexed) == 3
    assert [f.path for f in ray.failed] == [f.path for f in one.failed] == [str(folder / "broken.mp4")]
    assert ray.num_events == one.num_events == 3

    def rows(url):
        with PgVideoIndex(url, create=False) as index:
            # sorted: the three captions tie on words, and RRF breaks ties by row id, which follows the
            # order the actors finished in
            return sorted((v.path, v.num_events, v.model) for v in index.videos()), sorted(
                (h.video, h.start, h.end, h.caption) for h in index.search("something happens", limit=10)
            )

    assert rows(ray_url) == rows(one_url)
    again = index_paths([folder], model, ray_url, ray=RayOptions(workers=1, **LIGHT), **FAST)
    assert len(again.skipped) == 3 and not again.indexed  # unchanged files are not captioned again


def test_index_on_ray_refuses_sqlite(tmp_path, shared_videos):
    with pytest.raises(ValueError, match="PostgreSQL library"):
        index_paths(
            [shared_videos / "asl-eat.mkv"], MockVideoModel(), tmp_path / "lib.sqlite", ray=RayOptions()
        )
    assert not (tmp_path / "lib.sqlite").exists()


def _broken(folder: Path) -> Path:
    path = folder / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    return path


def test_cli_index_on_ray_into_postgres(ray_cluster, shared_videos, tiny_model_dirs, new_database, tmp_path):
    from click.testing import CliRunner

    from vidspan.cli.main import cli

    url = new_database()
    clip = str(shared_videos / "asl-eat.mkv")
    tiny = ["-m", str(tiny_model_dirs["qwen3_vl"]), "--device", "cpu", "--fps", "1", "--max-frames", "4",
            "--min-frames", "2", "--max-pixels", "4096", "--max-new-tokens", "8"]  # fmt: skip
    result = CliRunner().invoke(cli, ["index", clip, "--db", url, "--ray", "--json", "--no-progress", *tiny])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    stored = str(Path(clip).resolve())  # the library keeps resolved absolute paths
    assert report["indexed"] == [stored] and not report["failed"]
    with PgVideoIndex(url, create=False) as index:
        assert [v.path for v in index.videos()] == [stored]

    sqlite = tmp_path / "lib.sqlite"
    refused = CliRunner().invoke(cli, ["index", clip, "--db", str(sqlite), "--ray", "--no-progress", *tiny])
    assert refused.exit_code == 1 and "needs a PostgreSQL library" in refused.output
    assert len(refused.output.strip().splitlines()) == 1 and not sqlite.exists()

    misuse = CliRunner().invoke(cli, ["index", clip, "--db", url, "--ray-workers", "2", *tiny])
    assert misuse.exit_code == 2 and "--ray-workers, --ray-gpus and --ray-vllm need --ray" in misuse.output
    for args, message in ((["--ray", "--vllm-batch-size", "4"], "need --ray-vllm"),
                          (["--ray", "--ray-vllm", "--vllm-engine-kwargs", "{x"], "not JSON")):  # fmt: skip
        misuse = CliRunner().invoke(cli, ["index", clip, "--db", url, *args, *tiny])
        assert misuse.exit_code == 2 and message in misuse.output, misuse.output
    # vLLM replicas need GPUs: a CPU cluster is refused in one line before any work
    no_gpu = CliRunner().invoke(cli, ["annotate", clip, *tiny[:2], "--out", str(tmp_path / "ann"), "--ray",
                                      "--ray-vllm"])  # fmt: skip
    assert no_gpu.exit_code == 1 and "Captioning with vLLM needs GPU nodes" in no_gpu.output, no_gpu.output
    assert len(no_gpu.output.strip().splitlines()) == 1
