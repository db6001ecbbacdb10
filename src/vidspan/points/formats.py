"""Molmo2's point, track and count answers, read and written; Qwen3-VL's JSON points and boxes, read.

Molmo2 answers ``<points coords="T ID X Y ID X Y;T ID X Y">LABEL</points>`` (``html-v2``: frames
separated by ``;``; ``html-v1``: by a tab), ``<tracks coords="...">LABEL</tracks>`` with persistent
object ids, and wraps counts as ``Counting the <points ...> shows a total of N.`` or ``There are N
<points ...>.``. ``T`` is a time in seconds with one decimal (an image index for images); ``X`` and
``Y`` are integers on a 0–1000 scale of the frame's width and height.

The reader is lenient and total: it never raises on a ``str``, it accepts every separator either
variant writes (tab, ``;``, ``,``, ``:``) and 1–4 digit coordinates, and it records each fragment it
could not use as a sentence in ``violations`` instead of dropping it silently (the upstream parser's
bugs, ``molmo2-formats.md`` §6: out-of-image values, duplicate ids, short coordinates, the count
wrappers and ``There are none.``). ``strict=True`` raises :class:`~vidspan.errors.ParseError` listing
every violation, and also holds the text to the canonical form (zero-padded coordinates, the variant's
separator, ids continuing across frames for points, ascending ids within a frame for tracks).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from vidspan.errors import ParseError
from vidspan.parse.timestamps import strip_think

__all__ = [
    "COUNT_MODES",
    "NONE_ANSWER",
    "NO_TRACKS_ANSWER",
    "VARIANTS",
    "ParsedPoints",
    "RawPoint",
    "format_count",
    "format_points",
    "format_tracks",
    "parse_molmo2",
    "parse_qwen_points",
]

VARIANTS: dict[str, str] = {"html-v1": "\t", "html-v2": ";"}
"""Pointing format variant → its frame separator (``html-v2`` is what Molmo2's final SFT writes)."""
COUNT_MODES = ("point_then_count", "count_then_point", "count", "point")
NONE_ANSWER = "There are none."
NO_TRACKS_ANSWER = "No tracks available."
SCALE = 1000

_ELEMENT_RE = re.compile(
    r"<(?P<kind>points|tracks)\b(?P<attrs>[^>]*)>(?P<label>.*?)</(?P=kind)\s*>", re.S | re.I
)
_OPEN_RE = re.compile(r"<(?:points|tracks)\b", re.I)
_ATTR_RE = re.compile(r'(?P<name>[\w-]+)\s*=\s*"(?P<value>[^"]*)"')
_SEPARATORS = "\t;,:"
_FRAME_SPLIT_RE = re.compile(r"[\t;,:]")
_TIME_RE = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_INT_RE = re.compile(r"\d+")
_CANONICAL_TIME_RE = re.compile(r"\d+\.\d")
_NONE_RE = re.compile(r"\bthere\s+(?:are|is)\s+none\b|\bnone\b", re.I)
_NO_TRACKS_RE = re.compile(r"\bno\s+tracks?\s+available\b", re.I)
_BARE_INT_RE = re.compile(r"\s*(\d+)\s*\.?\s*")
_TOTAL_RE = re.compile(r"\ba\s+total\s+of\s+(\d+)|\bthe\s+total\s+number\b[^:]*?\bis:?\s*(\d+)", re.I)
_THERE_ARE_RE = re.compile(r"\bthere\s+(?:are|is)\s+(\d+)\b", re.I)
_QWEN_FENCE_RE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


@dataclass(frozen=True, slots=True)
class RawPoint:
    """One point as the model wrote it.

    Attributes:
        t: Seconds for video (an image index for image input), as written.
        id: The point id (pointing: running number; tracking: the object id).
        x: 0–1000 horizontal coordinate, as written.
        y: 0–1000 vertical coordinate, as written.
        kind: ``points``, ``tracks`` or ``qwen`` (Qwen3-VL JSON; a box contributes its centre).
        label: The element's label text (Qwen: the ``label`` key).
        box: For Qwen ``bbox_2d``: ``(x1, y1, x2, y2)`` on 0–1000; else None.
    """

    t: float
    id: int
    x: float
    y: float
    kind: str = "points"
    label: str = ""
    box: tuple[float, float, float, float] | None = None


@dataclass(frozen=True, slots=True)
class ParsedPoints:
    """Everything read from one answer.

    Attributes:
        points: Every usable point, in text order.
        count: The count the answer states (a wrapper, a bare integer, ``There are none.`` → 0); else
            None. When no count is stated it is not inferred here: see ``point_count``.
        empty: The answer is one of the valid empty answers (``There are none.``, ``No tracks available.``).
        labels: Each element's label, in order.
        alts: Each element's ``alt`` attribute (``""`` when absent).
        violations: Every fragment that could not be used or deviates from the canonical form.
        raw: The text as given.
    """

    points: tuple[RawPoint, ...]
    count: int | None
    empty: bool
    labels: tuple[str, ...] = ()
    alts: tuple[str, ...] = ()
    violations: tuple[str, ...] = field(default=())
    raw: str = ""

    @property
    def point_count(self) -> int:
        """The stated count, else the number of points (pointing) or distinct objects (tracks)."""
        if self.count is not None:
            return self.count
        if any(p.kind == "tracks" for p in self.points):
            return len({p.id for p in self.points if p.kind == "tracks"})
        return len(self.points)


def parse_molmo2(text: str, *, strict: bool = False) -> ParsedPoints:
    """Read a Molmo2 answer: ``<points>``/``<tracks>`` elements, counts and the empty answers.

    Args:
        text: The model's text (``<think>`` blocks are ignored).
        strict: Raise :class:`~vidspan.errors.ParseError` listing every violation instead of returning.

    Returns:
        The points on the 0–1000 scale (convert with :func:`vidspan.points.results.to_pixels`).
    """
    raw = text if isinstance(text, str) else ""
    body = strip_think(raw).strip()
    violations: list[str] = []
    points: list[RawPoint] = []
    labels: list[str] = []
    alts: list[str] = []
    elements = list(_ELEMENT_RE.finditer(body))
    unclosed = len(_OPEN_RE.findall(body)) - len(elements)
    if unclosed > 0:
        violations.append(f"{unclosed} <points>/<tracks> element(s) not closed; their points are not read.")
    for match in elements:
        kind = match.group("kind").lower()
        attrs = {m.group("name").lower(): m.group("value") for m in _ATTR_RE.finditer(match.group("attrs"))}
        label = match.group("label").strip()
        labels.append(label)
        alts.append(attrs.get("alt", ""))
        if "coords" not in attrs:
            violations.append(f"<{kind}> element without a coords attribute: {match.group(0)[:60]!r}.")
            continue
        points.extend(_read_coords(attrs["coords"], kind, label, strict, violations))
    empty = not elements and bool(_NO_TRACKS_RE.search(body) or _is_none(body))
    count = _read_count(body, elements, violations)
    if not elements and count is None and not empty and body:
        violations.append(f"No points, tracks or count in the answer: {body[:60]!r}.")
    if strict and not violations:
        _check_canonical(body, elements, points, violations)
    result = ParsedPoints(tuple(points), count, empty, tuple(labels), tuple(alts), tuple(violations), raw)
    if strict and violations:
        raise ParseError("Not a canonical Molmo2 answer: " + " ".join(violations), raw, tuple(violations))
    return result


def _is_none(body: str) -> bool:
    """``There are none.`` (and a bare ``none``), read with a real word boundary (upstream bug, §6)."""
    return bool(_NONE_RE.search(body)) and not re.search(r"\d", body)


def _read_coords(value: str, kind: str, label: str, strict: bool, violations: list[str]) -> list[RawPoint]:
    bad_chars = sorted({c for c in value if not (c.isdigit() or c in " ." + _SEPARATORS)})
    if bad_chars:
        violations.append(f"coords holds characters other than digits, spaces and separators: {bad_chars}.")
    out: list[RawPoint] = []
    for frame in _FRAME_SPLIT_RE.split(value):
        tokens = frame.split()
        if not tokens:
            if frame or value.strip():
                violations.append("An empty frame in coords.")
            continue
        if not _TIME_RE.fullmatch(tokens[0]):
            violations.append(f"Frame {frame.strip()!r} does not start with a time.")
            continue
        t = float(tokens[0])
        rest = tokens[1:]
        if not rest or len(rest) % 3:
            violations.append(
                f"Frame {frame.strip()!r} has {len(rest)} numbers after its time; "
                "points come as id x y triples."
            )
        seen: set[int] = set()
        for i in range(0, len(rest) - len(rest) % 3, 3):
            triple = rest[i : i + 3]
            if not all(_INT_RE.fullmatch(tok) for tok in triple):
                violations.append(f"Point {' '.join(triple)!r} at {t:g} s is not three integers.")
                continue
            pid, x, y = (int(tok) for tok in triple)
            if not (0 <= x <= SCALE and 0 <= y <= SCALE) or len(triple[1]) > 4 or len(triple[2]) > 4:
                violations.append(f"Point {pid} at {t:g} s is outside the 0–1000 frame: ({x}, {y}).")
                continue
            if pid < 1:
                violations.append(f"Point id {pid} at {t:g} s; ids start at 1.")
                continue
            if pid in seen:
                violations.append(f"Id {pid} appears twice at {t:g} s; the first is kept.")
                continue
            seen.add(pid)
            out.append(RawPoint(t, pid, float(x), float(y), kind, label))
    return out


def _read_count(body: str, elements: list[re.Match], violations: list[str]) -> int | None:
    """The count the answer states, from any of the three wrappers or a bare integer."""
    outside = _ELEMENT_RE.sub(" ", body).strip()
    if not elements and _BARE_INT_RE.fullmatch(outside):
        return int(_BARE_INT_RE.fullmatch(outside).group(1))
    total = _TOTAL_RE.search(outside)
    if total:
        return int(total.group(1) or total.group(2))
    there = _THERE_ARE_RE.search(outside)
    if there:
        return int(there.group(1))
    if not elements and _is_none(outside):
        return 0
    return None


def _check_canonical(
    body: str, elements: list[re.Match], points: list[RawPoint], violations: list[str]
) -> None:
    for match in elements:
        coords = dict(
            (m.group("name").lower(), m.group("value")) for m in _ATTR_RE.finditer(match.group("attrs"))
        )
        value = coords.get("coords", "")
        used = {c for c in value if c in _SEPARATORS}
        if len(used) > 1:
            violations.append(f"coords mixes frame separators {sorted(used)!r}; one variant uses one.")
        for frame in _FRAME_SPLIT_RE.split(value):
            tokens = frame.split()
            if frame != " ".join(tokens):
                violations.append(f"Frame {frame!r} has extra spaces.")
            if tokens and not _CANONICAL_TIME_RE.fullmatch(tokens[0]) and "." in tokens[0]:
                violations.append(f"Time {tokens[0]!r} is not written with one decimal.")
            for tok in tokens[1:][1::3] + tokens[1:][2::3]:
                if len(tok) < 3:
                    violations.append(f"Coordinate {tok!r} is not zero-padded to three digits.")
    pointing = [p for p in points if p.kind == "points"]
    if pointing and [p.id for p in pointing] != list(range(1, len(pointing) + 1)):
        violations.append("Point ids do not run 1, 2, 3, ... across the frames.")
    by_frame: dict[tuple[str, float], list[int]] = {}
    for p in points:
        if p.kind == "tracks":
            by_frame.setdefault((p.label, p.t), []).append(p.id)
    if any(ids != sorted(ids) for ids in by_frame.values()):
        violations.append("Track ids are not ascending within a frame.")


def _format_time(t: float, image: bool) -> str:
    return str(int(t)) if image else f"{t:.1f}"


def _scale(x: float, y: float, width: float, height: float) -> tuple[int, int]:
    """Pixels → 0–1000, each coordinate clamped on its own (upstream's clamp has a precedence bug, §6)."""
    sx = min(max(round(SCALE * x / width), 0), SCALE)
    sy = min(max(round(SCALE * y / height), 0), SCALE)
    return sx, sy


def _element(kind: str, frames: Iterable[str], label: str, variant: str, alt: str | None) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"Unknown pointing format {variant!r}. It must be one of {sorted(VARIANTS)}.")
    alt_attr = f' alt="{alt}"' if alt else ""
    return f'<{kind}{alt_attr} coords="{VARIANTS[variant].join(frames)}">{label}</{kind}>'


