"""Clips for the video tests, generated once per session with the ffmpeg CLI into a temporary folder.

Each fixture's docstring records the ffmpeg command that makes its clip. Clips are tiny and short so the
whole ``tests/video`` run stays well under a minute on two cores.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from support.clips import run_ffmpeg as ffmpeg


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder holding the generated clips."""
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def cfr_clip(clip_dir: Path) -> Path:
    """6 s, 320x180, 30 fps H.264 with B-frames and a keyframe every second (180 frames).

    ``ffmpeg -f lavfi -i testsrc2=size=320x180:duration=6:rate=30 -c:v libx264 -preset veryfast -g 30
    -bf 3 -pix_fmt yuv420p cfr.mp4``
    """
    out = clip_dir / "cfr.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:duration=6:rate=30",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-g",
        "30",
        "-bf",
        "3",
        "-pix_fmt",
        "yuv420p",
        str(out),
    )
    return out


@pytest.fixture(scope="session")
def open_gop_clip(clip_dir: Path) -> Path:
    """4 s, 320x180, 25 fps H.264 with open GOPs (B-frames that lead a keyframe reference the GOP before).

    ``ffmpeg -f lavfi -i testsrc2=size=320x180:duration=4:rate=25 -c:v libx264 -g 20 -bf 3
    -x264-params open-gop=1 -pix_fmt yuv420p open_gop.mkv``
    """
    out = clip_dir / "open_gop.mkv"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=320x180:duration=4:rate=25", "-c:v", "libx264", "-g", "20",
        "-bf", "3", "-x264-params", "open-gop=1", "-pix_fmt", "yuv420p", str(out),
    )  # fmt: skip
    return out


@pytest.fixture(scope="session")
def raw_h264(clip_dir: Path, cfr_clip: Path) -> Path:
    """``cfr.mp4``'s video as a raw H.264 elementary stream (no timestamps at all).

    ``ffmpeg -i cfr.mp4 -c copy -f h264 raw.h264``
    """
    out = clip_dir / "raw.h264"
    ffmpeg("-i", str(cfr_clip), "-c", "copy", "-f", "h264", str(out))
    return out


@pytest.fixture(scope="session")
def vfr_clip(clip_dir: Path) -> Path:
    """10 s, 160x96: the first 5 s at 10 fps, the last 5 s at 30 fps (200 frames).

    ``ffmpeg -f lavfi -i testsrc2=size=160x96:duration=10:rate=30
    -vf "select='if(lt(t,5),not(mod(n,3)),1)'" -fps_mode vfr -c:v libx264 -pix_fmt yuv420p vfr.mp4``
    """
    out = clip_dir / "vfr.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x96:duration=10:rate=30",
        "-vf",
        "select='if(lt(t,5),not(mod(n,3)),1)'",
        "-fps_mode",
        "vfr",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(out),
    )
    return out


@pytest.fixture(scope="session")
def rotated_clip(clip_dir: Path, cfr_clip: Path) -> Path:
    """``cfr.mp4`` stream-copied with a 90° (counterclockwise) display matrix.

    FFmpeg >= 6: ``ffmpeg -display_rotation 90 -i cfr.mp4 -c copy rotated.mp4`` (an input option);
    FFmpeg 5.1, which lacks it: ``ffmpeg -i cfr.mp4 -c copy -metadata:s:v:0 rotate=90 rotated.mp4``.
    """
    out = clip_dir / "rotated.mp4"
    try:
        ffmpeg("-display_rotation", "90", "-i", str(cfr_clip), "-c", "copy", str(out))
    except subprocess.CalledProcessError:
        ffmpeg("-i", str(cfr_clip), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(out))
    return out


@pytest.fixture(scope="session")
def one_second_clip(clip_dir: Path) -> Path:
    """1 s, 128x96, 30 fps (30 frames).

    ``ffmpeg -f lavfi -i testsrc2=size=128x96:duration=1:rate=30 -c:v libx264 -pix_fmt yuv420p one.mp4``
    """
    out = clip_dir / "one.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=128x96:duration=1:rate=30",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(out),
    )
    return out


