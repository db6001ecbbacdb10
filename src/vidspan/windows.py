"""Running a model over the windows of a video: model resolution, sampling settings, decode prefetch.

A video longer than one model window (by default what fits in 240 frames at 2 fps, 120 s) is split into
overlapping windows. While the model answers about one window, the next one is decoded in a background
thread, so generation does not wait on decoding.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from typing_extensions import Unpack

from vidspan.models.base import VideoModel
from vidspan.models.registry import DEFAULT_MODEL, get_model
from vidspan.types import Clip, Span, VideoInfo
from vidspan.video import SamplingConfig, VideoReader, open_video, plan_windows

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
"""``progress(done, total, message)``: called after each window (and once before the first)."""

DEFAULT_OVERLAP_SECONDS = 10.0
"""Default overlap between windows (a quarter of the window when windows are shorter than 40 s)."""

VideoLike = str | PathLike[str]
ModelLike = str | VideoModel


@dataclass(frozen=True, slots=True)
class RunSettings:
    """Sampling and windowing settings of one call, recorded with its results."""

    sampling: SamplingConfig
    window_seconds: float
    overlap_seconds: float
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    def windows_for(self, info: VideoInfo) -> list[Span]:
        """The windows this run splits ``info``'s video into."""
        return plan_windows(
            info.duration_seconds,
            window_seconds=self.window_seconds,
            overlap_seconds=self.overlap_seconds,
            start_seconds=info.start_seconds,
        )

    def to_dict(self) -> dict[str, Any]:
        """Every sampling field (derived, so no setting can be left out) plus the windowing, for logs,
        JSON output and run identities."""
        return asdict(self.sampling) | {
            "window_seconds": self.window_seconds,
            "overlap_seconds": self.overlap_seconds,
        }


_model_cache: dict[tuple[Any, ...], VideoModel] = {}
_model_cache_lock = threading.Lock()


def load_model(model: ModelLike | None, **model_options: Any) -> VideoModel:
    """A :class:`VideoModel` from a name (loaded once per process and reused) or an instance."""
    if isinstance(model, VideoModel):
        if model_options:
            raise TypeError(
                f"Invalid model options: {sorted(model_options)}. "
                "They only apply when the model is given by name."
            )
        return model
    name = model or DEFAULT_MODEL
    if not isinstance(name, str):
        raise TypeError(
            f"Invalid model: {name!r}. It must be a model name, a checkpoint path or a VideoModel."
        )
    key = (name, tuple(sorted((k, repr(v)) for k, v in model_options.items())))
    with _model_cache_lock:
        if key not in _model_cache:
            _model_cache.clear()  # keep one model in memory at a time
            _model_cache[key] = get_model(name, **model_options)
        return _model_cache[key]


def clear_model_cache() -> None:
    """Forget models loaded by name (frees their memory once nothing else holds them)."""
    with _model_cache_lock:
        _model_cache.clear()


class SamplingOptions(TypedDict, total=False):
    """Keyword overrides of frame sampling and windowing accepted by caption(), find() and runs.

    Attributes:
        fps: Target sampling rate (default 2.0).
        min_frames: Fewest frames per window (default 4).
        max_frames: Most frames per window (default 240).
        max_pixels: Per-frame pixel budget (default 200704).
        min_pixels: Per-frame pixel floor (default 128 tokens).
        window_seconds: Length of one model window (default ``max_frames / fps``).
        overlap_seconds: Overlap between neighbouring windows (default 10 s, a quarter of shorter windows).
    """

    fps: float
    min_frames: int
    max_frames: int
    max_pixels: int
    min_pixels: int
    window_seconds: float
    overlap_seconds: float


SAMPLING_KEYS = frozenset(SamplingOptions.__annotations__)


def prepare(
    model: ModelLike | None, sampling: SamplingConfig | None, options: dict[str, Any], *, remote: bool = False
) -> tuple[VideoModel, RunSettings]:
    """Split ``options`` into sampling overrides and model options; load the model; resolve the settings.

    ``None`` values are treated as not given. With ``remote`` the model is only described
    (:class:`vidspan.scale.RemoteModel`: a Ray job loads it in its workers).
    """
    given = {k: v for k, v in options.items() if v is not None}
    overrides = {k: given.pop(k) for k in list(given) if k in SAMPLING_KEYS}
    # check the values before the slow model load; no check depends on the patch factor
    sampling_for((sampling or SamplingConfig()).patch_factor, sampling, **overrides)
    if remote:
        from vidspan.scale.remote import remote_model

        vm: VideoModel = remote_model(model, **given)
    else:
        vm = load_model(model, **given)
    return vm, sampling_for(vm.family.patch_factor, sampling, **overrides)


