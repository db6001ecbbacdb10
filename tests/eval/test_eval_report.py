"""Run reports, published reference rows and comparisons, on run directories built by hand."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from vidspan.errors import MissingDependencyError, VidspanError
from vidspan.eval.grounding.compare import compare
from vidspan.eval.grounding.published import (
    MARLIN_PART_1,
    METRIC_NAMES,
    PUBLISHED_BENCHMARKS,
    TIMELENS_TABLE_1,
    ReferenceRow,
    reference_rows,
)
from vidspan.eval.grounding.report import (
    RunFormatError,
    load_run,
    plot_run,
    run_markdown,
    write_reports,
)

needs_matplotlib = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None, reason="charts need matplotlib (vidspan[eval])"
)


def _block(r3, r5, r7, miou, n, unparsed=0):
    return {
        "R1@0.3": r3,
        "R1@0.5": r5,
        "R1@0.7": r7,
        "mIoU": miou,
        "num_samples": n,
        "num_unparsed": unparsed,
        "parse_failure_rate": 100.0 * unparsed / n,
    }


def make_run(
    root: Path,
    name: str = "run-a",
    *,
    model: str = "marlin-2b",
    benchmark: str = "charades-timelens",
    lenient: dict | None = None,
    strict: dict | None = None,
    round_to_seconds: bool = False,
    missing: tuple[str, ...] = (),
) -> Path:
    """A grounding run directory in the runner's format: header.json, samples.jsonl, metrics.json."""
    lenient = lenient or {
        "charades": _block(61.234, 45.06, 20.0, 42.449, 80, 12),
        "all": _block(61.234, 45.06, 20.0, 42.449, 80, 12),
    }
    if strict is None:  # strict parsing: every metric × 0.8, a tenth more of the samples unparsed
        strict = {
            subset: _block(
                *(b[m] * 0.8 for m in METRIC_NAMES),
                b["num_samples"],
                b["num_unparsed"] + b["num_samples"] // 10,
            )
            for subset, b in lenient.items()
        }
    run_dir = root / name
    run_dir.mkdir(parents=True)
    header = {
        "format_version": 1,
        "kind": "grounding",
        "benchmark": benchmark,
        "annotations": "/data/charades-timelens.json",
        "videos": "/data/videos/charades",
        "model": model,
        "settings": {
            "fps": 2.0,
            "max_frames": 240,
            "max_pixels": 151200,
            "prompt": "Find the event " * 20,
            "max_new_tokens": 128,
        },
        "round_to_seconds": round_to_seconds,
        "versions": {"vidspan": "0.1.0", "transformers": "5.23.0", "torch": "2.13.0"},
        "started_at": "2026-06-01T10:00:00+00:00",
        "finished_at": "2026-06-01T11:00:00+00:00",
    }
    (run_dir / "header.json").write_text(json.dumps(header))
    sample = {
        "id": "3MSZA#0",
        "video": "3MSZA",
        "query": "a person opens a door",
        "gt_spans": [[25, 30]],
        "subset": "charades",
        "raw": "25.0 - 30.0",
        "span": [25.0, 30.0],
        "span_strict": [25.0, 30.0],
        "format_ok": True,
        "iou": 1.0,
        "iou_strict": 1.0,
        "error": None,
    }
    (run_dir / "samples.jsonl").write_text(json.dumps(sample) + "\n")
    metrics = {
        "benchmark": benchmark,
        "model": model,
        "round_to_seconds": round_to_seconds,
        "lenient": lenient,
        "strict": strict,
        "missing_videos": list(missing),
        "num_missing_videos": len(missing),
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return run_dir


def _timelens_run(root: Path, name: str, mious: tuple[float, float, float], **kwargs) -> Path:
    lenient = {
        subset: _block(miou + 20, miou + 5, miou - 15, miou, 100, 5)
        for subset, miou in zip(("charades", "activitynet", "qvhighlights"), mious, strict=True)
    }
    lenient["all"] = _block(60.0, 45.0, 30.0, sum(mious) / 3, 300, 15)
    return make_run(root, name, benchmark="timelens", lenient=lenient, **kwargs)


def _assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width > 300 and image.height > 200


# --- reference rows ---------------------------------------------------------------------------------------


def test_table_1_has_every_row_with_its_source():
    table = [r for r in reference_rows() if r.source == TIMELENS_TABLE_1]
    assert len(table) == 54
    assert len({r.model for r in table}) == 18
    for bench in PUBLISHED_BENCHMARKS[:3]:
        assert sum(r.benchmark == bench for r in table) == 18
    assert all(tuple(r.metrics) == METRIC_NAMES for r in table)
    assert all(r.source.strip() for r in reference_rows())


@pytest.mark.parametrize(
    ("model", "bench", "values"),
    [
        ("TimeLens-8B", "charades-timelens", (76.6, 63.0, 35.2, 55.2)),
        ("TimeLens-8B", "qvhighlights-timelens", (80.2, 71.6, 55.5, 65.5)),
        ("GPT-5", "activitynet-timelens", (57.4, 44.9, 30.4, 42.9)),
        ("TimeSuite", "activitynet-timelens", (27.1, 17.5, 8.6, 19.8)),
        ("TimeLens-3B", "charades-timelens", (63.5, 48.1, 23.9, 43.3)),
        ("TimeLens-7B", "charades-sta", (70.7, 39.8, 14.5, 42.3)),
        ("Marlin-2B GRPO (cp-450)", "charades-timelens", (70.71, 55.63, 30.60, 50.05)),
        ("Marlin-2B GRPO (cp-450)", "qvhighlights-timelens", (69.05, 58.21, 44.06, 55.50)),
        ("Marlin-2B SFT (cp-11894)", "activitynet-timelens", (54.76, 45.27, 29.84, 42.10)),
        ("Marlin-2B SFT (cp-11894)", "qvhighlights-timelens", (65.41, 54.57, 41.79, 52.46)),
    ],
)
def test_reference_spot_values(model, bench, values):
    (row,) = [r for r in reference_rows(bench) if r.model == model]
    assert tuple(row.metrics[name] for name in METRIC_NAMES) == values


def test_other_numbers_and_filtering():
    assert len(reference_rows()) == 54 + 3 + 6 + 2
    marlin = [r for r in reference_rows() if r.model.startswith("Marlin-2B")]
    assert {r.source for r in marlin} == {MARLIN_PART_1} and len(marlin) == 6
    sta = reference_rows("charades-sta")
    assert [r.model for r in sta] == ["TimeLens-7B", "Qwen2.5-VL-7B"]
    assert "Qwen2.5-VL report" in sta[1].note
    # anything not from the TimeLens paper names its publication
    assert all("arXiv 2512.14698" in r.source or r.source == MARLIN_PART_1 for r in reference_rows())
    with pytest.raises(ValueError, match="Invalid benchmark: 'charades'"):
        reference_rows("charades")


def test_reference_row_keeps_only_published_metrics():
    row = ReferenceRow("Some-2B", "charades-timelens", {"mIoU": 40.0}, "https://example.org/post")
    assert row.metric("mIoU") == 40.0 and row.metric("R1@0.3") is None
    with pytest.raises(ValueError, match="Invalid metric names"):
        ReferenceRow("X", "charades-timelens", {"R1@0.9": 1.0}, "src")
    with pytest.raises(ValueError, match="Invalid source"):
        ReferenceRow("X", "charades-timelens", {"mIoU": 1.0}, " ")
    with pytest.raises(ValueError, match="percentage"):
        ReferenceRow("X", "charades-timelens", {"mIoU": 0.4 * 1000}, "src")


# --- one run ----------------------------------------------------------------------------------------------


def test_load_run(tmp_path):
    run = load_run(make_run(tmp_path, missing=("AAAAA", "BBBBB")))
    assert (run.model, run.benchmark, run.round_to_seconds) == ("marlin-2b", "charades-timelens", False)
    assert run.subsets == ("charades", "all")
    assert run.num_missing_videos == 2
    assert run.scores("strict", "charades")["num_unparsed"] == 20


def test_run_markdown_tables(tmp_path):
    md = run_markdown(load_run(make_run(tmp_path, missing=("AAAAA",))))
    assert "## Lenient parsing" in md and "## Strict parsing" in md
    lenient, strict = md.split("## Strict parsing")
    assert "| charades | 61.2 | 45.1 | 20.0 | 42.4 | 80 | 12 | 15.0 |" in lenient
    assert "| **all** | 61.2 | 45.1 | 20.0 | 42.4 | 80 | 12 | 15.0 |" in lenient
    # strict = lenient × 0.8: 48.987 / 36.048 / 16.0 / 33.959, 20 of 80 unparsed
    assert "| charades | 49.0 | 36.0 | 16.0 | 34.0 | 80 | 20 | 25.0 |" in strict
    assert "| **all** | 49.0 | 36.0 | 16.0 | 34.0 | 80 | 20 | 25.0 |" in strict
    assert "`fps=2.0`" in md and "`max_frames=240`" in md and "`max_pixels=151200`" in md
    assert "transformers 5.23.0" in md and "`marlin-2b`" in md
    assert "rounded to whole seconds: **no**" in md and "not directly comparable" in md
    assert "Missing videos: **1** (`AAAAA`)" in md
    assert "…" in md  # the long prompt is shortened


def test_run_markdown_has_a_row_per_subset(tmp_path):
    run = load_run(_timelens_run(tmp_path, "tl", (40.0, 30.0, 50.0), round_to_seconds=True))
    md = run_markdown(run)
    for subset in ("charades", "activitynet", "qvhighlights", "**all**"):
        assert md.count(f"| {subset} |") == 2  # lenient and strict
    assert "rounded to whole seconds: **yes**" in md and "not directly comparable" not in md


@needs_matplotlib
def test_plot_run_writes_a_png_atomically(tmp_path):
    run_dir = _timelens_run(tmp_path, "tl", (40.0, 30.0, 50.0))
    out = plot_run(load_run(run_dir), tmp_path / "charts" / "run.png")
    _assert_png(out)
    assert [p.name for p in out.parent.iterdir()] == ["run.png"]  # no temporary file left


@needs_matplotlib
def test_write_reports(tmp_path):
    run_dir = make_run(tmp_path)
    md_path, png_path = write_reports(run_dir)
    assert (md_path, png_path) == (run_dir / "report.md", run_dir / "report.png")
    assert md_path.read_text() == run_markdown(load_run(run_dir))
    _assert_png(png_path)
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "header.json",
        "metrics.json",
        "report.md",
        "report.png",
        "samples.jsonl",
    ]


