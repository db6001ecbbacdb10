"""A partly damaged file still samples, and says so in one line (count and time range), not once a packet."""

from __future__ import annotations

import logging
import re

from vidspan.video import SamplingConfig, sample_clip


def test_undecodable_packets_are_summarised_in_one_warning(damaged_avi, caplog):
    with caplog.at_level(logging.WARNING, logger="vidspan"):
        clip = sample_clip(damaged_avi, SamplingConfig(fps=30.0, max_frames=300, max_pixels=64 * 64))
    assert len(clip.timestamps) > 200  # it still samples
    records = [r for r in caplog.records if r.name.startswith("vidspan")]
    assert len(records) == 1, [r.getMessage() for r in records]
    message = records[0].getMessage()
    found = re.search(r"(\d+) packets could not be decoded between (\d+\.\d) s and (\d+\.\d) s", message)
    assert found, message
    count, lo, hi = int(found[1]), float(found[2]), float(found[3])
    assert count >= 2 and 2.0 <= lo < hi <= 8.0  # the damage lies in the middle 40 % of the file
    assert "Invalid data found when processing input" in message
    # frames that never came out (if any) are counted against the frames sampled
    filled = re.search(r"(\d+) of (\d+) sampled frames are copies of the nearest decoded one", message)
    assert filled is None or int(filled[2]) == len(clip.timestamps)


def test_an_intact_file_logs_nothing(cfr_clip, caplog):
    with caplog.at_level(logging.WARNING, logger="vidspan"):
        sample_clip(cfr_clip, SamplingConfig(fps=30.0, max_frames=300, max_pixels=64 * 64))
    assert [r for r in caplog.records if r.name.startswith("vidspan")] == []
