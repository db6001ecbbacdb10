"""Time tokens, think blocks and time ranges in free text: text → seconds → :class:`~vidspan.types.Span`.

Every time a model writes is turned into float seconds here. :data:`TIME_PATTERN` is the one regex fragment
for "a time as a model writes it" (``12``, ``12.5``, ``1.25e1``, ``12.5s``, ``12.5 seconds``, ``1:05``,
``01:02:03.25``); every span pattern here and in :mod:`vidspan.parse.formats` is built from it.

Number formats in free-text answers (:func:`normalize_numbers`): Unicode decimal digits (``١٠``, ``１０``)
are read as ASCII digits; a decimal comma (``10,5``) is read as ``10.5``; a comma before exactly three
digits (``1,234``: a thousands separator or three decimals?) makes the answer unreadable rather than a
guess; a comma between the two numbers of ``[a,b]`` stays a separator. Each of these is a violation. A
digit-comma-digit that is none of these never splits into two times.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata

from vidspan.types import Span

logger = logging.getLogger(__name__)

__all__ = [
    "CLOCK_PATTERN",
    "DASH_PATTERN",
    "NUMBER_PATTERN",
    "TIME_PATTERN",
    "TIME_TOKEN_PATTERN",
    "check_duration",
    "find_time_pair",
    "fit_span",
    "normalize_numbers",
    "parse_time",
    "strip_think",
]

NUMBER_PATTERN = r"[0-9]+(?:\.[0-9]+)?"
"""An unsigned decimal number in ASCII digits (no sign, no exponent): the canonical answer forms' number."""

_EXPONENT_PATTERN = r"(?:[eE][+-]?[0-9]+)"
_LOOSE_NUMBER_PATTERN = rf"{NUMBER_PATTERN}{_EXPONENT_PATTERN}?"  # free text also has 1.2e1

CLOCK_PATTERN = r"[0-9]+:[0-9]{2}(?::[0-9]{2})?(?:\.[0-9]+)?"
"""``m:ss`` or ``h:mm:ss`` with an optional fraction of a second."""

_UNIT_PATTERN = r"(?: ?(?:seconds|second|secs|sec|s)\b)"

TIME_PATTERN = rf"(?:{CLOCK_PATTERN}|{_LOOSE_NUMBER_PATTERN}{_UNIT_PATTERN}?)"
"""A time token: a clock time, or a number (exponent allowed) with an optional unit glued or after one space.

It has no groups of its own and must be compiled with ``re.IGNORECASE`` (units may be capitalised). To
search free text use :data:`TIME_TOKEN_PATTERN`, which adds word and number boundaries.
"""

_BEFORE = r"(?<![0-9A-Za-z_.:])(?<![0-9],)"  # a token must not start inside a word or a number ...
_AFTER = r"(?![0-9A-Za-z_]|[.:,][0-9])"  # ... nor stop inside one (10,5 is never the two times 10 and 5)

TIME_TOKEN_PATTERN = rf"{_BEFORE}{TIME_PATTERN}{_AFTER}"
""":data:`TIME_PATTERN` that neither starts nor stops inside a word or another number (``Qwen2.5-VL``)."""

DASH_PATTERN = "[\\-\u2010\u2011\u2012\u2013\u2014\u2015\u2212~]"
"""One range dash: hyphen, the Unicode dashes (en ``–``, em ``—``, minus ``−``) or a tilde."""

