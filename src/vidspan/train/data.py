"""Training sets in a family's exact prompt and answer format, from the annotations vidspan reads.

Every example is one (video, prompt, answer) in the canonical form the family is run with: Marlin's find
prompt and ``From X.X to Y.Y.``, TimeLens' prompt and ``The event happens in X.X - Y.Y seconds.``, or a
``Scene:`` / ``Events:`` caption. Spans are checked against each video's probed duration; a bad row is
reported with its reason, never kept. Splits are by video (no video in two splits) and exact duplicates
are dropped. Writers give TRL conversational JSONL, ms-swift JSONL (``messages`` + ``videos``) and a
Hugging Face ``datasets`` folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from vidspan.models.base import Family

__all__ = [
    "BadRow",
    "TrainExample",
    "caption_answer",
    "find_answer",
    "find_example",
    "split_by_video",
    "summarize",
    "write_swift_jsonl",
    "write_trl_jsonl",
]

Task = Literal["find", "caption"]
DURATION_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0)
"""Upper bounds (seconds) of the duration buckets in summaries; longer videos fall in the last, open one."""


@dataclass(frozen=True, slots=True)
class TrainExample:
    """One training example: a video, the prompt the family is asked, and the canonical answer.

    Attributes:
        id: Stable id (source id, or a digest of video, task and answer).
        video: Path of the video file.
        task: ``"find"`` (one span) or ``"caption"`` (scene and events).
        prompt: The rendered prompt, exactly as the model is asked at inference.
        answer: The canonical answer text.
        duration: The video's probed duration in seconds.
        start, end: The ground-truth span of a find example (seconds), for rewards and selection.
        source: Where the annotation came from (benchmark or file name).
        reference: The reference caption a caption reward scores against (a caption example's own answer
            when empty). A caption example with a reference and no answer is reward-only: GRPO and pairs
            use it, SFT skips it (DREAM-1K's captions have no times, so they cannot be Marlin answers).
    """

    id: str
    video: str
    task: Task
    prompt: str
    answer: str
    duration: float
    start: float | None = None
    end: float | None = None
    source: str = ""
    reference: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class BadRow:
    """An annotation row left out of a training set, and why."""

    id: str
    video: str
    reason: str


def find_answer(family: Family, start: float, end: float) -> str:
    """The family's canonical grounding answer for ``(start, end)``, one decimal as the models write it."""
    if family.output_format == "timelens":
        return f"The event happens in {start:.1f} - {end:.1f} seconds."
    return f"From {start:.1f} to {end:.1f}."


def caption_answer(scene: str, events: Iterable[tuple[float, float, str]]) -> str:
    """A canonical Marlin caption: ``Scene: ...``, ``Events:``, then ``<X.X - Y.Y> description`` lines."""
    lines = [f"Scene: {' '.join(scene.split())}", "Events:"]
    lines += [f"<{s:.1f} - {e:.1f}> {' '.join(text.split())}" for s, e, text in sorted(events)]
    return "\n".join(lines)


def find_example(
    family: Family,
    *,
    id: str,
    video: str | os.PathLike[str],
    query: str,
    start: float,
    end: float,
    duration: float,
    source: str = "",
) -> TrainExample | BadRow:
    """A find example in ``family``'s format, or the :class:`BadRow` saying why the span cannot be used.

    A span must be finite, start at or after 0, end after it starts, and end within the video (up to
    half a frame of slack at 0.05 s); the answer is rounded to one decimal as the models write it.
    """
    video = str(video)
    if not query or not query.strip():
        return BadRow(id, video, "empty query")
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in (start, end, duration)):
        return BadRow(
            id, video, f"span or duration is not a finite number ({start!r}, {end!r}, {duration!r})"
        )
    if start < 0:
        return BadRow(id, video, f"span starts before 0 ({start})")
    if end <= start:
        return BadRow(id, video, f"span ends at or before its start ({start} - {end})")
    if end > duration + 0.05:
        return BadRow(id, video, f"span ends after the video ({end} > {duration:.3f} s)")
    end = min(end, duration)
    return TrainExample(
        id=id, video=video, task="find", prompt=family.render_find_prompt(query),
        answer=find_answer(family, start, end), duration=float(duration), start=float(start),
        end=float(end), source=source,
    )  # fmt: skip