def test_charts_without_matplotlib_say_how_to_install(tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    run_dir = make_run(tmp_path)
    with pytest.raises(MissingDependencyError, match=r"pip install 'vidspan\[eval\]'"):
        write_reports(run_dir)
    assert (run_dir / "report.md").is_file() and not (run_dir / "report.png").exists()
    with pytest.raises(MissingDependencyError, match="Charts need matplotlib"):
        compare([run_dir]).plot(tmp_path / "c.png")


# --- broken run directories -------------------------------------------------------------------------------


def _break(run_dir: Path, name: str, text: str | None) -> None:
    path = run_dir / name
    if text is None:
        path.unlink()
    else:
        path.write_text(text)


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("header.json", None, r"header\.json: the file is missing"),
        ("metrics.json", None, r"metrics\.json: the file is missing"),
        ("metrics.json", '{"lenient": ', r"metrics\.json: invalid JSON at line 1"),
        ("header.json", "[1, 2]", r"header\.json: expected a JSON object, got list"),
        ("header.json", json.dumps({"format_version": 1, "kind": "caption"}), r"kind is 'caption'"),
        ("header.json", json.dumps({"format_version": 2, "kind": "grounding"}), r"format_version 2"),
        ("metrics.json", json.dumps({"lenient": {}, "strict": {}}), r"metrics\.json: no 'lenient' metrics"),
        (
            "metrics.json",
            json.dumps({"lenient": {"charades": {"R1@0.3": 1.0}}, "strict": {}}),
            r"lenient\.charades\.R1@0\.5 is missing or not a number",
        ),
    ],
)
def test_broken_run_directories_name_the_file(tmp_path, name, text, match):
    run_dir = make_run(tmp_path)
    _break(run_dir, name, text)
    with pytest.raises(RunFormatError, match=match) as info:
        load_run(run_dir)
    assert isinstance(info.value, VidspanError)
    assert Path(info.value.path).name == name