_C = rf"(?<![0-9A-Za-z_.:]){CLOCK_PATTERN}(?![0-9A-Za-z_]|[.:][0-9])"  # 00:12,00:20 is a pair of clocks
_T = TIME_TOKEN_PATTERN
_FLAGS = re.IGNORECASE | re.MULTILINE
# Time ranges in free text, in the order they are tried; each names its two times ``a`` and ``b``.
_PAIR_RES = tuple(
    re.compile(pattern, _FLAGS)
    for pattern in (
        rf"(?P<a>{_C})(?:[ \t]*{DASH_PATTERN}[ \t]*|\s+(?:to|and|until|till)\s+|[ \t]*,[ \t]*)(?P<b>{_C})",
        rf"(?P<a>{_T})[ \t]*{DASH_PATTERN}[ \t]*(?P<b>{_T})",
        rf"(?P<a>{_T})\s+to\s+(?P<b>{_T})",
        rf"\bfrom\s+(?P<a>{_T})\s+(?:to|until|till|through)\s+(?P<b>{_T})",
        rf"\bbetween\s+(?P<a>{_T})\s+and\s+(?P<b>{_T})",
        rf"<\s*(?P<a>{_T})\s*{DASH_PATTERN}\s*(?P<b>{_T})\s*>",
        rf"[\[(]\s*(?P<a>{_T})\s*,\s*(?P<b>{_T})\s*[\])]",
    )
)
_TOKEN_RE = re.compile(_T, _FLAGS)
_SIGN_RE = re.compile(r"(?:^|[\s(\[{,:\"'])[-\u2212]$|^[-\u2212]$")  # a minus sign, not a range dash
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_QUOTED_RE = re.compile(
    r'"[^"\n]*"'  # "..."
    r"|\u201c[^\u201d\n]*\u201d|\u2018[^\u2019\n]*\u2019"  # “...”, ‘...’
    r"|(?<![A-Za-z0-9])'[^'\n]*'(?![A-Za-z0-9])"  # '...', but not an apostrophe inside a word
)
_NUMBER_RE = re.compile(rf"({_LOOSE_NUMBER_PATTERN}){_UNIT_PATTERN}?", re.IGNORECASE)
_EXPONENT_RE = re.compile(rf"[0-9]{_EXPONENT_PATTERN}")
_PLAIN = r"[0-9]+(?:\.[0-9]+)?"
_BRACKET_PAIR_RE = re.compile(rf"([\[(][ \t]*{_PLAIN})[ \t]*,[ \t]*({_PLAIN}[ \t]*[\])])")
_GROUPED_RE = re.compile(r"(?<![0-9.,:])[0-9]{1,3}(?:,[0-9]{3})+(?![0-9]|[.,:][0-9])")
_DECIMAL_COMMA_RE = re.compile(r"(?<![0-9.,:])([0-9]+),([0-9]+)(?![0-9]|[.,:][0-9])")
_ARABIC_DECIMAL_SEPARATOR = "\u066b"
_CLOCK_RE = re.compile(r"([0-9]+):([0-9]{2})(?::([0-9]{2}(?:\.[0-9]+)?)|(\.[0-9]+))?")

_THINK_BLOCK_RE = re.compile(r"<think>.*?</think>\s*", re.IGNORECASE | re.DOTALL)
_THINK_OPEN_RE = re.compile(r"<think>", re.IGNORECASE)
_THINK_CLOSE_RE = re.compile(r"</think>\s*", re.IGNORECASE)


def strip_think(text: str) -> str:
    r"""Remove a leading think block from a model's answer.

    Marlin-2B (and Qwen3.5-style templates with thinking on) start every answer with
    ``<think>\n\n</think>\n\n``. Only a block at the very start is removed: a complete
    ``<think>...</think>`` block (the shortest one) with the whitespace after it, a bare ``<think>`` with no
    closing tag (then the rest of that line goes too), or a stray leading ``</think>``.

    Args:
        text: The model's answer.

    Returns:
        The answer without the think block, stripped of surrounding whitespace.

    Example:
        >>> strip_think("<think>\n\n</think>\n\nFrom 14.3 to 18.2.")
        'From 14.3 to 18.2.'
    """
    stripped = text.strip()
    block = _THINK_BLOCK_RE.match(stripped)
    if block:
        return stripped[block.end() :].strip()
    opening = _THINK_OPEN_RE.match(stripped)
    if opening:
        _, _, remainder = stripped[opening.end() :].partition("\n")
        return remainder.strip()
    closing = _THINK_CLOSE_RE.match(stripped)
    if closing:
        return stripped[closing.end() :].strip()
    return stripped


