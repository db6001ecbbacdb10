"""``report.md`` of a caption-evaluation run: text-only AutoDQ and video-aware scores side by side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["render_report"]

_KIND_TITLES = {"events": "Action events", "objects": "Objects (CapST spatial)"}
_MAX_LISTED = 50


def render_report(header: dict[str, Any], metrics: dict[str, Any], records: Sequence[dict[str, Any]]) -> str:
    """The Markdown report of a run (settings, score tables, buckets, failures, judge usage)."""
    options = header["options"]
    video = header.get("video_judge") is not None
    lines = [f"# Caption evaluation: {header['benchmark']['name']} (AutoDQ)", ""]
    lines += _settings(header, options)
    for kind, tables in metrics["scores"].items():
        lines += ["", f"## {_KIND_TITLES.get(kind, kind)}", ""]
        lines += _score_table(tables["text"], tables.get("video"))
    if video:
        lines += [
            "",
            "Video-aware precision checks the candidate's facts against the video frames (so a correct "
            "detail the reference omits counts); video-aware recall is the text-only recall.",
        ]
    for mode, buckets in metrics.get("buckets", {}).items():
        if buckets:
            lines += ["", f"## Buckets ({'text-only' if mode == 'text' else 'video-aware'}, action events)"]
            for field, table in buckets.items():
                lines += ["", f"### {field}", ""] + _bucket_table(table)
    if video:
        lines += _video_credits(records)
    lines += _failures(metrics)
    lines += _consensus_and_usage(metrics)
    return "\n".join(lines) + "\n"


def _settings(header: dict[str, Any], options: dict[str, Any]) -> list[str]:
    judge = header["judge"]
    video_judge = header.get("video_judge")
    rows = [
        ("Benchmark", f"{header['benchmark']['name']} ({header['benchmark']['num_samples']} samples)"),
        ("Judge", _judge_text(judge)),
        ("Video judge", _judge_text(video_judge) if video_judge else "off"),
        ("Precision hits", options["precision_positive"]),
        (
            "Empty fact list scores",
            "left out" if options["empty_events_score"] is None else f"{options['empty_events_score']:g}",
        ),
        ("Consensus", f"{options['consensus']} ask(s) per question, majority vote"),
        (
            "Frames for the video judge",
            f"{options['frames_per_video']}, <= {options['frame_max_pixels']} px each",
        ),
        ("vidspan", header.get("vidspan_version", "?")),
    ]
    return ["| Setting | Value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]


def _judge_text(identity: dict[str, Any]) -> str:
    seed = identity.get("seed")
    return (
        f"{identity.get('backend')}:{identity.get('model')} (temperature {identity.get('temperature')}"
        + (f", seed {seed}" if seed is not None else "")
        + ")"
    )


def _score_table(text: dict[str, Any], video: dict[str, Any] | None) -> list[str]:
    head = "| Subset | F1 | Recall | Precision | Success | Failed |"
    rule = "|---|---:|---:|---:|---:|---:|"
    if video is not None:
        head = (
            "| Subset | F1 | Recall | Precision | Video F1 | Video precision | Success | Failed "
            "| Video success |"
        )
        rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    lines = [head, rule]
    names = [*text["subsets"], "OVERALL"]
    for name in names:
        row = text["overall"] if name == "OVERALL" else text["subsets"][name]
        cells = [name, _pct(row["f1"]), _pct(row["recall"]), _pct(row["precision"])]
        if video is not None:
            vrow = video["overall"] if name == "OVERALL" else video["subsets"].get(name, {})
            cells += [_pct(vrow.get("f1")), _pct(vrow.get("precision"))]
        cells += [str(row["success"]), str(row["failed"])]
        if video is not None:
            cells.append(str(vrow.get("success", 0)))
        lines.append("| " + " | ".join(f"**{c}**" if name == "OVERALL" else c for c in cells) + " |")
    return lines


def _bucket_table(table: dict[str, Any]) -> list[str]:
    labels = list(table)
    lines = ["| Score | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    for key, title in (("recall", "Recall"), ("precision", "Precision"), ("f1", "F1")):
        lines.append(f"| {title} | " + " | ".join(_pct(table[b][key]) for b in labels) + " |")
    lines.append("| Count | " + " | ".join(str(table[b]["count"]) for b in labels) + " |")
    return lines


def _video_credits(records: Sequence[dict[str, Any]]) -> list[str]:
    """Samples where the video judge supports candidate facts the reference does not entail."""
    rows = []
    for record in records:
        part = record.get("events") or {}
        if record.get("video_status") != "scored" or not part.get("video"):
            continue
        credited = [
            t["fact"]
            for t, v in zip(part["precision"], part["video"], strict=True)
            if not t["hit"] and v["hit"]
        ]
        if credited:
            scores = record["scores"]
            rows.append(
                (
                    len(credited),
                    record["id"],
                    scores["text"]["events"]["precision"],
                    scores["video"]["events"]["precision"],
                    credited,
                )
            )
    if not rows:
        return []
    rows.sort(key=lambda r: -r[0])
    lines = [
        "",
        "## Details the video supports but the reference does not entail",
        "",
        f"Samples: {len(rows)}. The {min(len(rows), 20)} with the most such events:",
        "",
        "| Sample | Text precision | Video precision | Events credited by the video |",
        "|---|---:|---:|---|",
    ]
    for _, sample_id, text_p, video_p, credited in rows[:20]:
        lines.append(
            f"| {sample_id} | {_pct(text_p)} | {_pct(video_p)} | {'; '.join(_cell(c) for c in credited)} |"
        )
    return lines


def _failures(metrics: dict[str, Any]) -> list[str]:
    lines = []
    unscored = metrics["unscored"]
    if unscored:
        lines += [
            "",
            f"## Unscored samples ({len(unscored)}): excluded from the scores, counted as failed",
            "",
        ]
        lines += [
            f"- `{u['id']}` ({u['subset']}): {_cell(u['reason'] or '')}" for u in unscored[:_MAX_LISTED]
        ]
        if len(unscored) > _MAX_LISTED:
            lines.append(f"- ... and {len(unscored) - _MAX_LISTED} more (see metrics.json)")
    video_unscored = metrics["video_unscored"]
    if video_unscored:
        lines += ["", f"## Video-aware pass not scored ({len(video_unscored)}): text-only scores kept", ""]
        lines += [
            f"- `{u['id']}` (video `{u['video']}`): {_cell(u['reason'] or '')}"
            for u in video_unscored[:_MAX_LISTED]
        ]
        if len(video_unscored) > _MAX_LISTED:
            lines.append(f"- ... and {len(video_unscored) - _MAX_LISTED} more (see metrics.json)")
    missing = metrics.get("missing_videos") or []
    if missing:
        lines += [
            "",
            f"Videos not found ({len(missing)}): "
            + ", ".join(f"`{m}`" for m in missing[:_MAX_LISTED])
            + (" ..." if len(missing) > _MAX_LISTED else ""),
        ]
    excluded = metrics["counts"].get("excluded", 0)
    if excluded:
        lines += ["", f"{excluded} samples were excluded on request (not judged, not counted)."]
    return lines


def _consensus_and_usage(metrics: dict[str, Any]) -> list[str]:
    lines = ["", "## Judge", ""]
    consensus = metrics["consensus"]
    if consensus["k"] > 1:
        rate = consensus["disagreement_rate"]
        lines.append(
            f"- Consensus over {consensus['k']} asks: {consensus['disagreements']} of "
            f"{consensus['verdicts']} verdicts split ({_pct(rate)} %)."
        )
    for name, usage in (metrics.get("judge_usage") or {}).items():
        if not usage:
            continue
        cost = f"${usage.get('cost_usd', 0):.4f}"
        if usage.get("calls_without_price"):
            cost += f" (+ {usage['calls_without_price']} calls without a known price)"
        lines.append(
            f"- {name.replace('_', ' ')}: {usage.get('calls', 0)} calls ({usage.get('cached_calls', 0)} "
            f"from the cache), {usage.get('prompt_tokens', 0)} prompt + "
            f"{usage.get('completion_tokens', 0)} completion tokens, estimated cost {cost}."
        )
    return lines


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")
