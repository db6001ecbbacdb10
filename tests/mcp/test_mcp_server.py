"""vidspan's MCP server through the SDK's real client: in process, over stdio (``vidspan mcp`` as a
subprocess) and over streamable HTTP; tools with schemas in seconds, progress notifications, tool errors
with the CLI's one line, and the library's videos as resources."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from mcp import Client, StdioServerParameters  # noqa: E402
from support.fake_judges import FakeJudgeServer  # noqa: E402
from vidspan.judge.openai_judge import OpenAIJudge  # noqa: E402
from vidspan.mcp import MCPConfig, build_server  # noqa: E402
from vidspan.models import families  # noqa: E402
from vidspan.testing.mock import MockVideoModel  # noqa: E402
from vidspan.types import Caption, Event, Span  # noqa: E402

LIGHT = {"fps": 0.5, "max_frames": 4, "min_frames": 2, "max_pixels": 64 * 64, "window_seconds": 12.0}
CAPTION = "Scene: a street.\nEvents:\n<1.0 - 4.0> A car passes the camera.\n"
TOOLS = {"caption", "find", "search", "clip", "ask", "summarize", "point", "count"}


def _reply(clip, prompt):
    return CAPTION if prompt == families.MARLIN.caption_prompt else "From 1.0 to 3.0."


@pytest.fixture
def library(tmp_path, shared_videos) -> str:
    import numpy as np

    from vidspan.library.embed import default_embedder
    from vidspan.library.open import open_index

    db = tmp_path / "lib.sqlite"
    events = {
        "car-detection.mp4": [(10.0, 15.0, "a red car drives past the camera")],
        "asl-walk.mkv": [(0.5, 2.0, "a woman signs the word walk")],
    }
    with open_index(db) as index:
        for name, items in events.items():
            path = str(shared_videos / name)
            caption = Caption("A scene.", tuple(Event(Span(a, b), d) for a, b, d in items), raw="")
            vectors = np.asarray(default_embedder().embed([d for _, _, d in items]))
            index.add_video(
                path, hashlib.sha256(path.encode()).hexdigest(), caption, vectors, duration_seconds=30.0
            )
    return str(db)


def run(coro):
    return asyncio.run(coro)


def test_tools_have_schemas_in_seconds_and_answer_with_progress(shared_videos, library, tmp_path):
    model = MockVideoModel([_reply], family=families.MARLIN)
    server = build_server(
        MCPConfig(db=library, model=model, clips_dir=str(tmp_path / "clips"), model_options=LIGHT)
    )
    video = str(shared_videos / "car-detection.mp4")
    progress: list[tuple[float, float | None, str | None]] = []

    async def main():
        async with Client(server) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}

            async def note(done, total, message):
                progress.append((done, total, message))

            caption = await client.call_tool("caption", {"video": video}, progress_callback=note)
            found = await client.call_tool("find", {"video": video, "query": "a car passes"})
            clip = await client.call_tool("clip", {"video": video, "start": 2.0, "end": 4.5})
            search = await client.call_tool("search", {"query": "a car drives by", "limit": 1})
            return tools, caption, found, clip, search

    tools, caption, found, clip, search = run(main())
    assert set(tools) == TOOLS
    clip_schema = tools["clip"].input_schema["properties"]
    assert "Seconds" in clip_schema["start"]["description"] and clip_schema["start"]["minimum"] == 0
    assert "seconds" in tools["caption"].description and tools["search"].input_schema["required"] == ["query"]
    assert not caption.is_error
    events = caption.structured_content["events"]
    # 30.2 s in 12 s windows (with overlaps): four windows, each reported as it finished
    assert len({(e["start"], e["end"]) for e in events}) >= 3 and events[0]["start"] == 1.0
    assert [p for p, _, _ in progress] == [0, 1, 2, 3, 4] and all(t == 4 for _, t, _ in progress)
    assert progress[-1][2] == "window 4/4 done"
    assert not found.is_error, found.content
    assert found.structured_content["found"] and found.structured_content["start"] == 1.0
    assert not clip.is_error, clip.content
    path = Path(clip.structured_content["path"])
    assert path.is_file() and path.parent == tmp_path / "clips" and path.stat().st_size > 1000
    hit = search.structured_content["hits"][0]
    assert hit["video"].endswith("car-detection.mp4") and (hit["start"], hit["end"]) == (10.0, 15.0)


def test_tool_errors_carry_the_clis_one_line(shared_videos, tmp_path):
    from vidspan.errors import error_line

    server = build_server(MCPConfig(model=MockVideoModel([_reply], family=families.MARLIN)))
    missing = str(tmp_path / "none.mp4")

    async def main():
        async with Client(server) as client:
            return [
                await client.call_tool(name, args)
                for name, args in [
                    ("caption", {"video": missing}),
                    ("clip", {"video": str(shared_videos / "asl-eat.mkv"), "start": 3.0, "end": 1.0}),
                    ("search", {"query": "cars"}),
                    ("ask", {"question": "what happens?", "video": missing}),
                    ("clip", {"video": missing, "start": -1, "end": 2}),
                ]
            ]

    results = run(main())
    assert all(r.is_error for r in results)
    texts = [r.content[0].text for r in results]
    import vidspan

    with pytest.raises(vidspan.VideoError) as direct:
        vidspan.caption(missing, MockVideoModel([_reply]))
    assert texts[0].endswith(error_line(direct.value))  # the same line as `vidspan caption`
    assert "end (1 s) must be after start (3 s)" in texts[1]
    assert texts[2].endswith("This server has no library: start it with --db.")
    assert texts[3].endswith("This server has no language model: start it with --llm.")
    assert "greater than or equal to 0" in texts[4]  # the schema's minimum, checked by the SDK
    assert all("\n" not in t for t in texts[:4])


def test_ask_and_summarize_through_mcp_with_a_loopback_llm(shared_videos, tmp_path):
    video = str(shared_videos / "car-detection.mp4")

    def respond(info):
        if info.system and "JSON" in info.system:
            return json.dumps(
                {
                    "summary": "A car passes three times.",
                    "chapters": [{"start": 0, "title": "First pass"}, {"start": 12.5, "title": "Later"}],
                }
            )
        if info.system and "summarise one part" in info.system:
            return "A car passes the camera."
        return "A car passes at [1.0–4.0]."

    with FakeJudgeServer(respond) as fake:
        llm = OpenAIJudge("qwen-local", base_url=fake.openai_base_url, api_key="k", cache=False)
        server = build_server(
            MCPConfig(model=MockVideoModel([_reply], family=families.MARLIN), llm=llm, model_options=LIGHT)
        )

        async def main():
            async with Client(server) as client:
                return (
                    await client.call_tool("ask", {"question": "when does a car pass?", "video": video}),
                    await client.call_tool("summarize", {"video": video}),
                )

        asked, summary = run(main())
    assert not asked.is_error and asked.structured_content["supported"] is True
    assert asked.structured_content["citations"][0]["ok"] is True
    assert not summary.is_error, summary.content
    body = summary.structured_content
    assert body["summary"] == "A car passes three times." and len(body["windows"]) == 4
    assert [(c["start"], c["title"]) for c in body["chapters"]] == [(0.0, "First pass"), (12.5, "Later")]


def test_library_videos_and_events_are_resources(library):
    server = build_server(MCPConfig(db=library))

    async def main():
        async with Client(server) as client:
            listed = await client.list_resources()
            templates = await client.list_resource_templates()
            videos = json.loads((await client.read_resource("vidspan://videos")).contents[0].text)
            first = videos["videos"][0]
            one = json.loads((await client.read_resource(first["uri"])).contents[0].text)
            try:
                await client.read_resource("vidspan://videos/999")
                missing = None
            except Exception as exc:  # the SDK raises the server's resource error
                missing = str(exc)
            return listed, templates, videos, one, missing

    listed, templates, videos, one, missing = run(main())
    assert [str(r.uri) for r in listed.resources] == ["vidspan://videos"]
    assert [t.uri_template for t in templates.resource_templates] == ["vidspan://videos/{video_id}"]
    assert len(videos["videos"]) == 2
    assert one["events"] and {"start", "end", "description"} == set(one["events"][0])
    assert missing is not None and "No video 999" in missing


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {
        **os.environ,
        "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "HF_HUB_OFFLINE": "1",
    }


def test_vidspan_mcp_over_stdio(library):
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "vidspan", "mcp", "--db", library], env=_env()
    )

    async def main():
        async with Client(params) as client:
            tools = (await client.list_tools()).tools
            return tools, await client.call_tool("search", {"query": "someone signs a word"})

    tools, search = run(main())
    assert {t.name for t in tools} == TOOLS
    assert search.structured_content["hits"][0]["video"].endswith("asl-walk.mkv")


def test_vidspan_mcp_over_streamable_http(library):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidspan", "mcp", "--db", library, "--transport", "http", "--port", str(port)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.2)

        async def main():
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                return await client.call_tool("search", {"query": "a car", "limit": 5})

        search = run(main())
        assert [Path(h["video"]).name for h in search.structured_content["hits"]][0] == "car-detection.mp4"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_vidspan_mcp_with_a_missing_library_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "vidspan", "mcp", "--db", str(tmp_path / "none.sqlite")],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "No index at" in result.stderr


def test_concurrent_calls_share_the_model_one_at_a_time(shared_videos):
    import threading

    inside, most = [0], [0]
    lock = threading.Lock()

    def slow_reply(clip, prompt):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.05)
        with lock:
            inside[0] -= 1
        return "From 1.0 to 2.0."

    server = build_server(
        MCPConfig(model=MockVideoModel([slow_reply], family=families.MARLIN), model_options=LIGHT)
    )
    video = str(shared_videos / "asl-walk.mkv")

    async def main():
        async with Client(server) as client:
            return await asyncio.gather(
                *(client.call_tool("find", {"video": video, "query": f"q{i}"}) for i in range(4))
            )

    results = run(main())
    assert all(not r.is_error and r.structured_content["start"] == 1.0 for r in results)
    assert most[0] == 1  # the shared model never ran two calls at once
