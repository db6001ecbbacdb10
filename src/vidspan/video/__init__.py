"""Video probing, frame planning and decoding (PyAV and Pillow only; no torch).

``probe`` reads what a file holds, ``open_video`` / ``VideoReader`` decode frames, ``sample_clip`` samples
a window the way Qwen-VL models expect (qwen-vl-utils 0.0.14's frame-count and pixel rules, frames chosen
by time), and ``plan_windows`` splits long videos into overlapping windows.
"""

from vidspan.video.plan import SamplingConfig, plan_windows, select_frames, smart_nframes, smart_resize
from vidspan.video.probe import probe
from vidspan.video.reader import VideoReader, open_video, sample_clip

__all__ = [
    "SamplingConfig",
    "VideoReader",
    "open_video",
    "plan_windows",
    "probe",
    "sample_clip",
    "select_frames",
    "smart_nframes",
    "smart_resize",
]