@pytest.fixture(scope="session")
def odd_size_clip(clip_dir: Path) -> Path:
    """2 s, 333x197, 15 fps, Matroska (``testsrc``: ``testsrc2`` rounds sizes to even; H.264 needs 4:4:4).

    ``ffmpeg -f lavfi -i testsrc=size=333x197:duration=2:rate=15 -c:v libx264 -pix_fmt yuv444p odd.mkv``
    """
    out = clip_dir / "odd.mkv"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=333x197:duration=2:rate=15",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv444p",
        str(out),
    )
    return out


@pytest.fixture(scope="session")
def truncated_mp4(clip_dir: Path, cfr_clip: Path) -> Path:
    """``cfr.mp4`` (index at the end) cut in half: ``head -c $((size / 2)) cfr.mp4 > cut.mp4``."""
    return _cut_in_half(cfr_clip, clip_dir / "cut.mp4")


@pytest.fixture(scope="session")
def truncated_faststart_mp4(clip_dir: Path) -> Path:
    """An MP4 with its index first, cut in half, so the index lists frames whose data is missing.

    ``ffmpeg -f lavfi -i testsrc2=size=160x96:duration=4:rate=10 -c:v libx264 -pix_fmt yuv420p
    -movflags +faststart fast.mp4; head -c $((size / 2)) fast.mp4 > cut_fast.mp4``
    """
    src = clip_dir / "fast.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x96:duration=4:rate=10",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        str(src),
    )
    return _cut_in_half(src, clip_dir / "cut_fast.mp4")


@pytest.fixture(scope="session")
def truncated_mkv(clip_dir: Path) -> Path:
    """A Matroska file cut in half (its header still states the full duration).

    ``ffmpeg -f lavfi -i testsrc2=size=160x96:duration=4:rate=10 -c:v libx264 -pix_fmt yuv420p full.mkv;
    head -c $((size / 2)) full.mkv > cut.mkv``
    """
    src = clip_dir / "full.mkv"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x96:duration=4:rate=10",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(src),
    )
    return _cut_in_half(src, clip_dir / "cut.mkv")


@pytest.fixture(scope="session")
def undecodable_mp4(clip_dir: Path) -> Path:
    """A well-formed MP4 whose frame data is all zero bytes (a faststart MP4 with its ``mdat`` zeroed)."""
    src = clip_dir / "fast_for_zero.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x96:duration=2:rate=10",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        str(src),
    )
    data = bytearray(src.read_bytes())
    start = data.find(b"mdat") + 4
    data[start:] = bytes(len(data) - start)
    out = clip_dir / "zeroed.mp4"
    out.write_bytes(bytes(data))
    return out


@pytest.fixture(scope="session")
def audio_only(clip_dir: Path) -> Path:
    """1 s of sine, AAC in MP4: ``ffmpeg -f lavfi -i sine=duration=1 audio.mp4``."""
    out = clip_dir / "audio.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", str(out))
    return out


@pytest.fixture(scope="session")
def text_as_mp4(clip_dir: Path) -> Path:
    """A text file renamed ``notes.mp4``."""
    out = clip_dir / "notes.mp4"
    out.write_text("these are meeting notes, not a video\n" * 20)
    return out


@pytest.fixture(scope="session")
def empty_mp4(clip_dir: Path) -> Path:
    """An empty file named ``empty.mp4``."""
    out = clip_dir / "empty.mp4"
    out.write_bytes(b"")
    return out


def _cut_in_half(src: Path, out: Path) -> Path:
    data = src.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    return out


@pytest.fixture(scope="session")
def damaged_avi(clip_dir: Path) -> Path:
    """10 s of MPEG-4 Part 2 in AVI with bytes overwritten in its middle: some packets no longer decode.

    The container and most packets are intact, so the file still samples; the decoder refuses the hit
    packets with "Invalid data found when processing input" (seeded, so the same packets every run).
    """
    src = clip_dir / "damaged_src.avi"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:duration=10:rate=30", "-c:v", "mpeg4", str(src))
    data = bytearray(src.read_bytes())
    rng = random.Random(2)
    for i in range(int(len(data) * 0.3), int(len(data) * 0.7), 101):
        data[i] = rng.randrange(256)
    out = clip_dir / "damaged.avi"
    out.write_bytes(bytes(data))
    return out
