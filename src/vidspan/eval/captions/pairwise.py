"""Pairwise caption comparison by a video-aware judge, asked in both orders (Balanced Position Calibration).

Judges prefer one position (MT-Bench: GPT-4 agreed with itself on about 65 % of swapped pairs), so each
pair is judged twice: A as caption 1, then B as caption 1. The judge writes its evidence first (errors the
video shows in each caption, what each covers), then ``"winner": "1" | "2" | "tie"``. A win counts only
when it survives the swap:

- A wins in both orders: A wins; B in both: B wins; a tie in both: a tie;
- A in one order and B in the other (position bias): a tie;
- a tie in one order and a win in the other: a tie (the win did not survive the swap).

A pair where either order has no usable reply is unscored, never a tie or a loss.

A comparison is a directory:

- ``header.json``: benchmark, both names, a hash of both caption sets, judge identity, frame settings;
- ``pairs.jsonl``: one line per sample: both captions, each order's reply (evidence, winner, which
  caption that is) or why it is unscored, the outcome (``a`` / ``b`` / ``tie``) and whether the two
  orders agreed; ``error`` when the sample could not be judged (retried on resume);
- ``summary.json``: wins / ties / losses for A overall and per subset, position consistency, the rate at
  which the judge picked the first position, unscored and failed ids, the judge's usage in this call;
- ``report.md``: the same for people, with the decisive and the position-inconsistent pairs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
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
    Progress,
    finish_judge_run,
    judge_samples,
    open_judge_run,
    reply_text,
    usage_since,
)
from vidspan.eval.captions.samples import CaptionBenchmark, CaptionSample
from vidspan.eval.rundir import read_records
from vidspan.judge.base import Frame, Judge, JudgeError, JudgeRequest, JudgeUnscoredError

logger = logging.getLogger(__name__)

PAIRS = "pairs.jsonl"
WINNERS = ("1", "2", "tie")
ORDERS = {"a_first": ("a", "b"), "b_first": ("b", "a")}
"""Each order: which caption is shown as caption 1 and which as caption 2."""
RULE = "a win counts only if the judge picks the same caption in both orders; anything else is a tie"
MAX_LISTED = 200

SYSTEM = (
    "You compare two descriptions of the same video against the video itself. You see frames sampled "
    "evenly from the video, each labelled with its time in seconds. Answer with one JSON object and "
    "nothing else."
)
TASK = """Two captions of this video:

Caption 1:
\"\"\"{caption_1}\"\"\"

Caption 2:
\"\"\"{caption_2}\"\"\"

Which caption describes the video better? Accuracy comes first: a caption that states something the \
video contradicts is worse, however detailed it is. Between equally accurate captions, prefer the more \
complete one (more of who is there, what happens and in what order). Details the frames can neither \
confirm nor refute count neither for nor against a caption. Do not prefer a caption for its length, \
style or position. Answer "tie" when neither is better.

