"""Teacher annotation (``vidspan annotate``): Scene + Events captions for a folder of videos, checked.

Any model vidspan runs (an OpenAI-compatible server, a local checkpoint) is the teacher. Each answer is
read by the strict caption parser: an answer that breaks the canonical form is asked again (a server
that samples may answer better; a greedy local model gives the same text, so the retries are recorded),
then recorded as failed with the parser's findings. The run is a :class:`~vidspan.eval.rundir.RunDir`
(kind ``annotate``; one record per video in ``annotations.jsonl``), so it resumes and refuses a second
writer or another teacher. Each annotation's events also become find examples
(:func:`examples_from_annotations`), so one teacher pass gives both tasks' training data.

Work in progress for issue [6]: the optional video-aware judge check is not wired yet.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidspan.errors import ParseError, VidspanError
from vidspan.models.base import Family
from vidspan.train.data import BadRow, TrainExample, caption_answer, find_example

__all__ = ["ANNOTATIONS", "AnnotateSummary", "annotate_videos", "examples_from_annotations"]

ANNOTATIONS = "annotations.jsonl"
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov")


@dataclass(frozen=True, slots=True)
class AnnotateSummary:
    """What one annotate session did."""

    directory: Path
    annotated: int
    already_done: int
    failed: int


def annotate_videos(
    videos: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    model: Any,
    out_dir: str | os.PathLike[str],
    *,
    attempts: int = 3,
    **options: Any,
) -> AnnotateSummary:
    """Caption every video (a folder, or a list of files) with the teacher ``model`` into ``out_dir``.

    Args:
        videos: A folder (its video files, sorted) or video paths.
        model: Model name, checkpoint or loaded :class:`VideoModel` (the teacher).
        out_dir: The run directory (``header.json``, ``annotations.jsonl``).
        attempts: Asks per video before its answer is recorded as failed.
        **options: Sampling overrides and model options, as for :func:`vidspan.caption`.

    Raises:
        RunError: ``out_dir`` holds another run or one with another teacher or settings.
    """
    from vidspan.caption import caption
    from vidspan.eval.rundir import RunDir
    from vidspan.windows import SAMPLING_KEYS, load_model

    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValueError(f"Invalid attempts: {attempts!r}. It must be an integer >= 1.")
    paths = _video_paths(videos)
    model_options = {k: v for k, v in options.items() if v is not None and k not in SAMPLING_KEYS}
    sampling = {k: v for k, v in options.items() if v is not None and k in SAMPLING_KEYS}
    vm = load_model(model, **model_options)
    identity = {"teacher": vm.name, "family": vm.family.name, "sampling": sampling, "attempts": attempts}
    annotated = failed = 0
    with RunDir.open(out_dir, "annotate", identity, teacher=vm.name) as run:
        done = run.finished_ids(ANNOTATIONS)
        todo = [p for p in paths if str(p) not in done]
        with run.appending(ANNOTATIONS) as append:
            for path in todo:
                record = _annotate_one(caption, path, vm, attempts, sampling)
                append(record)
                annotated += record["error"] is None
                failed += record["error"] is not None
        run.finish()
    return AnnotateSummary(Path(out_dir), annotated, len(paths) - len(todo), failed)


def _annotate_one(
    caption: Any, path: Path, vm: Any, attempts: int, sampling: dict[str, Any]
) -> dict[str, Any]:
    from vidspan.video import probe

    answers: list[str] = []
    error = None
    for _ in range(attempts):
        try:
            result = caption(path, vm, strict=True, **sampling)
        except ParseError as exc:
            answers.append(exc.raw)
            error = f"the answer breaks the caption format: {'; '.join(exc.violations)}"
            continue
        except VidspanError as exc:  # the video itself: no retry helps
            return {"id": str(path), "video": str(path), "error": str(exc), "attempts": len(answers) + 1}
        return {
            "id": str(path), "video": str(path), "error": None, "attempts": len(answers) + 1,
            "scene": result.scene, "events": [e.to_dict() for e in result.events], "raw": result.raw,
            "rejected": answers, "duration": probe(path).duration_seconds,
        }  # fmt: skip
    return {"id": str(path), "video": str(path), "error": error, "attempts": attempts, "rejected": answers}


def _video_paths(videos: Iterable[str | os.PathLike[str]] | str | os.PathLike[str]) -> list[Path]:
    if isinstance(videos, str | os.PathLike):
        root = Path(videos)
        if root.is_dir():
            return sorted(p for p in root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
        return [root]
    return [Path(v) for v in videos]


def examples_from_annotations(
    out_dir: str | os.PathLike[str], family: Family
) -> tuple[list[TrainExample], list[BadRow]]:
    """Caption examples (the whole annotation) and find examples (one per event) from an annotate run."""
    from vidspan.eval.rundir import read_records

    examples: list[TrainExample] = []
    bad: list[BadRow] = []
    for record in read_records(Path(out_dir) / ANNOTATIONS).values():
        if record.get("error"):
            bad.append(BadRow(record["id"], record["video"], f"teacher failed: {record['error']}"))
            continue
        duration = record.get("duration")
        if not isinstance(duration, int | float):
            bad.append(BadRow(record["id"], record["video"], "no duration recorded"))
            continue
        events = [(float(e["start"]), float(e["end"]), str(e["description"])) for e in record["events"]]
        examples.append(TrainExample(
            id=f"{record['id']}#caption", video=record["video"], task="caption", prompt=family.caption_prompt,
            answer=caption_answer(record["scene"], events), duration=float(duration), source="annotate",
        ))  # fmt: skip
        for k, (start, end, text) in enumerate(events):
            made = find_example(family, id=f"{record['id']}#{k}", video=record["video"], query=text,
                                start=start, end=end, duration=float(duration),
                                source="annotate")  # fmt: skip
            (examples if isinstance(made, TrainExample) else bad).append(made)
    return examples, bad
