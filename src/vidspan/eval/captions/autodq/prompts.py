"""The judge prompts of vidspan's AutoDQ and how their replies are checked.

Our own wording of the requirements AutoDQ (bytedance/tarsier) and CaReBench's CapST put on the judge:

- **extraction**: at most 10 atomic action events (subject + verb + optional object, about 10 words, no
  static facts, no camera motion or scene cuts, pronouns resolved), or for CapST at most 10 "There is/are"
  object-attribute facts; reply ``{"events": [...]}`` / ``{"objects": [...]}``;
- **entailment**: a caption and N numbered facts; each fact labelled ``entailment`` / ``contradiction`` /
  ``neutral`` with a short reason; reply ``{"verdicts": [{"index", "reason", "relation"}]}``;
- **video verification**: timestamped frames and N numbered facts; each labelled ``supported`` /
  ``contradicted`` / ``not_visible``; reply ``{"verdicts": [{"index", "reason", "verdict"}]}``.

Replies are JSON objects (JSON mode where the API has one). The ``check_*`` functions validate a parsed
reply and raise ``ValueError`` so that ``Judge.ask_json`` asks again. The reason comes before the label in
the requested format, so the judge states its evidence before deciding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "ENTAILMENT_LABELS",
    "FACT_KINDS",
    "VIDEO_LABELS",
    "check_facts",
    "check_verdicts",
    "entailment_prompt",
    "extraction_prompt",
    "prompt_hashes",
    "verification_prompt",
]

FACT_KINDS = ("events", "objects")
"""What AutoDQ compares: action events (DREAM-1K, CapST action score) and object facts (CapST spatial)."""

ENTAILMENT_LABELS = ("entailment", "contradiction", "neutral")
VIDEO_LABELS = ("supported", "contradicted", "not_visible")

SYSTEM = (
    "You are a careful annotator who compares video descriptions with short factual statements. "
    "You answer with a single JSON object and nothing else."
)
VIDEO_SYSTEM = (
    "You are a careful annotator who checks short factual statements against frames of a video. "
    "You answer with a single JSON object and nothing else."
)

_EVENT_RULES = """\
List the key events of this description: at most 10. Follow these rules.
- An event is something that happens: an action, a movement or a change of state. Static facts (how \
people or things look, what they wear, where the scene takes place) are not events.
- Write each event as one short sentence of at most about 10 words: a subject, a verb and, where needed, \
an object. Leave out appearance details the action does not need.
- Each event is atomic: one subject doing one thing. A sentence that reports several actions becomes \
several events.
- Scene cuts, shot changes and camera movements (pans, zooms, switches to another view) are not events.
- Replace every pronoun with the noun it stands for ("the woman lifts the box", not "she lifts it").
- Do not list an event twice. If the description reports no action at all, give an empty list.

Answer with a JSON object whose only key is "events", holding a list of strings (one per event), and \
nothing else:
{"events": ["<event>", "<event>"]}"""

_OBJECT_RULES = """\
List the key objects of this description with their attributes: at most 10 facts. Follow these rules.
- Each fact gives one object (a person, animal or thing) with one attribute (colour, size, shape, \
material, clothing, position, number...), in a sentence of at most about 10 words that starts with \
"There is" or "There are".
- One attribute per fact: an object described with several attributes becomes several facts.
- Leave out actions and movements, the atmosphere or mood, music and sounds, scene cuts and camera \
movements.
- Replace every pronoun with the noun it stands for.
- Do not list a fact twice. If the description names no object, give an empty list.

Answer with a JSON object whose only key is "objects", holding a list of strings (one per fact), and \
nothing else:
{"objects": ["There is <object with one attribute>.", "There are <objects with one attribute>."]}"""

_EXTRACTION = """\
Below is a description of a video clip.

Description:
\"\"\"
{caption}
\"\"\"

{rules}"""

_ENTAILMENT = """\
Below are a description of a video clip and a numbered list of statements about the clip.

Description:
\"\"\"
{caption}
\"\"\"

Statements:
{facts}

For each statement, decide how the description relates to it:
- "entailment": the description states it or clearly implies it.
- "contradiction": some detail of the description conflicts with it (a different subject, action, \
object, attribute, number or order).
- "neutral": neither; the description does not mention it, or is not specific enough to decide.
Judge from the description alone and do not assume anything it does not say.

Answer with a JSON object and nothing else, with exactly one verdict per statement ({count} in all), in \
the order given:
{{"verdicts": [{{"index": 1, "reason": "<one short sentence>", "relation": "entailment" or \
"contradiction" or "neutral"}}, ...]}}"""

_VERIFICATION = """\
The images are frames sampled in order from one video clip; each is labelled with its time in seconds. \
Below is a numbered list of statements that a description of this clip makes.

Statements:
{facts}