def parse_time(token: str) -> float:
    """Seconds from one time token as a model writes it.

    Accepted: ``12``, ``12.5``, ``12.5s``, ``12.5 s``, ``12.5 sec``, ``12.5 seconds``, ``1:05``,
    ``01:05.5`` (m:ss), ``1:02:03``, ``01:02:03.25`` (h:mm:ss). Minutes and seconds of a clock time must be
    below 60 (the leading field may be larger).

    Args:
        token: The time token; surrounding whitespace is ignored.

    Returns:
        The time in seconds, a finite float >= 0.

    Raises:
        ValueError: The token is not a time, is negative, or is not finite.

    Example:
        >>> parse_time("1:02:03.25")
        3723.25
    """
    cleaned = token.strip()
    seconds = _clock_seconds(cleaned) if ":" in cleaned else _number_seconds(cleaned)
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"Invalid time: {token!r}. It must be seconds or mm:ss / hh:mm:ss.")
    return seconds


def _number_seconds(token: str) -> float | None:
    """``12.5 s`` → 12.5; ``None`` when the token is not a plain number with an optional unit."""
    match = _NUMBER_RE.fullmatch(token)
    return float(match.group(1)) if match else None


def _clock_seconds(token: str) -> float | None:
    """``1:02:03.5`` → 3723.5; ``None`` when the token is not a valid clock time."""
    match = _CLOCK_RE.fullmatch(token)
    if not match:
        return None
    first, second, third, fraction = match.groups()
    if third is None:  # m:ss(.f)
        minutes, secs = float(first), float(second + (fraction or ""))
        if secs >= 60:
            return None
        return minutes * 60 + secs
    hours, minutes, secs = float(first), float(second), float(third)
    if minutes >= 60 or secs >= 60:
        return None
    return hours * 3600 + minutes * 60 + secs


def normalize_numbers(text: str, notes: list[str]) -> str | None:
    """``text`` with its numbers in the form the time patterns read, or ``None`` when one is ambiguous.

    Unicode decimal digits become ASCII digits (and the Arabic decimal separator a point); the comma of
    ``[a,b]`` / ``(a,b)`` stays the pair's separator; any other comma between digits is a decimal comma
    (``10,5`` → ``10.5``), except before exactly three digits (``1,234``), which could as well be a
    thousands separator: then ``None`` (no span is guessed). Each change is noted.

    Example:
        >>> notes = []
        >>> normalize_numbers("The event happens in 10,5 - 20,25 seconds.", notes)
        'The event happens in 10.5 - 20.25 seconds.'
    """
    if not text.isascii():
        ascii_digits = "".join(_ascii_digit(ch) for ch in text)
        if ascii_digits != text:
            _note(notes, "non-ASCII digits read as ASCII digits")
            text = ascii_digits
    text = _BRACKET_PAIR_RE.sub(r"\1, \2", text)
    grouped = _GROUPED_RE.search(text)
    if grouped:
        _note(notes, f"ambiguous number {grouped[0]!r} (thousands separator or decimal comma?); no span")
        return None
    for match in _DECIMAL_COMMA_RE.finditer(text):
        _note(notes, f"decimal comma in {match[0]!r} read as {match[1]}.{match[2]}")
    return _DECIMAL_COMMA_RE.sub(r"\1.\2", text)


def _ascii_digit(ch: str) -> str:
    if ch == _ARABIC_DECIMAL_SEPARATOR:
        return "."
    if ch.isdecimal() and not ch.isascii():
        return str(unicodedata.decimal(ch))
    return ch


def check_duration(duration_seconds: float | None) -> None:
    """Reject a video duration that cannot bound a span.

    Raises:
        ValueError: ``duration_seconds`` is given and is not a finite number > 0.
    """
    if duration_seconds is not None and not (math.isfinite(duration_seconds) and duration_seconds > 0):
        raise ValueError(
            f"Invalid duration_seconds: {duration_seconds!r}. It must be a finite number of seconds > 0."
        )


