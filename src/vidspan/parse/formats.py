"""Per-family answer formats: model text → caption events or one grounding span.

Two families of output are read here. Marlin-2B captions (``Scene:`` paragraph, ``Events:``, one
``<start - end> description`` line per event) and grounding answers, either Marlin's ``From X to Y.`` or
TimeLens's ``The event happens in X - Y seconds.``. Parsing is tolerant: each deviation from the canonical
form is recorded as a short sentence in ``violations`` and the text is read anyway. Lenient parsing never
raises on a ``str``; ``strict=True`` raises :class:`~vidspan.errors.ParseError` when anything was recorded.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TypeVar

from vidspan.errors import ParseError
from vidspan.parse.timestamps import (
    DASH_PATTERN,
    NUMBER_PATTERN,
    TIME_TOKEN_PATTERN,
    check_duration,
    find_time_pair,
    fit_span,
    parse_time,
    strip_think,
)
from vidspan.types import Event, Span

logger = logging.getLogger(__name__)

__all__ = ["OUTPUT_FORMATS", "ParsedCaption", "ParsedSpan", "parse_caption", "parse_span"]

_FLAGS = re.IGNORECASE | re.MULTILINE
_T = TIME_TOKEN_PATTERN
_RANGE = rf"(?P<a>{_T})(?P<sep>[ \t]*{DASH_PATTERN}[ \t]*|[ \t]+to[ \t]+)(?P<b>{_T})"
_BULLET = r"(?:[-*\u2022]|[0-9]+[.)])"

# Caption event markers: <a - b> or [a - b] anywhere; at the start of a line also (a - b) and a bare range,
# each optionally after a bullet ("-", "*", "1.").
_INLINE_RE = re.compile(
    rf"(?P<bold>\*\*)?(?P<open>[<\[])[ \t]*{_RANGE}[ \t]*(?P<close>[>\]])(?:\*\*)?", _FLAGS
)
_LINE_START_RE = re.compile(  # no two whitespace runs side by side: keeps matching linear
    rf"^[ \t]*(?P<bullet>{_BULLET}[ \t]+)?(?P<bold>\*\*)?(?:(?P<open>[<\[(])[ \t]*)?{_RANGE}"
    rf"(?:[ \t]*(?P<close>[>\])]))?(?:\*\*)?",
    _FLAGS,
)
_CANONICAL_MARKER_RE = re.compile(rf"<{NUMBER_PATTERN} - {NUMBER_PATTERN}>")
_SCENE_LABEL_RE = re.compile(r"^(?:\*\*[ \t]*)?scene[ \t]*(?:\*\*[ \t]*)?:[ \t]*(?:\*\*)?", _FLAGS)
_EVENTS_HEADER_RE = re.compile(
    r"(?:\*\*)?\bevents[ \t]*(?:\*\*[ \t]*)?:(?:\*\*)?|^[ \t]*(?:\*\*)?events(?:\*\*)?[ \t]*$", _FLAGS
)
_CANONICAL_CAPTION_RE = re.compile(
    rf"Scene: [^\n]+\n+Events:\n+(?:<{NUMBER_PATTERN} - {NUMBER_PATTERN}> [^\n]+\n+)*"
    rf"<{NUMBER_PATTERN} - {NUMBER_PATTERN}> [^\n]+"
)

# Grounding answers: the canonical form of each family (fallbacks: timestamps.find_time_pair).
OUTPUT_FORMATS: dict[str, tuple[str, str]] = {
    "marlin": (rf"From ({NUMBER_PATTERN}) to ({NUMBER_PATTERN})\.", "From <start> to <end>."),
    "timelens": (
        rf"The event happens in ({NUMBER_PATTERN}) - ({NUMBER_PATTERN}) seconds\.",
        "The event happens in <start> - <end> seconds.",
    ),
}
"""``output_format`` → (regex of the canonical answer, the canonical form in words)."""


@dataclass(frozen=True, slots=True)
class ParsedCaption:
    """A caption read from model text.

    Attributes:
        scene: The scene paragraph (one line; several lines are joined with spaces).
        events: Timed events sorted by ``(start, end)``.
        violations: Every deviation from the canonical Marlin caption form, as short sentences.
    """

    scene: str
    events: tuple[Event, ...]
    violations: tuple[str, ...]

    @property
    def format_ok(self) -> bool:
        """True when the text followed the canonical caption form exactly."""
        return not self.violations


@dataclass(frozen=True, slots=True)
class ParsedSpan:
    """One grounding span read from model text.

    Attributes:
        span: The span in seconds, or ``None`` when no span could be read (or it lies past the video end).
        format_ok: The answer matched the family's canonical form exactly (after removing a think block).
        violations: Every deviation found, as short sentences (also content issues such as a swapped span).
        clipped: The span was clipped to the video duration.
        as_written: The first ``(start, end)`` exactly as the model wrote it, before any swap or clip
            (what benchmark protocols such as TimeLens score), or ``None`` when no pair was read.
    """

    span: Span | None
    format_ok: bool
    violations: tuple[str, ...]
    clipped: bool = False
    as_written: tuple[float, float] | None = field(default=None, compare=False)


_Parsed = TypeVar("_Parsed", ParsedCaption, ParsedSpan)


def parse_caption(text: str, *, duration_seconds: float | None = None, strict: bool = False) -> ParsedCaption:
    """Read a Marlin-style caption: a scene paragraph and ``<start - end> description`` events.

    Args:
        text: The model's answer; a leading think block is removed first (not a violation).
        duration_seconds: Video length; events ending later are clipped, events starting at or after it
            are dropped (both recorded as violations).
        strict: Raise instead of returning when the text deviates from the canonical form.

    Returns:
        The scene, the events sorted by time, and the violations found.

    Raises:
        ParseError: ``strict`` is set and there is at least one violation.
        ValueError: ``duration_seconds`` is not a finite number > 0.
    """
    check_duration(duration_seconds)
    body = strip_think(text)
    notes: list[str] = []
    markers = _find_markers(body)
    pre = body[: markers[0].start()] if markers else body
    scene = _read_scene(pre, bool(markers), notes)
    events: list[Event] = []
    for index, marker in enumerate(markers):
        following = markers[index + 1] if index + 1 < len(markers) else None
        description = _read_description(body, marker, following, notes)
        _note_marker_style(marker, notes)
        try:
            start, end = parse_time(marker["a"]), parse_time(marker["b"])
        except ValueError:
            _add(notes, f"invalid time in {marker[0].strip()!r}; event dropped")
            continue
        span, _ = fit_span(start, end, duration_seconds, notes)
        if span is None:
            continue
        if not description:
            _add(notes, f"event at {span.start} - {span.end} has no description")
        events.append(Event(span, description))
    ordered = sorted(events, key=lambda event: (event.start, event.end))
    if ordered != events:
        _add(notes, "events out of order; sorted")
    if not notes and not _CANONICAL_CAPTION_RE.fullmatch(body):
        _add(
            notes, "caption layout differs from 'Scene: ...' / 'Events:' / '<start - end> description' lines"
        )
    result = ParsedCaption(scene=scene, events=tuple(ordered), violations=tuple(notes))
    return _finish(result, text, "Caption", strict)


def parse_span(
    text: str,
    *,
    output_format: str = "marlin",
    duration_seconds: float | None = None,
    strict: bool = False,
) -> ParsedSpan:
    r"""Read one time span from a grounding answer.

    The canonical answer of the family is tried first. Otherwise these are tried in order: clock-time
    pairs, ``a - b`` (any dash), ``a to b``, ``from a to b``, ``between a and b``, ``<a - b>``,
    ``[a, b]``, and finally the first two standalone times. Quoted text (an echoed query) is searched
    only when nothing is found outside quotes, and an ``<answer>...</answer>`` block is searched first.

    Numbers outside the canonical form: a decimal comma (``10,5``) is read as ``10.5``, a comma before
    exactly three digits (``1,234``) gives no span (thousands or decimals cannot be told apart), Unicode
    digits are read as ASCII, scientific notation (``1.2e1``) is read, a negative time is clamped to 0;
    each is a violation. A zero-length span (``From 5 to 5.``) is a violation too: lenient parsing returns
    it as written (it scores IoU 0 against any ground truth that has a length), strict parsing refuses it.

    Args:
        text: The model's answer; a leading think block is removed first (not a violation).
        output_format: ``"marlin"`` (``From X to Y.``) or ``"timelens"``
            (``The event happens in X - Y seconds.``).
        duration_seconds: Video length; a span ending later is clipped, one starting at or after it is
            dropped (both recorded as violations).
        strict: Raise instead of returning when anything deviates from the canonical form.

    Returns:
        The span (or ``None``), whether the form was canonical, and the violations found.

    Raises:
        ParseError: ``strict`` is set and there is at least one violation.
        ValueError: ``output_format`` is unknown or ``duration_seconds`` is not a finite number > 0.

    Example:
        >>> parse_span("<think>\n\n</think>\n\nFrom 14.3 to 18.2.").span
        Span(start=14.3, end=18.2)
    """
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(
            f"Invalid output_format: {output_format!r}. It must be one of: {', '.join(OUTPUT_FORMATS)}."
        )
    check_duration(duration_seconds)
    body = strip_think(text)
    notes: list[str] = []
    pattern, form = OUTPUT_FORMATS[output_format]
    canonical = re.fullmatch(pattern, body)
    if canonical:
        tokens: tuple[str, str] | None = (canonical[1], canonical[2])
    else:
        if not body:
            _add(notes, "empty answer")
        elif re.fullmatch(pattern, body + "."):
            _add(notes, "missing final period")
        else:
            _add(notes, f"answer is not in the form '{form}'")
        tokens = find_time_pair(body, notes)
    span, clipped, written = None, False, None
    if tokens is not None:
        try:
            start, end = parse_time(tokens[0]), parse_time(tokens[1])
        except ValueError:
            _add(notes, f"invalid time in '{tokens[0]}' - '{tokens[1]}'; no span")
        else:
            written = (start, end)
            if start == end:
                _add(notes, f"zero-length span ({start} - {end})")
            span, clipped = fit_span(start, end, duration_seconds, notes)
    result = ParsedSpan(
        span=span,
        format_ok=canonical is not None,
        violations=tuple(notes),
        clipped=clipped,
        as_written=written,
    )
    return _finish(result, text, "Answer", strict)


def _finish(result: _Parsed, text: str, what: str, strict: bool) -> _Parsed:
    """Return ``result``, or raise ParseError in strict mode when it has violations."""
    if result.violations:
        logger.debug("%s parsed with violations: %s", what, result.violations)
        if strict:
            raise ParseError(
                f"{what} does not follow the expected format: {'; '.join(result.violations)}.",
                raw=text,
                violations=result.violations,
            )
    return result


def _add(notes: list[str], note: str) -> None:
    """Record ``note`` once."""
    if note not in notes:
        notes.append(note)


# --- captions -------------------------------------------------------------------------------------------


def _find_markers(body: str) -> list[re.Match[str]]:
    """Event time ranges in document order, overlapping matches resolved in favour of the longer one."""
    found = sorted(
        [*_INLINE_RE.finditer(body), *_LINE_START_RE.finditer(body)], key=lambda m: (m.start(), -m.end())
    )
    markers: list[re.Match[str]] = []
    for match in found:
        if not markers or match.start() >= markers[-1].end():
            markers.append(match)
    return markers


def _read_scene(pre: str, has_events: bool, notes: list[str]) -> str:
    """The scene paragraph from the text before the first event (labels and header removed)."""
    if has_events and pre[pre.rfind("\n") + 1 :].strip():
        _add(notes, "events do not start on their own lines")
    headers = list(_EVENTS_HEADER_RE.finditer(pre))
    if headers:
        header = headers[-1]
        if not header[0].strip().strip("*").endswith(":"):
            _add(notes, "'Events' header without a colon")
        leftover = pre[header.end() :].strip()
        if leftover:
            _add(notes, f"text after the 'Events:' header ignored: {_short(leftover)}")
        pre = pre[: header.start()]
    elif has_events:
        _add(notes, "missing 'Events:' header")
    scene = pre.strip()
    label = _SCENE_LABEL_RE.search(scene)
    if label:
        if scene[: label.start()].strip():
            _add(notes, f"text before 'Scene:' ignored: {_short(scene[: label.start()].strip())}")
        scene = scene[label.end() :].strip()
    elif scene:
        _add(notes, "missing 'Scene:' label")
    lines = [line.strip() for line in scene.splitlines() if line.strip()]
    if not lines:
        _add(notes, "no scene description")
    elif len(lines) > 1:
        _add(notes, "scene spans several lines")
    if not has_events:
        _add(notes, "no events found")
    return " ".join(lines)


def _read_description(
    body: str, marker: re.Match[str], following: re.Match[str] | None, notes: list[str]
) -> str:
    """The rest of the line after ``marker``; other lines up to the next marker are ignored (and noted)."""
    segment = body[marker.end() : following.start() if following else len(body)]
    description, newline, rest = segment.partition("\n")
    if not newline and following is not None:
        _add(notes, "events do not start on their own lines")
    lines = [line.strip() for line in rest.split("\n")]
    if following is not None and lines[-1]:  # text before the next marker on its line
        _add(notes, "events do not start on their own lines")
    for line in filter(None, lines):
        _add(notes, f"text outside the events ignored: {_short(line)}")
    description = description.strip()
    if description[:1] in (":", "-", "\u2013", "\u2014"):
        if marker["open"]:
            _add(notes, "separator after the time range")
        description = description[1:].strip()
    unbolded = re.sub(r"^\*\*|\*\*$", "", description).strip()
    if unbolded != description:
        _add(notes, "markdown bold in the events")
    return unbolded


def _note_marker_style(marker: re.Match[str], notes: list[str]) -> None:
    """Record how one event time range differs from ``<X.X - Y.Y>``."""
    pair = (marker["open"] or "") + (marker["close"] or "")
    if marker.groupdict().get("bullet"):
        _add(notes, "events written as a bulleted or numbered list")
    if marker["bold"]:
        _add(notes, "markdown bold in the events")
    if not pair:
        _add(notes, "time range without angle brackets")
    elif pair in ("[]", "()"):
        _add(notes, f"time range written as {pair[0]}a - b{pair[1]} instead of <a - b>")
    elif pair != "<>":
        _add(notes, f"time range with mismatched brackets {pair!r}")
    sep = marker["sep"]
    if sep.strip().lower() == "to":
        _add(notes, "time range uses 'to' instead of '-'")
    elif sep.strip() != "-":
        _add(notes, f"time range uses {sep.strip()!r} instead of '-'")
    elif sep != " - ":
        _add(notes, "extra or missing spaces in a time range")
    plain = True
    for token in (marker["a"], marker["b"]):
        if ":" in token:
            _add(notes, "clock times (mm:ss) instead of seconds")
            plain = False
        elif re.fullmatch(rf"{NUMBER_PATTERN}[eE][+-]?[0-9]+", token):
            _add(notes, "times in scientific notation")
            plain = False
        elif not re.fullmatch(NUMBER_PATTERN, token):
            _add(notes, "times written with a unit")
            plain = False
    if pair == "<>" and plain and sep == " - ":
        inside_brackets = marker.string[marker.start("open") : marker.end("close")]
        if not _CANONICAL_MARKER_RE.fullmatch(inside_brackets):
            _add(notes, "extra or missing spaces in a time range")


def _short(text: str, limit: int = 40) -> str:
    """``text`` quoted and cut to ``limit`` characters."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
