"""Pictures of answers: the annotated MP4, the contact sheet, and points over the player in real Chromium."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vidspan.points.ask as ask
from support.moving import Motion, molmo2_reply, moving_clip
from vidspan.models import families
from vidspan.points.draw import color, contact_sheet, draw_video, positions_at
from vidspan.server.html import points_to_html
from vidspan.testing.mock import MockVideoModel
from vidspan.video import open_video, probe

SMALL = {"fps": 2.0, "max_frames": 8, "max_pixels": 96 * 160, "min_pixels": 32 * 32}
MOTION = Motion()
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory):
    clip = moving_clip(tmp_path_factory.mktemp("pictures") / "plain.mp4", MOTION)
    vm = MockVideoModel([molmo2_reply], family=families.MOLMO2)
    return clip, ask.track(clip, "red square", vm, **SMALL), ask.point(clip, "red square", vm, **SMALL)


def test_tracks_are_interpolated_between_reported_times(tracked) -> None:
    _, tracking, _ = tracked
    a, b = tracking[1].positions[1], tracking[1].positions[2]
    ((here, tail),) = positions_at(tracking, (a.t + b.t) / 2)
    assert here.x == pytest.approx((a.x + b.x) / 2) and len(tail) >= 2
    assert positions_at(tracking, 10.0) == []


def test_annotated_mp4_marks_the_object_where_it_is(tracked, tmp_path) -> None:
    clip, tracking, _ = tracked
    out = draw_video(tracking, tmp_path / "drawn.mp4")
    info = probe(out)
    assert info.duration_seconds == pytest.approx(4.0, abs=0.2) and (info.width, info.height) == (160, 96)
    assert not list(tmp_path.glob(".*part*"))  # the temporary file was renamed into place
    t = tracking[1].positions[2].t
    with open_video(out) as drawn, open_video(clip) as source:
        i = int(np.abs(drawn.frame_times - t).argmin())
        j = int(np.abs(source.frame_times - drawn.frame_times[i]).argmin())
        diff = np.abs(drawn.decode([i])[0].astype(int) - source.decode([j])[0].astype(int)).sum(-1) > 90
    diff[:18, :] = False  # the time written in the corner
    ys, xs = np.nonzero(diff)
    x, y = MOTION.displayed(float(drawn.frame_times[i]))
    assert len(xs) > 20 and xs.min() - 2 <= x <= xs.max() + 2 and ys.min() - 2 <= y <= ys.max() + 2


def test_contact_sheet_has_one_tile_per_time_with_the_points(tracked, tmp_path) -> None:
    _, _, pointing = tracked
    sheet = Image.open(contact_sheet(pointing, tmp_path / "sheet.png", columns=4, thumb_width=160))
    times = sorted({p.t for p in pointing})
    assert sheet.size == (4 * 160, -(-len(times) // 4) * 96)
    tile = np.asarray(sheet)[:96, :160]  # the first time's tile: a white ring around the point
    first = pointing[0]
    ring = tile[max(0, int(first.y) - 8) : int(first.y) + 8, max(0, int(first.x) - 8) : int(first.x) + 8]
    assert (ring.min(-1) > 200).any()
    with pytest.raises(ValueError, match="Invalid sheet"):
        contact_sheet(pointing, tmp_path / "x.png", columns=0)


def test_the_timeline_page_draws_the_track_over_the_playing_video(tracked, tmp_path) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run scripts/install.sh (apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    clip, tracking, _ = tracked
    page_path = tmp_path / "track.html"
    page_path.write_text(points_to_html(tracking, clip, relative_to=tmp_path))
    with sync_playwright() as p:
        flags = ["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"]
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=flags)
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(page_path.as_uri())
        page.wait_for_selector("body[data-ready='1']")
        page.wait_for_function("document.getElementById('player').readyState >= 1")
        t = tracking[1].positions[3].t
        page.evaluate(f"() => {{ const v = document.getElementById('player'); v.currentTime = {t}; }}")
        page.wait_for_function("document.getElementById('overlay').dataset.drawn === '1'")
        # the overlay pixel at the object's place has the object's colour
        where = tracking[1].positions[3]
        rgb = page.evaluate(f"""() => {{
            const v = document.getElementById('player'), c = document.getElementById('overlay');
            const s = Math.min(v.clientWidth / v.videoWidth, v.clientHeight / v.videoHeight);
            const x = (v.clientWidth - v.videoWidth * s) / 2 + {where.x_norm} * v.videoWidth * s;
            const y = (v.clientHeight - v.videoHeight * s) / 2 + {where.y_norm} * v.videoHeight * s;
            return Array.from(c.getContext('2d').getImageData(Math.round(x), Math.round(y), 1, 1).data);
        }}""")
        assert tuple(rgb[:3]) == color(1) and rgb[3] == 255
        page.evaluate("() => document.getElementById('player').play()")
        page.wait_for_function(f"document.getElementById('player').currentTime > {t + 0.5}")
        assert page.get_by_text("#1 red square").count() >= 1  # the track is an event on the timeline
        shot = page.screenshot(path=str(tmp_path / "overlay.png"))
        browser.close()
    assert len(shot) > 10_000 and not errors
