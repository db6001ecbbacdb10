"""Tracks → masks through SAM2 video (transformers ``sam2_video``) on a tiny random checkpoint.

Random weights give random masks, so the tests check what the pipeline promises: one entry per object,
a mask at exactly each time asked, the source frame's displayed shape (rotation applied), JSON round
trips, typed errors with one clear sentence. Tracking J&F through the same masks is covered by an
evaluation run here too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support.moving import Motion, molmo2_reply, moving_clip
from support.tiny_sam2 import build_tiny_sam2
from vidspan.errors import ModelError, ModelUnavailableError
from vidspan.models import families
from vidspan.points.masks import decode_rle, encode_rle
from vidspan.points.results import Point, Track, Tracking
from vidspan.points.sam2 import DEFAULT_SAM2, masks_for_tracks, masks_to_rle
from vidspan.testing.mock import MockVideoModel

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_sam2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sam2(tmp_path_factory.mktemp("tiny") / "sam2")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, Motion]]:
    """rotation → (clip, motion): the moving red square, plain and with a 90° display rotation."""
    root = tmp_path_factory.mktemp("clips")
    return {r: (moving_clip(root / f"r{r}.mp4", Motion(rotation=r)), Motion(rotation=r)) for r in (0, 90)}


def true_tracking(path: Path, motion: Motion, times: list[float], *, late: bool = False) -> Tracking:
    """The square's true track (object 1) plus a one-point "corner" object (2, at ``times[-1]`` if
    ``late``) and an object never seen (3)."""
    w, h = (motion.height, motion.width) if motion.rotation in (90, 270) else (motion.width, motion.height)
    points = tuple(Point(t, x, y, x / w, y / h, 1, "sq") for t in times for x, y in [motion.displayed(t)])
    t2 = times[-1] if late else times[0]
    corner = (Point(t2, 5.0, 5.0, 5.0 / w, 5.0 / h, 2, "corner"),)
    tracks = (Track(1, "sq", points), Track(2, "corner", corner), Track(3, "ghost", ()))
    return Tracking(query="sq", video=str(path), width=w, height=h, duration=motion.duration, tracks=tracks)


@pytest.mark.parametrize("rotation", [0, 90])
def test_every_object_gets_a_mask_at_each_asked_time(tiny_sam2, clips, rotation) -> None:
    path, motion = clips[rotation]
    tracking = true_tracking(path, motion, [0.5, 1.0, 2.0])
    assert (tracking.height, tracking.width) == ((160, 96) if rotation else (96, 160))
    asked = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]  # 0.0 comes before the first prompt: propagated backwards
    masks = masks_for_tracks(path, tracking, model=str(tiny_sam2), times=asked, device="cpu")
    assert sorted(masks) == [1, 2, 3]
    for per_time in masks.values():
        assert sorted(per_time) == asked
        for mask in per_time.values():
            assert isinstance(mask, np.ndarray)
            assert mask.dtype == bool and mask.shape == (tracking.height, tracking.width)
    assert not any(m.any() for m in masks[3].values())  # never seen: never prompted, all empty


FRESH = """
import json, sys
from vidspan.points.results import Point, Track, Tracking
from vidspan.points.sam2 import masks_for_tracks
video, model = sys.argv[1:3]
track = Track(1, "sq", (Point(1.0, 40.0, 48.0, 0.25, 0.5, 1),))
tracking = Tracking(query="sq", video=video, width=160, height=96, duration=4.0, tracks=(track,))
masks = masks_for_tracks(video, tracking, model=model, times=[1.0])
print(json.dumps({str(o): {str(t): list(m.shape) for t, m in ms.items()} for o, ms in masks.items()}))
"""


def test_a_fresh_process_loads_sam2_before_anything_imported_torchvision(tiny_sam2, clips) -> None:
    """The builder has applied the torchvision fallback in this process; a user's process has not."""
    path, _ = clips[0]
    command = [sys.executable, "-c", FRESH, str(path), str(tiny_sam2)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"1": {"1.0": [96, 160]}}


def test_default_times_are_the_positions_times(tiny_sam2, clips) -> None:
    path, motion = clips[0]
    tracking = true_tracking(path, motion, [0.3, 1.2, 2.5], late=True)  # object 2 starts at 2.5 s
    masks = masks_for_tracks(path, tracking, model=str(tiny_sam2))
    assert {oid: sorted(per_time) for oid, per_time in masks.items()} == {
        o: [0.3, 1.2, 2.5] for o in (1, 2, 3)
    }


def test_small_max_side_still_gives_source_sized_masks(tiny_sam2, clips) -> None:
    path, motion = clips[90]
    tracking = true_tracking(path, motion, [1.0])
    masks = masks_for_tracks(path, tracking, model=str(tiny_sam2), times=[1.0, 1.05], max_side=40)
    assert {m.shape for per_time in masks.values() for m in per_time.values()} == {(160, 96)}


