"""Using a ground-truth audit in later scoring: exclude wrong references or drop contradicted events."""

from __future__ import annotations

import pytest

from vidspan.eval.captions.datasets import apply_audit
from vidspan.eval.captions.samples import CaptionBenchmark, CaptionSample


class AuditResult:
    """The two questions scoring asks of an audit (what vidspan.eval.captions.audit.Audit answers)."""

    def excluded_ids(self, min_score: int = 5, require_consensus: bool = True) -> set[str]:
        return {"2"} if min_score >= 5 else set()

    def corrected_events(self, sample_id: str):
        return ("a man waves",) if sample_id == "1" else None


def bench() -> CaptionBenchmark:
    samples = (
        CaptionSample("1", "v1", "A man waves and jumps.", "s", events=("a man waves", "a man jumps")),
        CaptionSample("2", "v2", "A red car.", "s", events=("a car drives",)),
        CaptionSample("3", "v3", "A dog.", "s"),
    )
    return CaptionBenchmark("jsonl", "refs.jsonl", samples)


def test_exclude_drops_references_the_audit_found_wrong():
    out = apply_audit(bench(), AuditResult(), mode="exclude")
    assert [s.id for s in out.samples] == ["1", "3"] and out.name == "jsonl+audit-exclude"
    assert len(bench().samples) == 3  # the input is unchanged


def test_correct_removes_contradicted_events_only():
    out = apply_audit(bench(), AuditResult(), mode="correct")
    assert [s.events for s in out.samples] == [("a man waves",), ("a car drives",), None]


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="Invalid mode: 'fix'"):
        apply_audit(bench(), AuditResult(), mode="fix")
