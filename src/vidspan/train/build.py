"""``vidspan train data``: one training-set folder from annotation sources, in a family's exact format.

The folder holds, per split, ``<split>.trl.jsonl`` (TRL conversational), ``<split>.swift.jsonl`` (ms-swift)
and a Hugging Face ``datasets`` folder ``hf/`` (``DatasetDict.save_to_disk``); ``bad_rows.jsonl`` lists
every row left out with its reason, and ``summary.json`` the counts per split, task and duration bucket
with the family and frame plan the set is for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from vidspan.models.base import Family
from vidspan.train.data import (
    BadRow,
    TrainExample,
    split_by_video,
    summarize,
    write_swift_jsonl,
    write_trl_jsonl,
)
from vidspan.video import SamplingConfig

__all__ = ["FORMATS", "write_dataset"]

FORMATS = ("trl", "swift", "hf")


def write_dataset(
    examples: Sequence[TrainExample],
    bad: Sequence[BadRow],
    out_dir: str | os.PathLike[str],
    *,
    family: Family,
    sampling: SamplingConfig | None = None,
    fractions: Mapping[str, float] | None = None,
    formats: Sequence[str] = FORMATS,
    seed: int = 0,
) -> dict[str, Any]:
    """Split ``examples`` by video and write them in ``formats`` under ``out_dir``; returns the summary.

    Raises:
        ValueError: An unknown format, or fractions :func:`~vidspan.train.data.split_by_video` refuses.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"Invalid formats: {unknown}. They must be among {', '.join(FORMATS)}.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = split_by_video(examples, fractions or {"train": 1.0}, seed=seed)
    for name, rows in splits.items():
        if "trl" in formats:
            write_trl_jsonl(rows, out / f"{name}.trl.jsonl")
        if "swift" in formats:
            write_swift_jsonl(rows, out / f"{name}.swift.jsonl")
    if "hf" in formats:
        _write_hf(splits, out / "hf")
    with (out / "bad_rows.jsonl").open("w", encoding="utf-8") as f:
        for row in bad:
            f.write(json.dumps(asdict(row), ensure_ascii=False) + "\n")
    summary = summarize(splits, bad) | {
        "family": family.name, "output_format": family.output_format,
        "sampling": asdict(sampling or SamplingConfig()), "seed": seed, "formats": list(formats),
    }  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _write_hf(splits: Mapping[str, Sequence[TrainExample]], path: Path) -> None:
    from vidspan.models.torchvision_compat import ensure_torchvision

    ensure_torchvision()
    try:
        from datasets import Dataset, DatasetDict
    except ImportError as exc:
        from vidspan.errors import MissingDependencyError

        raise MissingDependencyError("The hf format needs datasets: pip install 'vidspan[train]'.") from exc
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()  # the CLI's stderr stays for vidspan's own lines
    # an empty split is left out: datasets 5 saves a zero-row split that load_from_disk cannot read back
    tables = {name: Dataset.from_list([{k: v for k, v in e.to_dict().items() if k != "extra"} for e in rows])
              for name, rows in splits.items() if rows}  # fmt: skip
    DatasetDict(tables).save_to_disk(str(path))
