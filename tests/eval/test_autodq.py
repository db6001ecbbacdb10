"""AutoDQ protocol: per-sample scores, aggregation, failures, consensus, the video-aware pass, resuming.

The judge here is :class:`vidspan.testing.judges.ScriptedJudge`: the real judge (cache, JSON parsing,
re-asks) with only the network call faked. Its replies follow a small "world": which facts each caption
yields and how each (caption, fact) pair relates. The prompts are the real ones; the world reads them back
(the caption between triple quotes, the numbered statements).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from vidspan.eval.captions.autodq.metrics import bucket_table, f1_score, score_table
from vidspan.eval.captions.autodq.prompts import (
    check_facts,
    check_verdicts,
    entailment_prompt,
    extraction_prompt,
)
from vidspan.eval.captions.autodq.run import evaluate_captions, read_records
from vidspan.eval.captions.autodq.scoring import AutoDQOptions, score_sample
from vidspan.eval.captions.datasets import load_caption_benchmark, load_dream1k
from vidspan.eval.captions.samples import CaptionBenchmark, CaptionSample
from vidspan.eval.grounding.run import RunError
from vidspan.judge.base import JudgeError, JudgeRequest
from vidspan.testing.judges import ScriptedJudge

DREAM = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dream1k" / "DREAM-1k.jsonl"

# ------------------------------------------------------------------------------------------ scripted judge


def _caption_in(prompt: str) -> str | None:
    match = re.search(r'Description:\n"""\n(.*?)\n"""', prompt, re.S)
    return match.group(1) if match else None


def _statements_in(prompt: str) -> list[str]:
    block = prompt.split("Statements:\n", 1)[1].split("\n\n", 1)[0]
    return [re.sub(r"^\d+\. ", "", line) for line in block.splitlines()]


@dataclass
class World:
    """What the scripted judge 'knows'. Keys are as the judge sees them (captions lower-cased)."""

    extract: dict[str, list[str]] = field(default_factory=dict)  # caption -> facts (events or objects)
    objects: dict[str, list[str]] = field(default_factory=dict)
    relation: dict[tuple[str, str], str | list[str]] = field(default_factory=dict)  # (caption, fact) -> label
    seen: dict[str, str | list[str]] = field(default_factory=dict)  # fact -> video label
    garbage: set[str] = field(default_factory=set)  # captions whose questions get unusable replies
    default_relation: str = "neutral"

    def __call__(self, request: JudgeRequest) -> str:
        prompt = request.prompt
        if prompt.startswith("The images are frames"):
            facts = _statements_in(prompt)
            labels = [self._pick(self.seen.get(f, "not_visible"), request.sample) for f in facts]
            return json.dumps(
                {
                    "verdicts": [
                        {"index": i, "reason": "seen", "verdict": label} for i, label in enumerate(labels, 1)
                    ]
                }
            )
        caption = _caption_in(prompt)
        if caption in self.garbage:
            return "I think the answer is yes."
        if "Statements:" in prompt:
            facts = _statements_in(prompt)
            labels = [
                self._pick(self.relation.get((caption, f), self.default_relation), request.sample)
                for f in facts
            ]
            return json.dumps(
                {
                    "verdicts": [
                        {"index": i, "reason": f"r{i}", "relation": label}
                        for i, label in enumerate(labels, 1)
                    ]
                }
            )
        if '"objects"' in prompt:
            return json.dumps({"objects": self.objects.get(caption, [])})
        return "```json\n" + json.dumps({"events": self.extract.get(caption, [])}) + "\n```"

    @staticmethod
    def _pick(label: str | list[str], sample: int) -> str:
        return label[sample] if isinstance(label, list) else label


def _bench(
    samples: list[CaptionSample],
    name: str = "jsonl",
    videos: dict[str, Path] | None = None,
    video_dir: str | None = None,
) -> CaptionBenchmark:
    return CaptionBenchmark(
        name=name,
        annotations="inline.jsonl",
        samples=tuple(samples),
        video_dir=video_dir,
        video_paths=videos or {},
        missing_videos=(),
    )


def _kinds(judge: ScriptedJudge) -> list[str]:
    out = []
    for r in judge.requests:
        if r.prompt.startswith("The images are frames"):
            out.append("video")
        elif "Statements:" in r.prompt:
            out.append("entail")
        else:
            out.append("extract")
    return out


# ---------------------------------------------------------------------------------------- per-sample scores

REF = "A man opens the door and a dog runs in."
CAND = "A man opens a door. A cat sleeps. The man shouts."
GT = ("The man opens the door.", "A dog runs in.", "The dog barks.", "The man smiles.")
CAND_EVENTS = ["The man opens a door.", "A cat sleeps.", "The man shouts."]


def _hand_world() -> World:
    ref, cand = REF.lower(), CAND.lower()
    return World(
        extract={cand: CAND_EVENTS},
        relation={
            # recall: GT events against the candidate: entail, neutral, contradiction, entail -> 2/4
            (cand, GT[0]): "entailment",
            (cand, GT[1]): "neutral",
            (cand, GT[2]): "contradiction",
            (cand, GT[3]): "entailment",
            # precision: candidate events against the reference: entail, contradiction, neutral
            (ref, CAND_EVENTS[0]): "entailment",
            (ref, CAND_EVENTS[1]): "contradiction",
            (ref, CAND_EVENTS[2]): "neutral",
        },
    )


def test_per_sample_recall_and_precision_count_only_entailment():
    judge = ScriptedJudge(_hand_world())
    sample = CaptionSample("1", "v1", REF, "s", events=GT)
    record = score_sample(sample, CAND, judge, AutoDQOptions())
    assert record["status"] == "scored"
    assert record["scores"]["text"]["events"] == {"recall": 2 / 4, "precision": 1 / 3}
    part = record["events"]
    assert part["gt"] == list(GT) and part["gt_source"] == "annotation" and part["candidate"] == CAND_EVENTS
    assert [v["label"] for v in part["recall"]] == ["entailment", "neutral", "contradiction", "entailment"]
    assert [v["hit"] for v in part["precision"]] == [True, False, False]
    assert part["recall"][0] == {"fact": GT[0], "label": "entailment", "hit": True, "reason": "r1"}
    assert _kinds(judge) == ["extract", "entail", "entail"]  # GT events come from the annotation


def test_entailment_plus_neutral_counts_neutral_in_precision_only():
    judge = ScriptedJudge(_hand_world())
    sample = CaptionSample("1", "v1", REF, "s", events=GT)
    record = score_sample(sample, CAND, judge, AutoDQOptions(precision_positive="entailment+neutral"))
    assert record["scores"]["text"]["events"] == {"recall": 2 / 4, "precision": 2 / 3}


def test_captions_are_lower_cased_and_quotes_replaced_for_extraction_in_compat_mode():
    judge = ScriptedJudge(World())
    score_sample(
        CaptionSample("1", "v", "Ref.", "s", events=("E.",)), 'Bob says "Hi".', judge, AutoDQOptions()
    )
    extraction, entail_recall = judge.requests[:2]
    assert _caption_in(extraction.prompt) == "bob says 'hi'."
    assert _caption_in(entail_recall.prompt) == 'bob says "hi".'
    assert _statements_in(entail_recall.prompt) == ["E."]  # GT events are sent as written


def test_empty_event_lists_score_one_in_compat_mode_and_are_left_out_when_strict():
    world = World(extract={"nothing happens.": []})
    sample = CaptionSample("649", "v", "Nothing happens.", "s", events=())
    judge = ScriptedJudge(world)
    record = score_sample(sample, "Nothing happens.", judge, AutoDQOptions())
    assert record["scores"]["text"]["events"] == {"recall": 1.0, "precision": 1.0}
    assert _kinds(judge) == ["extract"]  # no entailment question for an empty list
    strict = score_sample(
        sample, "Nothing happens.", ScriptedJudge(world), AutoDQOptions(empty_events_score=None)
    )
    assert strict["scores"]["text"]["events"] == {"recall": None, "precision": None}
    assert strict["status"] == "scored"


def test_gt_events_are_extracted_from_the_reference_when_the_annotation_has_none():
    ref = "a woman jumps."
    world = World(
        extract={ref: ["The woman jumps."], "she jumps high.": ["The woman jumps high."]},
        relation={("she jumps high.", "The woman jumps."): "entailment"},
    )
    judge = ScriptedJudge(world)
    record = score_sample(
        CaptionSample("1", "v", "A woman jumps.", "s"), "She jumps high.", judge, AutoDQOptions()
    )
    assert record["events"]["gt_source"] == "extracted"
    assert record["events"]["gt"] == ["The woman jumps."]
    assert record["scores"]["text"]["events"] == {"recall": 1.0, "precision": 0.0}
    assert _kinds(judge) == ["extract", "extract", "entail", "entail"]


def test_objects_are_scored_with_the_same_protocol_for_capst():
    world = World(
        extract={"a red car.": ["The car drives."]},
        objects={"a red car.": ["There is a red car."], "a red car parks.": ["There is a red car."]},
        relation={("a red car.", "There is a red car."): "entailment"},
    )
    sample = CaptionSample("0", "v", "A red car parks.", "overall")
    record = score_sample(sample, "A red car.", ScriptedJudge(world), AutoDQOptions(objects=True))
    assert record["objects"]["candidate"] == ["There is a red car."]
    assert record["scores"]["text"]["objects"] == {"recall": 1.0, "precision": 0.0}
    assert set(record["scores"]["text"]) == {"events", "objects"}


# ------------------------------------------------------------------------------------------- aggregation


def _rec(
    subset: str, recall: float | None, precision: float | None, status: str = "scored"
) -> dict[str, Any]:
    scores = {"text": {"events": {"recall": recall, "precision": precision}}, "video": None}
    return {
        "id": f"{subset}-{recall}-{precision}",
        "subset": subset,
        "status": status,
        "scores": scores if status == "scored" else None,
    }


def test_f1_is_of_the_subset_means_not_the_mean_of_per_sample_f1():
    records = [_rec("a", 1.0, 0.0), _rec("a", 0.0, 1.0)]
    table = score_table(records)
    mean_of_f1 = (f1_score(1.0, 0.0) + f1_score(0.0, 1.0)) / 2
    assert mean_of_f1 == 0.0
    assert table["subsets"]["a"] == {"f1": 0.5, "recall": 0.5, "precision": 0.5, "success": 2, "failed": 0}
    assert table["subsets"]["a"]["f1"] != mean_of_f1


def test_overall_is_the_unweighted_mean_over_subsets():
    records = [_rec("big", 0.0, 0.2)] * 3 + [_rec("small", 1.0, 0.6)]
    overall = score_table(records)["overall"]
    assert overall["recall"] == pytest.approx(0.5)  # (0 + 1) / 2, not pooled 0.25
    assert overall["precision"] == pytest.approx(0.4)
    assert overall["f1"] == pytest.approx(2 * 0.5 * 0.4 / 0.9)
    assert (overall["success"], overall["failed"]) == (4, 0)


def test_unscored_samples_are_excluded_and_counted():
    records = [_rec("a", 1.0, 1.0), _rec("a", None, None, status="unscored"), _rec("b", 0.5, 0.5)]
    table = score_table(records)
    assert table["subsets"]["a"] == {"f1": 1.0, "recall": 1.0, "precision": 1.0, "success": 1, "failed": 1}
    assert (table["overall"]["success"], table["overall"]["failed"]) == (2, 1)


def test_buckets_pool_samples_by_annotation_counts():
    records = [
        {**_rec("a", 1.0, 1.0), "buckets": {"n_subjects": 1, "n_shots": 4, "n_events": 3}},
        {**_rec("b", 0.0, 0.5), "buckets": {"n_subjects": 2, "n_shots": 1, "n_events": 8}},
        {**_rec("b", 0.5, 0.5), "buckets": {"n_subjects": 7, "n_shots": 1, "n_events": 5}},
    ]
    buckets = bucket_table(records)
    assert list(buckets["n_events"]) == ["<=3", "4-5", "6-7", ">=8"]
    assert buckets["n_subjects"][">=4"]["count"] == 1 and buckets["n_subjects"]["3"]["count"] == 0
    assert buckets["n_shots"]["<=1"] == {
        "f1": pytest.approx(2 * 0.25 * 0.5 / 0.75),
        "recall": 0.25,
        "precision": 0.5,
        "count": 2,
    }
    assert buckets["n_shots"]["2"]["recall"] is None


# ------------------------------------------------------------------------------------------------ runs


def _run_world() -> tuple[list[CaptionSample], dict[str, str], World]:
    """Two subsets; in 'a' per-sample (R, P) = (1, 0) and (0, 1); in 'b' (1, 1)."""
    samples = [
        CaptionSample("a1", "va1", "Ref a1.", "a", events=("A1.",)),
        CaptionSample("a2", "va2", "Ref a2.", "a", events=("A2.",)),
        CaptionSample("b1", "vb1", "Ref b1.", "b", events=("B1.",)),
    ]
    candidates = {"a1": "Cand a1.", "a2": "Cand a2.", "b1": "Cand b1."}
    world = World(
        extract={"cand a1.": ["X1."], "cand a2.": ["X2."], "cand b1.": ["Y1."]},
        relation={
            ("cand a1.", "A1."): "entailment",
            ("ref a2.", "X2."): "entailment",
            ("cand b1.", "B1."): "entailment",
            ("ref b1.", "Y1."): "entailment",
        },
    )
    return samples, candidates, world


def test_run_writes_the_directory_with_autodq_aggregation(tmp_path):
    samples, candidates, world = _run_world()
    judge = ScriptedJudge(world, prompt_tokens=100, completion_tokens=20, cost_usd=0.001)
    run = evaluate_captions(_bench(samples), candidates, judge, out_dir=tmp_path / "run")
    table = run.metrics["scores"]["events"]["text"]
    assert table["subsets"]["a"]["f1"] == 0.5  # mean-then-F1; the mean of per-sample F1 would be 0
    assert table["subsets"]["b"]["f1"] == 1.0
    assert run.overall() == {
        "f1": pytest.approx(0.75),
        "recall": 0.75,
        "precision": 0.75,
        "success": 3,
        "failed": 0,
    }
    assert run.metrics["scores"]["events"].get("video") is None
    assert {p.name for p in run.directory.iterdir()} == {
        ".lock",  # held by the writing process; no temporary file is left
        "header.json",
        "samples.jsonl",
        "metrics.json",
        "report.md",
    }
    header = json.loads((run.directory / "header.json").read_text())
    assert header["judge"] == judge.settings.identity()
    assert header["options"]["precision_positive"] == "entailment" and header["options"]["consensus"] == 1
    assert header["vidspan_version"] and set(header["prompts"]) >= {"entailment", "extract_events"}
    assert header["sessions"][0]["samples_judged"] == 3
    assert "key" not in json.dumps(header).lower()
    lines = [json.loads(line) for line in (run.directory / "samples.jsonl").read_text().splitlines()]
    assert [r["id"] for r in lines] == ["a1", "a2", "b1"]
    assert run.metrics["judge_usage"]["judge"]["calls"] == judge.usage.calls == 9
    assert run.metrics["judge_usage"]["judge"]["cost_usd"] == pytest.approx(0.009)
    report = (run.directory / "report.md").read_text()
    assert "| **OVERALL** | **75.0** | **75.0** | **75.0** | **3** | **0** |" in report


def test_a_sample_with_garbage_replies_is_unscored_excluded_and_counted(tmp_path):
    samples, candidates, world = _run_world()
    world.garbage.add("ref a2.")  # the precision question of a2 never gets a usable reply
    run = evaluate_captions(_bench(samples), candidates, ScriptedJudge(world), out_dir=tmp_path / "run")
    a = run.metrics["scores"]["events"]["text"]["subsets"]["a"]
    assert (a["success"], a["failed"]) == (1, 1)
    assert (a["recall"], a["precision"]) == (1.0, 0.0)  # a2 is in neither numerator nor denominator
    assert run.overall()["failed"] == 1 and run.overall()["success"] == 2
    assert run.metrics["counts"]["unscored"] == 1
    assert run.metrics["unscored"][0]["id"] == "a2"
    assert "unusable judge reply" in run.metrics["unscored"][0]["reason"]
    record = read_records(run.directory)["a2"]
    assert record["status"] == "unscored" and record["unusable_replies"] == ["I think the answer is yes."] * 3
    assert "## Unscored samples (1)" in (run.directory / "report.md").read_text()


def test_samples_without_a_candidate_are_failed_not_dropped(tmp_path):
    samples, candidates, world = _run_world()
    del candidates["b1"]
    run = evaluate_captions(_bench(samples), candidates, ScriptedJudge(world), out_dir=tmp_path / "run")
    b = run.metrics["scores"]["events"]["text"]["subsets"]["b"]
    assert (b["success"], b["failed"], b["recall"]) == (0, 1, None)
    assert run.metrics["counts"]["no_candidate"] == 1
    assert run.overall()["recall"] == 0.5  # macro over the subsets that have a score
    again = evaluate_captions(_bench(samples), candidates, ScriptedJudge(world), out_dir=tmp_path / "run")
    assert again.metrics["counts"]["no_candidate"] == 1
    assert len((tmp_path / "run" / "samples.jsonl").read_text().splitlines()) == 3  # nothing re-written


def test_excluded_samples_are_neither_judged_nor_counted(tmp_path):
    samples, candidates, world = _run_world()
    judge = ScriptedJudge(world)
    run = evaluate_captions(_bench(samples), candidates, judge, out_dir=tmp_path / "run", exclude={"a2"})
    assert run.metrics["counts"]["excluded"] == 1
    assert run.metrics["scores"]["events"]["text"]["subsets"]["a"]["success"] == 1
    assert all("a2" not in (_caption_in(r.prompt) or "") for r in judge.requests)
    assert "1 samples were excluded" in (run.directory / "report.md").read_text()


def test_resume_skips_finished_samples_and_retries_the_rest(tmp_path):
    samples, candidates, world = _run_world()
    world.garbage.add("ref a2.")
    out = tmp_path / "run"
    evaluate_captions(_bench(samples), candidates, ScriptedJudge(world), out_dir=out)
    world.garbage.clear()
    again = ScriptedJudge(world)  # a fresh judge: no cache, so every call it makes is counted
    run = evaluate_captions(_bench(samples), candidates, again, out_dir=out)
    assert _kinds(again) == ["extract", "entail", "entail"]  # only the unscored a2
    assert run.overall()["failed"] == 0 and run.overall()["success"] == 3
    third = ScriptedJudge(world)
    evaluate_captions(_bench(samples), candidates, third, out_dir=out)
    assert third.requests == []
    changed = ScriptedJudge(world)
    world.extract["cand b1, rewritten."] = ["Y2."]
    evaluate_captions(_bench(samples), {**candidates, "b1": "Cand b1, rewritten."}, changed, out_dir=out)
    assert {_caption_in(r.prompt) for r in changed.requests} == {"cand b1, rewritten.", "ref b1."}
    header = json.loads((out / "header.json").read_text())
    assert [s["samples_judged"] for s in header["sessions"]] == [3, 1, 0, 1]
    # the first session paid for 9 questions and 2 re-asks of a2's garbage one (3 attempts in all)
    assert run.metrics["judge_usage"]["judge"]["calls"] == 9 + 2 + 3


def test_resume_refuses_other_settings(tmp_path):
    samples, candidates, world = _run_world()
    evaluate_captions(_bench(samples), candidates, ScriptedJudge(world), out_dir=tmp_path / "run")
    with pytest.raises(RunError, match=r"other settings \(options\)"):
        evaluate_captions(
            _bench(samples),
            candidates,
            ScriptedJudge(world),
            out_dir=tmp_path / "run",
            precision_positive="entailment+neutral",
        )
    with pytest.raises(RunError, match=r"other settings \(judge\)"):
        evaluate_captions(
            _bench(samples), candidates, ScriptedJudge(world, model="other"), out_dir=tmp_path / "run"
        )


def test_threads_give_the_same_results(tmp_path):
    samples, candidates, world = _run_world()
    one = evaluate_captions(_bench(samples), candidates, ScriptedJudge(world), out_dir=tmp_path / "one")
    two = evaluate_captions(
        _bench(samples), candidates, ScriptedJudge(world), out_dir=tmp_path / "two", max_workers=2
    )
    assert one.metrics["scores"] == two.metrics["scores"]


def test_transport_errors_fail_the_sample_and_stop_a_run_that_cannot_reach_the_judge(tmp_path):
    samples, candidates, world = _run_world()

    def broken(request: JudgeRequest) -> str:
        if _caption_in(request.prompt) == "cand a1.":
            raise JudgeError("The judge at http://127.0.0.1:9/v1 answered HTTP 400: content filter.")
        return world(request)

    run = evaluate_captions(_bench(samples), candidates, ScriptedJudge(broken), out_dir=tmp_path / "one")
    assert (
        run.metrics["unscored"][0]["id"] == "a1" and "content filter" in run.metrics["unscored"][0]["reason"]
    )

    def down(request: JudgeRequest) -> str:
        raise JudgeError("Cannot connect to the judge at http://127.0.0.1:9/v1: connection refused.")

    many = [CaptionSample(str(i), "v", "Ref.", "s", events=("E.",)) for i in range(12)]
    with pytest.raises(JudgeError, match="Stopped after 10 samples in a row failed on judge errors"):
        evaluate_captions(
            _bench(many), {s.id: "Cand." for s in many}, ScriptedJudge(down), out_dir=tmp_path / "two"
        )
    assert len(read_records(tmp_path / "two")) == 10
    assert json.loads((tmp_path / "two" / "header.json").read_text())["sessions"][0]["samples_judged"] == 10


# ---------------------------------------------------------------------------------------------- consensus


def test_consensus_takes_the_majority_and_breaks_ties_conservatively():
    cand = "cand."
    facts = ("F-maj.", "F-tie.", "F-neutral.", "F-same.")
    world = World(
        extract={cand: []},
        relation={
            (cand, "F-maj."): ["entailment", "entailment", "neutral"],
            (cand, "F-tie."): ["entailment", "neutral", "contradiction"],
            (cand, "F-neutral."): ["entailment", "neutral", "neutral"],
            (cand, "F-same."): ["entailment", "entailment", "entailment"],
        },
    )
    judge = ScriptedJudge(world)
    record = score_sample(
        CaptionSample("1", "v", "Ref.", "s", events=facts), "Cand.", judge, AutoDQOptions(consensus=3)
    )
    verdicts = record["events"]["recall"]
    assert [v["label"] for v in verdicts] == ["entailment", "contradiction", "neutral", "entailment"]
    assert verdicts[1]["votes"] == ["entailment", "neutral", "contradiction"]
    assert record["scores"]["text"]["events"]["recall"] == 2 / 4
    assert record["consensus"] == {"verdicts": 4, "disagreements": 3}
    assert sorted(r.sample for r in judge.requests if "Statements:" in r.prompt) == [0, 1, 2]


def test_a_two_way_tie_is_not_a_hit(tmp_path):
    world = World(extract={"cand.": []}, relation={("cand.", "E."): ["entailment", "neutral"]})
    samples = [CaptionSample("1", "v", "Ref.", "s", events=("E.",))]
    run = evaluate_captions(
        _bench(samples), {"1": "Cand."}, ScriptedJudge(world), out_dir=tmp_path / "r", consensus=2
    )
    assert run.overall()["recall"] == 0.0
    assert run.metrics["consensus"] == {"k": 2, "verdicts": 1, "disagreements": 1, "disagreement_rate": 1.0}
    assert "1 of 1 verdicts split" in (run.directory / "report.md").read_text()


# ------------------------------------------------------------------------------------------- video-aware


def test_the_video_judge_credits_a_correct_detail_the_reference_lacks(tmp_path, shared_videos):
    ref = "A hand picks up a bottle."
    cand = "A hand picks up a bottle. The hand puts the bottle back on the table."
    events = ["A hand picks up a bottle.", "The hand puts the bottle back on the table."]
    world = World(
        extract={cand.lower(): events},
        relation={
            (cand.lower(), "A hand picks up a bottle."): "entailment",
            (ref.lower(), events[0]): "entailment",
            (ref.lower(), events[1]): "neutral",
        },
        seen={events[0]: "supported", events[1]: "supported"},
    )
    shown: list[JudgeRequest] = []

    def video_world(request: JudgeRequest) -> str:
        shown.append(request)
        return world(request)

    samples = [
        CaptionSample("bottle", "bottle-detection", ref, "demo", events=("A hand picks up a bottle.",)),
        CaptionSample("lost", "no-such-video", ref, "demo", events=("A hand picks up a bottle.",)),
    ]
    bench = load_caption_benchmark("jsonl", _write_jsonl(tmp_path / "b.jsonl", samples), shared_videos)
    assert bench.missing_videos == ("no-such-video",)
    run = evaluate_captions(
        bench,
        {"bottle": cand, "lost": cand},
        ScriptedJudge(world),
        video_judge=ScriptedJudge(video_world, model="scripted-vlm"),
        out_dir=tmp_path / "run",
        frames_per_video=8,
        frame_max_pixels=128 * 128,
    )
    record = read_records(run.directory)["bottle"]
    assert record["scores"]["text"]["events"] == {"recall": 1.0, "precision": 0.5}
    assert record["scores"]["video"]["events"] == {"recall": 1.0, "precision": 1.0}
    assert [v["label"] for v in record["events"]["video"]] == ["supported", "supported"]
    # real frames: JPEGs in time order across the 40 s clip, each within the pixel budget
    frames = shown[0].frames
    assert len(frames) == 8
    times = [f.seconds for f in frames]
    assert times == sorted(times) and times[0] < 5 and times[-1] > 30
    image = Image.open(io.BytesIO(frames[0].jpeg))
    assert image.format == "JPEG" and image.width * image.height <= 128 * 128
    lost = read_records(run.directory)["lost"]
    assert lost["status"] == "scored" and lost["video_status"] == "unscored"
    assert "video not found: no-such-video" in lost["video_error"]
    text = run.metrics["scores"]["events"]["text"]["overall"]
    video = run.metrics["scores"]["events"]["video"]["overall"]
    assert (text["precision"], video["precision"]) == (0.5, 1.0)
    assert (text["success"], video["success"], video["failed"]) == (2, 1, 1)
    report = (run.directory / "report.md").read_text()
    assert "| Video F1 | Video precision |" in report
    assert (
        "| **OVERALL** | **66.7** | **100.0** | **50.0** | **100.0** | **100.0** | **2** | **0** | **1** |"
        in report
    )
    assert "The hand puts the bottle back on the table." in report  # credited by the video
    assert "## Video-aware pass not scored (1)" in report and "no-such-video" in report
    header = json.loads((run.directory / "header.json").read_text())
    assert header["video_judge"]["model"] == "scripted-vlm"


def _write_jsonl(path: Path, samples: list[CaptionSample]) -> Path:
    path.write_text(
        "".join(
            json.dumps(
                {
                    "id": s.id,
                    "video": s.video,
                    "caption": s.reference,
                    "subset": s.subset,
                    "events": list(s.events or []),
                }
            )
            + "\n"
            for s in samples
        )
    )
    return path


# ------------------------------------------------------------------------------------------- DREAM-1K


def test_dream1k_run_reports_subsets_and_buckets(tmp_path):
    """Twenty real DREAM-1K samples; the candidate is the reference and the judge entails everything."""
    samples = [s for s in load_dream1k(DREAM) if int(s.id) in range(1, 11) or int(s.id) in range(201, 211)]
    candidates = {s.id: s.reference for s in samples}
    world = World(default_relation="entailment")
    for s in samples:
        world.extract[s.reference.lower().replace('"', "'")] = list(s.events or ())
    bench = _bench(samples, name="dream1k")
    run = evaluate_captions(bench, candidates, ScriptedJudge(world), out_dir=tmp_path / "run")
    table = run.metrics["scores"]["events"]["text"]
    assert list(table["subsets"]) == ["movie_animation", "movie_live_action"]
    assert run.overall() == {"f1": 1.0, "recall": 1.0, "precision": 1.0, "success": 20, "failed": 0}
    buckets = run.metrics["buckets"]["text"]
    assert set(buckets) == {"n_subjects", "n_shots", "n_events"}
    assert sum(b["count"] for b in buckets["n_events"].values()) == 20
    assert "### n_events" in (run.directory / "report.md").read_text()


# ---------------------------------------------------------------------------------------- prompts, checks


def test_prompts_state_the_protocol_requirements():
    events = extraction_prompt("A man runs.", "events")
    assert "at most 10" in events and "pronoun" in events and "camera" in events and '"events"' in events
    objects = extraction_prompt("A man runs.", "objects")
    assert '"There is" or "There are"' in objects and '"objects"' in objects
    entail = entailment_prompt("A man runs.", ["The man runs.", "The man  sits."])
    assert "1. The man runs.\n2. The man sits." in entail and "(2 in all)" in entail
    with pytest.raises(ValueError, match="Invalid kind"):
        extraction_prompt("x", "actions")


def test_verdict_check_validates_count_labels_and_indices():
    check = check_verdicts(2, ("entailment", "contradiction", "neutral"), "relation")
    ok = {
        "verdicts": [
            {"index": 2, "relation": "Neutral", "reason": "b"},
            {"index": 1, "relation": "entailment"},
        ]
    }
    assert check(ok) == (("entailment", ""), ("neutral", "b"))
    with pytest.raises(ValueError, match="expected 2 verdicts"):
        check({"verdicts": [{"relation": "neutral"}]})
    with pytest.raises(ValueError, match="must be one of"):
        check({"verdicts": [{"relation": "yes"}, {"relation": "neutral"}]})
    with pytest.raises(ValueError, match="indices must be 1 to 2"):
        check({"verdicts": [{"index": 1, "relation": "neutral"}, {"index": 1, "relation": "neutral"}]})
    video = check_verdicts(1, ("supported", "contradicted", "not_visible"), "verdict")
    assert video({"verdicts": [{"verdict": "Not visible"}]}) == (("not_visible", ""),)
    assert check_facts("events")({"events": [" A. ", "", "B."]}) == ("A.", "B.")
    with pytest.raises(ValueError, match="must be a string"):
        check_facts("events")({"events": [1]})


def test_options_are_checked():
    with pytest.raises(ValueError, match="Invalid precision_positive: 'neutral'"):
        AutoDQOptions(precision_positive="neutral")
    with pytest.raises(ValueError, match="Invalid consensus: 0"):
        AutoDQOptions(consensus=0)
    with pytest.raises(ValueError, match="Invalid empty_events_score: 2"):
        AutoDQOptions(empty_events_score=2)


# ----------------------------------------------------------------------------- end to end over real HTTP


def _over_http(world: World) -> Callable[[Any], Any]:
    """A fake-server responder that answers as ``world``; the consensus sample is read back from the seed."""

    def respond(info: Any) -> str:
        body = info.body
        seed = body.get("seed", (body.get("generationConfig") or {}).get("seed")) or 0
        return world(JudgeRequest(info.prompt, sample=seed % 1000))

    return respond


def _bottle_case(tmp_path: Path, shared_videos: Path) -> tuple[CaptionBenchmark, dict[str, str], World]:
    ref = "A hand picks up a bottle."
    cand = "A hand picks up a bottle. The hand puts the bottle back on the table."
    events = ["A hand picks up a bottle.", "The hand puts the bottle back on the table."]
    world = World(
        extract={cand.lower(): events},
        relation={
            (cand.lower(), "A hand picks up a bottle."): ["entailment", "entailment"],
            (ref.lower(), events[0]): ["entailment", "entailment"],
            (ref.lower(), events[1]): ["neutral", "entailment"],  # a split vote: the tie is not a hit
        },
        seen={events[0]: "supported", events[1]: "supported"},
    )
    samples = [
        CaptionSample("bottle", "bottle-detection", ref, "demo", events=("A hand picks up a bottle.",)),
        CaptionSample("walk", "asl-walk", "A person signs.", "demo", events=("A person signs walk.",)),
    ]
    bench = load_caption_benchmark("jsonl", _write_jsonl(tmp_path / "b.jsonl", samples), shared_videos)
    return bench, {"bottle": cand, "walk": "Garbage in."}, world


def test_end_to_end_through_the_openai_and_gemini_wire_formats(tmp_path, shared_videos):
    from support.fake_judges import FakeJudgeServer
    from vidspan.judge import GeminiJudge, OpenAIJudge

    bench, candidates, world = _bottle_case(tmp_path, shared_videos)
    world.garbage.add("garbage in.")  # every question about the 'walk' candidate gets prose back
    fast = {"api_key": "sk-secret-test-key", "backoff_seconds": 0.01, "timeout_seconds": 10.0}
    cache = tmp_path / "judge-cache.sqlite"
    with FakeJudgeServer(_over_http(world)) as server:
        judge = OpenAIJudge("gpt-4.1-2025-04-14", base_url=server.openai_base_url, cache=cache, **fast)
        vlm = GeminiJudge("gemini-2.5-flash", base_url=server.gemini_base_url, cache=cache, **fast)
        run = evaluate_captions(
            bench,
            candidates,
            judge,
            video_judge=vlm,
            out_dir=tmp_path / "run",
            consensus=2,
            frames_per_video=6,
            frame_max_pixels=160 * 160,
        )
        requests = list(server.requests)
        assert server.errors == []
        # the same evaluation in a new directory costs nothing: every question is in the judge cache
        judge = OpenAIJudge("gpt-4.1-2025-04-14", base_url=server.openai_base_url, cache=cache, **fast)
        vlm = GeminiJudge("gemini-2.5-flash", base_url=server.gemini_base_url, cache=cache, **fast)
        again = evaluate_captions(
            bench,
            {"bottle": candidates["bottle"]},
            judge,
            video_judge=vlm,
            out_dir=tmp_path / "again",
            consensus=2,
            frames_per_video=6,
            frame_max_pixels=160 * 160,
        )
        assert server.count() == len(requests)
    record = read_records(run.directory)["bottle"]
    assert record["scores"]["text"]["events"] == {"recall": 1.0, "precision": 0.5}
    assert record["scores"]["video"]["events"] == {"recall": 1.0, "precision": 1.0}
    assert record["events"]["precision"][1]["votes"] == ["neutral", "entailment"]
    walk = read_records(run.directory)["walk"]
    assert walk["status"] == "unscored" and len(walk["unusable_replies"]) == 3
    assert (run.overall()["success"], run.overall()["failed"]) == (1, 1)
    assert run.overall("events", "video")["precision"] == 1.0
    openai = [r for r in requests if r.api == "openai"]
    gemini = [r for r in requests if r.api == "gemini"]
    assert all(r.body["response_format"] == {"type": "json_object"} for r in openai)
    assert all(r.system and "JSON" in r.system for r in requests)
    assert {r.num_images for r in gemini} == {6} and len(gemini) == 2  # one verification, asked twice
    assert gemini[0].texts[0].endswith(" seconds:")  # each frame is labelled with its time
    assert {r.body["generationConfig"]["seed"] for r in gemini} == {0, 1}
    usage = run.metrics["judge_usage"]
    assert usage["judge"]["calls"] == len(openai) and usage["video_judge"]["calls"] == len(gemini)
    assert usage["judge"]["prompt_tokens"] > 0 and usage["judge"]["cost_usd"] > 0
    for name in ("header.json", "samples.jsonl", "metrics.json", "report.md"):
        assert "sk-secret-test-key" not in (run.directory / name).read_text()
    header = json.loads((run.directory / "header.json").read_text())
    assert (
        header["judge"]["model"] == "gpt-4.1-2025-04-14"
        and header["judge"]["base_url"] == server.openai_base_url
    )
    report = (run.directory / "report.md").read_text()
    assert "openai:gpt-4.1-2025-04-14" in report and "gemini:gemini-2.5-flash" in report
    assert "| Video F1 | Video precision |" in report and "## Unscored samples (1)" in report
    assert (
        again.metrics["scores"]["events"]["video"]["subsets"]
        == run.metrics["scores"]["events"]["video"]["subsets"]
    )
    assert again.metrics["judge_usage"]["judge"]["calls"] == 0
    assert again.metrics["judge_usage"]["judge"]["cached_calls"] > 0


def test_end_to_end_http_failures_are_retried_or_recorded(tmp_path, shared_videos):
    from support.fake_judges import FakeFault, FakeJudgeServer
    from vidspan.judge import OpenAIJudge

    bench, candidates, world = _bottle_case(tmp_path, shared_videos)
    answer = _over_http(world)
    seen = {"rate_limited": False}

    def flaky(info: Any) -> Any:
        if "garbage in." in info.prompt:
            return FakeFault.client_error(400, "The prompt was filtered by the content policy.")
        if not seen["rate_limited"]:
            seen["rate_limited"] = True
            return FakeFault.rate_limit(retry_after=0)
        return answer(info)

    with FakeJudgeServer(flaky) as server:
        judge = OpenAIJudge(
            "gpt-4.1",
            base_url=server.openai_base_url,
            api_key="k",
            cache=False,
            backoff_seconds=0.01,
            timeout_seconds=10.0,
        )
        run = evaluate_captions(bench, candidates, judge, out_dir=tmp_path / "run")
    assert read_records(run.directory)["bottle"]["status"] == "scored"  # the 429 was retried
    walk = read_records(run.directory)["walk"]
    assert walk["status"] == "unscored" and "content policy" in walk["error"]
    assert (run.overall()["success"], run.overall()["failed"]) == (1, 1)