Check each statement against what the frames show:
- "supported": the frames show it (for an action: the action happening, or its unmistakable result).
- "contradicted": the frames show something that conflicts with it (a different subject, action, \
object, attribute, number or order).
- "not_visible": the frames neither show it nor rule it out (too brief to catch between frames, \
off-screen, or not decidable from still images).
Say briefly what you see in the frames before you decide.

Answer with a JSON object and nothing else, with exactly one verdict per statement ({count} in all), in \
the order given:
{{"verdicts": [{{"index": 1, "reason": "<what the frames show>", "verdict": "supported" or \
"contradicted" or "not_visible"}}, ...]}}"""


def extraction_prompt(caption: str, kind: str) -> str:
    """The prompt that extracts ``kind`` facts (``"events"`` or ``"objects"``) from a caption."""
    rules = {"events": _EVENT_RULES, "objects": _OBJECT_RULES}.get(kind)
    if rules is None:
        raise ValueError(f"Invalid kind: {kind!r}. It must be one of: {', '.join(FACT_KINDS)}.")
    return _EXTRACTION.format(caption=caption.strip(), rules=rules)


def entailment_prompt(caption: str, facts: Sequence[str]) -> str:
    """The prompt that labels each fact as entailed by, contradicted by or neutral to ``caption``."""
    return _ENTAILMENT.format(caption=caption.strip(), facts=_numbered(facts), count=len(facts))


def verification_prompt(facts: Sequence[str]) -> str:
    """The prompt (shown after the frames) that checks each fact against the video."""
    return _VERIFICATION.format(facts=_numbered(facts), count=len(facts))


def prompt_hashes() -> dict[str, str]:
    """sha256 (first 16 hex digits) of each template, recorded with every run."""
    templates = {
        "system": SYSTEM,
        "video_system": VIDEO_SYSTEM,
        "extract_events": _EXTRACTION + _EVENT_RULES,
        "extract_objects": _EXTRACTION + _OBJECT_RULES,
        "entailment": _ENTAILMENT,
        "verification": _VERIFICATION,
    }
    return {name: hashlib.sha256(text.encode()).hexdigest()[:16] for name, text in templates.items()}


def check_facts(kind: str) -> Callable[[Any], tuple[str, ...]]:
    """A validator for an extraction reply: ``{kind: [str, ...]}`` → the non-blank facts, stripped."""

    def validate(reply: Any) -> tuple[str, ...]:
        items = reply.get(kind) if isinstance(reply, dict) else reply
        if not isinstance(items, list):
            raise ValueError(f'expected a JSON object {{"{kind}": [...]}} holding a list of strings')
        if not all(isinstance(item, str) for item in items):
            raise ValueError(f'every item of "{kind}" must be a string')
        return tuple(item.strip() for item in items if item.strip())

    return validate


def check_verdicts(
    count: int, labels: Sequence[str], label_key: str
) -> Callable[[Any], tuple[tuple[str, str], ...]]:
    """A validator for a verdict reply: exactly ``count`` verdicts with a label from ``labels``.

    Verdicts may carry ``index`` (1-based; then every index from 1 to ``count`` must appear once and the
    verdicts are put in index order) or come in order without one. Labels are compared case-insensitively
    with spaces and hyphens read as underscores (``"Not visible"`` → ``not_visible``).

    Returns:
        ``((label, reason), ...)`` in fact order.
    """

    def validate(reply: Any) -> tuple[tuple[str, str], ...]:
        items = reply.get("verdicts") if isinstance(reply, dict) else reply
        if not isinstance(items, list):
            raise ValueError('expected a JSON object {"verdicts": [...]} holding a list of verdicts')
        if len(items) != count:
            raise ValueError(f"expected {count} verdicts, one per statement, got {len(items)}")
        if not all(isinstance(item, dict) for item in items):
            raise ValueError("every verdict must be a JSON object")
        if all("index" in item for item in items):
            indices = [item["index"] for item in items]
            if sorted(_as_index(i) for i in indices) != list(range(1, count + 1)):
                raise ValueError(f"the verdict indices must be 1 to {count}, each once; got {indices}")
            items = sorted(items, key=lambda item: _as_index(item["index"]))
        out: list[tuple[str, str]] = []
        for position, item in enumerate(items, 1):
            raw = item.get(label_key, item.get("label"))
            label = raw.strip().lower().replace(" ", "_").replace("-", "_") if isinstance(raw, str) else ""
            if label not in labels:
                raise ValueError(
                    f"verdict {position}: {label_key!r} must be one of {', '.join(labels)}; got {raw!r}"
                )
            reason = item.get("reason")
            out.append((label, reason.strip() if isinstance(reason, str) else ""))
        return tuple(out)

    return validate


def _as_index(value: Any) -> int:
    if isinstance(value, bool):
        return -1
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return -1


def _numbered(facts: Sequence[str]) -> str:
    return "\n".join(f"{i}. {' '.join(fact.split())}" for i, fact in enumerate(facts, 1))
