"""Evaluation: temporal-grounding benchmarks with the official metrics, runs, scoring and reports.

>>> from vidspan.eval import load_benchmark, run_grounding          # doctest: +SKIP
>>> bench = load_benchmark("charades-timelens", "charades-timelens.json", "videos/")  # doctest: +SKIP
>>> run = run_grounding(bench, "marlin-2b", "runs/marlin-charades")  # doctest: +SKIP
"""

from vidspan.eval.captions.audit import audit_references, load_audit
from vidspan.eval.captions.autodq.run import evaluate_captions
from vidspan.eval.captions.candidates import load_candidates
from vidspan.eval.captions.datasets import load_caption_benchmark
from vidspan.eval.captions.pairwise import compare_captions
from vidspan.eval.grounding.compare import compare
from vidspan.eval.grounding.datasets import BENCHMARKS, load_benchmark
from vidspan.eval.grounding.metrics import score_timelens, summarize, temporal_iou
from vidspan.eval.grounding.qvhighlights import eval_qvhighlights
from vidspan.eval.grounding.report import write_reports
from vidspan.eval.grounding.run import GroundingRun, run_grounding
from vidspan.eval.grounding.samples import Benchmark, GroundingSample
from vidspan.eval.grounding.score import score_predictions

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
