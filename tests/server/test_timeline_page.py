"""The timeline page in real headless Chromium: library, search → seek, event blocks → seek, --html file.

Needs Debian's /usr/bin/chromium and the playwright package (scripts/install.sh installs both); the
browser is never downloaded (no ``playwright install``). The server runs under uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from vidspan.cli.main import cli
from vidspan.library.types import Library
from vidspan.models import register_plugin, unregister_plugin
from vidspan.testing.mock import MockPlugin, MockVideoModel
from vidspan.types import Caption, Event, Span

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip
VIDEOS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "videos"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run scripts/install.sh (apt-get install chromium).")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "The playwright package is missing: run scripts/install.sh (pip install 'vidspan[test]')."
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def coarse_index(path: Path) -> Library:
    """The real SQLite index holding two shared clips with their hand-labelled events."""
    from vidspan.library.embed import TextEmbedder
    from vidspan.library.sqlite import VideoIndex

    coarse = json.loads((VIDEOS / "events.coarse.json").read_text())["videos"]
    index = VideoIndex(path, embedder=TextEmbedder())
    for name in ("bottle-detection.mp4", "car-detection.mp4"):
        events = tuple(Event(Span(e["start"], e["end"]), e["label"]) for e in coarse[name]["events"])
        caption = Caption(scene=f"Fixed camera: {name}", events=events, raw="", model="mock")
        vectors = index.embedder.embed([e.description for e in events])
        index.add_video(
            VIDEOS / name, "0" * 64, caption, vectors, duration_seconds=coarse[name]["duration_s"]
        )
    return index


@contextmanager
def serve(app) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port; yields its base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Iterator[Library]:
    index = coarse_index(tmp_path_factory.mktemp("index") / "index.sqlite")
    yield index
    index.close()


@pytest.fixture(scope="module")
def server_url(index) -> Iterator[str]:
    from vidspan.server.app import create_app

    with serve(create_app(index)) as url:
        yield url


def _wait_current_time(page, seconds: float, tolerance: float = 0.5) -> None:
    page.wait_for_function(
        "([t, tol]) => { const v = document.querySelector('video#player');"
        " return v.readyState >= 1 && Math.abs(v.currentTime - t) <= tol && !v.seeking; }",
        arg=[seconds, tolerance],
        timeout=15_000,
    )


def test_search_hit_and_event_block_seek_the_player(page, server_url, tmp_path):
    page.goto(server_url + "/")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator(".video-item").all_inner_texts()[0].startswith("bottle-detection.mp4")
    assert page.locator(".video-item").count() == 2
    # the first video is loaded with its blocks laid out on the time axis
    assert page.locator(".event-block").count() == 7
    assert "2 videos" in page.locator("#status").inner_text()

    page.fill("#search", "a silver car drives down")
    page.press("#search", "Enter")
    page.wait_for_selector(".hit")
    first = page.locator(".hit").first
    assert "silver car" in first.inner_text()
    assert float(first.get_attribute("data-start")) == 15.0
    first.click()
    page.wait_for_function("document.querySelector('video#player').dataset.videoId === '2'")
    _wait_current_time(page, 15.0)
    assert page.locator(".event-block").count() == 3
    page.wait_for_function(
        "document.querySelector('.event-block[data-index=\"1\"]').classList.contains('active')"
    )

    # blocks sit at left = start / duration
    track = page.locator("#track").bounding_box()
    block = page.locator(".event-block").nth(2).bounding_box()
    duration = page.evaluate("document.querySelector('video#player').duration")
    assert abs((block["x"] - track["x"]) / track["width"] - 26.0 / duration) < 0.01

    page.locator(".event-block").nth(0).click()
    _wait_current_time(page, 4.0)
    assert page.locator(".event-row.active").inner_text().startswith("00:04.0–00:07.0")
    assert float(page.locator(".event-block.active").get_attribute("data-start")) == 4.0

    page.wait_for_function("document.querySelector('video#player').readyState >= 3", timeout=15_000)
    page.wait_for_timeout(300)  # let the player hide its loading spinner
    shot = tmp_path / "timeline.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_playback_highlights_the_event_under_the_playhead(page, server_url):
    page.goto(server_url + "/#video=1&t=5.5")
    page.wait_for_selector("body[data-ready='1']")
    _wait_current_time(page, 5.5)
    page.evaluate("document.querySelector('video#player').play()")
    page.wait_for_function(
        "document.querySelector('video#player').currentTime >= 6.1 && "
        "document.querySelector('#timeline').dataset.active === '0'",
        timeout=15_000,
    )
    assert float(page.locator(".event-block.active").get_attribute("data-start")) == 6.0


CAPTION = (
    "Scene: Three water bottles stand on a table.\nEvents:\n"
    "<2.0 - 6.0> A hand reaches for the left bottle.\n<11.0 - 12.0> The left bottle is put back.\n"
    "<30.0 - 33.0> A hand picks up the right bottle.\n"
)


def test_html_file_from_the_cli_renders_the_timeline(page, tmp_path):
    model = MockVideoModel([CAPTION], name="mock")
    plugin = MockPlugin(model)
    register_plugin(plugin)
    try:
        out = tmp_path / "report" / "bottle.html"
        out.parent.mkdir()
        result = CliRunner().invoke(
            cli,
            ["caption", str(VIDEOS / "bottle-detection.mp4"), "-m", "mock", "--no-progress",
             "--fps", "0.25", "--max-frames", "12", "--html", str(out)],
            catch_exceptions=False,
        )  # fmt: skip
    finally:
        unregister_plugin(plugin)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "<script src=" not in text and "<link rel=" not in text  # one self-contained file
    assert "bottle-detection.mp4" in text and not list(out.parent.glob(".*tmp"))

    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator(".event-block").count() == 3
    assert page.locator("#scene").inner_text() == "Three water bottles stand on a table."
    page.locator(".event-block").nth(1).click()
    _wait_current_time(page, 11.0)
    page.fill("#search", "right bottle")
    page.press("#search", "Enter")
    page.locator(".hit").first.click()
    _wait_current_time(page, 30.0)
    page.screenshot(path=str(tmp_path / "standalone.png"), full_page=True)


def test_embedded_html_needs_no_file(page, tmp_path):
    from vidspan.server.html import caption_to_html

    caption = Caption(scene="A person signs.", events=(Event(Span(0.5, 2.5), "signs walk"),), raw="")
    html = caption_to_html(caption, VIDEOS / "bottle-detection.mp4", embed_video=True)
    assert "data:video/mp4;base64," in html
    out = tmp_path / "embedded.html"
    out.write_text(html)
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function("document.querySelector('video#player').readyState >= 1", timeout=15_000)
    assert page.evaluate("Math.round(document.querySelector('video#player').duration)") == 40
    page.locator(".event-block").first.click()
    _wait_current_time(page, 0.5)


def test_page_with_a_token(page, index):
    from vidspan.server.app import create_app

    with serve(create_app(index, token="s3cret")) as url:
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready='1']")
        assert "token" in page.locator("#status").inner_text()
        assert page.locator(".video-item").count() == 0
        page.goto(url + "/#token=s3cret&video=1&t=11")
        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator(".video-item").count() == 2
        _wait_current_time(page, 11.0)  # the media request carried the token too
