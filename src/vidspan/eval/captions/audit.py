"""Ground-truth audit: a video-aware judge checks every reference caption (and its events) against the video.

Text-only caption metrics trust the reference; this pass asks how far the reference can be trusted. For
each sample the judge sees evenly spaced frames, the reference caption and the reference events, and
answers (evidence before verdicts) with factual findings, a verdict per event and a 0-10 factual score.
The same question is asked ``runs`` times (independent samples); only what all runs agree on counts as
consensus. Replies that stay unusable are recorded as unscored, never as a score.

An audit is a directory:

- ``header.json``: benchmark, judge identity and settings, runs, frame settings, prompt hash, versions;
- ``items.jsonl``: one line per sample: every run's findings, event verdicts and score (or why it is
  unscored, with the judge's replies), mean and min score, ``consensus_error`` (every run found an error),
  ``consensus_major`` (every run scored <= 5), per-event consensus verdicts and the disagreement rate;
  ``error`` when the sample could not be judged (missing video, judge down; retried on resume);
- ``summary.json``: counts overall and per subset, the summary sentence, unscored and failed ids, and
  the judge's usage (calls, tokens, cost) during this call;
- ``report.md``: the same for people, with the flagged references and their findings.

Running again in the same directory resumes: finished items are kept, failed ones retried.
:func:`load_audit` reads a directory back to exclude references or correct their events.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vidspan.eval.captions.judge_frames import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_NUM_FRAMES,
    JPEG_QUALITY,
    check_frame_settings,
    sample_frames,
)
from vidspan.eval.captions.judge_runs import (
    HEADER,
    Progress,
    finish_judge_run,
    judge_samples,
    open_judge_run,
    reply_label,
    reply_text,
    usage_since,
)
from vidspan.eval.captions.samples import CaptionBenchmark, CaptionSample
from vidspan.eval.rundir import RunError, read_records
from vidspan.judge.base import Frame, Judge, JudgeError, JudgeRequest, JudgeUnscoredError

logger = logging.getLogger(__name__)

ITEMS = "items.jsonl"
MAJOR_SCORE = 5.0
"""A run that scores a reference at or below this marks a major error."""
SEVERITIES = ("minor", "major")
VERDICTS = ("supported", "contradicted", "not_visible")
MAX_LISTED = 200
"""Most references listed per section of ``report.md`` (``items.jsonl`` has them all)."""

SYSTEM = (
    "You check video descriptions against the video itself. You see frames sampled evenly from the video, "
    "each labelled with its time in seconds. Judge only what the frames show: a detail the frames can "
    "neither confirm nor refute is not an error. Answer with one JSON object and nothing else."
)
TASK = """Reference caption of this video:
\"\"\"{reference}\"\"\"
{events}
Check the reference caption against the video.
1. Describe briefly what the frames show (who, what they do, where).
2. List every factual error in the reference caption. Quote the wrong claim exactly as the reference words \
it, say what is wrong and what the video shows instead. Severity "major" when the error changes what \
happens (wrong action, subject, object, count or order of events), "minor" for a small inaccuracy (a \
slightly wrong colour, posture or manner). List nothing when the caption is correct.
{event_task}Last, give the caption a factual score from 0 (mostly wrong) to 10 (fully correct).