def format_points(frames: Sequence[tuple[float, Sequence[tuple[float, float]]]], width: float, height: float,
                  label: str, *, variant: str = "html-v2", alt: str | None = None,
                  image: bool = False) -> str:  # fmt: skip
    """Write Molmo2's ``<points>`` element for pixel points per frame (``There are none.`` if none).

    Args:
        frames: ``(time, [(x_px, y_px), ...])`` per frame; frames are written in time order.
        width: The frame width in pixels.
        height: The frame height in pixels.
        label: The element's text.
        variant: ``html-v2`` (``;`` between frames) or ``html-v1`` (a tab).
        alt: An optional ``alt`` attribute.
        image: Times are image indices (written as integers) rather than seconds.
    """
    next_id = 1
    written = []
    for t, pts in sorted(frames, key=lambda f: f[0]):
        scaled = sorted(_scale(x, y, width, height) for x, y in pts)
        if not scaled:
            continue
        parts = [_format_time(t, image)]
        for sx, sy in scaled:
            parts.append(f"{next_id} {sx:03d} {sy:03d}")
            next_id += 1
        written.append(" ".join(parts))
    if not written:
        return NONE_ANSWER
    return _element("points", written, label, variant, alt)


def format_tracks(tracks: Mapping[object, Sequence[tuple[float, float, float]]], width: float, height: float,
                  label: str, *, variant: str = "html-v2", alt: str | None = None) -> str:  # fmt: skip
    """Write Molmo2's ``<tracks>`` element (``No tracks available.`` if nothing is visible).

    Args:
        tracks: Object key → its visible ``(time, x_px, y_px)`` positions (occluded times left out).
            Objects are re-numbered 1..K in order of first appearance (ties by position).
    """
    frames: dict[float, list[tuple[tuple[int, int], object]]] = {}
    for key, positions in tracks.items():
        for t, x, y in positions:
            frames.setdefault(round(t, 1), []).append((_scale(x, y, width, height), key))
    ids: dict[object, int] = {}
    written = []
    for t in sorted(frames):
        for _xy, key in sorted(frames[t], key=lambda item: item[0]):
            ids.setdefault(key, len(ids) + 1)
        seen: set[object] = set()
        entries = []
        for xy, key in sorted(frames[t], key=lambda item: ids[item[1]]):
            if key in seen:
                continue
            seen.add(key)
            entries.append(f"{ids[key]} {xy[0]:03d} {xy[1]:03d}")
        written.append(" ".join([_format_time(t, False), *entries]))
    if not written:
        return NO_TRACKS_ANSWER
    return _element("tracks", written, label, variant, alt)


