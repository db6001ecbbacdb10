"""Caption-benchmark loaders (the real DREAM-1K file, CaReBench, generic JSONL) and candidate captions."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from vidspan.eval.captions.candidates import (
    CANDIDATES_FILE,
    CandidateRecord,
    load_candidates,
    write_candidates,
)
from vidspan.eval.captions.datasets import (
    load_caption_benchmark,
    load_caption_jsonl,
    load_carebench,
    load_dream1k,
)
from vidspan.eval.grounding.datasets import BenchmarkFormatError, EvalFileNotFoundError, UnknownBenchmarkError

DREAM = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dream1k" / "DREAM-1k.jsonl"
SUBSETS = {"movie_animation", "movie_live_action", "vertical_video", "videvo", "youtube"}


@pytest.fixture(scope="module")
def dream():
    assert DREAM.is_file(), f"missing shared test data at {DREAM}"
    return load_dream1k(DREAM)


# ------------------------------------------------------------------------------------------------ DREAM-1K


def test_dream1k_has_1000_samples_in_five_subsets_of_200(dream):
    assert len(dream) == 1000
    assert Counter(s.subset for s in dream) == {name: 200 for name in SUBSETS}
    assert len({s.id for s in dream}) == 1000
    assert all(s.reference and s.duration is not None for s in dream)


def test_dream1k_keeps_the_four_empty_event_lists_as_empty_tuples(dream):
    empty = [s.id for s in dream if s.events == ()]
    assert empty == ["649", "804", "980", "981"]
    assert all(s.events is not None for s in dream)  # every line has events, so none is extracted


def test_dream1k_sample_1_matches_the_file(dream):
    first = json.loads(DREAM.read_text(encoding="utf-8").splitlines()[0])
    sample = dream[0]
    assert sample.id == "1" and sample.video == str(first["vid"])
    assert sample.subset == "movie_animation"
    assert sample.events == tuple(first["extra_info"]["events"])
    assert sample.events == (
        "A character emerges from smoke and fire.",
        "The character half kneels on the ground.",
        "The character makes a gesture to give instructions.",
        "A group of characters rushes forward.",
        "The group of characters grabs two green monsters.",
    )
    assert sample.reference == first["messages"][1]["content"][0]["reference"]
    assert sample.reference.startswith("A character emerges from smoke and fire, then half knelt")
    assert sample.duration == pytest.approx(5.09)
    assert {k: sample.extra[k] for k in ("n_subjects", "n_shots", "n_events")} == {
        "n_subjects": 4,
        "n_shots": 2,
        "n_events": 5,
    }
    assert "video_file" not in sample.extra  # "<placeholder>" is not a file name


def test_dream1k_videos_are_found_by_vid_and_missing_ones_listed(tmp_path, dream):
    videos = tmp_path / "videos"
    (videos / "DREAM-1K_videos").mkdir(parents=True)
    (videos / "1.mp4").write_bytes(b"x")
    (videos / "DREAM-1K_videos" / "2.mp4").write_bytes(b"x")
    bench = load_caption_benchmark("dream1k", DREAM, videos)
    assert bench.name == "dream1k"
    assert len(bench.samples) == 1000  # samples without a video are kept
    assert bench.video_paths["1"] == videos / "1.mp4"
    assert bench.video_paths["2"] == videos / "DREAM-1K_videos" / "2.mp4"
    assert len(bench.missing_videos) == 998
    assert bench.missing_videos[:3] == ("3", "4", "5")  # natural order, not "10" before "3"


def test_dream1k_reads_a_real_video_file_name_when_filled_in(tmp_path):
    line = json.loads(DREAM.read_text(encoding="utf-8").splitlines()[0])
    line["messages"][0]["content"][0]["video"]["video_file"] = "/data/DREAM/clip_one.mp4"
    path = tmp_path / "dream.jsonl"
    path.write_text(json.dumps(line) + "\n")
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "clip_one.mp4").write_bytes(b"x")
    bench = load_caption_benchmark("dream-1k", path, tmp_path / "videos")
    assert bench.video_paths == {"1": tmp_path / "videos" / "clip_one.mp4"}
    assert bench.missing_videos == ()


def test_dream1k_without_events_field_gives_none(tmp_path):
    line = json.loads(DREAM.read_text(encoding="utf-8").splitlines()[0])
    del line["extra_info"]["events"]
    path = tmp_path / "dream.jsonl"
    path.write_text(json.dumps(line) + "\n")
    assert load_dream1k(path)[0].events is None


def test_dream1k_malformed_line_is_named(tmp_path):
    path = tmp_path / "dream.jsonl"
    path.write_text('{"messages": [], "dataset": "DREAM/x", "idx": 1}\n')
    with pytest.raises(BenchmarkFormatError, match=r"line 1: no assistant turn with a 'reference'"):
        load_dream1k(path)


# ------------------------------------------------------------------------------------------------ CaReBench


def _carebench(tmp_path: Path) -> Path:
    records = [
        {
            "video": "a1.mp4",
            "caption": "A man walks in.",
            "spatial_caption": "A man in red.",
            "temporal_caption": "He walks in.",
            "category": "sports",
            "subcategory": "running",
        },
        {
            "video": "b2.mp4",
            "caption": "A dog sits.",
            "spatial_caption": "",
            "temporal_caption": "",
            "category": "animals",
            "subcategory": "dogs",
            "events": ["The dog sits."],
            "objects": ["There is a brown dog."],
        },
        {
            "video": "c3.mp4",
            "caption": "Rain falls.",
            "spatial_caption": "",
            "temporal_caption": "",
            "category": "nature",
            "subcategory": "weather",
            "events": [],
        },
    ]
    path = tmp_path / "json" / "metadata.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(records))
    return path


def test_carebench_loads_records_into_one_overall_subset(tmp_path):
    samples = load_carebench(_carebench(tmp_path))
    assert [s.id for s in samples] == ["0", "1", "2"]
    assert {s.subset for s in samples} == {"overall"}
    first, second, third = samples
    assert first.video == "a1.mp4" and first.reference == "A man walks in."
    assert first.events is None and first.objects is None  # extracted by the judge later
    assert first.extra["category"] == "sports" and first.extra["subcategory"] == "running"
    assert first.extra["spatial_caption"] == "A man in red."
    assert second.events == ("The dog sits.",) and second.objects == ("There is a brown dog.",)
    assert third.events == () and third.objects is None


def test_carebench_lists_missing_videos(tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "b2.mp4").write_bytes(b"x")
    bench = load_caption_benchmark("CareBench", _carebench(tmp_path), tmp_path / "videos")
    assert bench.video_paths == {"b2.mp4": tmp_path / "videos" / "b2.mp4"}
    assert bench.missing_videos == ("a1.mp4", "c3.mp4")
    assert len(bench.samples) == 3


def test_carebench_rejects_an_object_file(tmp_path):
    path = tmp_path / "metadata.json"
    path.write_text("{}")
    with pytest.raises(BenchmarkFormatError, match="expected a JSON list of records"):
        load_carebench(path)


# ----------------------------------------------------------------------------------------- generic JSONL


def test_caption_jsonl_reads_ids_subsets_facts_and_extra(tmp_path):
    path = tmp_path / "caps.jsonl"
    rows = [
        {
            "id": "x",
            "video": "clip-a",
            "caption": "A cat jumps.",
            "subset": "pets",
            "events": ["A cat jumps."],
            "source": "mine",
        },
        {"video": "clip-b", "reference": "A car drives.", "objects": ["There is a red car."]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    first, second = load_caption_jsonl(path)
    assert (first.id, first.subset, first.events, first.extra) == (
        "x",
        "pets",
        ("A cat jumps.",),
        {"source": "mine"},
    )
    assert (second.id, second.subset, second.reference) == ("1", "overall", "A car drives.")
    assert second.events is None and second.objects == ("There is a red car.",)


def test_caption_jsonl_errors_name_the_line(tmp_path):
    path = tmp_path / "caps.jsonl"
    path.write_text('{"video": "a", "caption": "x"}\n{"video": "b"}\n')
    with pytest.raises(BenchmarkFormatError, match=r"line 2: missing 'caption' \(or 'reference'\)"):
        load_caption_jsonl(path)
    path.write_text('{"id": 1, "video": "a", "caption": "x"}\n{"id": 1, "video": "b", "caption": "y"}\n')
    with pytest.raises(BenchmarkFormatError, match="sample id '1' repeats"):
        load_caption_jsonl(path)
    path.write_text('{"video": "a", "caption": "x", "events": "not a list"}\n')
    with pytest.raises(BenchmarkFormatError, match="'events' must be a list of strings"):
        load_caption_jsonl(path)


def test_registry_suggests_close_names_and_checks_files(tmp_path):
    with pytest.raises(
        UnknownBenchmarkError, match=r"Unknown caption benchmark 'dream1'. Did you mean: dream1k"
    ):
        load_caption_benchmark("dream1", DREAM)
    with pytest.raises(UnknownBenchmarkError, match="Available: dream1k, carebench, jsonl"):
        load_caption_benchmark("msrvtt", DREAM)
    with pytest.raises(EvalFileNotFoundError, match="Annotation file not found"):
        load_caption_benchmark("jsonl", tmp_path / "nope.jsonl")
    with pytest.raises(EvalFileNotFoundError, match="Video folder not found"):
        load_caption_benchmark("dream1k", DREAM, tmp_path / "no-videos")


# ------------------------------------------------------------------------------------------- candidates


def _small_bench(tmp_path: Path):
    path = tmp_path / "bench.jsonl"
    rows = [{"id": f"s{i}", "video": f"v{i}", "caption": f"ref {i}"} for i in range(4)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return load_caption_benchmark("jsonl", path)


def test_candidates_match_by_id_idx_or_video_and_report_gaps(tmp_path, caplog):
    bench = _small_bench(tmp_path)
    path = tmp_path / "preds.jsonl"
    rows = [
        {"id": "s0", "caption": "first"},
        {"video": "v1.mp4", "caption": "by video file name"},
        {"idx": "s2", "prediction": "tarsier-style"},
        {"id": "zzz", "caption": "matches nothing"},
        {"id": "s0", "caption": "first, again"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    candidates = load_candidates(path, bench)
    assert dict(candidates) == {"s0": "first, again", "s1": "by video file name", "s2": "tarsier-style"}
    assert candidates.missing == ("s3",)
    assert candidates.unmatched == ("zzz",)
    assert candidates.source == str(path)
    assert "1 of 4 samples have no candidate caption" in caplog.text


def test_candidates_round_trip_through_a_caption_run_directory(tmp_path):
    bench = _small_bench(tmp_path)
    run = tmp_path / "run"
    records = [
        CandidateRecord(
            "s0",
            "v0",
            "[0.0-1.0] a man waves.",
            scene="A room.",
            events=({"start": 0.0, "end": 1.0, "description": "a man waves."},),
        ),
        CandidateRecord("s1", "v1", "old"),
    ]
    path = write_candidates(run, records)
    write_candidates(run, [CandidateRecord("s1", "v1", "new")])  # appended: a resumed generation
    assert path == run / CANDIDATES_FILE
    first = json.loads(path.read_text().splitlines()[0])
    assert first == {
        "id": "s0",
        "video": "v0",
        "caption": "[0.0-1.0] a man waves.",
        "scene": "A room.",
        "events": [{"start": 0.0, "end": 1.0, "description": "a man waves."}],
    }
    candidates = load_candidates(run, bench)
    assert dict(candidates) == {"s0": "[0.0-1.0] a man waves.", "s1": "new"}
    assert candidates.missing == ("s2", "s3")


def test_candidates_errors(tmp_path):
    bench = _small_bench(tmp_path)
    (tmp_path / "empty-run").mkdir()
    with pytest.raises(EvalFileNotFoundError, match="Candidate captions not found"):
        load_candidates(tmp_path / "empty-run", bench)
    path = tmp_path / "preds.jsonl"
    path.write_text('{"caption": "who am I"}\n')
    with pytest.raises(BenchmarkFormatError, match="line 1: a candidate line needs 'id', 'idx' or 'video'"):
        load_candidates(path, bench)
    path.write_text('{"id": "s0"}\n')
    with pytest.raises(BenchmarkFormatError, match="line 1: missing 'caption'"):
        load_candidates(path, bench)
