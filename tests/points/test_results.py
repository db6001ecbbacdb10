"""Typed point answers: pixels and normalised positions, dict round trips, COCO keypoints and MOT CSV."""

from __future__ import annotations

import csv
import io
import json

import pytest

from vidspan.points.formats import parse_molmo2
from vidspan.points.results import (
    Counting,
    Pointing,
    Tracking,
    to_coco,
    to_mot_csv,
    to_pixels,
    tracks_from_points,
)


def _tracking() -> Tracking:
    parsed = parse_molmo2('<tracks coords="0.0 1 250 500;0.5 1 300 500 2 750 250;1.0 2 800 250">dog</tracks>')
    points = [to_pixels(p, 640, 360, t=p.t + 10.0) for p in parsed.points]  # a window starting at 10 s
    return Tracking(query="dog", video="v.mp4", width=640, height=360, duration=20.0, raw=(parsed.raw,),
                    tracks=tracks_from_points(points))  # fmt: skip


def test_points_are_in_source_pixels_and_source_time():
    track = _tracking()[1]
    first = track.positions[0]
    assert (first.t, first.x, first.y, first.x_norm, first.y_norm) == (10.0, 160.0, 180.0, 0.25, 0.5)
    assert (track.start, track.end, track.label) == (10.0, 10.5, "dog")
    assert track.at(10.4).t == 10.5 and track.at(12.0) is None
    assert list(_tracking()) == [1, 2] and len(_tracking()) == 2
    with pytest.raises(KeyError):
        _tracking()[3]


def test_answers_round_trip_through_json():
    tracking = _tracking()
    again = Tracking.from_dict(json.loads(json.dumps(tracking.to_dict())))
    assert again == tracking
    pointing = Pointing(query="cup", video="v.mp4", width=10, height=10, duration=1.0, points=tracking.points)
    assert Pointing.from_dict(pointing.to_dict()) == pointing and len(pointing) == 4 and pointing[0].t == 10.0
    counting = Counting(query="cup", video="v.mp4", width=10, height=10, duration=1.0, count=2,
                        points=tracking.points)  # fmt: skip
    assert Counting.from_dict(json.loads(json.dumps(counting.to_dict()))) == counting


def test_coco_keypoints_one_image_per_frame_and_one_annotation_per_point():
    coco = to_coco(_tracking(), fps=2.0)
    assert [img["id"] for img in coco["images"]] == [20, 21, 22]  # frames round(t * fps)
    assert [img["t"] for img in coco["images"]] == [10.0, 10.5, 11.0]
    ann = coco["annotations"]
    assert len(ann) == 4 and ann[1]["keypoints"] == [192.0, 180.0, 2] and ann[1]["image_id"] == 21
    assert [a["track_id"] for a in ann] == [1, 1, 2, 2]
    assert coco["categories"] == [{"id": 1, "name": "dog", "keypoints": ["point"], "skeleton": []}]
    with pytest.raises(ValueError, match="fps"):
        to_coco(_tracking(), fps=0)


def test_mot_csv_rows_are_one_based_frames_with_a_box_around_each_point():
    text = to_mot_csv(_tracking(), fps=2.0, box=10, header=True)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:2] == ["frame", "id"]
    assert rows[1] == ["21", "1", "155.00", "175.00", "10.00", "10.00", "1", "-1", "-1", "-1"]
    assert [(r[0], r[1]) for r in rows[1:]] == [("21", "1"), ("22", "1"), ("22", "2"), ("23", "2")]
