"""index_paths: the shared clips, captioned by a mock model into SQLite; incremental, crash-safe."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vidspan.library.indexer import file_sha256, find_videos, index_paths
from vidspan.library.sqlite import VideoIndex
from vidspan.testing.mock import MockVideoModel

CAPTIONS = {
    "bottle-detection": (
        "Scene: Three water bottles stand on a wooden table.\nEvents:\n"
        "<2.0 - 6.0> A hand lifts a bottle from the table.\n<8.0 - 12.0> The hand puts it back down.\n"
    ),
    "car-detection": (
        "Scene: An empty parking lot seen from above.\nEvents:\n"
        "<1.0 - 5.0> A car drives through the lot.\n<10.0 - 14.0> A white van turns at the corner.\n"
        "<20.0 - 24.0> A red car leaves the frame.\n"
    ),
    "one-by-one-person-detection": (
        "Scene: A small round table by a white wall.\nEvents:\n"
        "<3.0 - 9.0> A man walks in and stands at the table.\n<20.0 - 26.0> A woman leaves the room.\n"
    ),
    "asl-walk": (
        "Scene: A person signs.\nEvents:\n<0.0 - 1.0> The hands rise.\n<1.0 - 2.5> The hands move forward.\n"
    ),
    "asl-eat": "Scene: A person signs.\nEvents:\n<0.0 - 1.0> The fingers touch the mouth.\n",
}
FAST = {
    "fps": 0.1,
    "min_frames": 2,
    "max_pixels": 64 * 64,
}  # decode little: the mock model does not look at the frames


def reply(clip, prompt: str) -> str:
    return CAPTIONS[Path(clip.video.path).stem]


def num_events(stem: str) -> int:
    return CAPTIONS[stem].count("\n<")


@pytest.fixture
def videos(shared_videos, tmp_path) -> Path:
    """Copies of the shared clips (tests change them)."""
    folder = tmp_path / "videos"
    shutil.copytree(shared_videos, folder)
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def test_find_videos_and_hash(videos, shared_videos):
    (videos / "sub").mkdir()
    shutil.copy(videos / "asl-eat.mkv", videos / "sub" / "again.MKV")
    found = find_videos([videos])
    assert [p.name for p in found] == [
        "asl-eat.mkv", "asl-walk.mkv", "bottle-detection.mp4", "car-detection.mp4",
        "one-by-one-person-detection.mp4", "again.MKV",
    ]  # fmt: skip
    assert len(find_videos([videos], recursive=False)) == 5
    eat = videos / "asl-eat.mkv"
    assert find_videos([eat, eat]) == [eat.resolve()]
    with pytest.raises(FileNotFoundError, match="Invalid path"):
        find_videos([videos / "missing.mp4"])
    # the digest listed in SOURCE.md
    assert file_sha256(shared_videos / "asl-eat.mkv") == (
        "1a252672404cbbc56fe75deaf6425a12e8db428bcf119f7e88556eb445eeff36"
    )


def test_index_search_and_incremental_runs(videos, tmp_path):
    db = tmp_path / "lib.sqlite"
    model = MockVideoModel([reply])
    seen = []
    progress = lambda r, msg: seen.append((r.done, r.total, msg))  # noqa: E731
    report = index_paths([videos], model, db, progress=progress, **FAST)
    assert len(report.indexed) == 5 and not report.failed and not report.skipped
    assert report.num_events == sum(num_events(s) for s in CAPTIONS)
    assert seen[0] == (0, 5, "captioning asl-eat.mkv") and seen[-1] == (5, 5, "done")
    assert len(model.history) == 5

    with VideoIndex(db, create=False) as index:
        stored = {Path(v.path).stem: v for v in index.videos()}
        assert set(stored) == set(CAPTIONS)
        bottle = stored["bottle-detection"]
        assert bottle.num_events == 2 and bottle.duration_seconds == pytest.approx(39.9, abs=0.2)
        assert bottle.sha256 == "d52ba94aedf8a923c342fe9ea1d2bd85f712c4cc0f49a6de1bac43eebe3a48ff"
        hits = index.search("bottle")
        assert hits[0].caption == "A hand lifts a bottle from the table."
        assert Path(hits[0].video).name == "bottle-detection.mp4"
        assert (hits[0].start, hits[0].end) == (2.0, 6.0)
        paraphrase = index.search("someone picks up a container")
        assert paraphrase[0].caption == "A hand lifts a bottle from the table."
        assert index.search("a vehicle", path_glob="*car*")[0].caption == "A car drives through the lot."
        late = index.search("car", path_glob="car-detection.mp4", start=15.0)
        assert [h.caption for h in late] == ["A red car leaves the frame."]

    # nothing changed: nothing is captioned again
    model.history.clear()
    again = index_paths([videos], model, db, **FAST)
    assert len(again.skipped) == 5 and not again.indexed and model.history == []

    # new content in one file: only that one is captioned again
    shutil.copy(videos / "asl-walk.mkv", videos / "asl-eat.mkv")
    third = index_paths([videos], model, db, **FAST)
    assert [Path(p).name for p in third.indexed] == ["asl-eat.mkv"] and len(third.skipped) == 4
    assert len(model.history) == 1
    with VideoIndex(db) as index:
        assert len(index.videos()) == 5
        eat = index.video_by_path(videos / "asl-eat.mkv")
        assert eat.sha256 == file_sha256(videos / "asl-walk.mkv")


def test_bad_files_are_reported_without_stopping(videos, tmp_path):
    (videos / "broken.mp4").write_text("not a video")
    (videos / "empty.mkv").write_bytes(b"")
    with VideoIndex(tmp_path / "lib.sqlite") as index:
        report = index_paths([videos / "broken.mp4", videos / "empty.mkv", videos / "asl-walk.mkv"],
                             MockVideoModel([reply]), index, **FAST)  # fmt: skip
        assert [Path(p).name for p in report.indexed] == ["asl-walk.mkv"]
        assert {Path(f.path).name for f in report.failed} == {"broken.mp4", "empty.mkv"}
        assert all(f.error.startswith("Cannot read video") for f in report.failed)
        assert [Path(v.path).name for v in index.videos()] == ["asl-walk.mkv"]


INDEX_SCRIPT = """
import sys, time
from pathlib import Path
from vidspan.library.indexer import index_paths
from vidspan.testing.mock import MockVideoModel

