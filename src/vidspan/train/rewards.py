"""Rewards for GRPO and preference scoring: temporal IoU, answer format, and weighted sums of them.

Each reward is a callable with TRL's reward-function signature, ``reward(prompts, completions, **columns)
-> list[float]``, where ``columns`` are the dataset's other columns (lists aligned with ``completions``).
A completion is the model's text or a conversational list (``[{"role": "assistant", "content": ...}]``).
A completion that cannot be read gets the documented floor (:data:`FLOOR`, 0.0), never an exception, so
one bad rollout cannot stop a training step. Each reward has a ``__name__`` (TRL logs rewards by name).

>>> iou = TemporalIoUReward()
>>> iou(["p"], ["From 2.0 to 4.0."], start=[2.0], end=[6.0])
[0.5]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from vidspan.errors import ParseError
from vidspan.eval.grounding.metrics import temporal_iou
from vidspan.parse import OUTPUT_FORMATS, parse_caption, parse_span

__all__ = [
    "FLOOR", "CaptionQualityReward", "FormatReward", "TemporalIoUReward", "WeightedReward", "completion_text",
]  # fmt: skip

FLOOR = 0.0
"""The reward of a completion that cannot be read (no span, a broken caption, not text)."""


def completion_text(completion: Any) -> str | None:
    """The text of one completion: a string, or the last assistant message's content (text parts joined)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, Sequence):
            parts = [p.get("text") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
            return "".join(parts) if parts else None
    return None


def _column(columns: dict[str, Any], name: str, n: int) -> list[Any]:
    value = columns.get(name)
    if value is None:
        return [None] * n
    if isinstance(value, str) or not isinstance(value, Sequence):
        return [value] * n
    if len(value) != n:
        raise ValueError(
            f"Invalid column {name!r}: {len(value)} values. It must have one per completion ({n})."
        )
    return list(value)


class TemporalIoUReward:
    """IoU of the span a grounding answer names with the ground truth (``start``, ``end`` columns).

    The answer is read with the lenient parser of ``output_format`` (``"marlin"``: ``From X to Y.``,
    ``"timelens"``); a ``duration`` column bounds it as at evaluation. No span: :data:`FLOOR`.

    Args:
        output_format: The family's answer format (a key of :data:`vidspan.parse.OUTPUT_FORMATS`).
    """

    def __init__(self, output_format: str = "marlin"):
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(
                f"Invalid output_format: {output_format!r}. It must be one of: {', '.join(OUTPUT_FORMATS)}."
            )
        self.output_format = output_format
        self.__name__ = "temporal_iou"

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
        n = len(completions)
        starts, ends = _column(columns, "start", n), _column(columns, "end", n)
        durations = _column(columns, "duration", n)
        rewards = []
        for completion, start, end, duration in zip(completions, starts, ends, durations, strict=True):
            rewards.append(self.score(completion, start, end, duration))
        return rewards

    def score(self, completion: Any, start: Any, end: Any, duration: Any = None) -> float:
        """The reward of one completion against ``(start, end)``."""
        text = completion_text(completion)
        if text is None or not _finite(start) or not _finite(end):
            return FLOOR
        bound = float(duration) if _finite(duration) and float(duration) > 0 else None
        span = parse_span(text, output_format=self.output_format, duration_seconds=bound).span
        if span is None:
            return FLOOR
        return float(temporal_iou(span.to_tuple(), (float(start), float(end))))


class FormatReward:
    """1.0 when the completion is exactly the family's canonical form, else :data:`FLOOR`.

    The strict parser decides: a grounding answer (``task`` column ``"find"``, the default) must be the
    family's canonical sentence with a well-formed span; a caption (``task`` ``"caption"``) must be
    ``Scene:`` + ``Events:`` with ``<X.X - Y.Y>`` lines and nothing to correct.
    """

    def __init__(self, output_format: str = "marlin"):
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(
                f"Invalid output_format: {output_format!r}. It must be one of: {', '.join(OUTPUT_FORMATS)}."
            )
        self.output_format = output_format
        self.__name__ = "format"

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
        tasks = _column(columns, "task", len(completions))
        return [self.score(c, task or "find") for c, task in zip(completions, tasks, strict=True)]

    def score(self, completion: Any, task: str = "find") -> float:
        """1.0 or :data:`FLOOR` for one completion."""
        text = completion_text(completion)
        if text is None:
            return FLOOR
        try:
            if task == "caption":
                parsed = parse_caption(text, strict=True)
                return 1.0 if parsed.events else FLOOR
            return 1.0 if parse_span(text, output_format=self.output_format, strict=True).span else FLOOR
        except ParseError:
            return FLOOR


class CaptionQualityReward:
    """AutoDQ event F1 of a caption against the ``reference`` column, scored by a judge.

    The judge extracts events from both captions and checks each against the other, exactly as
    :func:`vidspan.eval.captions.autodq.scoring.score_sample` does for evaluation (with its cache, so a
    completion seen again costs nothing). An unscored reply or a judge transport failure gives :data:`FLOOR`
    (counted in ``unscored``), never an exception.

    Args:
        judge: A :class:`~vidspan.judge.base.Judge` (``vidspan.judge.get_judge("openai:MODEL")``).
        options: AutoDQ options (default: the AutoDQ protocol).
    """

    def __init__(self, judge: Any, options: Any = None):
        from vidspan.eval.captions.autodq.scoring import AutoDQOptions

        self.judge = judge
        self.options = options if options is not None else AutoDQOptions()
        self.unscored = 0
        self.__name__ = "caption_f1"

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
        references = _column(columns, "reference", len(completions))
        return [self.score(c, r) for c, r in zip(completions, references, strict=True)]

    def score(self, completion: Any, reference: Any) -> float:
        """The event F1 of one completion against one reference caption."""
        from vidspan.errors import JudgeError
        from vidspan.eval.captions.autodq.scoring import score_sample
        from vidspan.eval.captions.samples import CaptionSample

        text = completion_text(completion)
        if not text or not isinstance(reference, str) or not reference.strip():
            return FLOOR
        sample = CaptionSample(id="reward", video="", reference=reference, subset="train")
        try:
            record = score_sample(sample, text, self.judge, self.options)
        except JudgeError:
            self.unscored += 1
            return FLOOR
        scores = (record.get("scores") or {}).get("text", {}).get("events")
        if record["status"] != "scored" or not scores:
            self.unscored += 1
            return FLOOR
        recall, precision = scores.get("recall"), scores.get("precision")
        if not _finite(recall) or not _finite(precision) or recall + precision == 0:
            return FLOOR
        return float(2 * recall * precision / (recall + precision))


class WeightedReward:
    """``sum(weight * reward)`` of several rewards, one value per completion.

    Args:
        parts: ``(reward, weight)`` pairs; weights must be finite and not all zero.
        name: The combined reward's ``__name__``.
    """

    def __init__(self, *parts: tuple[Any, float], name: str = "weighted"):
        if not parts:
            raise ValueError("Invalid parts: none. WeightedReward needs at least one (reward, weight) pair.")
        for reward, weight in parts:
            if not callable(reward):
                raise ValueError(f"Invalid reward: {reward!r}. It must be callable.")
            if not _finite(weight):
                raise ValueError(f"Invalid weight: {weight!r}. It must be a finite number.")
        if all(float(w) == 0 for _, w in parts):
            raise ValueError("Invalid weights: all zero. At least one must be non-zero.")
        self.parts = tuple((reward, float(weight)) for reward, weight in parts)
        self.__name__ = name

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
        total = [0.0] * len(completions)
        for reward, weight in self.parts:
            values = reward(prompts, completions, **columns)
            for i, value in enumerate(values):
                total[i] += weight * (float(value) if _finite(value) else FLOOR)
        return total


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


REWARD_COLUMNS = ("start", "end", "duration", "task", "reference")
"""The training-row columns handed to reward functions as keyword lists (as TRL passes extra columns)."""


def score_group(reward_funcs: Sequence[Any], row: dict[str, Any], completions: Sequence[str]) -> list[float]:
    """The summed rewards of ``completions`` to one training row's prompt (each row column repeated)."""
    columns = {k: [row.get(k)] * len(completions) for k in REWARD_COLUMNS}
    total = [0.0] * len(completions)
    for reward in reward_funcs:
        for i, value in enumerate(reward([row["prompt"]] * len(completions), list(completions), **columns)):
            total[i] += float(value) if _finite(value) else FLOOR
    return total