def test_unfinished_run_without_metrics(tmp_path):
    run_dir = make_run(tmp_path)
    header = json.loads((run_dir / "header.json").read_text()) | {"finished_at": None}
    (run_dir / "header.json").write_text(json.dumps(header))
    (run_dir / "metrics.json").unlink()
    with pytest.raises(RunFormatError, match="may not have been scored yet"):
        load_run(run_dir)
    with pytest.raises(RunFormatError, match="no such directory"):
        load_run(tmp_path / "nope")


# --- comparison -------------------------------------------------------------------------------------------


def _data_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("| ") and line[2].isdigit()]


def test_compare_one_subset_sorts_runs_among_published_rows(tmp_path):
    low = make_run(
        tmp_path,
        "low",
        model="marlin-2b",
        lenient={"charades": _block(60.0, 40.0, 20.0, 50.0, 10), "all": _block(60, 40, 20, 50, 10)},
    )
    high = make_run(
        tmp_path,
        "high",
        model="other-7b",
        round_to_seconds=True,
        lenient={
            "charades": _block(80.0, 70.0, 40.0, 60.0, 10, 1),
            "all": _block(80.0, 70.0, 40.0, 60.0, 10, 1),
        },
    )
    comparison = compare([low, high])
    assert comparison.columns == ("charades-timelens",)
    labels = [row.label for row in comparison.rows]
    assert len(labels) == 2 + 18 + 1 + 2  # two runs, Table 1, TimeLens-3B, Marlin-2B's SFT and GRPO rows
    assert labels[:2] == ["other-7b (`high`, rounded)", "TimeLens-8B"]  # 60.0 > 55.2
    # Gemini-2.5-Pro 52.8 > Marlin-2B GRPO 50.05 > this run's 50.0
    grpo = labels.index("Marlin-2B GRPO (cp-450)")
    assert grpo == labels.index("Gemini-2.5-Pro") + 1
    assert labels.index("marlin-2b (`low`, unrounded)") == grpo + 1
    mious = [row.mean_miou(comparison.columns) for row in comparison.rows]
    assert mious == sorted(mious, reverse=True)

    md = comparison.markdown
    rows = _data_rows(md)
    assert len(rows) == 23
    assert rows[0].startswith(
        "| 1 | **other-7b (`high`, rounded)** | vidspan run | 80.0 / 70.0 / 40.0 / 60.0 |"
    )
    assert rows[0].endswith("| 48.0 | 10.0 / 20.0 |")  # strict mIoU 60 × 0.8; 1 and 2 of 10 unparsed
    assert rows[1] == "| 2 | TimeLens-8B | published [1] | 76.6 / 63.0 / 35.2 / 55.2 | – | – |"
    assert "[1] Published: TimeLens paper (arXiv 2512.14698) Table 1." in md
    assert "TimeLens-3B (not in Table 1)" in md
    assert 'Building Marlin-2B, Part 1" (2026-05-26), Appendix A' in md  # the Marlin rows' source
    (sft,) = [line for line in rows if "Marlin-2B SFT (cp-11894)" in line]
    assert "| 65.24 / 50.25 / 27.0 / 45.73 |" in sft  # as published (27.00 shows as 27.0)
    assert "not directly comparable" in md  # the unrounded run


