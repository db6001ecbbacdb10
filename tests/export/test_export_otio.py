"""OpenTimelineIO timelines: written, loaded back with opentimelineio, markers and clips equal the events."""

from __future__ import annotations

import sys

import pytest

from vidspan.errors import MissingDependencyError
from vidspan.export import to_otio, write_otio
from vidspan.types import Event, Span
from vidspan.video import probe

otio = pytest.importorskip("opentimelineio")

EVENTS = [
    Event(Span(2.0, 6.0), "A hand lifts a bottle."),
    Event(Span(8.25, 12.5), "The hand puts it back & leaves."),
    Event(Span(20.0, 20.0), "A point in time."),
    Event(Span(30.0, 45.0), "Runs past the end."),
]


@pytest.fixture(scope="module")
def bottle(shared_videos):
    video = shared_videos / "bottle-detection.mp4"
    return video, probe(video)


def seconds(time) -> float:
    return time.to_seconds()


def test_markers_timeline_loads_back_with_one_marker_per_event(bottle, tmp_path):
    video, info = bottle
    path = write_otio(to_otio(video, EVENTS), tmp_path / "bottle.otio")
    assert path == tmp_path / "bottle.otio" and list(tmp_path.iterdir()) == [path]
    timeline = otio.adapters.read_from_file(str(path))
    assert timeline.name == "bottle-detection"
    (track,) = timeline.tracks
    assert track.kind == otio.schema.TrackKind.Video
    (clip,) = track
    reference = clip.media_reference
    assert reference.target_url == video.resolve().as_uri() and reference.target_url.startswith("file:///")
    assert reference.available_range.duration.rate == pytest.approx(info.fps)
    available = reference.available_range
    assert seconds(available.duration) == pytest.approx(info.duration_seconds, abs=1 / info.fps)
    assert [m.name for m in clip.markers] == [e.description for e in EVENTS]
    frame = 1 / info.fps
    for marker, event in zip(clip.markers, EVENTS, strict=True):
        marked = marker.marked_range
        assert marked.start_time.rate == pytest.approx(info.fps)
        assert marked.start_time.value == round(marked.start_time.value), "times are whole frames"
        assert seconds(marked.start_time) == pytest.approx(event.start, abs=frame / 2)
        end = min(event.end, info.duration_seconds)
        assert seconds(marked.end_time_exclusive()) == pytest.approx(end, abs=frame)
        assert marker.metadata["vidspan"] == {"start": event.start, "end": event.end}
    assert clip.markers[2].marked_range.duration.value == 0


def test_clips_timeline_has_one_clip_per_event_cut_from_the_video(bottle, tmp_path):
    video, info = bottle
    events = [EVENTS[1], EVENTS[0], EVENTS[3]]
    path = write_otio(to_otio(video, events, kind="clips"), tmp_path / "selects.otio")
    (track,) = otio.adapters.read_from_file(str(path)).tracks
    clips = list(track)
    assert [c.name for c in clips] == [EVENTS[0].description, EVENTS[1].description, EVENTS[3].description]
    frame = 1 / info.fps
    for clip, event in zip(clips, [EVENTS[0], EVENTS[1], EVENTS[3]], strict=True):
        assert clip.media_reference.target_url == video.resolve().as_uri()
        assert seconds(clip.source_range.start_time) == pytest.approx(event.start, abs=frame / 2)
        end = min(event.end, info.duration_seconds)
        assert seconds(clip.source_range.end_time_exclusive()) == pytest.approx(end, abs=frame)
    total = sum(min(e.end, info.duration_seconds) - e.start for e in events)
    assert seconds(track.duration()) == pytest.approx(total, abs=3 * frame)


def test_explicit_duration_and_rate_skip_probing(tmp_path):
    timeline = to_otio(tmp_path / "not-there.mov", EVENTS[:2], duration_seconds=60.0, fps=24.0)
    (clip,) = timeline.tracks[0]
    assert clip.media_reference.available_range.duration == otio.opentime.RationalTime(1440, 24)
    assert clip.markers[1].marked_range == otio.opentime.TimeRange(
        otio.opentime.RationalTime(198, 24), otio.opentime.RationalTime(102, 24)
    )


def test_bad_arguments(bottle, tmp_path, monkeypatch):
    video, _ = bottle
    with pytest.raises(ValueError, match="Invalid kind: 'edl'"):
        to_otio(video, EVENTS, kind="edl")
    with pytest.raises(ValueError, match=r"Invalid event start: 50 .* before the end of the video"):
        to_otio(video, [Event(Span(50, 51), "late")], duration_seconds=40.0, fps=30.0)
    with pytest.raises(ValueError, match=r"Invalid fps: 0"):
        to_otio(video, EVENTS, duration_seconds=40.0, fps=0)
    timeline = to_otio(video, EVENTS[:1], duration_seconds=40.0, fps=30.0)
    with pytest.raises(ValueError, match=r"Invalid OTIO path: .*timeline\.xyz\. Its extension must be one"):
        write_otio(timeline, tmp_path / "timeline.xyz")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setitem(sys.modules, "opentimelineio", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'vidspan\[export\]'"):
        to_otio(video, EVENTS, duration_seconds=40.0, fps=30.0)
