"""AutoDQ on one sample: facts extracted, entailment asked both ways, optional video verification.

Text-only scores are AutoDQ's (bytedance/tarsier ``evaluate_dream_gpt.py``):

- **recall** = ground-truth facts that the *candidate* caption entails / number of ground-truth facts;
- **precision** = candidate facts that the *reference* caption entails / number of candidate facts;
- only ``entailment`` is a hit (``precision_positive="entailment+neutral"`` also counts ``neutral`` in
  precision); an empty fact list scores ``empty_events_score`` (1.0 as in AutoDQ, or ``None`` = left out).

Ground-truth facts are the annotation's when it has them (DREAM-1K always has events, sometimes an empty
list), else they are extracted from the reference with the same prompt as the candidate's. In compat mode
both captions are lower-cased before judging and double quotes become single quotes for extraction, as
AutoDQ does. Two deliberate differences from Tarsier's code: an empty fact list is scored without asking
the judge (Tarsier still sends the other caption as a pseudo-event and ignores the verdict, so that call
can only make the sample fail), and a blank caption yields no facts without a judge call.

Video-aware scores: the candidate facts are checked against frames of the video (``supported`` /
``contradicted`` / ``not_visible``), so a correct detail the reference lacks is credited:
**video precision** = supported / number of candidate facts. **Video recall** is the text recall (ground
truth checked against the candidate caption): the ground truth is what the video is taken to contain.

Consensus over ``k`` runs: each entailment or verification question is asked ``k`` times
(``JudgeRequest.sample`` = 0..k-1), each fact gets the majority label and a tie goes to the more
conservative label (contradiction before neutral before entailment; contradicted before not_visible
before supported). A question counts once a majority of its ``k`` asks gave a usable reply. Extraction is
asked once (``sample=0``): a list of facts cannot be voted on item by item.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from vidspan.eval.captions.autodq.prompts import (
    ENTAILMENT_LABELS,
    SYSTEM,
    VIDEO_LABELS,
    VIDEO_SYSTEM,
    check_facts,
    check_verdicts,
    entailment_prompt,
    extraction_prompt,
    verification_prompt,
)
from vidspan.eval.captions.samples import CaptionSample
from vidspan.judge.base import Frame, Judge, JudgeError, JudgeRequest, JudgeUnscoredError

logger = logging.getLogger(__name__)

__all__ = ["AutoDQOptions", "Verdict", "score_sample"]

PRECISION_POSITIVE = {"entailment": ("entailment",), "entailment+neutral": ("entailment", "neutral")}
# most conservative first: ties in a consensus vote go to the earliest label here
_CONSERVATIVE = {
    "entailment": ("contradiction", "neutral", "entailment"),
    "video": ("contradicted", "not_visible", "supported"),
}


@dataclass(frozen=True, slots=True)
class AutoDQOptions:
    """The protocol knobs, recorded with every run (defaults: AutoDQ compat mode).

    Attributes:
        empty_events_score: Score of an empty fact list: 1.0 (AutoDQ) or ``None`` (strict: left out of
            that mean; the sample still counts as scored).
        precision_positive: ``"entailment"`` (AutoDQ) or ``"entailment+neutral"`` (not contradicted).
        consensus: Times each entailment / verification question is asked; majority label per fact.
        objects: Also score object facts (CaReBench CapST spatial score).
        lowercase_captions: Lower-case both captions before judging, as AutoDQ does.
        attempts: Asks per question before a reply counts as unusable (``Judge.ask_json``).
        frames_per_video: Frames shown to the video judge.
        frame_max_pixels: Pixel ceiling of each of those frames.
    """

    empty_events_score: float | None = 1.0
    precision_positive: str = "entailment"
    consensus: int = 1
    objects: bool = False
    lowercase_captions: bool = True
    attempts: int = 3
    frames_per_video: int = 16
    frame_max_pixels: int = 448 * 448

    def __post_init__(self) -> None:
        score = self.empty_events_score
        if score is not None and not (
            isinstance(score, int | float)
            and not isinstance(score, bool)
            and math.isfinite(score)
            and 0 <= score <= 1
        ):
            raise ValueError(f"Invalid empty_events_score: {score!r}. It must be a number in [0, 1] or None.")
        if self.precision_positive not in PRECISION_POSITIVE:
            raise ValueError(
                f"Invalid precision_positive: {self.precision_positive!r}. "
                f"It must be one of: {', '.join(PRECISION_POSITIVE)}."
            )
        for name, minimum in (
            ("consensus", 1),
            ("attempts", 1),
            ("frames_per_video", 2),
            ("frame_max_pixels", 32 * 32),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"Invalid {name}: {value!r}. It must be an integer >= {minimum}.")

    @property
    def kinds(self) -> tuple[str, ...]:
        """The fact kinds scored: ``("events",)`` or ``("events", "objects")``."""
        return ("events", "objects") if self.objects else ("events",)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for the run header."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judge's label for one fact, whether it is a hit, its reason and (with consensus) every vote."""

    fact: str
    label: str
    hit: bool
    reason: str
    votes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``votes`` only when there was more than one)."""
        out: dict[str, Any] = {"fact": self.fact, "label": self.label, "hit": self.hit, "reason": self.reason}
        if len(self.votes) > 1:
            out["votes"] = list(self.votes)
        return out


class _Asker:
    """Asks one judge AutoDQ's questions, with consensus, counting verdicts and split votes."""

    def __init__(self, judge: Judge, options: AutoDQOptions):
        self.judge = judge
        self.options = options
        self.verdicts = 0
        self.disagreements = 0

    def facts(self, caption: str, kind: str) -> tuple[str, ...]:
        if not caption.strip():
            return ()
        request = JudgeRequest(extraction_prompt(caption, kind), system=SYSTEM, json_output=True, sample=0)
        return self.judge.ask_json(request, check_facts(kind), attempts=self.options.attempts)

    def entail(self, premise: str, facts: Sequence[str], positive: Sequence[str]) -> list[Verdict]:
        prompt = entailment_prompt(premise, facts)
        return self._vote(
            lambda i: JudgeRequest(prompt, system=SYSTEM, json_output=True, sample=i),
            facts,
            ENTAILMENT_LABELS,
            "relation",
            "entailment",
            positive,
        )

    def verify(self, frames: Sequence[Frame], facts: Sequence[str]) -> list[Verdict]:
        prompt, shown = verification_prompt(facts), tuple(frames)
        return self._vote(
            lambda i: JudgeRequest(prompt, system=VIDEO_SYSTEM, frames=shown, json_output=True, sample=i),
            facts,
            VIDEO_LABELS,
            "verdict",
            "video",
            ("supported",),
        )

    def _vote(
        self,
        request_for: Callable[[int], JudgeRequest],
        facts: Sequence[str],
        labels: Sequence[str],
        label_key: str,
        order: str,
        positive: Sequence[str],
    ) -> list[Verdict]:
        if not facts:
            return []
        k = self.options.consensus
        validate = check_verdicts(len(facts), labels, label_key)
        replies, failures = [], []
        for i in range(k):
            try:
                replies.append(self.judge.ask_json(request_for(i), validate, attempts=self.options.attempts))
            except JudgeUnscoredError as exc:
                failures.append(exc)
        if len(replies) < k // 2 + 1:
            last = failures[-1]
            detail = f" ({len(failures)} of {k} asks failed)" if k > 1 else ""
            raise JudgeUnscoredError(f"{last}{detail}", last.replies)
        verdicts = []
        for j, fact in enumerate(facts):
            votes = tuple(reply[j][0] for reply in replies)
            label = _majority(votes, _CONSERVATIVE[order])
            reason = next(reply[j][1] for reply in replies if reply[j][0] == label)
            verdicts.append(Verdict(fact, label, label in positive, reason, votes))
            self.verdicts += 1
            self.disagreements += len(set(votes)) > 1
        return verdicts


