"""The model families vidspan knows: prompts, time encoding and output format of each.

Marlin-2B's prompts are its trained interface and are used verbatim (its model card asks not to edit
them). Qwen baselines and TimeLens are grounded with the TimeLens prompt, which is what published numbers
for those models use.
"""

from __future__ import annotations

from dataclasses import replace

from vidspan.models.base import Family

MARLIN_CAPTION_PROMPT = (
    "Provide a spatial description of this clip followed by time-ranged events.\n"
    "For each event, give the time range as <start - end> and a short description."
)
MARLIN_FIND_PROMPT = (
    'Identify the timestamps during which "{event}" takes place. '
    'Output the time range as "From <start> to <end>." (numbers in seconds).'
)

TIMELENS_FIND_PROMPT = (
    "Please find the visual event described by the sentence '{event}', determining its starting and "
    "ending times. The format should be: 'The event happens in <start time> - <end time> seconds'."
)

# For models without a trained caption interface: ask for Marlin's output shape, so one parser serves all.
GENERIC_CAPTION_PROMPT = (
    "Describe this video. First write 'Scene:' and one paragraph about the setting, the people and the "
    "objects. Then write 'Events:' and list every event in order, one per line, as "
    "<start - end> description, with start and end in seconds (one decimal)."
)

MARLIN = Family(
    name="marlin",
    patch_factor=32,
    time_encoding="text-markers",
    caption_prompt=MARLIN_CAPTION_PROMPT,
    find_prompt=MARLIN_FIND_PROMPT,
    output_format="marlin",
    strip_think=True,
    caption_max_new_tokens=2048,
    find_max_new_tokens=64,
    enable_thinking=False,
)

QWEN3_5 = Family(
    name="qwen3.5",
    patch_factor=32,
    time_encoding="text-markers",
    caption_prompt=GENERIC_CAPTION_PROMPT,
    find_prompt=TIMELENS_FIND_PROMPT,
    output_format="timelens",
    strip_think=True,
    caption_max_new_tokens=2048,
    find_max_new_tokens=128,
    enable_thinking=False,
)

QWEN3_VL = Family(
    name="qwen3-vl",
    patch_factor=32,
    time_encoding="text-markers",
    caption_prompt=GENERIC_CAPTION_PROMPT,
    find_prompt=TIMELENS_FIND_PROMPT,
    output_format="timelens",
    caption_max_new_tokens=2048,
    find_max_new_tokens=512,
)

# Qwen2.5-VL: the same prompts, a 28-pixel patch factor and time in the rotary positions only.
QWEN2_5_VL = replace(QWEN3_VL, name="qwen2.5-vl", patch_factor=28, time_encoding="mrope")

# TimeLens-8B: Qwen3-VL-8B weights trained for grounding with the TimeLens prompt.
TIMELENS = replace(QWEN3_VL, name="timelens")

# Molmo2: points, counts and tracks (vidspan.points); captions and spans through the generic prompts.
MOLMO2 = Family(
    name="molmo2",
    patch_factor=28,  # any frame size works: its processor resizes frames to its crop size
    time_encoding="frame-timestamps",
    caption_prompt=GENERIC_CAPTION_PROMPT,
    find_prompt=TIMELENS_FIND_PROMPT,
    output_format="timelens",
    caption_max_new_tokens=2048,
    find_max_new_tokens=128,
)

FAMILIES: dict[str, Family] = {f.name: f for f in (MARLIN, QWEN3_5, QWEN3_VL, QWEN2_5_VL, TIMELENS, MOLMO2)}

# transformers ``model_type`` → family, for local checkpoint directories.
MODEL_TYPE_FAMILIES: dict[str, Family] = {
    "qwen2_5_vl": QWEN2_5_VL, "qwen3_vl": QWEN3_VL, "qwen3_5": QWEN3_5, "molmo2": MOLMO2,
}  # fmt: skip


def family_for_name(name: str) -> Family | None:
    """Guess a family from a checkpoint or served-model name (``"Qwen/Qwen3-VL-8B-Instruct"`` → qwen3-vl)."""
    key = name.lower().replace("_", "-")
    if "timelens-7b" in key:  # Qwen2.5-VL weights with a frame-prefix time encoding: not supported yet
        return None
    for needle, family in (
        ("marlin", MARLIN),
        ("molmo2", MOLMO2),
        ("timelens", TIMELENS),
        ("qwen3.5", QWEN3_5),
        ("qwen3-5", QWEN3_5),
        ("qwen3-vl", QWEN3_VL),
        ("qwen3vl", QWEN3_VL),
        ("qwen2.5-vl", QWEN2_5_VL),
        ("qwen2-5-vl", QWEN2_5_VL),
    ):
        if needle in key:
            return family
    return None
