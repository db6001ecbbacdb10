"""point / count / track on generated clips with a known moving object, through the real sampling path.

The model is scripted (it finds the red square in the frames it is shown and answers in Molmo2's or
Qwen3-VL's format); everything else is real: decoding, resizing for the model, windows, parsing, time and
coordinate conversion. Results are compared with the object's true position.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import vidspan.points.ask as ask
from support.moving import Motion, molmo2_reply, moving_clip, qwen_reply
from vidspan.errors import ParseError
from vidspan.models import families
from vidspan.testing.mock import MockVideoModel

SMALL = {"fps": 2.0, "max_frames": 8, "max_pixels": 96 * 160, "min_pixels": 32 * 32}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Motion]]:
    root = tmp_path_factory.mktemp("moving")
    out = {}
    for name, motion in {"plain": Motion(), "rotated": Motion(rotation=90),
                         "long": Motion(duration=12.0, vx=10.0)}.items():  # fmt: skip
        out[name] = (moving_clip(root / f"{name}.mp4", motion), motion)
    return out


def molmo(**kwargs) -> MockVideoModel:
    return MockVideoModel([molmo2_reply], family=families.MOLMO2, name="molmo-scripted", **kwargs)


def assert_on_truth(points, motion: Motion, tol_px: float = 2.5) -> None:
    assert points
    for p in points:
        x, y = motion.displayed(p.t)
        assert abs(p.x - x) <= tol_px and abs(p.y - y) <= tol_px, (p, (x, y))


def test_point_puts_each_point_on_the_object_at_the_frames_true_time(clips) -> None:
    path, motion = clips["plain"]
    vm = molmo()
    result = ask.point(path, "red square", vm, **SMALL)
    call = vm.history[0]
    assert call.prompt == "Point to red square\nPlease say 'There are none.' if it is not in the video."
    assert [p.t for p in result] == list(call.timestamps)  # snapped back to the true pts
    assert_on_truth(result, motion)
    assert [p.object_id for p in result] == list(range(1, len(result) + 1))
    assert result.width == 160 and result.height == 96 and not result.violations
    assert all(abs(p.x_norm - p.x / 160) < 1e-9 for p in result)
    assert result.to_dict()["points"][0]["label"] == "red square"


def test_rotated_video_points_are_in_displayed_pixels(clips) -> None:
    path, motion = clips["rotated"]
    result = ask.point(path, "red square", molmo(), **SMALL)
    assert (result.width, result.height) == (96, 160)
    assert_on_truth(result, motion)


def test_long_video_windows_keep_each_point_once_in_source_time(clips) -> None:
    path, motion = clips["long"]
    vm = molmo()
    result = ask.point(path, "red square", vm, **SMALL, window_seconds=5.0, overlap_seconds=2.0)
    assert len(vm.history) >= 3 and len(result.windows) == len(vm.history)
    times = [p.t for p in result]
    assert times == sorted(times) and len(times) == len(set(times))  # overlaps not doubled
    assert max(times) > 10.0
    assert_on_truth(result, motion)


def test_track_is_one_object_across_windows(clips) -> None:
    path, motion = clips["long"]
    result = ask.track(path, "red square", molmo(), **SMALL, window_seconds=5.0, overlap_seconds=2.0)
    assert list(result) == [1]
    positions = result[1].positions
    assert positions[0].t < 1.0 and positions[-1].t > 10.0
    assert_on_truth(positions, motion)
    assert result[1].at(positions[3].t) == positions[3]
    assert result.to_dict()["tracks"][0]["object_id"] == 1


def test_track_prompt_names_the_sampling_rate(clips) -> None:
    path, _ = clips["plain"]
    vm = molmo()
    ask.track(path, "red square", vm, **SMALL)
    assert vm.history[0].prompt == "Track red square in 2 FPS."


def test_count_reads_the_stated_number_with_its_point(clips) -> None:
    path, motion = clips["plain"]
    result = ask.count(path, "red square", molmo(), **SMALL)
    assert result.count == 1 and len(result) == 1
    assert_on_truth(result, motion)
    assert "shows a total of 1" in result.raw[0]


def test_qwen_family_points_from_json_with_times(clips) -> None:
    path, motion = clips["plain"]
    vm = MockVideoModel([qwen_reply], family=families.QWEN3_VL)
    result = ask.point(path, "red square", vm, **SMALL)
    assert "point_2d" in vm.history[0].prompt
    assert_on_truth(result, motion)
    assert [p.t for p in result] == list(vm.history[0].timestamps)


def test_none_answers_give_no_points_and_a_zero_count(clips) -> None:
    path, _ = clips["plain"]
    vm = MockVideoModel(["There are none."], family=families.MOLMO2)
    assert len(ask.point(path, "a cat", vm, **SMALL)) == 0
    counted = ask.count(path, "a cat", vm, **SMALL)
    assert counted.count == 0 and not counted.violations


def test_points_past_the_window_are_dropped_with_a_violation(clips) -> None:
    path, _ = clips["plain"]
    vm = MockVideoModel(['<points coords="1.0 1 500 500;9.5 2 500 500">x</points>'], family=families.MOLMO2)
    result = ask.point(path, "x", vm, **SMALL)
    assert len(result) == 1 and abs(result[0].t - 1.0) <= ask.SNAP_SECONDS
    assert any("past the window" in v for v in result.violations)


def test_strict_raises_on_garbage_and_lenient_keeps_the_raw_text(clips) -> None:
    path, _ = clips["plain"]
    vm = MockVideoModel(["I think it is on the left"], family=families.MOLMO2)
    result = ask.point(path, "x", vm, **SMALL)
    assert len(result) == 0 and result.raw == ("I think it is on the left",) and result.violations
    with pytest.raises(ParseError):
        ask.point(path, "x", vm, **SMALL, strict=True)


@pytest.mark.parametrize("query", ["", "   "])
def test_empty_query_is_refused(clips, query: str) -> None:
    with pytest.raises(ValueError, match="Invalid query"):
        ask.point(clips["plain"][0], query, molmo())


def test_molmo2_behind_an_openai_compatible_server_tracks_over_http(clips) -> None:
    """A real loopback server (vidspan's own, the wire format vLLM speaks) serving a scripted Molmo2; the
    client sends timestamped JPEG frames and reads the tracks back."""
    from vidspan.models import get_model
    from vidspan.models.openai import serve

    path, motion = clips["plain"]
    served = MockVideoModel([molmo2_reply], family=families.MOLMO2, name="molmo2-served")
    with serve(served, served_model="molmo2-served") as server:
        client = get_model("molmo2-served", base_url=server.base_url, family="molmo2", input_mode="frames")
        assert client.family.name == "molmo2"
        result = ask.track(path, "red square", client, **SMALL)
    assert served.history[0].prompt == "Track red square in 2 FPS."
    assert list(result) == [1]
    assert_on_truth(result[1].positions, motion, tol_px=3.5)  # JPEG on the wire
