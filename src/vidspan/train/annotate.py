"""Teacher annotation (``vidspan annotate``): Scene + Events captions for a folder of videos, checked.

Any model vidspan runs (an OpenAI-compatible server, a local checkpoint) is the teacher. Each answer is
read by the strict caption parser: an answer that breaks the canonical form is asked again (a server
that samples may answer better; a greedy local model gives the same text, so the retries are recorded),
then recorded as failed with the parser's findings. The run is a :class:`~vidspan.eval.rundir.RunDir`
(kind ``annotate``; one record per video in ``annotations.jsonl``), so it resumes and refuses a second
writer or another teacher. Each annotation's events also become find examples
(:func:`examples_from_annotations`), so one teacher pass gives both tasks' training data.

With a ``judge`` (any vidspan judge that sees frames), each accepted caption is checked again against the
video, with the same prompt, validation and consensus as the ground-truth audit (``vidspan eval audit``):
an event every judge run calls ``contradicted`` is dropped from the annotation (``on_contradicted="drop"``,
kept under ``dropped_events``) or kept and listed under ``flagged_events`` (``"flag"``), which the dataset
builder then leaves out of the find examples with the reason. A judge transport failure leaves the video
unfinished (retried on resume); an unusable judge reply keeps the events and records ``check: unscored``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
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
    judge: Any = None,
    judge_runs: int = 1,
    judge_frames: int = 16,
    on_contradicted: str = "drop",
    ray: Any = None,
    **options: Any,
) -> AnnotateSummary:
    """Caption every video (a folder, or a list of files) with the teacher ``model`` into ``out_dir``.

    Args:
        videos: A folder (its video files, sorted) or video paths.
        model: Model name, checkpoint or loaded :class:`VideoModel` (the teacher).
        out_dir: The run directory (``header.json``, ``annotations.jsonl``).
        attempts: Asks per video before its answer is recorded as failed.
        judge: A :class:`~vidspan.judge.base.Judge` that checks each caption's events against the video.
        judge_runs: Independent judge runs per caption; an event counts as contradicted when all agree.
        judge_frames: Frames the judge sees (evenly spaced).
        on_contradicted: ``"drop"`` the contradicted events, or ``"flag"`` them.
        ray: A :class:`~vidspan.scale.RayOptions`: caption on a Ray cluster (the judge checks on the driver).
        **options: Sampling overrides and model options, as for :func:`vidspan.caption`.

    Raises:
        RunError: ``out_dir`` holds another run or one with another teacher or settings.
    """
    from vidspan.caption import caption
    from vidspan.eval.rundir import RunDir
    from vidspan.windows import SAMPLING_KEYS, load_model, prepare

    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValueError(f"Invalid attempts: {attempts!r}. It must be an integer >= 1.")
    paths = _video_paths(videos)
    model_options = {k: v for k, v in options.items() if v is not None and k not in SAMPLING_KEYS}
    sampling = {k: v for k, v in options.items() if v is not None and k in SAMPLING_KEYS}
    if on_contradicted not in ("drop", "flag"):
        raise ValueError(f"Invalid on_contradicted: {on_contradicted!r}. It must be 'drop' or 'flag'.")
    if isinstance(judge_runs, bool) or not isinstance(judge_runs, int) or judge_runs < 1:
        raise ValueError(f"Invalid judge_runs: {judge_runs!r}. It must be an integer >= 1.")
    if ray is None:
        vm = load_model(model, **model_options)
    else:
        vm, settings = prepare(model, None, options, remote=True)
    identity = {"teacher": vm.name, "family": vm.family.name, "sampling": sampling, "attempts": attempts}
    if judge is not None:
        identity["judge"] = {"judge": judge.settings.identity(), "runs": judge_runs, "frames": judge_frames,
                             "on_contradicted": on_contradicted}  # fmt: skip
    check = None if judge is None else _Check(judge, judge_runs, judge_frames, on_contradicted)
    annotated = failed = 0
    with RunDir.open(out_dir, "annotate", identity, teacher=vm.name) as run:
        done = run.finished_ids(ANNOTATIONS)
        todo = [p for p in paths if str(p) not in done]
        with run.appending(ANNOTATIONS) as append:
            if ray is None:
                records = (_annotate_one(caption, path, vm, attempts, sampling) for path in todo)
            else:
                records = _annotate_on_ray(vm, settings, todo, attempts, ray)
            for record in records:
                if check is not None and record["error"] is None:
                    record = check(record)
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


def _annotate_on_ray(
    vm: Any, settings: Any, todo: list[Path], attempts: int, ray: Any
) -> Iterator[dict[str, Any]]:
    """Each video's record from a Ray cluster, as videos finish (asked again in the actor on a bad answer)."""
    from vidspan.scale.captions import caption_videos
    from vidspan.scale.ray import ItemFailed

    job = functools.partial(_annotate_job, attempts)
    for key, record in caption_videos(vm, settings, todo, ray, job=job, strict=True):
        path = todo[key]
        if isinstance(record, ItemFailed):
            record = {"id": str(path), "video": str(path), "error": record.reason, "attempts": 1}
        yield record


