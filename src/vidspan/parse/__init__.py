"""Reading model text: think blocks, time tokens, caption events and grounding spans.

Lenient parsing never raises on a ``str`` and records each deviation from the model's canonical format in
``violations``; ``strict=True`` raises :class:`~vidspan.errors.ParseError` instead.
"""

from vidspan.parse.formats import OUTPUT_FORMATS, ParsedCaption, ParsedSpan, parse_caption, parse_span
from vidspan.parse.timestamps import TIME_PATTERN, parse_time, strip_think

__all__ = [
    "OUTPUT_FORMATS",
    "TIME_PATTERN",
    "ParsedCaption",
    "ParsedSpan",
    "parse_caption",
    "parse_span",
    "parse_time",
    "strip_think",
]