def _majority(votes: Sequence[str], conservative: Sequence[str]) -> str:
    counts = Counter(votes)
    top = max(counts.values())
    return next(label for label in conservative if counts.get(label) == top)


def fact_score(verdicts: Sequence[Verdict], num_facts: int, empty_score: float | None) -> float | None:
    """hits / facts, or ``empty_score`` when there are no facts."""
    if num_facts == 0:
        return empty_score
    return sum(v.hit for v in verdicts) / num_facts


def score_sample(
    sample: CaptionSample,
    candidate: str,
    judge: Judge,
    options: AutoDQOptions,
    *,
    video_judge: Judge | None = None,
    frames: Sequence[Frame] | None = None,
    video_error: str | None = None,
) -> dict[str, Any]:
    """Run AutoDQ (and the video-aware pass) on one sample; the ``samples.jsonl`` record.

    Args:
        sample: The benchmark sample.
        candidate: The candidate caption.
        judge: Text judge for extraction and entailment.
        options: Protocol options.
        video_judge: Judge that sees frames; ``None`` turns the video-aware pass off.
        frames: The video's frames for ``video_judge``.
        video_error: Why there are no frames (missing or unreadable video); the pass is then unscored.

    Returns:
        The record: ``status`` ``"scored"`` or ``"unscored"`` (with ``error``), per kind the GT and
        candidate facts and each pass's verdicts, ``scores`` (``text`` and ``video``), ``video_status``
        (``"scored"``, ``"unscored"`` with ``video_error``, or ``"off"``) and consensus counts.

    Raises:
        JudgeError: A transport failure of the text judge (not an unusable reply); the caller records it.
    """
    asker = _Asker(judge, options)
    record: dict[str, Any] = {
        "id": sample.id,
        "subset": sample.subset,
        "video": sample.video,
        "candidate": candidate,
        "reference": sample.reference,
        "buckets": _bucket_fields(sample),
        "status": "scored",
        "error": None,
    }
    text_scores: dict[str, dict[str, float | None]] = {}
    try:
        for kind in options.kinds:
            record[kind] = part = _text_pass(asker, sample, candidate, kind, options)
            text_scores[kind] = {
                "recall": fact_score(_verdicts(part["recall"]), len(part["gt"]), options.empty_events_score),
                "precision": fact_score(
                    _verdicts(part["precision"]), len(part["candidate"]), options.empty_events_score
                ),
            }
    except JudgeUnscoredError as exc:
        record.update(status="unscored", error=f"unusable judge reply: {exc}", scores=None)
        record["unusable_replies"] = list(exc.replies)
        record.update(video_status="off" if video_judge is None else "unscored", video_error=None)
        record["consensus"] = {"verdicts": asker.verdicts, "disagreements": asker.disagreements}
        return record
    record["scores"] = {"text": text_scores, "video": None}
    record.update(video_status="off", video_error=None)
    video_asker = _Asker(video_judge, options) if video_judge is not None else None
    if video_asker is not None:
        _video_pass(record, video_asker, frames, video_error, text_scores)
    record["consensus"] = {
        "verdicts": asker.verdicts + (video_asker.verdicts if video_asker else 0),
        "disagreements": asker.disagreements + (video_asker.disagreements if video_asker else 0),
    }
    return record