Reply with JSON in exactly this form, keys in this order:
{{
  "caption_1_errors": "<claims in caption 1 that the video contradicts, or none>",
  "caption_2_errors": "<claims in caption 2 that the video contradicts, or none>",
  "completeness": "<what each caption covers or misses>",
  "reason": "<which caption is better and why>",
  "winner": "1" | "2" | "tie"
}}"""
PROMPT_SHA256 = hashlib.sha256(f"{SYSTEM}\n{TASK}".encode()).hexdigest()


def pairwise_prompt(caption_1: str, caption_2: str) -> str:
    """The user prompt for one order (the frames are shown before it)."""
    return TASK.format(caption_1=caption_1, caption_2=caption_2)


def validate_pairwise(value: Any) -> dict[str, Any]:
    """Check one comparison reply; raise ``ValueError`` when it is unusable.

    ``winner`` may be ``"1"``, ``"2"``, ``"tie"``, the numbers 1 and 2, or ``"Caption 1"``-style text.
    """
    if not isinstance(value, dict):
        raise ValueError(f"the reply must be a JSON object, not {type(value).__name__}")
    winner = value.get("winner")
    if isinstance(winner, int) and not isinstance(winner, bool):
        winner = str(winner)
    if isinstance(winner, str):
        winner = winner.strip().lower().removeprefix("caption").strip(" _")
    if winner not in WINNERS:
        raise ValueError(f'"winner" must be "1", "2" or "tie", got {value.get("winner")!r}')
    fields = ("caption_1_errors", "caption_2_errors", "completeness", "reason")
    return {key: reply_text(value, key) for key in fields} | {"winner": winner}


def combine(first: str, second: str) -> str:
    """The outcome of a pair from the caption each order chose (``a``, ``b`` or ``tie``)."""
    return first if first == second else "tie"


@dataclass(frozen=True, slots=True)
class PairwiseRun:
    """A finished (or partly finished) comparison: its directory, header and summary."""

    directory: Path
    header: dict[str, Any]
    summary: dict[str, Any]

    def pairs(self) -> dict[str, dict[str, Any]]:
        """``pairs.jsonl`` as ``{sample id: record}``."""
        return read_records(self.directory / PAIRS)


def compare_captions(
    benchmark: CaptionBenchmark,
    captions_a: Mapping[str, str],
    captions_b: Mapping[str, str],
    judge: Judge,
    *,
    out_dir: str | os.PathLike[str],
    name_a: str,
    name_b: str,
    num_frames: int = DEFAULT_NUM_FRAMES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_workers: int = 1,
    progress: Progress | None = None,
) -> PairwiseRun:
    """Compare two caption sets on every sample that has both, in both orders (resuming ``out_dir``).

    Args:
        benchmark: The benchmark with its video paths.
        captions_a: ``{sample id: caption}`` of system A (e.g. from ``load_candidates``).
        captions_b: The same for system B.
        judge: A video-aware judge.
        out_dir: The comparison directory (created, or resumed when it holds one with the same settings).
        name_a: Name of system A in the summary and report.
        name_b: Name of system B.
        num_frames: Frames shown per video.
        max_pixels: Pixel ceiling per frame.
        max_workers: Samples judged at once (threads; the judge must allow it, as ``CachedJudge`` does).
        progress: ``progress(done, total, message)`` callback.

    Returns:
        The comparison with its summary (totals are for A: wins, ties, losses).

    Raises:
        RunError: ``out_dir`` holds another run or a comparison made with other settings or captions.
    """
    for what, name in (("name_a", name_a), ("name_b", name_b)):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"Invalid {what}: {name!r}. It must be a non-empty string.")
    if name_a == name_b:
        raise ValueError(f"Invalid name_b: {name_b!r}. It must differ from name_a.")
    check_frame_settings(num_frames, max_pixels)
    directory = Path(out_dir)
    both = [s for s in benchmark.samples if s.id in captions_a and s.id in captions_b]
    captions = json.dumps([{s.id: [captions_a[s.id], captions_b[s.id]]} for s in both], ensure_ascii=False)
    identity = {
        "kind": "caption-pairwise", "benchmark": benchmark.name, "annotations": str(benchmark.annotations),
        "name_a": name_a, "name_b": name_b, "captions_sha256": hashlib.sha256(captions.encode()).hexdigest(),
        "judge": judge.settings.identity(), "num_frames": num_frames, "max_pixels": max_pixels,
        "jpeg_quality": JPEG_QUALITY, "prompt_sha256": PROMPT_SHA256,
    }  # fmt: skip
    with open_judge_run(directory, identity, benchmark, judge, name_a=name_a, name_b=name_b, rule=RULE,
                        num_pairs=len(both)) as run:  # fmt: skip
        done = run.finished_ids(PAIRS)
        todo = [s for s in both if s.id not in done]
        logger.info("%s: %d of %d pairs to compare", directory, len(todo), len(both))
        usage = judge.usage.to_dict()

        def work(sample: CaptionSample) -> dict[str, Any]:
            frames = sample_frames(benchmark, sample, num_frames, max_pixels)
            return _compare_one(sample, captions_a[sample.id], captions_b[sample.id], judge, frames)

        judge_samples(todo, work, run.path(PAIRS), total=len(both), max_workers=max_workers,
                      progress=progress)  # fmt: skip
        records = run.records(PAIRS)
        summary = summarize_pairs(records, both, name_a, name_b)
        summary["missing_a"] = [s.id for s in benchmark.samples if s.id not in captions_a]
        summary["missing_b"] = [s.id for s in benchmark.samples if s.id not in captions_b]
        summary["judge_usage"] = usage_since(usage, judge.usage.to_dict())
        finish_judge_run(run, summary, render_pairwise_report(run.header, summary, records))
        return PairwiseRun(directory, run.header, summary)


def _compare_one(
    sample: CaptionSample, caption_a: str, caption_b: str, judge: Judge, frames: tuple[Frame, ...] | str
) -> dict[str, Any]:
    record: dict[str, Any] = {"id": sample.id, "video": sample.video, "subset": sample.subset,
                              "caption_a": caption_a, "caption_b": caption_b}  # fmt: skip
    if isinstance(frames, str):
        return record | {"error": frames}
    text = {"a": caption_a, "b": caption_b}
    orders: dict[str, dict[str, Any]] = {}
    for order, (first, second) in ORDERS.items():
        request = JudgeRequest(pairwise_prompt(text[first], text[second]), system=SYSTEM, frames=frames)
        try:
            verdict = judge.ask_json(request, validate_pairwise)
        except JudgeUnscoredError as exc:
            orders[order] = {"unscored": str(exc), "replies": list(exc.replies)}
            continue
        except JudgeError as exc:  # transport failure: not a verdict, so the pair is retried on resume
            logger.warning("judge failed on %s: %s", sample.id, exc)
            return record | {"error": f"judge failed: {exc}"}
        orders[order] = verdict | {"chosen": {"1": first, "2": second, "tie": "tie"}[verdict["winner"]]}
    picks = [o["chosen"] for o in orders.values() if "chosen" in o]
    scored = len(picks) == len(ORDERS)
    return record | {
        "frames_seconds": [f.seconds for f in frames],
        "orders": orders,
        "outcome": combine(*picks) if scored else None,
        "position_consistent": picks[0] == picks[1] if scored else None,
    }


# -- summary and report -------------------------------------------------------------------------------


def summarize_pairs(
    records: dict[str, dict[str, Any]], samples: list[CaptionSample], name_a: str, name_b: str
) -> dict[str, Any]:
    """Totals for A overall and per subset, position consistency, unscored and failed ids."""
    items = [records[s.id] for s in samples if s.id in records]
    subsets: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        subsets.setdefault(item["subset"], []).append(item)
    overall = _tally(items)
    sentence = (
        f"{name_a} vs {name_b}: {overall['wins']} wins, {overall['ties']} ties, {overall['losses']} losses "
        f"for {name_a} over {overall['num_scored']} videos ({RULE}); the judge gave the same verdict in both "
        f"orders on {_pct(overall['position_consistency'])} of them."
    )
    if overall["num_unscored"] or overall["num_failed"]:
        sentence += (
            f" Not counted: {overall['num_unscored']} unscored (no usable judge reply in an order) and "
            f"{overall['num_failed']} failed (missing video or judge error)."
        )
    return {
        "name_a": name_a,
        "name_b": name_b,
        "rule": RULE,
        "sentence": sentence,
        "overall": overall,
        "per_subset": {name: _tally(group) for name, group in sorted(subsets.items())},
        "not_run_ids": [s.id for s in samples if s.id not in records],
        "unscored_ids": [r["id"] for r in items if not r.get("error") and r["outcome"] is None],
        "failed_ids": [r["id"] for r in items if r.get("error")],
    }


def _tally(items: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in items if not r.get("error")]
    scored = [r for r in ok if r["outcome"] is not None]
    n = len(scored)
    wins, ties, losses = (sum(r["outcome"] == o for r in scored) for o in ("a", "tie", "b"))
    raw = [o["winner"] for r in ok for o in r["orders"].values() if o.get("winner") in ("1", "2")]
    chosen = [[o["chosen"] for o in r["orders"].values()] for r in scored]
    return {
        "num_pairs": len(items),
        "num_scored": n,
        "num_unscored": len(ok) - n,
        "num_failed": len(items) - len(ok),
        "wins": wins,
        "ties": ties,
        "losses": losses,
        "win_rate": wins / n if n else None,
        "loss_rate": losses / n if n else None,
        "score": (wins + ties / 2) / n if n else None,
        "position_consistency": sum(r["position_consistent"] for r in scored) / n if n else None,
        "num_flipped": sum(set(c) == {"a", "b"} for c in chosen),
        "num_win_and_tie": sum("tie" in c and len(set(c)) == 2 for c in chosen),
        "first_position_rate": raw.count("1") / len(raw) if raw else None,
    }


def render_pairwise_report(header: dict[str, Any], summary: dict[str, Any], records: dict[str, dict]) -> str:
    """``report.md``: settings, the rule, totals overall and per subset, decisive and flipped pairs."""
    ident, a, b = header["identity"], summary["name_a"], summary["name_b"]
    lines = [
        f"# {a} vs {b} on {header['benchmark']}", "",
        f"Judge `{header['judge']}` (temperature {ident['judge'].get('temperature')}, seed "
        f"{ident['judge'].get('seed')}), {ident['num_frames']} frames per video; every pair asked in both "
        f"orders. Rule: {RULE} (one order's tie and the other's win is a tie).", "",
        f"**{summary['sentence']}**", "",
        f"| subset | pairs | {a} wins | ties | {b} wins | {a} score | both orders agree | "
        "picked position 1 | unscored | failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for name, t in [*summary["per_subset"].items(), ("**all**", summary["overall"])]:
        lines.append(
            f"| {name} | {t['num_pairs']} | {t['wins']} | {t['ties']} | {t['losses']} | {_num(t['score'])} | "
            f"{_pct(t['position_consistency'])} | {_pct(t['first_position_rate'])} | {t['num_unscored']} | "
            f"{t['num_failed']} |"
        )
    items = [r for r in records.values() if not r.get("error")]
    decisive = [r for r in items if r["outcome"] in ("a", "b")]
    flipped = [r for r in items if r["outcome"] == "tie" and not r["position_consistent"]]
    lines += ["", f"## Decisive pairs ({len(decisive)})", ""]
    for r in decisive[:MAX_LISTED]:
        reason = r["orders"]["a_first"]["reason"]
        lines.append(
            f"- `{r['id']}` ({r['subset']}): {_name(r['outcome'], a, b)}. With {a} as caption 1: {reason}"
        )
    lines += ["", f"## Verdict changed with the order ({len(flipped)}, counted as ties)"]
    lines += [""] if flipped else []
    for r in flipped[:MAX_LISTED]:
        picks = ", ".join(f"{order}: {_name(o['chosen'], a, b)}" for order, o in r["orders"].items())
        lines.append(f"- `{r['id']}` ({r['subset']}): {picks}")
    lines += [
        "",
        f"## Unscored ({len(summary['unscored_ids'])}) and failed ({len(summary['failed_ids'])})",
        "",
    ]
    for r in records.values():
        if r.get("error"):
            lines.append(f"- `{r['id']}` failed: {r['error']}")
        elif r["outcome"] is None:
            bad = [order for order, o in r["orders"].items() if "unscored" in o]
            lines.append(f"- `{r['id']}` unscored in {', '.join(bad)}")
    missing_a, missing_b = len(summary.get("missing_a", [])), len(summary.get("missing_b", []))
    if missing_a or missing_b:
        lines += ["", f"Not compared: {missing_a} samples without a caption from {a}, "
                      f"{missing_b} without one from {b}."]  # fmt: skip
    return "\n".join(lines) + "\n"


def _name(chosen: str, a: str, b: str) -> str:
    return {"a": a, "b": b}.get(chosen, "tie")


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"
