"""caption() and find() over real decoded video, with a scripted model (text-dependent logic).

The real transformers path is exercised in test_end_to_end.py; here the model is a MockVideoModel so the
window merging, ranking and parsing can be checked against known answers.
"""

from __future__ import annotations

import pytest

import vidspan
from vidspan.errors import ParseError, VideoError
from vidspan.models import families
from vidspan.testing.mock import MockVideoModel
from vidspan.types import Clip, Span
from vidspan.video import VideoReader, plan_windows

MARLIN_CAPTION = (
    "<think>\n\n</think>\n\n"
    "Scene: Three water bottles stand on a wooden table.\n"
    "Events:\n"
    "<0.0 - 6.5> A hand picks up the left bottle.\n"
    "<6.5 - 12.0> The hand puts the bottle back.\n"
    "<30.0 - 45.0> A hand moves the right bottle.\n"
)


def test_caption_single_window_marlin_shape(shared_videos):
    model = MockVideoModel([MARLIN_CAPTION])
    cap = vidspan.caption(shared_videos / "bottle-detection.mp4", model)
    assert set(cap.to_dict()) == {"caption", "scene", "events"}
    assert cap.to_dict()["caption"] == MARLIN_CAPTION
    assert cap.scene == "Three water bottles stand on a wooden table."
    assert [(e.start, e.end) for e in cap] == [(0.0, 6.5), (6.5, 12.0), (30.0, pytest.approx(39.9, abs=0.1))]
    assert any("clipped" in v for v in cap.violations)  # 45 s is past the end of a 39.9 s clip
    call = model.history[0]
    assert call.prompt == families.MARLIN_CAPTION_PROMPT  # verbatim
    assert call.frame_shape == (78, 320, 576, 3)  # qwen-vl-utils rule: 79.7 → 78 frames, 640x360 → 576x320
    assert list(call.timestamps) == sorted(call.timestamps)
    assert call.window.start == 0.0 and call.window.end == pytest.approx(39.9, abs=0.1)
    assert cap.settings["fps"] == 2.0 and cap.settings["max_frames"] == 240
    assert {"decode", "parse", "total"} <= set(cap.timings)


def test_caption_strict_raises_with_raw(shared_videos):
    model = MockVideoModel(["<5.0 - 3.0> backwards"])
    with pytest.raises(ParseError) as info:
        vidspan.caption(shared_videos / "asl-eat.mkv", model, strict=True)
    assert info.value.raw == "<5.0 - 3.0> backwards"


def _scripted_events(truth: list[tuple[float, float, str]]):
    """A reply function that reports the true events visible in each window, in window time."""

    def reply(clip: Clip, prompt: str) -> str:
        w = clip.window
        lines = ["Scene: A test pattern.", "Events:"]
        for start, end, text in truth:
            if end > w.start and start < w.end:
                s, e = max(start, w.start) - w.start, min(end, w.end) - w.start
                lines.append(f"<{s:.1f} - {e:.1f}> {text}")
        return "\n".join(lines)

    return reply


def test_caption_long_video_one_timeline(long_clip):
    truth = [
        (5.0, 15.0, "a red ball rolls in"),
        (100.0, 130.0, "a blue car crosses the frame slowly"),
        (150.0, 160.0, "a dog sits"),
        (205.0, 212.0, "a door opens"),
        (280.0, 295.0, "lights go out"),
    ]
    model = MockVideoModel([_scripted_events(truth)])
    cap = vidspan.caption(long_clip, model)
    assert len(cap.windows) == 3
    assert cap.windows[0].start == 0.0 and cap.windows[-1].end == pytest.approx(300.0, abs=0.2)
    got = [(round(e.start, 1), round(e.end, 1), e.description) for e in cap]
    assert got == [(s, pytest.approx(e, abs=0.2), t) for s, e, t in truth]
    # each window was shown timestamps inside itself, at about 2 fps
    for call in model.history:
        assert call.window.start <= call.timestamps[0] < call.timestamps[-1] <= call.window.end
        assert call.frame_shape[0] == 212  # balanced windows of 106.7 s at 2 fps, floored to even
    assert cap.raw.count("[window ") == 3


def test_find_long_video_picks_best_window_in_source_time(long_clip):
    # window 1 sees nothing useful, window 2 answers confidently, window 3 answers unsure
    model = MockVideoModel(["no idea", "From 30.0 to 40.0.", "From 1.0 to 2.0."], logprobs=[-3.0, -0.1, -2.0])
    hit = vidspan.find(long_clip, "a door opens", model)
    assert hit.format_ok
    assert hit.window == model.history[1].window
    assert hit.span == Span(model.history[1].window.start + 30.0, model.history[1].window.start + 40.0)
    assert hit.score == pytest.approx(0.9048, abs=1e-3)
    assert len(hit.candidates) == 3 and hit.candidates[0].span is None
    assert hit.to_dict() == {"raw": "From 30.0 to 40.0.", "span": hit.span.to_tuple(), "format_ok": True}


def test_find_several_queries_decode_once(long_clip, monkeypatch):
    calls = []
    real_sample = VideoReader.sample

    def counting_sample(self, *args, **kwargs):
        calls.append(kwargs.get("window"))
        return real_sample(self, *args, **kwargs)

    monkeypatch.setattr(VideoReader, "sample", counting_sample)
    model = MockVideoModel(["From 1.0 to 2.0."])
    hits = vidspan.find(long_clip, ["a", "b", "c"], model, max_frames=60, max_pixels=64 * 64)
    assert [h.query for h in hits] == ["a", "b", "c"]
    windows = {c.window for c in model.history}
    # 60 frames at 2 fps = 30 s windows; default overlap is a quarter of that
    expected = plan_windows(300.0, window_seconds=30.0, overlap_seconds=7.5)
    assert len(expected) == 13
    assert len(calls) == len(windows) == len(expected)
    assert len(model.history) == 3 * len(windows)
    assert {c.prompt for c in model.history} == {
        families.MARLIN_FIND_PROMPT.replace("{event}", q) for q in "abc"
    }


def test_find_uses_family_format(shared_videos):
    model = MockVideoModel(["The event happens in 1.5 - 2.5 seconds."], family=families.QWEN3_VL)
    hit = vidspan.find(shared_videos / "asl-walk.mkv", "a hand moves", model)
    assert hit.span == Span(1.5, 2.5) and hit.format_ok
    assert "'a hand moves'" in model.history[0].prompt


def test_find_not_found_and_bad_inputs(shared_videos, tmp_path):
    model = MockVideoModel(["I cannot tell."])
    hit = vidspan.find(shared_videos / "asl-eat.mkv", "a dog", model)
    assert hit.span is None and not hit.format_ok and hit.raw == "I cannot tell."
    with pytest.raises(ValueError, match="Invalid query"):
        vidspan.find(shared_videos / "asl-eat.mkv", "  ", model)
    with pytest.raises(ValueError, match="Invalid query"):
        vidspan.find(shared_videos / "asl-eat.mkv", [], model)
    with pytest.raises(VideoError, match="no such file"):
        vidspan.find(tmp_path / "missing.mp4", "x", model)
    with pytest.raises(ValueError, match="Invalid overlap_seconds"):
        vidspan.find(shared_videos / "asl-eat.mkv", "x", model, window_seconds=10, overlap_seconds=10)
    with pytest.raises(TypeError, match="only apply when the model is given by name"):
        vidspan.find(shared_videos / "asl-eat.mkv", "x", model, device="cpu")