def test_compare_timelens_subsets_uses_the_mean(tmp_path):
    run_dir = _timelens_run(tmp_path, "tl", (50.0, 40.0, 60.0))
    comparison = compare([run_dir])
    assert comparison.columns == PUBLISHED_BENCHMARKS[:3]
    md = comparison.markdown
    assert "| Charades-TimeLens | ActivityNet-TimeLens | QVHighlights-TimeLens | mean mIoU |" in md
    (tl8,) = [line for line in _data_rows(md) if "| TimeLens-8B |" in line]
    assert "| 58.0 |" in tl8  # (55.2 + 53.2 + 65.5) / 3
    (run_line,) = [line for line in _data_rows(md) if "vidspan run" in line]
    assert (
        "| 70.0 / 55.0 / 35.0 / 50.0 | 60.0 / 45.0 / 25.0 / 40.0 | 80.0 / 65.0 / 45.0 / 60.0 | 50.0 |"
        in run_line
    )

    only_runs = compare([run_dir], include_reference=False)
    assert [r.kind for r in only_runs.rows] == ["run"] and "published" not in only_runs.markdown
    sta = compare([], benchmark="charades-sta")
    assert [r.label for r in sta.rows] == ["Qwen2.5-VL-7B", "TimeLens-7B"]  # 43.6 > 42.3
    assert "Qwen2.5-VL report" in sta.markdown
    with pytest.raises(
        ValueError, match="Invalid benchmark: 'charades'. It must be one of charades-timelens"
    ):
        compare([run_dir], benchmark="charades")


@needs_matplotlib
def test_comparison_plots(tmp_path):
    comparison = compare([_timelens_run(tmp_path, "tl", (50.0, 40.0, 60.0))])
    _assert_png(comparison.plot(tmp_path / "mean.png"))
    _assert_png(comparison.plot(tmp_path / "charades.png", subset="charades-timelens"))
    with pytest.raises(ValueError, match="Invalid subset: 'charades'"):
        comparison.plot(tmp_path / "x.png", subset="charades")
    assert not (tmp_path / "x.png").exists()
