"""Evaluation: temporal-grounding benchmarks with the official metrics, runs, scoring and reports.

>>> from vidspan.eval import load_benchmark, run_grounding          # doctest: +SKIP
>>> bench = load_benchmark("charades-timelens", "charades-timelens.json", "videos/")  # doctest: +SKIP
>>> run = run_grounding(bench, "marlin-2b", "runs/marlin-charades")  # doctest: +SKIP
"""

from vidspan.eval.audit import audit_references, load_audit
from vidspan.eval.autodq import evaluate_captions
from vidspan.eval.caption_candidates import load_candidates
from vidspan.eval.caption_data import load_caption_benchmark
from vidspan.eval.compare import compare
from vidspan.eval.datasets import BENCHMARKS, load_benchmark
from vidspan.eval.metrics import score_timelens, summarize, temporal_iou
from vidspan.eval.pairwise import compare_captions
from vidspan.eval.qvhighlights import eval_qvhighlights
from vidspan.eval.report import write_reports
from vidspan.eval.run import GroundingRun, run_grounding
from vidspan.eval.samples import Benchmark, GroundingSample
from vidspan.eval.score import score_predictions

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "GroundingRun",
    "GroundingSample",
    "audit_references",
    "compare",
    "compare_captions",
    "evaluate_captions",
    "eval_qvhighlights",
    "load_audit",
    "load_benchmark",
    "load_candidates",
    "load_caption_benchmark",
    "run_grounding",
    "score_predictions",
    "score_timelens",
    "summarize",
    "temporal_iou",
    "write_reports",
]