@contextmanager
def opened(
    video: VideoLike, model: ModelLike | None, sampling: SamplingConfig | None, options: dict[str, Any]
) -> Iterator[tuple[VideoReader, VideoModel, RunSettings]]:
    """Open ``video``, then :func:`prepare` the model: a bad file or setting fails before weights load."""
    started = time.perf_counter()
    with open_video(Path(video)) as reader:
        probe_seconds = time.perf_counter() - started
        vm, settings = prepare(model, sampling, options)
        settings.timings["probe"] = probe_seconds
        yield reader, vm, settings


def sampling_for(
    patch_factor: int, sampling: SamplingConfig | None = None, **overrides: Unpack[SamplingOptions]
) -> RunSettings:
    """Resolve sampling settings: explicit arguments over ``sampling`` over the defaults (Marlin's)."""
    base = sampling or SamplingConfig(patch_factor=patch_factor)
    if sampling is None or sampling.patch_factor != patch_factor:
        base = replace(base, patch_factor=patch_factor)
    unknown = set(overrides) - SAMPLING_KEYS
    if unknown:
        raise TypeError(
            f"Invalid sampling options: {sorted(unknown)}. They must be among {sorted(SAMPLING_KEYS)}."
        )
    given = {k: v for k, v in overrides.items() if v is not None}
    window_seconds = given.pop("window_seconds", None)
    overlap_seconds = given.pop("overlap_seconds", None)
    config = replace(base, **given) if given else base
    window = window_seconds if window_seconds is not None else config.max_frames / config.fps
    overlap = min(DEFAULT_OVERLAP_SECONDS, window / 4) if overlap_seconds is None else overlap_seconds
    if not window > 0:
        raise ValueError(f"Invalid window_seconds: {window}. It must be > 0.")
    if not 0 <= overlap < window:
        raise ValueError(
            f"Invalid overlap_seconds: {overlap}. It must be >= 0 and < window_seconds ({window})."
        )
    return RunSettings(config, float(window), float(overlap))


@dataclass(frozen=True, slots=True)
class WindowClip:
    """One window's clip, with its position among all windows."""

    index: int
    total: int
    clip: Clip


def iter_window_clips(
    reader: VideoReader,
    settings: RunSettings,
    *,
    progress: Progress | None = None,
) -> Iterator[WindowClip]:
    """Decode the windows of an open video one by one, prefetching the next while the caller works."""
    info = reader.info
    windows = settings.windows_for(info)
    if progress:
        message = f"{reader.path.name}: {len(windows)} window(s) over {info.duration_seconds:.1f} s"
        progress(0, len(windows), message)

    def decode(window: Span) -> tuple[Clip, float]:
        t0 = time.perf_counter()
        clip = reader.sample(settings.sampling, window=window)
        return clip, time.perf_counter() - t0

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidspan-decode") as pool:
        pending: Future[tuple[Clip, float]] = pool.submit(decode, windows[0])
        for i in range(len(windows)):
            clip, seconds = pending.result()
            settings.timings["decode"] = settings.timings.get("decode", 0.0) + seconds
            if i + 1 < len(windows):
                pending = pool.submit(decode, windows[i + 1])
            yield WindowClip(i, len(windows), clip)
            if progress:
                progress(i + 1, len(windows), f"window {i + 1}/{len(windows)} done")


def decode_windows(video: VideoLike, settings: RunSettings) -> list[WindowClip]:
    """Open ``video`` and decode all of its windows at once (a Ray decode task hands them to a model actor);
    the frames are the ones :func:`iter_window_clips` yields for the same settings."""
    with open_video(Path(video)) as reader:
        windows = settings.windows_for(reader.info)
        return [WindowClip(i, len(windows), reader.sample(settings.sampling, window=w))
                for i, w in enumerate(windows)]  # fmt: skip


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """What the model will be shown for one window: frame count, frame size and video tokens."""

    window: Span
    num_frames: int
    height: int
    width: int
    video_tokens: int

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return {
            "start": self.window.start,
            "end": self.window.end,
            "num_frames": self.num_frames,
            "height": self.height,
            "width": self.width,
            "video_tokens": self.video_tokens,
        }


def plan_video(video: VideoLike, settings: RunSettings) -> tuple[VideoInfo, list[WindowPlan]]:
    """Probe ``video`` and plan every window without decoding a frame (for ``vidspan probe``)."""
    from vidspan.video.plan import frame_pixel_budget, smart_resize

    config = settings.sampling
    with open_video(Path(video)) as reader:
        info = reader.info
        windows = settings.windows_for(info)
        plans = []
        for window in windows:
            n = len(reader.select(window, config))
            min_pixels, max_pixels = frame_pixel_budget(n, config)
            h, w = smart_resize(
                info.height,
                info.width,
                factor=config.patch_factor,
                min_pixels=min_pixels,
                max_pixels=max_pixels,
            )
            tokens = (n // 2) * (h // config.patch_factor) * (w // config.patch_factor)
            plans.append(WindowPlan(window, n, h, w, tokens))
    return info, plans
