"""Training sets: canonical answers, span checks against the probed duration, splits by video, round trips."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from vidspan.models import families
from vidspan.parse import parse_span
from vidspan.train.data import (
    BadRow,
    TrainExample,
    caption_answer,
    find_example,
    split_by_video,
    summarize,
    write_swift_jsonl,
    write_trl_jsonl,
)


@pytest.mark.parametrize("family", [families.MARLIN, families.TIMELENS, families.QWEN3_VL])
def test_find_examples_are_the_family_canonical_form_and_parse_back(family):
    example = find_example(family, id="a#0", video="/v/a.mp4", query=" a door opens ", start=2.04, end=5.0,
                           duration=10.0)  # fmt: skip
    assert isinstance(example, TrainExample)
    assert example.prompt == family.render_find_prompt("a door opens")
    parsed = parse_span(example.answer, output_format=family.output_format, strict=True)
    assert parsed.span.to_tuple() == (2.0, 5.0)  # one decimal, as the models write it


@pytest.mark.parametrize(
    ("start", "end", "duration", "reason"),
    [
        (-1.0, 2.0, 10.0, "span starts before 0"),
        (3.0, 3.0, 10.0, "span ends at or before its start"),
        (5.0, 2.0, 10.0, "span ends at or before its start"),
        (2.0, 12.0, 10.0, "span ends after the video"),
        (float("nan"), 2.0, 10.0, "not a finite number"),
    ],
)
def test_bad_spans_are_reported_with_the_reason(start, end, duration, reason):
    row = find_example(
        families.MARLIN, id="x", video="v.mp4", query="q", start=start, end=end, duration=duration
    )
    assert isinstance(row, BadRow) and reason in row.reason


def test_a_span_ending_within_half_a_frame_of_the_end_is_kept_and_clipped():
    example = find_example(
        families.MARLIN, id="x", video="v.mp4", query="q", start=1.0, end=10.03, duration=10.0
    )
    assert isinstance(example, TrainExample) and example.end == 10.0


def test_caption_answer_is_canonical():
    from vidspan.parse import parse_caption

    text = caption_answer("A  kitchen.", [(3.0, 4.5, "He sits."), (0.0, 1.0, "A man walks in.")])
    parsed = parse_caption(text, strict=True)
    assert [(e.start, e.end, e.description) for e in parsed.events] == [(0.0, 1.0, "A man walks in."),
                                                                         (3.0, 4.5, "He sits.")]  # fmt: skip


def _examples(n_videos: int, per_video: int) -> list[TrainExample]:
    out = []
    for v in range(n_videos):
        for q in range(per_video):
            out.append(find_example(families.MARLIN, id=f"{v}#{q}", video=f"/v/{v}.mp4", query=f"event {q}",
                                    start=float(q), end=q + 1.0, duration=60.0 + v))  # fmt: skip
    return out


def test_splits_are_by_video_without_duplicates_and_stable():
    examples = _examples(50, 3)
    examples += examples[:5]  # exact duplicates
    splits = split_by_video(examples, {"train": 0.8, "val": 0.2}, seed=1)
    videos = {name: {e.video for e in rows} for name, rows in splits.items()}
    assert not videos["train"] & videos["val"]
    assert sum(len(r) for r in splits.values()) == 150  # the 5 duplicates dropped
    assert 25 <= len(videos["train"]) <= 48
    assert split_by_video(examples, {"train": 0.8, "val": 0.2}, seed=1) == splits
    with pytest.raises(ValueError, match="all zero"):
        split_by_video(examples, {"train": 0.0})


def test_a_video_goes_to_the_same_split_wherever_its_folder_is():
    here, there = _examples(30, 1), _examples(30, 1)
    there = [replace(e, video=e.video.replace("/v/", "/elsewhere/clips/")) for e in there]

    def names(rows: list[TrainExample]) -> dict[str, list[str]]:
        splits = split_by_video(rows, {"train": 0.7, "val": 0.3})
        return {name: sorted(Path(e.video).name for e in r) for name, r in splits.items()}

    assert names(here) == names(there) and names(here)["val"]


def test_an_empty_split_is_left_out_of_the_hf_folder_so_it_loads_back(tmp_path):
    datasets = pytest.importorskip("datasets")
    from vidspan.train.build import _write_hf

    _write_hf({"train": _examples(2, 2), "val": []}, tmp_path / "hf")
    loaded = datasets.load_from_disk(str(tmp_path / "hf"))
    assert list(loaded) == ["train"] and len(loaded["train"]) == 4


def test_summary_counts_tasks_buckets_and_bad_reasons():
    splits = {"train": _examples(2, 2)}
    bad = [BadRow("x", "v", "span ends after the video (12 > 10.000 s)"), BadRow("y", "v", "empty query")]
    summary = summarize(splits, bad)
    assert summary["splits"]["train"]["tasks"] == {"find": 4}
    assert summary["splits"]["train"]["duration_buckets"] == {"60-120 s": 2, "30-60 s": 2} or summary[
        "splits"
    ]["train"]["duration_buckets"] == {"30-60 s": 2, "60-120 s": 2}
    assert summary["bad_reasons"] == {"span ends after the video": 1, "empty query": 1}


def test_trl_and_swift_files_round_trip_through_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    examples = _examples(3, 2)
    trl = write_trl_jsonl(examples, tmp_path / "trl.jsonl")
    swift = write_swift_jsonl(examples, tmp_path / "swift.jsonl")
    loaded = datasets.load_dataset("json", data_files=str(trl), split="train")
    assert loaded[0]["messages"][1]["content"][0]["text"] == examples[0].answer
    assert loaded[0]["messages"][0]["content"][0]["path"] == examples[0].video
    rows = [json.loads(line) for line in swift.read_text().splitlines()]
    assert rows[0]["messages"][0]["content"] == "<video>" + examples[0].prompt
    assert rows[0]["videos"] == [examples[0].video] and rows[0]["start"] == 0.0
    assert not list(tmp_path.glob("*.tmp"))