def format_count(count: int, points: str = "", *, mode: str = "point_then_count") -> str:
    """Wrap a count (and its ``<points>`` element) as Molmo2 does; zero is ``There are none.``."""
    if mode not in COUNT_MODES:
        raise ValueError(f"Unknown count mode {mode!r}. It must be one of {list(COUNT_MODES)}.")
    if count == 0:
        return NONE_ANSWER
    if mode == "count":
        return str(count)
    if mode == "point":
        return points
    if mode == "count_then_point":
        return f"There are {count} {points}."
    return f"Counting the {points} shows a total of {count}."


def parse_qwen_points(text: str, *, t: float = 0.0, strict: bool = False) -> ParsedPoints:
    """Read Qwen3-VL's JSON points (``point_2d``) and boxes (``bbox_2d``) on its 0–1000 scale.

    The answer is a JSON list (or one object), bare or in a fenced block; a box contributes its centre as
    the point and keeps the box. An object's ``time`` (or ``t``) key gives its seconds, else it is at ``t``;
    an ``id`` key (a positive integer) gives its object id, else its 1-based position.
    """
    raw = text if isinstance(text, str) else ""
    body = strip_think(raw).strip()
    fenced = _QWEN_FENCE_RE.search(body)
    candidate = fenced.group(1).strip() if fenced else body
    violations: list[str] = []
    if fenced is None and candidate and candidate[0] not in "[{":
        start = min((i for i in (candidate.find("["), candidate.find("{")) if i >= 0), default=-1)
        candidate = candidate[start:] if start >= 0 else ""
    try:
        data = json.loads(candidate) if candidate else []
    except json.JSONDecodeError as exc:
        violations.append(f"Not JSON: {exc.msg} at character {exc.pos}.")
        data = []
    items = data if isinstance(data, list) else [data]
    points: list[RawPoint] = []
    for n, item in enumerate(items, 1):
        point = _qwen_item(item, n, t, violations)
        if point is not None:
            points.append(point)
    empty = not points and not violations and _is_none(body)
    result = ParsedPoints(
        tuple(points), None, empty, tuple(p.label for p in points), (), tuple(violations), raw
    )
    if strict and violations:
        raise ParseError("Not a Qwen3-VL point answer: " + " ".join(violations), raw, tuple(violations))
    return result


