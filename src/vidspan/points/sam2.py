"""Masks from tracks: SAM2 video (transformers' ``sam2_video``) turns a track's points into masks per frame.

Each object of a :class:`~vidspan.points.results.Tracking` is one SAM2 object (``obj_id`` = its object id).
Its positions are positive point prompts on the frames nearest their times (one point per object and frame:
the position nearest the frame's time); the first one starts the object and every later one corrects it, so
SAM2's memory only has to bridge the times a track skips (occlusions, or times asked for between
positions). The frames SAM2 sees are only those to be labelled plus those prompted, decoded with vidspan's
reader (rotation applied, the longer side at most ``max_side``) and put in time order; SAM2 then propagates
forward from the first prompted frame, and backward from it when earlier frames are asked for. Masks come
back at the source frame's displayed size. lmms-eval's point-tracking evaluation uses the same model
(``facebook/sam2.1-hiera-large``).

Cost: every prompted frame is a conditioning frame, and SAM2 attends to all of them on every frame, so a
track with hundreds of positions makes each frame slower (pass fewer ``times`` or thin the track).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vidspan.errors import MissingDependencyError, ModelError
from vidspan.models.hub import resolve_checkpoint
from vidspan.points.masks import encode_rle
from vidspan.points.results import Tracking
from vidspan.video.reader import open_video

__all__ = ["DEFAULT_SAM2", "masks_for_tracks", "masks_to_rle"]

logger = logging.getLogger(__name__)

DEFAULT_SAM2 = "facebook/sam2.1-hiera-large"
INSTALL_HINT = (
    "SAM2 masks need torch and transformers>=5.0 (sam2_video). Install with: pip install 'vidspan[qwen]'"
)
SAM2_MODEL_TYPES = ("sam2_video", "sam2")


def masks_for_tracks(
    video: str | Path,
    tracking: Tracking,
    *,
    model: str = DEFAULT_SAM2,
    device: str | None = None,
    times: Sequence[float] | None = None,
    max_side: int = 1024,
) -> dict[int, dict[float, Any]]:
    """Segment every tracked object with SAM2 video, prompted by the track's positions.

    Args:
        video: The video the tracking was made on.
        tracking: Objects and their positions (source seconds, displayed pixels of a
            ``tracking.width`` x ``tracking.height`` frame).
        model: A SAM2 video checkpoint: a local directory or a Hub id (found in the local cache).
        device: Torch device; default ``"cuda"`` when available, else ``"cpu"``.
        times: Source seconds to label, each on its nearest frame; default every time of any position.
        max_side: Longest side, in pixels, the frames are decoded at (SAM2 resizes them to its own square).

    Returns:
        Object id → {time in ``times`` → ``bool`` mask ``(tracking.height, tracking.width)``}; an object
        without positions gets empty masks.

    Raises:
        ValueError: For a tracking without a frame size, bad ``times``, ``max_side`` or ``device``.
        MissingDependencyError: torch or a transformers with ``sam2_video`` is not installed.
        ModelUnavailableError: ``model`` is neither a local checkpoint nor obtainable from the Hub.
        ModelError: The checkpoint is not SAM2 video or fails to load or run.
        VideoError: The video cannot be read.
    """
    import numpy as np

    width, height = int(tracking.width), int(tracking.height)
    if width <= 0 or height <= 0:
        raise ValueError(f"Invalid tracking size: {width}x{height}. It must be positive (the source frame).")
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 16:
        raise ValueError(f"Invalid max_side: {max_side!r}. It must be an integer >= 16.")
    wanted = sorted({float(p.t) for p in tracking.points} if times is None else {float(t) for t in times})
    bad = [t for t in wanted if not math.isfinite(t) or t < 0]
    if bad:
        raise ValueError(f"Invalid time: {bad[0]}. Times must be finite seconds >= 0.")
    masks = {
        track.object_id: {t: np.zeros((height, width), dtype=bool) for t in wanted}
        for track in tracking.tracks
    }
    if not wanted or not any(track.positions for track in tracking.tracks):
        return masks
    torch, sam2_model, processor = _load(model, device)
    with open_video(video) as reader:
        frame_times = np.asarray(reader.frame_times)
        label_frame = {t: _nearest(frame_times, t) for t in wanted}
        prompts = _prompts(tracking, frame_times)
        frames = sorted(set(label_frame.values()) | set(prompts))
        long_side = max(reader.info.height, reader.info.width)
        scale = max_side / long_side
        size = None if long_side <= max_side else (
            max(1, round(reader.info.height * scale)), max(1, round(reader.info.width * scale)))  # fmt: skip
        pixels = reader.decode(frames, size=size)
    started = time.perf_counter()
    slot = {frame: k for k, frame in enumerate(frames)}  # SAM2 sees only these frames, in time order
    try:
        by_slot = _segment(torch, sam2_model, processor, pixels,
                           {slot[f]: objs for f, objs in prompts.items()}, (height, width))  # fmt: skip
    except (RuntimeError, ValueError, IndexError, TypeError) as exc:
        raise ModelError(f"SAM2 failed on {video}: {' '.join(str(exc).split())}") from exc
    logger.info("SAM2: %d object(s) on %d frame(s), %d prompted, in %.2f s", len(masks), len(frames),
                len(prompts), time.perf_counter() - started)  # fmt: skip
    for t, frame in label_frame.items():
        for object_id, mask in by_slot.get(slot[frame], {}).items():
            masks[object_id][t] = mask
    return masks


def masks_to_rle(masks: Mapping[int, Mapping[float, Any]]) -> dict[int, dict[str, dict[str, Any]]]:
    """Masks from :func:`masks_for_tracks` → JSON-ready COCO RLEs: object id → {``"%.3f"`` seconds → RLE}."""
    return {int(oid): {f"{float(t):.3f}": encode_rle(mask) for t, mask in sorted(per_time.items())}
            for oid, per_time in masks.items()}  # fmt: skip


def _prompts(tracking: Tracking, frame_times: Any) -> dict[int, dict[int, tuple[float, float]]]:
    """Frame index → object id → its position (0–1) nearest in time to that frame, for every frame a
    position falls on."""
    best: dict[int, dict[int, tuple[float, float, float]]] = {}
    for track in tracking.tracks:
        for p in track.positions:
            frame = _nearest(frame_times, p.t)
            gap = abs(p.t - float(frame_times[frame]))
            here = best.setdefault(frame, {})
            if track.object_id not in here or gap < here[track.object_id][0]:
                here[track.object_id] = (gap, p.x / tracking.width, p.y / tracking.height)
    return {f: {o: (x, y) for o, (_, x, y) in objs.items()} for f, objs in best.items()}


def _nearest(frame_times: Any, t: float) -> int:
    """Index of the frame whose time is nearest to ``t`` (the earlier one on a tie)."""
    import numpy as np

    i = int(np.searchsorted(frame_times, t))
    if i <= 0:
        return 0
    if i >= len(frame_times):
        return len(frame_times) - 1
    return i - 1 if t - frame_times[i - 1] <= frame_times[i] - t else i


def _segment(torch: Any, model: Any, processor: Any, pixels: Any, prompts: Mapping[int, Mapping[int, Any]],
             out_size: tuple[int, int]) -> dict[int, dict[int, Any]]:  # fmt: skip
    """Prompt, propagate and post-process: session frame → object id → ``bool`` mask at ``out_size``."""
    frame_h, frame_w = pixels.shape[1:3]
    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device
    out: dict[int, dict[int, Any]] = {}

    def keep(output: Any) -> None:
        logits = output.pred_masks.float()
        masks = processor.post_process_masks([logits], original_sizes=[list(out_size)])[0]
        ids = list(output.object_ids)
        out[int(output.frame_idx)] = {int(o): masks[k, 0].cpu().numpy() for k, o in enumerate(ids)}

    with torch.inference_mode():
        session = processor.init_video_session(video=pixels, inference_device=device, dtype=dtype)
        for frame in sorted(prompts):
            ids = sorted(prompts[frame])
            # SAM2 takes pixel indices (it adds 0.5 itself); vidspan's positions are continuous (centres +0.5)
            xy = [prompts[frame][o] for o in ids]
            points = [[[[_clip(x) * frame_w - 0.5, _clip(y) * frame_h - 0.5]] for x, y in xy]]
            processor.add_inputs_to_inference_session(
                inference_session=session, frame_idx=frame, obj_ids=ids, input_points=points,
                input_labels=[[[1]] * len(ids)],
            )  # fmt: skip
            model(inference_session=session, frame_idx=frame)  # the prompt's conditioning output
        first = min(prompts)
        for output in model.propagate_in_video_iterator(inference_session=session, start_frame_idx=first):
            keep(output)
        if first > 0:
            for output in model.propagate_in_video_iterator(session, start_frame_idx=first, reverse=True):
                keep(output)
    return out


def _clip(v: float) -> float:
    return min(max(v, 0.0), 1.0)


def _load(model: str, device: str | None) -> tuple[Any, Any, Any]:
    """``(torch, model, processor)`` for a checkpoint, cached for the last one used."""
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(INSTALL_HINT) from exc
    from vidspan.models.torchvision_compat import ensure_torchvision

    ensure_torchvision()  # before anything of transformers' image and video processing is imported
    try:
        from transformers import Sam2VideoModel, Sam2VideoProcessor  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(INSTALL_HINT) from exc
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = str(torch.device(device))
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"Invalid device: {device!r}. It must be a torch device such as 'cpu' or 'cuda'."
        ) from exc
    path = resolve_checkpoint(model)
    return (torch, *_load_cached(str(path), device))


@functools.lru_cache(maxsize=1)
def _load_cached(path: str, device: str) -> tuple[Any, Any]:
    import torch
    from transformers import Sam2VideoModel, Sam2VideoProcessor

    try:
        model_type = json.loads((Path(path) / "config.json").read_text()).get("model_type")
    except (OSError, ValueError) as exc:
        raise ModelError(f"Cannot read the config of {path}: {exc}") from exc
    if model_type not in SAM2_MODEL_TYPES:
        raise ModelError(
            f"The checkpoint {path} is a {model_type!r} model, not SAM2 video; pass a SAM2 checkpoint "
            f"such as {DEFAULT_SAM2}."
        )
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        processor = Sam2VideoProcessor.from_pretrained(path, local_files_only=True)
        sam2 = Sam2VideoModel.from_pretrained(path, local_files_only=True, dtype=dtype)
    except (OSError, ValueError, KeyError, AttributeError, TypeError, RuntimeError) as exc:
        raise ModelError(f"Cannot load SAM2 video from {path}: {' '.join(str(exc).split())}") from exc
    logger.info("Loaded SAM2 video from %s on %s/%s", path, device, str(dtype).removeprefix("torch."))
    return sam2.to(device).eval(), processor