def _text_pass(
    asker: _Asker, sample: CaptionSample, candidate: str, kind: str, options: AutoDQOptions
) -> dict[str, Any]:
    reference_text = _prepare(sample.reference, options)
    candidate_text = _prepare(candidate, options)
    gt = getattr(sample, kind)
    gt_source = "annotation"
    if gt is None:
        gt, gt_source = asker.facts(_for_extraction(reference_text, options), kind), "extracted"
    facts = asker.facts(_for_extraction(candidate_text, options), kind)
    recall = asker.entail(candidate_text, gt, ("entailment",))
    precision = asker.entail(reference_text, facts, PRECISION_POSITIVE[options.precision_positive])
    return {
        "gt": list(gt),
        "gt_source": gt_source,
        "candidate": list(facts),
        "recall": [v.to_dict() for v in recall],
        "precision": [v.to_dict() for v in precision],
        "video": None,
    }


def _video_pass(
    record: dict[str, Any],
    asker: _Asker,
    frames: Sequence[Frame] | None,
    video_error: str | None,
    text_scores: dict[str, dict[str, float | None]],
) -> None:
    """Verify the candidate facts against the frames; a failure leaves the text scores standing."""
    if video_error is not None or not frames:
        record.update(video_status="unscored", video_error=video_error or "no frames to show the video judge")
        return
    video_scores = {}
    try:
        for kind in asker.options.kinds:
            facts = record[kind]["candidate"]
            verdicts = asker.verify(frames, facts)
            record[kind]["video"] = [v.to_dict() for v in verdicts]
            video_scores[kind] = {
                "recall": text_scores[kind]["recall"],
                "precision": fact_score(verdicts, len(facts), asker.options.empty_events_score),
            }
    except JudgeUnscoredError as exc:
        record.update(video_status="unscored", video_error=f"unusable video-judge reply: {exc}")
    except JudgeError as exc:
        record.update(video_status="unscored", video_error=f"video judge failed: {exc}")
    else:
        record["scores"]["video"] = video_scores
        record["video_status"] = "scored"


def _verdicts(items: list[dict[str, Any]]) -> list[Verdict]:
    return [Verdict(i["fact"], i["label"], i["hit"], i["reason"]) for i in items]


def _prepare(caption: str, options: AutoDQOptions) -> str:
    return caption.lower() if options.lowercase_captions else caption


def _for_extraction(caption: str, options: AutoDQOptions) -> str:
    return caption.replace('"', "'") if options.lowercase_captions else caption


def _bucket_fields(sample: CaptionSample) -> dict[str, Any]:
    return {key: sample.extra[key] for key in ("n_subjects", "n_shots", "n_events") if key in sample.extra}
