"""ask: retrieval (a fresh caption or the library), grounding with find, a language model behind a real
loopback OpenAI-compatible server with scripted answers, and every citation checked."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner

from support.fake_judges import FakeJudgeServer
from vidspan.answer import NOT_SUPPORTED, Evidence, ask, check_citations, find_citations
from vidspan.judge.openai_judge import OpenAIJudge
from vidspan.models import families
from vidspan.testing.mock import MockVideoModel
from vidspan.types import Caption, Event, Span

LIGHT = {"fps": 0.5, "max_frames": 8, "min_frames": 2, "max_pixels": 64 * 64, "window_seconds": 60.0}
CAPTION = (
    "Scene: a street.\nEvents:\n<2.0 - 6.0> A red car enters from the left.\n"
    "<10.0 - 15.0> The car drives past the camera.\n<20.0 - 26.0> The car parks by the curb.\n"
)


@pytest.fixture
def model():
    return MockVideoModel([lambda clip, prompt: _answer(prompt)], family=families.MARLIN)


def _answer(prompt: str) -> str:
    return "From 10.0 to 14.0." if prompt != families.MARLIN.caption_prompt else CAPTION


def judge(server, tmp_path):
    return OpenAIJudge("qwen-local", base_url=server.openai_base_url, api_key="k", cache=False)


def test_citations_are_read_in_every_form_models_write():
    text = (
        "It enters [2.0–6.0], passes [10-15 s] and parks [0:20 – 0:26]; see [car.mp4 10.0—15.0] and "
        "[car.mp4, 1:02:03 to 1:02:05]. Not a citation: [12] or [a-b]."
    )
    found = find_citations(text)
    assert [(v, a, b) for _, v, a, b in found] == [
        (None, 2.0, 6.0),
        (None, 10.0, 15.0),
        (None, 20.0, 26.0),
        ("car.mp4", 10.0, 15.0),
        ("car.mp4", 3723.0, 3725.0),
    ]


def test_each_citation_is_checked_against_the_duration_and_the_retrieved_moments():
    evidence = [
        Evidence("/v/car.mp4", Span(10.0, 15.0), "the car passes", "caption"),
        Evidence("/v/door.mp4", Span(3.0, 4.0), "the door opens", "index"),
    ]
    text = (
        "[car.mp4 10.5–14.0] [door 3.2–3.8] [car.mp4 40–45] [car.mp4 25.0–28.0] [lobby.mp4 1–2] "
        "[3.0–3.5] [9.5-10.2]"
    )
    checked = check_citations(text, evidence, {"/v/car.mp4": 30.2, "/v/door.mp4": 8.0})
    assert [(c.video, c.evidence, c.problem) for c in checked] == [
        ("/v/car.mp4", 0, None),
        ("/v/door.mp4", 1, None),  # named by stem
        ("/v/car.mp4", None, "it starts after the video ends (30.2 s)"),
        ("/v/car.mp4", None, "no retrieved moment covers it"),
        (None, None, "'lobby.mp4' is none of the videos retrieved"),
        ("/v/door.mp4", 1, None),  # a bare span: the video whose moment it overlaps
        ("/v/car.mp4", 0, None),  # within the slack of a moment's edge
    ]


def test_ask_a_video_cites_its_real_moments(model, shared_videos, tmp_path):
    video = str(shared_videos / "car-detection.mp4")
    answer_text = "The car drives past at [10.0–14.0] and then parks [20.0–26.0]."
    with FakeJudgeServer(lambda info: answer_text) as server:
        answer = ask(
            "When does the car pass the camera?",
            llm=judge(server, tmp_path),
            video=video,
            model=model,
            **LIGHT,
        )
        (request,) = server.requests
    assert answer.supported and answer.text == answer_text and answer.raw == answer_text
    assert [c.ok for c in answer.citations] == [True, True]
    sources = {(e.source, e.span.start, e.span.end) for e in answer.evidence}
    assert ("find", 10.0, 14.0) in sources and ("caption", 20.0, 26.0) in sources
    # the model was shown the question, the numbered evidence and told how to cite
    assert "When does the car pass the camera?" in request.prompt and "E1. [2.0–6.0]" in request.prompt
    assert "[12.0–18.5]" in request.system
    assert answer.citations[1].evidence == [e.span for e in answer.evidence].index(Span(20.0, 26.0))
    json.dumps(answer.to_dict())


@pytest.mark.parametrize(
    "said, problems",
    [
        ("It parks at [40.0–45.0].", ["it starts after the video ends (30.2 s)"]),
        ("It happens at [16.2–18.6], between the events.", ["no retrieved moment covers it"]),
        ("The evidence does not say.", []),
    ],
)
def test_an_answer_without_a_citation_that_holds_says_it_is_not_supported(
    model, shared_videos, tmp_path, said, problems
):
    video = str(shared_videos / "car-detection.mp4")
    with FakeJudgeServer(lambda info: said) as server:
        answer = ask(
            "Where does it park?",
            llm=judge(server, tmp_path),
            video=video,
            model=model,
            ground=False,
            **LIGHT,
        )
    assert not answer.supported and answer.text == NOT_SUPPORTED and answer.raw == said
    assert [c.problem for c in answer.rejected] == problems
    assert all(e.source == "caption" for e in answer.evidence)  # ground=False: no find


def test_ask_a_library_resolves_named_videos_and_rejects_others(tmp_path):
    import numpy as np

    from vidspan.library.embed import default_embedder
    from vidspan.library.open import open_index

    db = tmp_path / "lib.sqlite"
    videos = {
        "/v/car.mp4": [(10.0, 15.0, "a red car drives past the camera")],
        "/v/door.mp4": [(3.0, 4.0, "a man opens the front door")],
    }
    with open_index(db) as index:
        for path, events in videos.items():
            caption = Caption("scene", tuple(Event(Span(a, b), d) for a, b, d in events), raw="")
            vectors = np.asarray(default_embedder().embed([d for _, _, d in events]))
            index.add_video(
                path, hashlib.sha256(path.encode()).hexdigest(), caption, vectors, duration_seconds=30.0
            )
    said = "A man opens it [door.mp4 3.0–4.0]; later [car.mp4 50–55] and [lobby.mp4 1–2]."
    with FakeJudgeServer(lambda info: said) as server:
        answer = ask("who opens the door?", llm=judge(server, tmp_path), db=db, ground=False, top_k=2)
        (request,) = server.requests
    assert answer.supported
    assert [(c.video, c.ok) for c in answer.citations] == [
        ("/v/door.mp4", True),
        ("/v/car.mp4", False),
        (None, False),
    ]
    assert "door.mp4 [3.0–4.0]: a man opens the front door" in request.prompt  # several videos: named


def test_ask_cli_json_text_and_errors(shared_videos, tmp_path, monkeypatch):
    from vidspan.cli.main import cli
    from vidspan.models import register_plugin, unregister_plugin
    from vidspan.testing.mock import MockPlugin

    mock = MockVideoModel([lambda clip, prompt: _answer(prompt)], family=families.MARLIN, name="mock")
    plugin = MockPlugin(mock)
    register_plugin(plugin)
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    video = str(shared_videos / "car-detection.mp4")
    light = ["--fps", "0.5", "--max-frames", "8", "--max-pixels", "4096"]
    try:
        with FakeJudgeServer(lambda info: "It passes at [10.0–14.0] and flies at [90–95].") as server:
            common = [
                "-m",
                "mock",
                "--llm",
                "openai:qwen-local",
                "--llm-base-url",
                server.openai_base_url,
                "--no-progress",
                *light,
            ]
            as_json = CliRunner().invoke(cli, ["ask", video, "when does the car pass?", *common, "--json"])
            text = CliRunner().invoke(cli, ["ask", video, "when does the car pass?", *common])
        assert as_json.exit_code == 0, as_json.output
        payload = json.loads(as_json.stdout)
        assert payload["supported"] is True and [c["ok"] for c in payload["citations"]] == [True, False]
        assert {"question", "answer", "citations", "evidence", "raw", "llm"} <= set(payload)
        assert text.exit_code == 0 and text.stdout.startswith("It passes at [10.0–14.0]")
        assert (
            "00:10.0 - 00:14.0" in text.stdout
            and "rejected [90–95]: it starts after the video ends" in text.stderr
        )
        missing = CliRunner().invoke(cli, ["ask", video, "q", "-m", "mock"], env={"VIDSPAN_LLM": ""})
        assert missing.exit_code == 2 and "Missing option '--llm'" in missing.output
        nothing = CliRunner().invoke(cli, ["ask", "q", "--llm", "openai:x"])
        assert nothing.exit_code == 2 and "Give a VIDEO or --db LIBRARY" in nothing.output
        absent = CliRunner().invoke(cli, ["ask", str(tmp_path / "no.mp4"), "q", "--llm", "openai:x"])
        assert absent.exit_code == 1 and absent.output.strip().endswith("no such file.")
    finally:
        unregister_plugin(plugin)
