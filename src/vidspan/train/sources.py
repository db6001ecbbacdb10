"""Where training examples come from: any grounding benchmark vidspan loads, and a plain ``{video, start, end,
text}`` JSONL. Each video is probed once; its measured duration (not the annotation's) bounds the spans.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vidspan.errors import BenchmarkFormatError, VidspanError
from vidspan.eval.benchmark import Benchmark
from vidspan.models.base import Family
from vidspan.train.data import BadRow, TrainExample, find_example

__all__ = [
    "examples_from_benchmark", "examples_from_caption_benchmark", "examples_from_caption_run",
    "examples_from_jsonl", "probe_durations",
]  # fmt: skip


def probe_durations(paths: Iterable[str | os.PathLike[str]]) -> dict[str, float | str]:
    """Each video's probed duration in seconds, or the one-line reason it cannot be read."""
    from vidspan.video import probe

    out: dict[str, float | str] = {}
    for path in dict.fromkeys(str(p) for p in paths):
        try:
            out[path] = probe(path).duration_seconds
        except VidspanError as exc:
            out[path] = str(exc)
    return out


def examples_from_benchmark(
    benchmark: Benchmark[Any], family: Family
) -> tuple[list[TrainExample], list[BadRow]]:
    """Find examples from a loaded grounding benchmark (every ground-truth window of a sample is one).

    Samples whose video was not found, cannot be probed, or whose span does not fit the probed duration
    are returned as :class:`BadRow` with the reason.
    """
    durations = probe_durations(benchmark.video_paths.values())
    examples: list[TrainExample] = []
    bad: list[BadRow] = []
    for sample in benchmark.samples:
        path = benchmark.video_paths.get(sample.video)
        if path is None:
            bad.append(BadRow(sample.id, sample.video, "video not found"))
            continue
        duration = durations[str(path)]
        if isinstance(duration, str):
            bad.append(BadRow(sample.id, str(path), duration))
            continue
        for k, (start, end) in enumerate(sample.gt_spans):
            made = find_example(family, id=sample.id if k == 0 else f"{sample.id}~{k}", video=path,
                                query=sample.query, start=start, end=end, duration=duration,
                                source=benchmark.name)  # fmt: skip
            (examples if isinstance(made, TrainExample) else bad).append(made)
    return examples, bad


def examples_from_caption_benchmark(
    benchmark: Benchmark[Any], family: Family
) -> tuple[list[TrainExample], list[BadRow]]:
    """Reward-only caption rows from a caption benchmark (DREAM-1K, CaReBench): prompt plus reference.

    Their references describe events without times, so they cannot be a Marlin caption answer (inventing
    spans would teach wrong ones). Each sample becomes a caption row with the family's caption prompt, an
    empty answer and its reference caption in the ``reference`` column, which
    :class:`~vidspan.train.rewards.CaptionQualityReward` scores completions against (AutoDQ event F1, the
    metric DREAM-1K itself is scored with): GRPO and preference pairs train on them; SFT skips them.
    """
    durations = probe_durations(benchmark.video_paths.values())
    examples: list[TrainExample] = []
    bad: list[BadRow] = []
    for sample in benchmark.samples:
        path = benchmark.video_paths.get(sample.video)
        if path is None:
            bad.append(BadRow(sample.id, sample.video, "video not found"))
            continue
        duration = durations[str(path)]
        if isinstance(duration, str):
            bad.append(BadRow(sample.id, str(path), duration))
            continue
        if not sample.reference.strip():
            bad.append(BadRow(sample.id, str(path), "the reference caption is empty"))
            continue
        examples.append(TrainExample(id=f"{sample.id}#caption", video=str(path), task="caption",
                                     prompt=family.caption_prompt, answer="", duration=duration,
                                     source=benchmark.name, reference=sample.reference))  # fmt: skip
    return examples, bad


def examples_from_jsonl(
    path: str | os.PathLike[str], family: Family, videos: str | os.PathLike[str] | None = None
) -> tuple[list[TrainExample], list[BadRow]]:
    """Find examples from a JSONL of ``{"video", "start", "end", "text"}`` (``id`` optional).

    Relative video paths are taken from ``videos`` (default: the file's folder). A malformed line is a
    :class:`BadRow` naming its line number and what is wrong, never a crash.

    Raises:
        BenchmarkFormatError: The file cannot be read as text.
    """
    path = Path(path)
    root = Path(videos) if videos is not None else path.parent
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchmarkFormatError(f"Cannot read {path}: {exc}") from None
    rows: list[tuple[str, dict[str, Any]]] = []
    bad: list[BadRow] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path.name}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(BadRow(where, "", f"line {number} is not JSON ({exc.msg})"))
            continue
        missing = [k for k in ("video", "start", "end", "text") if not isinstance(row, dict) or k not in row]
        if missing:
            bad.append(BadRow(where, "", f"line {number} lacks {', '.join(missing)}"))
            continue
        video = Path(str(row["video"]))
        rows.append(
            (str(row.get("id", where)), row | {"video": str(video if video.is_absolute() else root / video)})
        )
    durations = probe_durations(row["video"] for _, row in rows)
    examples: list[TrainExample] = []
    for id_, row in rows:
        duration = durations[row["video"]]
        if isinstance(duration, str):
            bad.append(BadRow(id_, row["video"], duration))
            continue
        made = find_example(family, id=id_, video=row["video"], query=str(row["text"]), start=row["start"],
                            end=row["end"], duration=duration, source=path.name)  # fmt: skip
        (examples if isinstance(made, TrainExample) else bad).append(made)
    return examples, bad


def examples_from_caption_run(
    run_dir: str | os.PathLike[str], family: Family, videos: str | os.PathLike[str]
) -> tuple[list[TrainExample], list[BadRow]]:
    """Caption and find examples from a ``vidspan eval generate-captions`` run (its ``captions.jsonl``).

    Each caption becomes one caption example (canonical ``Scene:``/``Events:`` text) and each of its events
    one find example; videos are looked up under ``videos`` (the benchmark's video folder).
    """
    from vidspan.eval.benchmark import find_video
    from vidspan.eval.captions.candidates import CANDIDATES_FILE
    from vidspan.eval.rundir import read_records
    from vidspan.train.data import caption_answer

    records = read_records(Path(run_dir) / CANDIDATES_FILE)
    paths = {i: find_video(str(r.get("video", "")), videos) for i, r in records.items()}
    durations = probe_durations(p for p in paths.values() if p is not None)
    examples: list[TrainExample] = []
    bad: list[BadRow] = []
    for id_, record in records.items():
        path = paths[id_]
        if path is None:
            bad.append(BadRow(id_, str(record.get("video")), "video not found"))
            continue
        duration = durations[str(path)]
        if isinstance(duration, str):
            bad.append(BadRow(id_, str(path), duration))
            continue
        events = [
            (float(e["start"]), float(e["end"]), str(e["description"])) for e in record.get("events") or []
        ]
        if not events or not record.get("scene"):
            bad.append(BadRow(id_, str(path), "the caption has no scene or no timed events"))
            continue
        answer = caption_answer(record["scene"], events)
        examples.append(TrainExample(id=f"{id_}#caption", video=str(path), task="caption",
                                     prompt=family.caption_prompt, answer=answer, duration=duration,
                                     source=Path(run_dir).name))  # fmt: skip
        for k, (start, end, text) in enumerate(events):
            made = find_example(family, id=f"{id_}#{k}", video=path, query=text, start=start, end=end,
                                duration=duration, source=Path(run_dir).name)  # fmt: skip
            (examples if isinstance(made, TrainExample) else bad).append(made)
    return examples, bad