CAPTIONS = {captions!r}

def reply(clip, prompt):
    print("captioning", Path(clip.video.path).name, flush=True)
    time.sleep(0.4)
    return CAPTIONS[Path(clip.video.path).stem]

index_paths([sys.argv[1]], MockVideoModel([reply]), sys.argv[2], fps=0.1, min_frames=2, max_pixels=4096)
print("finished", flush=True)
"""


def test_a_killed_run_leaves_a_consistent_index_and_the_next_run_finishes(videos, tmp_path):
    script = tmp_path / "run_index.py"
    script.write_text(textwrap.dedent(INDEX_SCRIPT.format(captions=CAPTIONS)))
    db = tmp_path / "lib.sqlite"
    env = os.environ | {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(videos), str(db)], stdout=subprocess.PIPE,
                            text=True, env=env)  # fmt: skip
    started = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while len(started) < 3 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "the indexing subprocess ended early"
            assert not line.startswith("finished")
            started.append(line.split()[1])
        time.sleep(0.25)  # in the middle of the third video
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL and len(started) == 3

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = conn.execute(
        "SELECT v.path, count(e.id), count(x.event_id) FROM videos v LEFT JOIN events e ON e.video_id = v.id "
        "LEFT JOIN event_embeddings x ON x.event_id = e.id GROUP BY v.id"
    ).fetchall()
    conn.close()
    done = {Path(path).stem: (n, m) for path, n, m in rows}
    assert 1 <= len(done) <= 3 and set(done) <= {Path(name).stem for name in started}
    for stem, (n, m) in done.items():  # every stored video is whole
        assert n == m == num_events(stem)

    model = MockVideoModel([reply])
    report = index_paths([videos], model, db, **FAST)
    assert len(report.skipped) == len(done) and len(report.indexed) == 5 - len(done)
    assert len(model.history) == 5 - len(done)
    with VideoIndex(db) as index:
        stored = {Path(v.path).stem: v.num_events for v in index.videos()}
        assert stored == {s: num_events(s) for s in CAPTIONS}


def test_a_model_that_cannot_load_stops_the_run(videos, tmp_path):
    from vidspan.errors import UnknownModelError

    with pytest.raises(UnknownModelError, match="no-such-model"):
        index_paths([videos / "asl-eat.mkv"], "no-such-model", tmp_path / "lib.sqlite", **FAST)
    with VideoIndex(tmp_path / "lib.sqlite") as index:
        assert index.videos() == []
