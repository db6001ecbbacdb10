"""vidspan: ask a video what is happening, and when.

>>> import vidspan
>>> cap = vidspan.caption("clip.mp4")                      # doctest: +SKIP
>>> hit = vidspan.find("clip.mp4", "a person opens the door")  # doctest: +SKIP
>>> dogs = vidspan.track("park.mp4", "dog")                      # doctest: +SKIP
"""

from vidspan.caption import caption
from vidspan.errors import (
    BackendConnectionError,
    MissingDependencyError,
    ModelError,
    ModelUnavailableError,
    ParseError,
    UnknownModelError,
    VideoError,
    VidspanError,
)
from vidspan.find import find
from vidspan.models import VideoModel, get_model, list_models
from vidspan.points.ask import count, point, track
from vidspan.types import Caption, Clip, Event, Grounding, Span, VideoInfo
from vidspan.video import SamplingConfig, open_video, probe

__version__ = "0.1.0"

__all__ = [
    "BackendConnectionError",
    "Caption",
    "Clip",
    "Event",
    "Grounding",
    "MissingDependencyError",
    "ModelError",
    "ModelUnavailableError",
    "ParseError",
    "SamplingConfig",
    "Span",
    "UnknownModelError",
    "VideoError",
    "VideoInfo",
    "VideoModel",
    "VidspanError",
    "caption",
    "count",
    "find",
    "get_model",
    "list_models",
    "open_video",
    "point",
    "probe",
    "track",
]
