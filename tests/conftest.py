"""Test bootstrap: offline, isolated, no stray ERROR logs.

No torchvision shim is applied here: the transformers backend applies its own logged fallback
(``vidspan.models.torchvision_compat``), so the suite runs the same path users run. The only tests that
import torchvision themselves (the qwen-vl-utils baseline) use the ``qwen_vl_utils`` fixture below.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from support.clips import run_ffmpeg as ffmpeg

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["VIDSPAN_LOAD_PLUGINS"] = "0"

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_VIDEOS = SHARED / "data" / "videos"


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Every test gets its own vidspan user path; the HF cache points at an empty folder."""
    base = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("VIDSPAN_USER_PATH", str(base / "vidspan"))
    monkeypatch.setenv("HF_HOME", str(base / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(base / "hf" / "hub"))


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    """Models loaded by name are cached per process; tests must not see each other's."""
    from vidspan.windows import clear_model_cache

    clear_model_cache()
    yield
    clear_model_cache()


@pytest.fixture(autouse=True)
def _no_error_logs(caplog):
    """Fail any test during which vidspan logged at ERROR or above."""
    caplog.set_level(logging.WARNING, logger="vidspan")
    yield
    errors = [
        r for r in caplog.get_records("call") if r.levelno >= logging.ERROR and r.name.startswith("vidspan")
    ]
    assert not errors, f"vidspan logged errors: {[r.getMessage() for r in errors]}"


@pytest.fixture(scope="session")
def shared_videos() -> Path:
    """The CC-BY sample clips in ../shared/data/videos (required)."""
    assert SHARED_VIDEOS.is_dir(), f"missing shared test data at {SHARED_VIDEOS}"
    return SHARED_VIDEOS


@pytest.fixture(scope="session")
def qwen_vl_utils():
    """qwen-vl-utils 0.0.14's ``vision_process``, the baseline the sampler is compared against.

    It imports torchvision at import time, outside any vidspan code path, so it needs the same fallback the
    transformers backend applies for itself on a CPU torch with PyPI's CUDA torchvision.
    """
    pytest.importorskip("torch")
    from vidspan.models.torchvision_compat import ensure_torchvision

    ensure_torchvision()
    return pytest.importorskip("qwen_vl_utils.vision_process")


@pytest.fixture(scope="session")
def tiny_build_seconds() -> dict[str, float]:
    """Wall time each tiny model took to build (filled by ``tiny_model_dirs``)."""
    return {}


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory, tiny_build_seconds) -> dict[str, Path]:
    """``{kind: directory}``: tiny random qwen2_5_vl, qwen3_vl, qwen3_5 and marlin checkpoints."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from support.tiny_models import KINDS, build_tiny_model

    root = tmp_path_factory.mktemp("tiny-models")
    dirs = {}
    for kind in KINDS:
        started = time.perf_counter()
        dirs[kind] = build_tiny_model(kind, root / kind)
        tiny_build_seconds[kind] = time.perf_counter() - started
    return dirs


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory) -> Path:
    """A 5-minute 160x90 10 fps clip (three model windows at the defaults).

    ffmpeg -f lavfi -i testsrc2=size=160x90:duration=300:rate=10 -c:v libx264 -preset ultrafast -g 50
           -pix_fmt yuv420p long.mp4
    """
    out = tmp_path_factory.mktemp("clips") / "long.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x90:duration=300:rate=10",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "50",
        "-pix_fmt",
        "yuv420p",
        str(out),
    )
    return out


_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL 16 + pgvector 0.6 server on a Unix socket (pgserver wheel).

    Run as root, pgserver creates a system user ``pgserver`` and runs postgres as that user, chowning the data
    folder to it: the folder lives under a fresh /tmp directory opened to that user (0755) rather than
    pytest's private tmp tree (0700), and the socket path stays short.
    """
    pgserver = pytest.importorskip("pgserver")
    root = Path(tempfile.mkdtemp(prefix="vidspan-pg-"))
    root.chmod(0o755)
    server = pgserver.get_server(root / "data", cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def new_database(pg_server):
    """``new_database()`` -> the URL of a new, empty database on the test server."""
    import psycopg

    def make() -> str:
        name = f"vidspan_{next(_counter)}"
        with psycopg.connect(pg_server.get_uri(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return pg_server.get_uri(database=name)

    return make