def fit_span(
    start: float, end: float, duration_seconds: float | None, notes: list[str]
) -> tuple[Span | None, bool]:
    """A span from two parsed times: swapped when backwards, bounded by the video when its length is known.

    Args:
        start: First time written, seconds (finite, >= 0).
        end: Second time written, seconds (finite, >= 0).
        duration_seconds: Video length, or ``None`` for no bound. A span ending later is clipped; one
            starting at or after it is dropped.
        notes: Findings are appended here as short sentences.

    Returns:
        ``(span, clipped)``; ``span`` is ``None`` when the span lies past the end of the video.
    """
    if start > end:
        _note(notes, f"span written backwards ({start} - {end}); swapped")
        start, end = end, start
    if duration_seconds is not None:
        if start >= duration_seconds:
            _note(notes, f"span starts after the video ends ({start} >= {duration_seconds} s); dropped")
            return None, False
        if end > duration_seconds:
            _note(notes, f"span ends after the video ({end} > {duration_seconds} s); clipped")
            return Span(start, float(duration_seconds)), True
    return Span(start, end), False


def find_time_pair(text: str, notes: list[str]) -> tuple[str, str] | None:
    """The two time tokens of a time range written in free text, or ``None`` when there is none.

    Rules, in order: clock-time pairs (``00:12 to 00:20``), ``a - b`` (any dash), ``a to b``,
    ``from a to b``, ``between a and b``, ``<a - b>``, ``[a, b]``; the first match of the first rule that
    matches wins. Failing those, the first two standalone times. Units may be glued on (``10s-20s``). An
    ``<answer>...</answer>`` block is searched before the whole text, and in each, text outside quotes
    (an echoed query) before the quoted text. A single time gives ``None`` (no span is invented). Times
    carry no sign: a negative time (a minus sign before a chosen time) is clamped to 0 and reported. The
    text's numbers are read as :func:`normalize_numbers` normalises them (an ambiguous one gives ``None``).

    Args:
        text: The answer, think block already removed.
        notes: Findings (several spans, fallback used, a minus sign, nothing found) are appended here.

    Returns:
        ``(start_token, end_token)`` for :func:`parse_time`, in the order written.
    """
    normalized = normalize_numbers(text, notes)
    if normalized is None:
        return None
    text = normalized
    answer = _ANSWER_RE.search(text)
    for region in (answer[1], text) if answer else (text,):
        masked = _QUOTED_RE.sub(lambda m: " " * len(m[0]), region)
        for searched, find in (
            (masked, _structured_pair),
            (masked, _loose_pair),
            (region, _structured_pair),
            (region, _loose_pair),
        ):
            found = find(searched, notes)
            if found is not None:
                tokens = []
                for position, token in found:
                    if _SIGN_RE.match(searched, max(position - 2, 0), position):
                        _note(notes, f"negative time -{token} clamped to 0")
                        token = "0"
                    elif _EXPONENT_RE.search(token):
                        _note(notes, f"time in scientific notation ({token})")
                    tokens.append(token)
                return tokens[0], tokens[1]
    tokens = [m[0] for m in _TOKEN_RE.finditer(text)]
    _note(notes, f"only one time found ({tokens[0]}); no span" if tokens else "no time found in the answer")
    return None


_Found = tuple[tuple[int, str], tuple[int, str]]  # (position, token) of the start and end times


def _structured_pair(text: str, notes: list[str]) -> _Found | None:
    """Return the first match of the first range rule that matches ``text``."""
    for pair_re in _PAIR_RES:
        matches = list(pair_re.finditer(text))
        if matches:
            first = matches[0]
            if len(matches) > 1:
                _note(notes, f"several spans in the answer; used the first ({first['a']} - {first['b']})")
            return (first.start("a"), first["a"]), (first.start("b"), first["b"])
    return None


def _loose_pair(text: str, notes: list[str]) -> _Found | None:
    """Return the first two standalone times in ``text``, or ``None`` when there are fewer than two."""
    tokens = [(m.start(), m[0]) for m in _TOKEN_RE.finditer(text)]
    if len(tokens) < 2:
        return None
    _note(notes, f"no time range found; used the first two times ({tokens[0][1]} and {tokens[1][1]})")
    return tokens[0], tokens[1]


def _note(notes: list[str], note: str) -> None:
    """Append ``note`` unless it is already there."""
    if note not in notes:
        notes.append(note)
