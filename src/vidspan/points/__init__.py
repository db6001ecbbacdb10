"""Where, not only when: points, counts and tracks in video (Molmo2-style), their formats and metrics.

>>> from vidspan.points import track                       # doctest: +SKIP
>>> dogs = track("park.mp4", "dog")                        # doctest: +SKIP
>>> dogs[1].positions[0].t, dogs[1].positions[0].x         # doctest: +SKIP
"""

from vidspan.points.ask import ask_points, count, point, track
from vidspan.points.results import Counting, Point, Pointing, Track, Tracking, to_coco, to_mot_csv

__all__ = ["Counting", "Point", "Pointing", "Track", "Tracking", "ask_points", "count", "point", "to_coco",
           "to_mot_csv", "track"]  # fmt: skip