def split_by_video(
    examples: Sequence[TrainExample], fractions: Mapping[str, float], *, seed: int = 0
) -> dict[str, list[TrainExample]]:
    """Split ``examples`` so that no video is in two splits; exact duplicates are dropped first.

    Videos are assigned by a seeded digest of their file name (stable when the set grows, and the same
    on every machine wherever the files are), in proportion to ``fractions`` (``{"train": 0.9, "val":
    0.1}``; normalised). Each path goes to one split, so no video is in two.

    Raises:
        ValueError: No split, or a fraction that is negative, not finite, or all zero.
    """
    if not fractions:
        raise ValueError("Invalid fractions: {}. Name at least one split.")
    for name, value in fractions.items():
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ValueError(f"Invalid fraction for {name!r}: {value!r}. It must be a finite number >= 0.")
    total = float(sum(fractions.values()))
    if total <= 0:
        raise ValueError("Invalid fractions: all zero. At least one must be > 0.")
    bounds, running = [], 0.0
    for name, value in fractions.items():
        running += value / total
        bounds.append((running, name))
    splits: dict[str, list[TrainExample]] = {name: [] for name in fractions}
    seen: set[tuple[str, str, str, str]] = set()
    for example in examples:
        key = (example.video, example.task, example.prompt, example.answer)
        if key in seen:
            continue
        seen.add(key)
        digest = hashlib.sha256(f"{seed}:{Path(example.video).name}".encode()).digest()
        position = int.from_bytes(digest[:8], "big") / 2**64
        name = next((n for bound, n in bounds if position < bound), bounds[-1][1])
        splits[name].append(example)
    return splits


def summarize(splits: Mapping[str, Sequence[TrainExample]], bad: Sequence[BadRow] = ()) -> dict[str, Any]:
    """Counts per split, task and duration bucket, plus the bad rows by reason."""
    out: dict[str, Any] = {"splits": {}, "bad_rows": len(bad), "bad_reasons": {}}
    for name, examples in splits.items():
        tasks: dict[str, int] = {}
        buckets: dict[str, int] = {}
        for example in examples:
            tasks[example.task] = tasks.get(example.task, 0) + 1
            label = _bucket(example.duration)
            buckets[label] = buckets.get(label, 0) + 1
        out["splits"][name] = {
            "examples": len(examples), "videos": len({e.video for e in examples}), "tasks": tasks,
            "duration_buckets": dict(sorted(buckets.items(), key=lambda kv: _bucket_order(kv[0]))),
        }  # fmt: skip
    for row in bad:
        reason = row.reason.split(" (")[0]
        out["bad_reasons"][reason] = out["bad_reasons"].get(reason, 0) + 1
    return out


def _bucket(duration: float) -> str:
    lower = 0.0
    for upper in DURATION_BUCKETS:
        if duration <= upper:
            return f"{lower:g}-{upper:g} s"
        lower = upper
    return f">{DURATION_BUCKETS[-1]:g} s"


def _bucket_order(label: str) -> float:
    return float(label.lstrip(">").split("-")[0].rstrip(" s"))


def write_trl_jsonl(examples: Iterable[TrainExample], path: str | os.PathLike[str]) -> Path:
    """TRL conversational rows: ``messages`` (user: video + text; assistant: text) and its fields."""
    rows = (
        {
            "messages": [
                {"role": "user", "content": [
                    {"type": "video", "path": e.video}, {"type": "text", "text": e.prompt},
                ]},
                {"role": "assistant", "content": [{"type": "text", "text": e.answer}]},
            ],
        } | _columns(e)
        for e in examples
    )  # fmt: skip
    return _write_jsonl(path, rows)


def write_swift_jsonl(examples: Iterable[TrainExample], path: str | os.PathLike[str]) -> Path:
    """ms-swift rows: ``messages`` with a ``<video>`` tag in the user text, and ``videos: [path]``."""
    rows = (
        {
            "messages": [
                {"role": "user", "content": f"<video>{e.prompt}"},
                {"role": "assistant", "content": e.answer},
            ],
            "videos": [e.video],
        } | _columns(e)
        for e in examples
    )  # fmt: skip
    return _write_jsonl(path, rows)


def _columns(example: TrainExample) -> dict[str, Any]:
    """The columns rewards and selection read (``start``, ``end``, ``duration``, ``task``...)."""
    return {
        "id": example.id, "task": example.task, "video": example.video, "start": example.start,
        "end": example.end, "duration": example.duration, "source": example.source,
        "reference": (example.reference or example.answer) if example.task == "caption" else None,
    }  # fmt: skip


def _write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> Path:
    """Write atomically: a crash never leaves a half-written training file in place of a whole one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path
