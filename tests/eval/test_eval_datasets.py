"""Benchmark loaders, the registry and video discovery (vidspan.eval.grounding.datasets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidspan.errors import VidspanError
from vidspan.eval.grounding.datasets import (
    BENCHMARKS,
    BenchmarkFormatError,
    EvalFileNotFoundError,
    UnknownBenchmarkError,
    find_video,
    get_benchmark_spec,
    load_activitynet,
    load_benchmark,
    load_charades_sta,
    load_qvhighlights,
    load_timelens,
    normalize_query,
)

QVH_GT = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "qvhighlights"
    / "highlight_val_release.jsonl"
)

TIMELENS = {
    "3MSZA": {
        "duration": 31.0,
        "spans": [[25, 30], [1, 24], [0, 1]],
        "queries": [
            "A woman is repeatedly flipping the switch on the wall.",
            "  A woman   walks\tinto the room .  ",
            "..the light turns on..",
        ],
    },
    "AO8RW": {"duration": 24.5, "spans": [[0.5, 6.0]], "queries": ["person opens the door\n"]},
}

CHARADES_STA = """3MSZA 24.3 30.4##person turns a light on.
3MSZA 1.0 24.0##a person walks into the room.

AO8RW 0.0 6.9##person is putting a book on a shelf.
"""

ACTIVITYNET = {
    "v_QOlSCBRmfWY": {
        "duration": 82.73,
        "timestamps": [[0.83, 19.86], [17.37, 60.81]],
        "sentences": ["  A young woman is seen standing in a room. ", "She then begins to dance."],
    },
    "v_ehGHCYKzyZ8": {"duration": 61.72, "timestamps": [[0, 12.5]], "sentences": ["A man plays a drum."]},
}


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


# ------------------------------------------------------------------------------------------------ TimeLens


def test_normalize_query_matches_the_official_rule():
    assert normalize_query("  A  woman\t walks\n in. ") == "A woman walks in"
    assert normalize_query("..the light turns on..") == "the light turns on"
    assert normalize_query("ends with space . ") == "ends with space"


def test_load_timelens_flattens_queries_with_stable_ids_and_typed_gt(tmp_path):
    path = write_json(tmp_path / "charades-timelens.json", TIMELENS)
    samples = load_timelens(path)
    assert [s.id for s in samples] == ["3MSZA#0", "3MSZA#1", "3MSZA#2", "AO8RW#0"]
    assert [s.query for s in samples] == [
        "A woman is repeatedly flipping the switch on the wall",
        "A woman walks into the room",
        "the light turns on",
        "person opens the door",
    ]
    assert samples[0].gt_spans == ((25.0, 30.0),)
    assert all(isinstance(v, float) for v in samples[0].gt_spans[0])
    assert samples[3].gt_spans == ((0.5, 6.0),)
    assert {s.subset for s in samples} == {"charades"}
    assert samples[0].duration == 31.0 and samples[3].duration == 24.5
    assert load_timelens(path) == samples  # stable across loads


@pytest.mark.parametrize(
    ("file_name", "subset"),
    [
        ("charades-timelens.json", "charades"),
        ("activitynet-timelens.json", "activitynet"),
        ("qvhighlights-timelens.json", "qvhighlights"),
        ("my-bench.json", "my-bench"),
    ],
)
def test_load_timelens_takes_the_subset_from_the_file_name(tmp_path, file_name, subset):
    path = write_json(tmp_path / file_name, TIMELENS)
    assert {s.subset for s in load_timelens(path)} == {subset}
    assert {s.subset for s in load_timelens(path, subset="custom")} == {"custom"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"duration": 5, "spans": [[0, 1], [1, 2]], "queries": ["a"]}, r"'BAD'.*2 spans but 1 queries"),
        ({"duration": 5, "spans": [[0, 1, 2]], "queries": ["a"]}, r"'BAD'.*spans\[0\].*\[start, end\]"),
        ({"duration": 5, "spans": [["0", 1]], "queries": ["a"]}, r"'BAD'.*spans\[0\]"),
        ({"duration": 5, "spans": [[0, 1]], "queries": [3]}, r"'BAD'.*queries\[0\].*expected text"),
        ({"duration": "long", "spans": [[0, 1]], "queries": ["a"]}, r"'BAD'.*'duration' must be a number"),
        ({"duration": 5, "queries": ["a"]}, r"'BAD'.*missing 'spans'"),
        ([1, 2], r"'BAD'.*expected a JSON object"),
    ],
)
def test_load_timelens_rejects_malformed_entries_naming_file_and_video(tmp_path, entry, message):
    path = write_json(tmp_path / "charades-timelens.json", {"OK": TIMELENS["AO8RW"], "BAD": entry})
    with pytest.raises(BenchmarkFormatError, match=message) as caught:
        load_timelens(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, VidspanError)


def test_load_timelens_rejects_invalid_json_and_missing_files(tmp_path):
    broken = tmp_path / "charades-timelens.json"
    broken.write_text('{"3MSZA": {"duration": 31.0,', encoding="utf-8")
    with pytest.raises(BenchmarkFormatError, match=r"charades-timelens\.json: not valid JSON"):
        load_timelens(broken)
    write_json(broken, [1, 2])
    with pytest.raises(BenchmarkFormatError, match="expected a JSON object keyed by video id, got list"):
        load_timelens(broken)
    with pytest.raises(EvalFileNotFoundError, match=r"Annotation file not found: .*nowhere\.json"):
        load_timelens(tmp_path / "nowhere.json")


# --------------------------------------------------------------------------------------------- Charades-STA


def test_load_charades_sta_reads_lines_skips_blanks_and_counts_ids_per_video(tmp_path):
    path = tmp_path / "charades_sta_test.txt"
    path.write_text(CHARADES_STA, encoding="utf-8")
    samples = load_charades_sta(path, durations={"3MSZA": 31.0})
    assert [s.id for s in samples] == ["3MSZA#0", "3MSZA#1", "AO8RW#0"]
    assert samples[0].query == "person turns a light on."
    assert samples[0].gt_spans == ((24.3, 30.4),)
    assert samples[2].gt_spans == ((0.0, 6.9),)
    assert [s.duration for s in samples] == [31.0, 31.0, None]
    assert {s.subset for s in samples} == {"charades-sta"}
    assert load_charades_sta(path, durations={"3MSZA": 31.0}) == samples


def test_load_charades_sta_reads_durations_from_a_json_file(tmp_path):
    path = tmp_path / "sta.txt"
    path.write_text(CHARADES_STA, encoding="utf-8")
    durations = write_json(tmp_path / "durations.json", {"3MSZA": 31, "AO8RW": {"duration": 24.5}})
    assert [s.duration for s in load_charades_sta(path, durations=durations)] == [31.0, 31.0, 24.5]
    write_json(durations, {"3MSZA": "long"})
    with pytest.raises(BenchmarkFormatError, match=r"durations\.json: video '3MSZA'.*'duration' must be"):
        load_charades_sta(path, durations=durations)


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("AO8RW 0.0 6.9 person without separator", r"line 3: expected '<video> <start> <end>##<sentence>'"),
        ("AO8RW 0.0##missing end", r"line 3: expected"),
        ("AO8RW zero 6.9##bad start", r"line 3: start and end must be numbers, got 'zero' and '6.9'"),
        ("AO8RW 0.0 nan##not finite", r"line 3: start and end must be finite"),
        ("AO8RW 0.0 6.9##   ", r"line 3: expected"),
    ],
)
def test_load_charades_sta_names_the_bad_line(tmp_path, bad_line, message):
    path = tmp_path / "sta.txt"
    path.write_text(f"3MSZA 24.3 30.4##ok.\n\n{bad_line}\n", encoding="utf-8")
    with pytest.raises(BenchmarkFormatError, match=message):
        load_charades_sta(path)


# ---------------------------------------------------------------------------------------------- ActivityNet


def test_load_activitynet_keeps_v_ids_and_strips_sentences(tmp_path):
    samples = load_activitynet(write_json(tmp_path / "val_2.json", ACTIVITYNET))
    assert [s.id for s in samples] == ["v_QOlSCBRmfWY#0", "v_QOlSCBRmfWY#1", "v_ehGHCYKzyZ8#0"]
    assert samples[0].video == "v_QOlSCBRmfWY"
    assert samples[0].query == "A young woman is seen standing in a room."
    assert samples[1].gt_spans == ((17.37, 60.81),)
    assert samples[2].duration == 61.72
    assert {s.subset for s in samples} == {"activitynet"}


def test_load_activitynet_rejects_unpaired_sentences(tmp_path):
    bad = {"v_x": {"duration": 10, "timestamps": [[0, 1]], "sentences": ["a", "b"]}}
    with pytest.raises(BenchmarkFormatError, match=r"'v_x': 1 timestamps but 2 sentences"):
        load_activitynet(write_json(tmp_path / "val_2.json", bad))


# --------------------------------------------------------------------------------------------- QVHighlights


def test_load_qvhighlights_reads_the_real_val_ground_truth():
    samples = load_qvhighlights(QVH_GT)
    assert len(samples) == 1550
    assert len({s.id for s in samples}) == 1550
    assert len({s.video for s in samples}) == 1519
    assert sum(len(s.gt_spans) for s in samples) == 2803
    assert sum(len(s.gt_spans) == 1 for s in samples) == 1020
    assert sum(s.duration == 150.0 for s in samples) == 1511
    first = samples[0]
    assert (first.id, first.qid, first.video) == ("2579", 2579, "NUsG9BgSes0_210.0_360.0")
    assert first.gt_spans == ((82.0, 150.0),)
    assert first.query == "A girl and her mother cooked while talking with each other on facetime."
    assert first.extra["relevant_clip_ids"][:3] == (41, 42, 43)
    assert first.extra["saliency_scores"][0] == (1, 1, 2)
    assert all(len(s.extra["relevant_clip_ids"]) == len(s.extra["saliency_scores"]) for s in samples)
    assert {s.subset for s in samples} == {"qvhighlights"}


def test_load_qvhighlights_rejects_repeated_qids_and_bad_lines(tmp_path):
    row = {"qid": 7, "query": "q", "vid": "v", "duration": 150, "relevant_windows": [[0, 2]]}
    path = tmp_path / "gt.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(BenchmarkFormatError, match=r"gt\.jsonl, line 2: qid 7 repeats line 1"):
        load_qvhighlights(path)
    path.write_text(json.dumps(row) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(BenchmarkFormatError, match=r"line 2: not valid JSON"):
        load_qvhighlights(path)
    path.write_text(json.dumps(row | {"relevant_windows": []}) + "\n", encoding="utf-8")
    with pytest.raises(BenchmarkFormatError, match=r"line 1: 'relevant_windows' must be a non-empty list"):
        load_qvhighlights(path)


# ------------------------------------------------------------------------------------------------- registry


def test_registry_names_and_lookups():
    assert set(BENCHMARKS) == {
        "charades-timelens",
        "activitynet-timelens",
        "qvhighlights-timelens",
        "timelens",
        "charades-sta",
        "activitynet",
        "qvhighlights",
        "timechat-coco",
    }
    assert get_benchmark_spec("Charades_STA").name == "charades-sta"
    assert get_benchmark_spec("charades-timelens").subset == "charades"
    assert get_benchmark_spec("timelens").subset is None
    assert all(spec.description and ".mp4" in spec.video_extensions for spec in BENCHMARKS.values())


def test_unknown_benchmark_suggests_close_names():
    with pytest.raises(
        UnknownBenchmarkError,
        match=r"^Unknown benchmark 'charades'\. Did you mean: charades-sta, charades-timelens\?$",
    ):
        get_benchmark_spec("charades")
    with pytest.raises(UnknownBenchmarkError, match=r"Did you mean: .*qvhighlights"):
        get_benchmark_spec("qvhighlight")
    with pytest.raises(
        UnknownBenchmarkError, match=r"^Unknown benchmark 'zzz'\. Available: charades-timelens, "
    ):
        load_benchmark("zzz", "whatever.json")


# ------------------------------------------------------------------------------------ load_benchmark, videos


def test_load_benchmark_lists_missing_videos_and_keeps_their_samples(tmp_path):
    path = write_json(tmp_path / "charades-timelens.json", TIMELENS | {"ZZZZZ": TIMELENS["AO8RW"]})
    videos = tmp_path / "videos"
    touch(videos / "3MSZA.mp4")
    touch(videos / "unrelated.mp4")
    bench = load_benchmark("charades-timelens", path, videos)
    assert bench.name == "charades-timelens"
    assert bench.annotations == str(path)
    assert bench.video_dir == str(videos)
    assert len(bench.samples) == 5  # missing videos' samples stay
    assert bench.video_paths == {"3MSZA": videos / "3MSZA.mp4"}
    assert bench.missing_videos == ("AO8RW", "ZZZZZ")
    assert bench.subsets == ("charades",)


def test_load_benchmark_finds_videos_in_subfolders_and_with_other_extensions(tmp_path):
    path = write_json(tmp_path / "annotations.json", TIMELENS)
    videos = tmp_path / "videos"
    touch(videos / "charades" / "3MSZA.mp4")
    touch(videos / "other" / "AO8RW.webm")
    bench = load_benchmark("charades-timelens", path, videos)  # fixed subset despite the file name
    assert {s.subset for s in bench.samples} == {"charades"}
    assert bench.video_paths == {
        "3MSZA": videos / "charades" / "3MSZA.mp4",
        "AO8RW": videos / "other" / "AO8RW.webm",
    }
    assert bench.missing_videos == ()


def test_load_benchmark_without_videos_resolves_nothing(tmp_path):
    path = write_json(tmp_path / "activitynet-timelens.json", TIMELENS)
    bench = load_benchmark("timelens", path)
    assert bench.subsets == ("activitynet",)
    assert (bench.video_dir, bench.video_paths, bench.missing_videos) == (None, {}, ())


def test_load_benchmark_matches_activitynet_ids_with_and_without_v_prefix(tmp_path):
    path = write_json(tmp_path / "val_2.json", ACTIVITYNET | {"v_missing0000": ACTIVITYNET["v_ehGHCYKzyZ8"]})
    videos = tmp_path / "videos"
    touch(videos / "QOlSCBRmfWY.mkv")
    touch(videos / "activitynet" / "v_ehGHCYKzyZ8.mp4")
    bench = load_benchmark("activitynet", path, videos)
    assert bench.video_paths == {
        "v_QOlSCBRmfWY": videos / "QOlSCBRmfWY.mkv",
        "v_ehGHCYKzyZ8": videos / "activitynet" / "v_ehGHCYKzyZ8.mp4",
    }
    assert bench.missing_videos == ("v_missing0000",)
    # and the other way round: an annotation without the prefix, a file with it
    bare = write_json(tmp_path / "activitynet-timelens.json", {"QOlSCBRmfWY": TIMELENS["AO8RW"]})
    touch(videos / "v_QOlSCBRmfWY.mp4")
    assert find_video("QOlSCBRmfWY", videos) == videos / "QOlSCBRmfWY.mkv"  # the exact id first
    (videos / "QOlSCBRmfWY.mkv").unlink()
    bench = load_benchmark("activitynet-timelens", bare, videos)
    assert bench.video_paths == {"QOlSCBRmfWY": videos / "v_QOlSCBRmfWY.mp4"}


def test_find_video_prefers_the_top_folder_then_the_subset_folder(tmp_path):
    touch(tmp_path / "a" / "x.mp4")
    touch(tmp_path / "charades" / "x.mp4")
    assert find_video("x", tmp_path, subset="charades") == tmp_path / "charades" / "x.mp4"
    assert find_video("x", tmp_path) == tmp_path / "a" / "x.mp4"
    touch(tmp_path / "x.mov")
    assert find_video("x", tmp_path, subset="charades") == tmp_path / "x.mov"
    touch(tmp_path / "x.mp4")
    assert find_video("x", tmp_path) == tmp_path / "x.mp4"  # extension order: .mp4 before .mov
    assert find_video("x.mov", tmp_path) == tmp_path / "x.mov"  # an id that is a file name
    assert find_video("nothing", tmp_path) is None


def test_load_benchmark_passes_loader_options_and_rejects_unknown_ones(tmp_path):
    sta = tmp_path / "sta.txt"
    sta.write_text(CHARADES_STA, encoding="utf-8")
    bench = load_benchmark("charades-sta", sta, durations={"3MSZA": 31.0, "AO8RW": 24.0})
    assert [s.duration for s in bench.samples] == [31.0, 31.0, 24.0]
    with pytest.raises(
        ValueError, match=r"Invalid option for benchmark 'charades-sta': 'fps'\. It must be one of: durations"
    ):
        load_benchmark("charades-sta", sta, fps=2)


def test_load_benchmark_names_missing_annotation_files_and_video_folders(tmp_path):
    with pytest.raises(EvalFileNotFoundError, match=r"Annotation file not found: .*gone\.jsonl"):
        load_benchmark("qvhighlights", tmp_path / "gone.jsonl")
    sta = tmp_path / "sta.txt"
    sta.write_text(CHARADES_STA, encoding="utf-8")
    with pytest.raises(EvalFileNotFoundError, match=r"Video folder not found: .*no-videos"):
        load_benchmark("charades-sta", sta, tmp_path / "no-videos")


def test_load_benchmark_on_the_real_qvhighlights_file(tmp_path):
    videos = tmp_path / "videos"
    touch(videos / "qvhighlights" / "NUsG9BgSes0_210.0_360.0.mp4")
    bench = load_benchmark("qvhighlights", QVH_GT, videos)
    assert len(bench.samples) == 1550
    assert bench.video_paths == {
        "NUsG9BgSes0_210.0_360.0": videos / "qvhighlights" / "NUsG9BgSes0_210.0_360.0.mp4"
    }
    assert len(bench.missing_videos) == 1518
    assert list(bench.missing_videos) == sorted(set(bench.missing_videos))