def _annotate_job(attempts: int) -> Any:
    """In a model actor: :func:`_annotate_one` over the decoded video's caption."""

    def job(path: Path, run: Any) -> dict[str, Any]:
        return _annotate_one(lambda _path, _vm, strict, **_: run(strict=strict), path, None, attempts, {})

    return job


@dataclass(frozen=True, slots=True)
class _Check:
    """The video-aware judge's pass over one accepted annotation."""

    judge: Any
    runs: int
    frames: int
    on_contradicted: str

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        from vidspan.eval.captions.audit import audit_sample
        from vidspan.eval.captions.judge_frames import video_frames
        from vidspan.eval.captions.samples import CaptionSample

        events = record["events"]
        described = tuple(f"<{e['start']:.1f} - {e['end']:.1f}> {e['description']}" for e in events)
        sample = CaptionSample(id=record["id"], video=record["video"], reference=record["raw"],
                               subset="annotate", events=described)  # fmt: skip
        try:
            frames: Any = video_frames(record["video"], num_frames=self.frames)
        except (VidspanError, OSError, ValueError) as exc:
            frames = f"cannot read video {record['video']}: {exc}"
        audit = audit_sample(sample, self.judge, frames, self.runs)
        if audit.get("error"):  # transport failure or unreadable frames: retried on resume
            return record | {"error": audit["error"]}
        verdicts = audit.get("event_verdicts") or []
        if audit["num_scored_runs"] < self.runs:
            return record | {"check": "unscored", "judge_runs": audit["runs"]}
        bad = [i for i, v in enumerate(verdicts) if v["consensus"] == "contradicted"]
        checked = record | {"check": "judged", "judge_score": audit["mean_score"],
                            "event_verdicts": [v["consensus"] for v in verdicts]}  # fmt: skip
        if self.on_contradicted == "flag":
            return checked | {"flagged_events": bad}
        kept = [e for i, e in enumerate(events) if i not in bad]
        return checked | {"events": kept, "dropped_events": [events[i] for i in bad]}


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
        if not events:
            bad.append(BadRow(record["id"], record["video"], "no events left after the video judge's check"))
            continue
        flagged = set(record.get("flagged_events") or ())
        examples.append(TrainExample(
            id=f"{record['id']}#caption", video=record["video"], task="caption", prompt=family.caption_prompt,
            answer=caption_answer(record["scene"], events), duration=float(duration), source="annotate",
        ))  # fmt: skip
        for k, (start, end, text) in enumerate(events):
            if k in flagged:
                bad.append(BadRow(f"{record['id']}#{k}", record["video"],
                                  f"the video judge called event {k + 1} contradicted: {text}"))  # fmt: skip
                continue
            made = find_example(family, id=f"{record['id']}#{k}", video=record["video"], query=text,
                                start=start, end=end, duration=float(duration),
                                source="annotate")  # fmt: skip
            (examples if isinstance(made, TrainExample) else bad).append(made)
    return examples, bad