def test_rle_export_decodes_back_to_the_same_masks(tiny_sam2, clips) -> None:
    path, motion = clips[0]
    masks = masks_for_tracks(path, true_tracking(path, motion, [0.0, 1.0]), model=str(tiny_sam2))
    rng = np.random.default_rng(0)
    masks[1][1.0] = rng.random((96, 160)) > 0.5  # a mask with many runs, whatever the random model says
    back = json.loads(json.dumps(masks_to_rle(masks)))
    assert sorted(back) == ["1", "2", "3"]
    for oid, per_time in masks.items():
        assert sorted(back[str(oid)]) == [f"{t:.3f}" for t in sorted(per_time)]
        for t, mask in per_time.items():
            decoded = decode_rle(back[str(oid)][f"{t:.3f}"])
            assert decoded.dtype == bool and np.array_equal(decoded, mask)


def test_nothing_to_label_needs_no_model(clips) -> None:
    path, motion = clips[0]
    tracking = true_tracking(path, motion, [1.0])
    assert masks_for_tracks(path, tracking, model="/no/such/sam2", times=[]) == {1: {}, 2: {}, 3: {}}
    unseen = Tracking(
        query="x", video=str(path), width=160, height=96, duration=4.0, tracks=(Track(7, "x", ()),)
    )
    out = masks_for_tracks(path, unseen, model="/no/such/sam2", times=[0.5])
    assert list(out) == [7] and out[7][0.5].shape == (96, 160) and not out[7][0.5].any()


def test_a_missing_checkpoint_is_one_sentence(tmp_path, clips) -> None:
    path, motion = clips[0]
    with pytest.raises(
        ModelUnavailableError, match=r"^The checkpoint directory .*no-such-sam2 does not exist\.$"
    ):
        masks_for_tracks(path, true_tracking(path, motion, [0.0]), model=str(tmp_path / "no-such-sam2"))


def test_a_checkpoint_that_is_not_sam2_is_a_model_error(tmp_path, clips) -> None:
    path, motion = clips[0]
    (tmp_path / "qwen").mkdir()
    (tmp_path / "qwen" / "config.json").write_text(json.dumps({"model_type": "qwen3_vl"}))
    with pytest.raises(ModelError, match=r"is a 'qwen3_vl' model, not SAM2 video; pass a SAM2 checkpoint"):
        masks_for_tracks(path, true_tracking(path, motion, [0.0]), model=str(tmp_path / "qwen"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text(json.dumps({"model_type": "sam2_video"}))
    with pytest.raises(ModelError, match=r"^Cannot load SAM2 video from .*broken: ") as caught:
        masks_for_tracks(path, true_tracking(path, motion, [0.0]), model=str(tmp_path / "broken"))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"times": [-1.0]}, r"Invalid time: -1\.0\. Times must be finite seconds >= 0\."),
        ({"times": [float("nan")]}, r"Invalid time: nan\."),
        ({"max_side": 0}, r"Invalid max_side: 0\. It must be an integer >= 16\."),
        ({"device": "toaster"}, r"Invalid device: 'toaster'\. It must be a torch device"),
    ],
)
def test_bad_arguments_are_value_errors(tiny_sam2, clips, kwargs, message) -> None:
    path, motion = clips[0]
    with pytest.raises(ValueError, match=message):
        masks_for_tracks(path, true_tracking(path, motion, [0.0]), model=str(tiny_sam2), **kwargs)


def test_a_tracking_without_a_frame_size_is_refused(clips) -> None:
    path, _ = clips[0]
    sizeless = Tracking(query="x", video=str(path), width=0, height=0, duration=4.0)
    with pytest.raises(ValueError, match=r"Invalid tracking size: 0x0\."):
        masks_for_tracks(path, sizeless)


def test_the_default_is_the_model_lmms_eval_uses() -> None:
    assert DEFAULT_SAM2 == "facebook/sam2.1-hiera-large"


def test_tracking_eval_reports_j_and_f_through_sam2(tiny_sam2, tmp_path) -> None:
    from vidspan.eval.points.run import run_points_eval

    motion = Motion()
    moving_clip(tmp_path / "plain.mp4", motion)
    masks = []
    for f in range(40):
        m = np.zeros((96, 160), bool)
        x0 = round(motion.x0 + motion.vx * f / 10)
        m[40:56, x0 : x0 + 16] = True
        masks.append(encode_rle(m))
    row = {"id": "t1", "exp": "red square", "w": 160, "h": 96, "fps": 10, "clip": "plain",
           "masks": [{"object_id": 1, "masks": masks}]}  # fmt: skip
    (tmp_path / "t.jsonl").write_text(json.dumps(row) + "\n")
    vm = MockVideoModel([molmo2_reply], family=families.MOLMO2)
    small = {"max_frames": 8, "max_pixels": 96 * 160, "min_pixels": 32 * 32}
    run = run_points_eval("molmo2-video-track", tmp_path / "t.jsonl", tmp_path, vm, tmp_path / "run",
                          masks_model=str(tiny_sam2), **small)  # fmt: skip
    m = run.metrics
    assert vm.history[0].prompt == "Track red square in 1 FPS."  # tracking evaluates at 1 fps
    assert m["f1"] == pytest.approx(100.0)  # a perfect tracker's points are inside the true masks
    assert 0.0 <= m["j"] <= 100.0 and 0.0 <= m["f"] <= 100.0
    assert m["j_and_f"] == pytest.approx((m["j"] + m["f"]) / 2)