Reply with JSON in exactly this form, keys in this order:
{schema}"""
EVENT_TASK = """3. For each numbered reference event, give the reason first, then the verdict: "supported" \
(the frames show it), "contradicted" (the frames show something else) or "not_visible" (the frames \
cannot confirm it).
"""
SCHEMA = """{{
  "observations": "<what the frames show>",
  "findings": [
    {{"claim": "<words quoted from the reference>", "problem": "<what is wrong>",
     "video_shows": "<what the video shows instead>", "severity": "minor" | "major"}}
  ],{events}
  "score_reason": "<why this score>",
  "score": <number from 0 to 10>
}}"""
EVENT_SCHEMA = """
  "events": [
    {"index": <event number>, "reason": "<what the frames show about it>",
     "verdict": "supported" | "contradicted" | "not_visible"}
  ],"""
PROMPT_SHA256 = hashlib.sha256(
    "\n".join((SYSTEM, TASK, EVENT_TASK, SCHEMA, EVENT_SCHEMA)).encode()
).hexdigest()


def audit_prompt(sample: CaptionSample) -> str:
    """The user prompt for one sample (the frames are shown before it)."""
    events = ""
    if sample.events:
        listed = "\n".join(f"{i}. {event}" for i, event in enumerate(sample.events, 1))
        events = f"\nReference events of this video:\n{listed}\n"
    return TASK.format(
        reference=sample.reference, events=events, event_task=EVENT_TASK if sample.events else "",
        schema=SCHEMA.format(events=EVENT_SCHEMA if sample.events else ""),
    )  # fmt: skip


def validate_audit(value: Any, num_events: int) -> dict[str, Any]:
    """Check one audit reply and normalise it; raise ``ValueError`` when it is unusable."""
    if not isinstance(value, dict):
        raise ValueError(f"the reply must be a JSON object, not {type(value).__name__}")
    findings = value.get("findings")
    if not isinstance(findings, list):
        raise ValueError('"findings" must be a list (empty when the caption is correct)')
    checked = []
    for item in findings:
        if not isinstance(item, dict):
            raise ValueError("every finding must be an object")
        claim, problem = reply_text(item, "claim", required=True), reply_text(item, "problem", required=True)
        severity = reply_label(item.get("severity"), SEVERITIES, "severity")
        checked.append({"claim": claim, "problem": problem, "video_shows": reply_text(item, "video_shows"),
                        "severity": severity})  # fmt: skip
    return {
        "observations": reply_text(value, "observations"),
        "findings": checked,
        "events": _validate_events(value.get("events"), num_events),
        "score_reason": reply_text(value, "score_reason"),
        "score": _score(value.get("score")),
    }


def _validate_events(events: Any, num_events: int) -> list[dict[str, Any]]:
    if num_events == 0:
        if events not in (None, []):
            raise ValueError('"events" must be empty: this sample has no reference events')
        return []
    if not isinstance(events, list) or len(events) != num_events:
        got = len(events) if isinstance(events, list) else type(events).__name__
        raise ValueError(f'"events" must list all {num_events} reference events, got {got}')
    by_index: dict[int, dict[str, Any]] = {}
    for position, item in enumerate(events, 1):
        if not isinstance(item, dict):
            raise ValueError("every event verdict must be an object")
        index = item.get("index", position)
        if isinstance(index, str) and index.strip().isdigit():
            index = int(index)
        if not isinstance(index, int) or isinstance(index, bool) or not 1 <= index <= num_events:
            raise ValueError(f'event "index" must be 1..{num_events}, got {index!r}')
        if index in by_index:
            raise ValueError(f"event {index} has two verdicts")
        by_index[index] = {"index": index, "reason": reply_text(item, "reason"),
                           "verdict": reply_label(item.get("verdict"), VERDICTS, "verdict")}  # fmt: skip
    return [by_index[i] for i in range(1, num_events + 1)]


def _score(value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 10:
        raise ValueError(f'"score" must be a number from 0 to 10, got {value!r}')
    return float(value)


# -- running ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditRun:
    """A finished (or partly finished) audit: its directory, header and summary."""

    directory: Path
    header: dict[str, Any]
    summary: dict[str, Any]

    def load(self) -> Audit:
        """The audit's items, for :meth:`Audit.excluded_ids` and :meth:`Audit.corrected_events`."""
        return load_audit(self.directory)