def _qwen_item(item: object, n: int, t: float, violations: list[str]) -> RawPoint | None:
    if not isinstance(item, dict):
        violations.append(f"Item {n} is not an object.")
        return None
    label = str(item.get("label", ""))
    values = item.get("point_2d", item.get("bbox_2d"))
    size = 2 if "point_2d" in item else 4
    if (
        not isinstance(values, list)
        or len(values) != size
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    ):
        violations.append(f"Item {n} has no point_2d [x, y] or bbox_2d [x1, y1, x2, y2].")
        return None
    if not all(0 <= v <= SCALE for v in values):
        violations.append(f"Item {n} is outside the 0–1000 frame: {values}.")
        return None
    when = item.get("time", item.get("t", t))
    if not isinstance(when, (int, float)) or isinstance(when, bool) or when < 0:
        violations.append(f"Item {n} has an invalid time {when!r}; it must be seconds >= 0.")
        return None
    ident = item.get("id", n)
    ident = ident if isinstance(ident, int) and not isinstance(ident, bool) and ident > 0 else n
    if size == 2:
        return RawPoint(float(when), ident, float(values[0]), float(values[1]), "qwen", label)
    x1, y1, x2, y2 = (float(v) for v in values)
    box = (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
    return RawPoint(float(when), ident, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, "qwen", label, box)
