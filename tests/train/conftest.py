"""Shared fixtures for the training tests: the recipe demo's task, small."""

from __future__ import annotations

import pytest

from support.squares import square_clip


@pytest.fixture(scope="module")
def square_clips(tmp_path_factory):
    """4 s clips in which a red square is visible for one span, with their spans."""
    root = tmp_path_factory.mktemp("squares")
    spans = [(0, 2), (1, 3), (2, 4), (1, 2)]
    return [
        (square_clip(root / f"square{i}.mp4", s, e), float(s), float(e)) for i, (s, e) in enumerate(spans)
    ]
