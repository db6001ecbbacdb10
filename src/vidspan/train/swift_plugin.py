"""vidspan's rewards as an ms-swift reward plugin.

    PLUGIN=$(vidspan train swift-plugin)
    swift rlhf --rlhf_type grpo --external_plugins "$PLUGIN" --reward_funcs vidspan_iou vidspan_format ...

ms-swift imports this file, which registers the rewards by name in ``swift.plugin.orms``. An ms-swift
reward is a class whose instances are called as ``reward(completions, **columns)``; the columns are the
dataset's (``start``, ``end``, ``duration``, ``task``, as :mod:`vidspan.train.data` writes them).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from vidspan.train.rewards import FormatReward, TemporalIoUReward

__all__ = ["ORMS", "VidspanFormat", "VidspanIoU", "register"]


class VidspanIoU:
    """:class:`~vidspan.train.rewards.TemporalIoUReward` (Marlin's answer format) with ms-swift's call."""

    output_format = "marlin"

    def __init__(self) -> None:
        self.reward = TemporalIoUReward(self.output_format)

    def __call__(self, completions: list[Any], **columns: Any) -> list[float]:
        return self.reward([None] * len(completions), completions, **columns)


class VidspanIoUTimeLens(VidspanIoU):
    """The IoU reward for TimeLens-format answers (``The event happens in X - Y seconds.``)."""

    output_format = "timelens"


class VidspanFormat:
    """:class:`~vidspan.train.rewards.FormatReward` (the strict parser) with ms-swift's call."""

    def __init__(self) -> None:
        self.reward = FormatReward()

    def __call__(self, completions: list[Any], **columns: Any) -> list[float]:
        return self.reward([None] * len(completions), completions, **columns)


ORMS: dict[str, type] = {
    "vidspan_iou": VidspanIoU, "vidspan_iou_timelens": VidspanIoUTimeLens, "vidspan_format": VidspanFormat,
}  # fmt: skip
"""Reward name (for ``--reward_funcs``) → class."""


def register(orms: MutableMapping[str, Any] | None = None) -> MutableMapping[str, Any]:
    """Add :data:`ORMS` to ``orms`` (default: ms-swift's own registry, ``swift.plugin.orms``)."""
    if orms is None:
        from swift.plugin import orms as swift_orms

        orms = swift_orms
    orms.update(ORMS)
    return orms


try:  # imported by ms-swift through --external_plugins: register at once
    import swift.plugin  # noqa: F401
except ImportError:  # imported without ms-swift (tests, docs): call register() yourself
    pass
else:
    register()
