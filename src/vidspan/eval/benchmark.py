"""One benchmark type and one registry for every evaluation: grounding and dense captions alike.

A :class:`Benchmark` is a loaded annotation file (typed samples) plus where each sample's video is. A
:class:`BenchmarkSpec` says how to load one; specs register through the plugin hook
``register_benchmarks(register)`` like models and judges, so a new benchmark is one module with a loader
and a ``@hookimpl``. The built-in specs (TimeLens-Bench, Charades-STA, ActivityNet, QVHighlights,
TimeChat's COCO files; DREAM-1K, CaReBench, caption JSONL) come from the built-in plugin.

>>> from vidspan.eval.benchmark import load_benchmark                          # doctest: +SKIP
>>> bench = load_benchmark("dream1k", "DREAM-1k.jsonl", "videos/", kind="captions")  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import inspect
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from vidspan.errors import BenchmarkFormatError, EvalFileNotFoundError, UnknownBenchmarkError

logger = logging.getLogger(__name__)

__all__ = [
    "VIDEO_EXTENSIONS",
    "Benchmark",
    "BenchmarkSpec",
    "benchmark_specs",
    "find_video",
    "get_benchmark_spec",
    "load_benchmark",
    "locate_videos",
    "require_object",
    "require_text",
]

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mkv", ".webm", ".avi", ".mov")
"""Extensions tried, in order, when a video id names no existing file by itself."""

Kind = Literal["grounding", "captions"]
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Benchmark(Generic[S]):
    """A loaded benchmark: its samples and where their videos are.

    ``video_paths`` maps a sample's ``video`` to the file found for it; ``missing_videos`` lists the video
    ids with no file (their samples are reported, never silently dropped).
    """

    name: str
    annotations: str
    samples: tuple[S, ...]
    video_dir: str | None = None
    video_paths: dict[str, Path] = field(default_factory=dict, compare=False)
    missing_videos: tuple[str, ...] = ()

    @property
    def subsets(self) -> tuple[str, ...]:
        """Subset names in first-seen order."""
        return tuple(dict.fromkeys(s.subset for s in self.samples))  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class BenchmarkSpec:
    """How to load one benchmark.

    Attributes:
        name: Registry name (``"charades-timelens"``, ``"dream1k"``).
        kind: ``"grounding"`` (samples are ``GroundingSample``) or ``"captions"`` (``CaptionSample``).
        loader: ``loader(path, **options) -> list[sample]``.
        description: One line for listings.
        subset: The subset its samples get by default (``None``: decided by the file).
        aliases: Other names it answers to.
        options: Loader options this benchmark fixes by default (callers may override them).
        video_extensions: Extensions tried, in order, when finding a video file.
        video_names: ``video_names(sample)``: the file names to try for a sample (default: its ``video``).
        sort_missing: Orders the missing video ids in listings (default: plain string order).
    """

    name: str
    kind: Kind
    loader: Callable[..., list[Any]]
    description: str
    subset: str | None = None
    aliases: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    video_extensions: tuple[str, ...] = VIDEO_EXTENSIONS
    video_names: Callable[[Any], Iterable[str]] | None = None
    sort_missing: Callable[[str], Any] | None = None


def benchmark_specs(kind: Kind | None = None) -> dict[str, BenchmarkSpec]:
    """Every registered benchmark (built-in and plugins'), by name; only one kind's when ``kind`` is given."""
    from vidspan.models.registry import list_benchmarks

    specs: dict[str, BenchmarkSpec] = {}
    for spec in list_benchmarks():
        if not isinstance(spec, BenchmarkSpec):
            raise TypeError(f"Invalid benchmark spec: {spec!r}. It must be a BenchmarkSpec.")
        if kind is None or spec.kind == kind:
            specs.setdefault(spec.name, spec)
    return specs


def get_benchmark_spec(name: str, kind: Kind | None = "grounding") -> BenchmarkSpec:
    """Look a benchmark up by name or alias (case-insensitive, ``_`` reads as ``-``).

    Raises:
        UnknownBenchmarkError: No such benchmark of this kind; the message suggests close names.
    """
    specs = benchmark_specs(kind)
    key = name.strip().lower().replace("_", "-")
    for spec in specs.values():
        if key == spec.name or key in spec.aliases:
            return spec
    names = [n for spec in specs.values() for n in (spec.name, *spec.aliases)]
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
    close += [n for n in specs if key and key in n and n not in close]
    what = "caption benchmark" if kind == "captions" else "benchmark"
    if close:
        raise UnknownBenchmarkError(f"Unknown {what} {name!r}. Did you mean: {', '.join(close)}?")
    raise UnknownBenchmarkError(f"Unknown {what} {name!r}. Available: {', '.join(specs)}.")


def load_benchmark(
    name: str,
    annotations: str | Path,
    videos: str | Path | None = None,
    *,
    kind: Kind = "grounding",
    **options: Any,
) -> Benchmark[Any]:
    """Load a benchmark's annotations and find its videos.

    Args:
        name: A registered benchmark of ``kind`` (see :func:`benchmark_specs`).
        annotations: The annotation file.
        videos: Folder holding the videos, directly or one subfolder deep (``videos/charades/<vid>.mp4``);
            ``None`` leaves ``video_paths`` and ``missing_videos`` empty.
        kind: ``"grounding"`` or ``"captions"``.
        **options: Loader options (``subset`` for TimeLens files, ``durations`` for Charades-STA).

    Returns:
        The benchmark with every sample; videos without a file are listed in ``missing_videos``.

    Raises:
        UnknownBenchmarkError: ``name`` is not registered.
        ValueError: An option the benchmark's loader does not take.
        EvalFileNotFoundError: The annotation file or the video folder does not exist.
        BenchmarkFormatError: The annotation file is malformed.
    """
    spec = get_benchmark_spec(name, kind)
    accepted = list(inspect.signature(spec.loader).parameters)[1:]
    for key in options:
        if key not in accepted:
            raise ValueError(
                f"Invalid option for benchmark {spec.name!r}: {key!r}. "
                f"It must be one of: {', '.join(accepted) or '(none)'}."
            )
    samples = tuple(spec.loader(annotations, **{**spec.options, **options}))
    if videos is None:
        return Benchmark(name=spec.name, annotations=str(annotations), samples=samples)
    found, missing = locate_videos(samples, videos, spec.video_extensions, spec.video_names)
    return Benchmark(
        name=spec.name,
        annotations=str(annotations),
        samples=samples,
        video_dir=str(videos),
        video_paths=found,
        missing_videos=tuple(sorted(missing, key=spec.sort_missing)),
    )


def locate_videos(
    samples: Iterable[Any],
    videos: str | Path,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
    names: Callable[[Any], Iterable[str]] | None = None,
) -> tuple[dict[str, Path], set[str]]:
    """The file of each sample's video under ``videos``, and the video ids with none (logged).

    ``names(sample)`` gives the file names to try in order (default: ``sample.video``); each is looked up
    with :func:`find_video`.

    Raises:
        EvalFileNotFoundError: ``videos`` is not a folder.
    """
    root = Path(videos)
    if not root.is_dir():
        raise EvalFileNotFoundError(f"Video folder not found: {root}")
    listing = _list_videos(root)
    found: dict[str, Path] = {}
    missing: set[str] = set()
    for sample in samples:
        if sample.video in found or sample.video in missing:
            continue
        for name in dict.fromkeys(names(sample) if names else (sample.video,)):
            path = find_video(name, root, extensions, subset=sample.subset, listing=listing)
            if path is not None:
                found[sample.video] = path
                break
        else:
            missing.add(sample.video)
    if missing:
        logger.warning("%d of %d videos not found under %s", len(missing), len(missing) + len(found), root)
    return found, missing


def find_video(
    video: str,
    root: str | Path,
    extensions: Iterable[str] = VIDEO_EXTENSIONS,
    *,
    subset: str | None = None,
    listing: Mapping[str, frozenset[str]] | None = None,
) -> Path | None:
    """Find the file of a video id under ``root`` or one subfolder of it.

    Tried in order: ``root``, ``root/<subset>``, the other subfolders (sorted); in each, the id as is and
    with each extension, then the same for the id with ``v_`` added or removed (ActivityNet).

    Args:
        video: Video id, with or without extension.
        root: The video folder.
        extensions: Extensions to try, with the dot.
        subset: A subfolder to try before the others.
        listing: A listing from a previous call (folder name relative to ``root`` → file names), to avoid
            listing the folder again.
    """
    root = Path(root)
    listing = _list_videos(root) if listing is None else listing
    folders = [""] + ([subset] if subset and subset in listing else [])
    folders += sorted(f for f in listing if f not in folders)
    ids = [video, video[2:] if video.startswith("v_") else f"v_{video}"]
    names = [n for vid in ids if vid for n in (vid, *(vid + ext for ext in extensions))]
    for folder in folders:
        files = listing[folder]
        for name in names:
            if name in files:
                return root / folder / name if folder else root / name
    return None


def _list_videos(root: Path) -> dict[str, frozenset[str]]:
    """``{"": files in root, "<sub>": files in root/<sub>, ...}`` (hidden entries skipped)."""
    top: list[str] = []
    listing: dict[str, frozenset[str]] = {}
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                with os.scandir(entry.path) as inner:
                    listing[entry.name] = frozenset(e.name for e in inner if e.is_file())
            elif entry.is_file():
                top.append(entry.name)
    listing[""] = frozenset(top)
    return listing


def require_object(value: Any, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """``value`` as a JSON object holding ``keys``, else :class:`BenchmarkFormatError` naming ``where``."""
    if not isinstance(value, dict):
        raise BenchmarkFormatError(f"{where}: expected a JSON object, got {type(value).__name__}.")
    absent = [k for k in keys if k not in value]
    if absent:
        raise BenchmarkFormatError(f"{where}: missing {', '.join(repr(k) for k in absent)}.")
    return value


def require_text(value: Any, where: str) -> str:
    """``value`` as a string, else :class:`BenchmarkFormatError` naming ``where``."""
    if not isinstance(value, str):
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise BenchmarkFormatError(f"{where}: expected text, got {shown}.")
    return value