def audit_references(
    benchmark: CaptionBenchmark,
    judge: Judge,
    *,
    out_dir: str | os.PathLike[str],
    runs: int = 3,
    num_frames: int = DEFAULT_NUM_FRAMES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_workers: int = 1,
    progress: Progress | None = None,
) -> AuditRun:
    """Audit every reference caption of ``benchmark`` with a video-aware judge (resuming ``out_dir``).

    Args:
        benchmark: The benchmark with its video paths.
        judge: A video-aware judge.
        out_dir: The audit directory (created, or resumed when it holds an audit with the same settings).
        runs: Independent judge samples per reference (``JudgeRequest.sample`` 0..runs-1).
        num_frames: Frames shown per video.
        max_pixels: Pixel ceiling per frame.
        max_workers: References judged at once (threads; the judge must allow it, as ``CachedJudge`` does).
        progress: ``progress(done, total, message)`` callback.

    Returns:
        The audit with its summary.

    Raises:
        RunError: ``out_dir`` holds another run or an audit made with other settings.
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"Invalid runs: {runs!r}. It must be an integer >= 1.")
    check_frame_settings(num_frames, max_pixels)
    directory = Path(out_dir)
    identity = {
        "kind": "caption-audit", "benchmark": benchmark.name, "annotations": str(benchmark.annotations),
        "judge": judge.settings.identity(), "runs": runs, "num_frames": num_frames, "max_pixels": max_pixels,
        "jpeg_quality": JPEG_QUALITY, "prompt_sha256": PROMPT_SHA256,
    }  # fmt: skip
    with open_judge_run(directory, identity, benchmark, judge) as run:
        done = run.finished_ids(ITEMS)
        todo = [s for s in benchmark.samples if s.id not in done]
        logger.info("%s: %d of %d references to audit", directory, len(todo), len(benchmark.samples))
        usage = judge.usage.to_dict()

        def work(sample: CaptionSample) -> dict[str, Any]:
            return audit_sample(sample, judge, sample_frames(benchmark, sample, num_frames, max_pixels), runs)

        judge_samples(todo, work, run.path(ITEMS), total=len(benchmark.samples), max_workers=max_workers,
                      progress=progress)  # fmt: skip
        records = run.records(ITEMS)
        summary = summarize_audit(records, [s.id for s in benchmark.samples], runs)
        summary["judge_usage"] = usage_since(usage, judge.usage.to_dict())
        finish_judge_run(run, summary, render_audit_report(run.header, summary, records))
        return AuditRun(directory, run.header, summary)


def audit_sample(sample: CaptionSample, judge: Judge, frames: tuple[Frame, ...] | str, runs: int) -> dict:
    """One sample's audit record: every run's verdicts and their consensus, or ``error`` (retry it).

    ``frames`` are the judge frames of the sample's video, or why there are none.
    """
    events = list(sample.events) if sample.events is not None else None
    record: dict[str, Any] = {"id": sample.id, "video": sample.video, "subset": sample.subset,
                              "reference": sample.reference, "events": events}  # fmt: skip
    if isinstance(frames, str):
        return record | {"error": frames}
    request = JudgeRequest(audit_prompt(sample), system=SYSTEM, frames=frames, json_output=True)
    num_events = len(sample.events or ())
    results = []
    for i in range(runs):
        try:
            value = judge.ask_json(replace(request, sample=i), lambda v: validate_audit(v, num_events))
            results.append({"sample": i} | value)
        except JudgeUnscoredError as exc:
            results.append({"sample": i, "unscored": str(exc), "replies": list(exc.replies)})
        except JudgeError as exc:  # transport failure: not a verdict, so the item is retried on resume
            logger.warning("judge failed on %s: %s", sample.id, exc)
            return record | {"error": f"judge failed: {exc}"}
    record |= {"frames_seconds": [f.seconds for f in frames], "runs": results}
    return record | consensus(results, sample.events, runs)


def consensus(results: list[dict[str, Any]], events: Iterable[str] | None, runs: int) -> dict[str, Any]:
    """Scores and consensus flags of one item; flags need every run scored (else ``None``)."""
    scored = [r for r in results if "score" in r]
    scores = [r["score"] for r in scored]
    complete = len(scored) == runs
    out: dict[str, Any] = {
        "num_scored_runs": len(scored),
        "scores": scores,
        "mean_score": statistics.fmean(scores) if scores else None,
        "min_score": min(scores) if scores else None,
        "num_findings": [len(r["findings"]) for r in scored],
        "num_major_findings": [sum(f["severity"] == "major" for f in r["findings"]) for r in scored],
        "consensus_error": all(r["findings"] for r in scored) if complete else None,
        "consensus_major": all(s <= MAJOR_SCORE for s in scores) if complete else None,
        "event_verdicts": None,
        "event_disagreement_rate": None,
    }
    if events is not None:
        verdicts = []
        for j, event in enumerate(events):
            seen = [r["events"][j]["verdict"] for r in scored]
            agreed = complete and len(set(seen)) == 1
            verdicts.append({"event": event, "verdicts": seen, "consensus": seen[0] if agreed else None})
        out["event_verdicts"] = verdicts
        if complete and verdicts:
            out["event_disagreement_rate"] = sum(v["consensus"] is None for v in verdicts) / len(verdicts)
    return out


# -- summary and report -------------------------------------------------------------------------------


def summarize_audit(records: dict[str, dict[str, Any]], sample_ids: list[str], runs: int) -> dict[str, Any]:
    """Counts overall and per subset, the summary sentence, and the unscored and failed ids."""
    items = [records[i] for i in sample_ids if i in records]
    subsets: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        subsets.setdefault(item["subset"], []).append(item)
    overall = _tally(items, runs)
    return {
        "runs": runs,
        "major_score": MAJOR_SCORE,
        "sentence": _sentence(overall, runs),
        "overall": overall,
        "per_subset": {name: _tally(group, runs) for name, group in sorted(subsets.items())},
        "not_run_ids": [i for i in sample_ids if i not in records],
        "unscored_ids": [r["id"] for r in items if not r.get("error") and r["num_scored_runs"] < runs],
        "failed_ids": [r["id"] for r in items if r.get("error")],
    }


def _tally(items: list[dict[str, Any]], runs: int) -> dict[str, Any]:
    ok = [r for r in items if not r.get("error")]
    full = [r for r in ok if r["num_scored_runs"] == runs]
    events = [v for r in full for v in (r["event_verdicts"] or [])]
    means = [r["mean_score"] for r in ok if r["mean_score"] is not None]
    n_error = sum(bool(r["consensus_error"]) for r in full)
    n_major = sum(bool(r["consensus_major"]) for r in full)
    return {
        "num_items": len(items),
        "num_scored": len(full),
        "num_partly_scored": sum(0 < r["num_scored_runs"] < runs for r in ok),
        "num_unscored": sum(r["num_scored_runs"] == 0 for r in ok),
        "num_failed": len(items) - len(ok),
        "num_consensus_error": n_error,
        "num_consensus_major": n_major,
        "consensus_error_rate": _rate(n_error, len(full)),
        "consensus_major_rate": _rate(n_major, len(full)),
        "mean_score": statistics.fmean(means) if means else None,
        "num_events": len(events),
        "event_disagreement_rate": _rate(sum(v["consensus"] is None for v in events), len(events)),
        "event_consensus": {v: sum(e["consensus"] == v for e in events) for v in VERDICTS},
    }


def _sentence(t: dict[str, Any], runs: int) -> str:
    text = (
        f"{t['num_consensus_error']} of {t['num_scored']} references have at least one factual error "
        f"(in all {runs} runs); {t['num_consensus_major']} have major errors "
        f"(score ≤ {MAJOR_SCORE:g} in all runs)."
    )
    unscored = t["num_partly_scored"] + t["num_unscored"]
    if unscored or t["num_failed"]:
        text += (
            f" Not counted: {unscored} unscored ({t['num_unscored']} with no usable judge reply, "
            f"{t['num_partly_scored']} with some runs unusable) and {t['num_failed']} failed "
            "(missing video or judge error); none is scored as 0."
        )
    return text


def render_audit_report(header: dict[str, Any], summary: dict[str, Any], records: dict[str, dict]) -> str:
    """``report.md``: settings, the summary sentence, per-subset table, flagged references, failures."""
    ident = header["identity"]
    judge = ident["judge"]
    lines = [
        f"# Ground-truth audit: {header['benchmark']}", "",
        f"Judge `{header['judge']}` (temperature {judge.get('temperature')}, seed {judge.get('seed')}), "
        f"{ident['runs']} runs, {ident['num_frames']} frames per video "
        f"(at most {ident['max_pixels']} px each).",
        "", f"**{summary['sentence']}**", "",
        "| subset | references | scored | error in all runs | major (all runs) | mean score | "
        "event disagreement | unscored | failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    rows = list(summary["per_subset"].items()) + [("**all**", summary["overall"])]
    for name, t in rows:
        lines.append(
            f"| {name} | {t['num_items']} | {t['num_scored']} | {t['num_consensus_error']} | "
            f"{t['num_consensus_major']} | {_num(t['mean_score'])} | {_pct(t['event_disagreement_rate'])} | "
            f"{t['num_partly_scored'] + t['num_unscored']} | {t['num_failed']} |"
        )
    items = list(records.values())
    major = [r for r in items if r.get("consensus_major")]
    minor = [r for r in items if r.get("consensus_error") and not r.get("consensus_major")]
    for title, group in (("Major errors (every run scored ≤ 5)", major),
                         ("Factual errors found in every run", minor)):  # fmt: skip
        lines += ["", f"## {title} ({len(group)})"]
        for r in group[:MAX_LISTED]:
            lines += _item_lines(r)
        if len(group) > MAX_LISTED:
            lines += ["", f"... {len(group) - MAX_LISTED} more in {ITEMS}."]
    contradicted = [(r["id"], v["event"]) for r in items for v in r.get("event_verdicts") or []
                    if v["consensus"] == "contradicted"]  # fmt: skip
    lines += ["", f"## Reference events contradicted in every run ({len(contradicted)})", ""]
    lines += [f"- `{i}`: {event}" for i, event in contradicted[:MAX_LISTED]]
    runs, unscored, failed = ident["runs"], summary["unscored_ids"], summary["failed_ids"]
    lines += ["", f"## Unscored ({len(unscored)}) and failed ({len(failed)})", ""]
    for r in items:
        if r.get("error"):
            lines.append(f"- `{r['id']}` failed: {r['error']}")
        elif r["num_scored_runs"] < runs:
            lines.append(f"- `{r['id']}` unscored in {runs - r['num_scored_runs']} of {runs} runs")
    return "\n".join(lines) + "\n"


def _item_lines(r: dict[str, Any]) -> list[str]:
    scores = ", ".join(f"{s:g}" for s in r["scores"])
    lines = [
        "",
        f"### `{r['id']}` ({r['subset']}): scores {scores}",
        "",
        f"> {' '.join(r['reference'][:600].split())}",
        "",
    ]
    for run in r["runs"]:
        for f in run.get("findings", []):
            shows = f" (video: {f['video_shows']})" if f["video_shows"] else ""
            lines.append(f'- run {run["sample"] + 1}, {f["severity"]}: "{f["claim"]}": {f["problem"]}{shows}')
    return lines


def _rate(count: int, total: int) -> float | None:
    return count / total if total else None


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


# -- reading an audit back ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Audit:
    """An audit read back from its directory: ``items`` maps sample id to its ``items.jsonl`` record."""

    directory: Path
    header: dict[str, Any]
    items: dict[str, dict[str, Any]]

    @property
    def runs(self) -> int:
        """Judge runs per reference."""
        return int(self.header["identity"]["runs"])

    def excluded_ids(self, min_score: float = MAJOR_SCORE, require_consensus: bool = True) -> set[str]:
        """Ids of references to leave out of an evaluation because the video contradicts them.

        Args:
            min_score: A reference scored at or below this is excluded.
            require_consensus: Exclude only when every run scored it at or below ``min_score`` (and every
                run was scored); otherwise the mean over the scored runs decides.

        Returns:
            Sample ids. Unscored and failed items are never excluded.
        """
        out = set()
        for sample_id, r in self.items.items():
            if r.get("error") or not r.get("scores"):
                continue
            if require_consensus:
                if r["num_scored_runs"] == self.runs and max(r["scores"]) <= min_score:
                    out.add(sample_id)
            elif r["mean_score"] <= min_score:
                out.add(sample_id)
        return out

    def corrected_events(self, sample_id: str) -> tuple[str, ...] | None:
        """The reference events of a sample without those every run found contradicted by the video.

        Returns ``None`` when the sample has no reference events or was not audited (failed or missing).
        """
        r = self.items.get(sample_id)
        if r is None or r.get("error") or r.get("events") is None:
            return None
        verdicts = r.get("event_verdicts") or []
        contradicted = {i for i, v in enumerate(verdicts) if v["consensus"] == "contradicted"}
        return tuple(e for i, e in enumerate(r["events"]) if i not in contradicted)


def load_audit(out_dir: str | os.PathLike[str]) -> Audit:
    """Read an audit directory written by :func:`audit_references`.

    Raises:
        RunError: The directory holds no audit.
    """
    directory = Path(out_dir)
    try:
        header = json.loads((directory / HEADER).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(f"Cannot read the audit in {directory}: {exc}") from exc
    if header.get("kind") != "caption-audit":
        raise RunError(f"{directory} holds a {header.get('kind')!r} run, not a caption audit.")
    return Audit(directory, header, read_records(directory / ITEMS))
