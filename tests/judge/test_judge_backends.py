"""Judge backends against a real loopback server speaking the OpenAI and Gemini wire formats."""

from __future__ import annotations

import base64
import io
import logging
import socket
import time

import pytest
from PIL import Image

from support.fake_judges import FakeFault, FakeJudgeServer
from vidspan.errors import UnknownModelError
from vidspan.judge import (
    Frame,
    GeminiJudge,
    JudgeError,
    JudgeRequest,
    JudgeUnscoredError,
    OpenAIJudge,
    estimate_cost,
    get_judge,
)
from vidspan.judge.pricing import price_of

FAST = {"backoff_seconds": 0.01, "timeout_seconds": 5.0, "cache": False, "api_key": "test-key"}


def _jpeg(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="JPEG")
    return buffer.getvalue()


FRAMES = (Frame(0.0, _jpeg((255, 0, 0))), Frame(1.5, _jpeg((0, 0, 255))))


@pytest.fixture
def serve():
    servers = []

    def start(responder):
        server = FakeJudgeServer(responder).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def _judge(api: str, server: FakeJudgeServer, model: str | None = None, **options):
    settings = {**FAST, **options}
    if api == "openai":
        return OpenAIJudge(model or "gpt-4.1", base_url=server.openai_base_url, **settings)
    return GeminiJudge(model or "gemini-2.5-flash", base_url=server.gemini_base_url, **settings)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- wire shapes -----------------------------------------------------------------------------------------


def test_openai_payload_has_json_mode_temperature_zero_seed_and_labelled_frames(serve):
    server = serve(['{"events": ["a dog runs"]}'])
    judge = _judge("openai", server)
    reply = judge.complete(
        JudgeRequest("Extract the events as JSON.", system="You are a judge.", frames=FRAMES)
    )
    assert reply.text == '{"events": ["a dog runs"]}' and not reply.cached
    (seen,) = server.requests
    assert seen.api == "openai" and seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == "Bearer test-key"
    body = seen.body
    assert body["model"] == "gpt-4.1"
    assert body["temperature"] == 0 and body["seed"] == 0 and body["max_tokens"] == 2048
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0] == {"role": "system", "content": "You are a judge."}
    user = body["messages"][1]
    assert user["role"] == "user"
    parts = user["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "text", "image_url", "text"]
    assert parts[0]["text"] == "0.0 seconds:" and parts[2]["text"] == "1.5 seconds:"
    assert parts[4]["text"] == "Extract the events as JSON."
    for part, frame in zip((parts[1], parts[3]), FRAMES, strict=True):
        url = part["image_url"]["url"]
        assert url.startswith("data:image/jpeg;base64,")
        assert base64.b64decode(url.split(",", 1)[1]) == frame.jpeg
    assert seen.num_images == 2 and seen.system == "You are a judge."


def test_openai_text_only_request_sends_the_prompt_as_a_string_and_no_json_mode_when_not_asked(serve):
    server = serve(["fine"])
    judge = _judge("openai", server, seed=None)
    judge.complete(JudgeRequest("Say fine.", json_output=False))
    body = server.requests[0].body
    assert body["messages"] == [{"role": "user", "content": "Say fine."}]
    assert "response_format" not in body and "seed" not in body


def test_gemini_payload_has_key_header_inline_frames_and_json_mime_type(serve):
    server = serve(['{"ok": true}'])
    judge = _judge("gemini", server, model="models/gemini-2.5-flash")
    reply = judge.complete(JudgeRequest("Judge this as JSON.", system="Be strict.", frames=FRAMES))
    assert reply.text == '{"ok": true}'
    (seen,) = server.requests
    assert seen.api == "gemini" and seen.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert seen.headers["x-goog-api-key"] == "test-key" and "authorization" not in seen.headers
    body = seen.body
    assert body["systemInstruction"] == {"parts": [{"text": "Be strict."}]}
    (content,) = body["contents"]
    assert content["role"] == "user"
    parts = content["parts"]
    assert parts[0] == {"text": "0.0 seconds:"} and parts[2] == {"text": "1.5 seconds:"}
    assert parts[-1] == {"text": "Judge this as JSON."}
    for part, frame in zip((parts[1], parts[3]), FRAMES, strict=True):
        assert part["inlineData"]["mimeType"] == "image/jpeg"
        assert base64.b64decode(part["inlineData"]["data"]) == frame.jpeg
    assert body["generationConfig"] == {
        "temperature": 0,
        "maxOutputTokens": 2048,
        "seed": 0,
        "responseMimeType": "application/json",
    }


def test_extra_body_and_generation_config_are_merged_and_change_the_identity(serve):
    server = serve(["{}"])
    judge = _judge("openai", server, extra_body={"max_tokens": None, "max_completion_tokens": 99})
    judge.complete(JudgeRequest("json"))
    body = server.requests[0].body
    assert "max_tokens" not in body and body["max_completion_tokens"] == 99
    assert judge.settings.extra == {"extra_body": {"max_tokens": None, "max_completion_tokens": 99}}
    gemini = _judge(
        "gemini", server, generation_config={"thinkingConfig": {"thinkingBudget": 0}, "seed": None}
    )
    gemini.complete(JudgeRequest("json"))
    config = server.requests[1].body["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": 0} and "seed" not in config


# -- usage and cost --------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["openai", "gemini"])
def test_a_known_model_has_a_cost_and_usage_adds_up(serve, api):
    server = serve(['{"score": 3}'])
    judge = _judge(api, server)
    reply = judge.complete(JudgeRequest("Score it as JSON.", frames=FRAMES))
    assert reply.prompt_tokens and reply.prompt_tokens > 0 and reply.completion_tokens
    assert reply.cost_usd is not None and reply.cost_usd > 0
    assert reply.cost_usd == pytest.approx(
        estimate_cost(judge.settings.model, reply.prompt_tokens, reply.completion_tokens)
    )
    usage = judge.usage
    assert (usage.calls, usage.cached_calls, usage.calls_without_price) == (1, 0, 0)
    assert usage.prompt_tokens == reply.prompt_tokens and usage.completion_tokens == reply.completion_tokens
    assert usage.cost_usd == pytest.approx(reply.cost_usd)
    assert set(usage.to_dict()) >= {"calls", "cost_usd", "unscored", "calls_without_price"}


def test_an_unknown_model_has_no_cost_and_is_counted_without_price(serve):
    server = serve(['{"score": 3}'])
    judge = _judge("openai", server, model="Qwen/Qwen2.5-72B-Instruct")
    reply = judge.complete(JudgeRequest("json"))
    assert reply.cost_usd is None
    assert judge.usage.calls_without_price == 1 and judge.usage.cost_usd == 0.0 and judge.usage.calls == 1


def test_gemini_thinking_tokens_are_billed_as_output(serve):
    server = serve(["x"])
    judge = _judge("gemini", server)
    reply = judge._read_reply(
        {
            "candidates": [{"content": {"parts": [{"text": "plan", "thought": True}, {"text": "{}"}]}}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 3, "thoughtsTokenCount": 50},
        }
    )
    assert reply.text == "{}" and reply.prompt_tokens == 10 and reply.completion_tokens == 53


def test_prices_match_snapshots_and_aliases_and_unknown_models_have_none():
    assert price_of("gpt-4.1-2025-04-14") == price_of("gpt-4.1")
    assert price_of("gpt-4o-mini-2024-07-18") == price_of("gpt-4o-mini")
    assert price_of("gpt-35-turbo-0125") == price_of("gpt-3.5-turbo-0125")
    assert price_of("models/gemini-2.0-flash-001") == price_of("gemini-2.0-flash")
    assert price_of("gpt-3.5-turbo-1106") is None and price_of("my-local-model") is None
    assert estimate_cost("gpt-4.1", 1_000_000, 0) == pytest.approx(price_of("gpt-4.1").input_per_million)
    assert estimate_cost("gpt-4.1", None, 5) is None and estimate_cost("vllm-model", 10, 10) is None
    short = estimate_cost("gemini-2.5-pro", 200_000, 0) / 200_000
    long = estimate_cost("gemini-2.5-pro", 200_001, 0) / 200_001
    assert long > short  # the long-context tier


# -- transport failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["openai", "gemini"])
def test_a_429_is_retried_after_the_servers_retry_after(serve, api):
    server = serve([FakeFault.rate_limit(retry_after=1), '{"ok": 1}'])
    judge = _judge(api, server)
    started = time.monotonic()
    reply = judge.complete(JudgeRequest("json"))
    elapsed = time.monotonic() - started
    assert reply.text == '{"ok": 1}'
    assert server.count() == 2
    assert elapsed >= 0.9  # Retry-After: 1 won over the 0.01 s backoff


@pytest.mark.parametrize("api", ["openai", "gemini"])
def test_500s_exhaust_the_retries(serve, api):
    server = serve([FakeFault.server_error(500, "The server had an error while processing your request.")])
    judge = _judge(api, server, max_retries=2)
    with pytest.raises(JudgeError, match=r"answered HTTP 500: The server had an error.*\(3 attempts\)\."):
        judge.complete(JudgeRequest("json"))
    assert server.count() == 3
    assert judge.usage.calls == 0


def test_a_400_fails_at_once_with_the_servers_message(serve):
    server = serve([FakeFault.client_error(400, "'messages' must contain the word 'json' in some form.")])
    judge = _judge("openai", server)
    with pytest.raises(
        JudgeError, match=r"answered HTTP 400: 'messages' must contain the word 'json' in some"
    ):
        judge.complete(JudgeRequest("hello"))
    assert server.count() == 1


def test_a_gemini_error_shows_its_status(serve):
    server = serve([FakeFault.client_error(400, "API key not valid. Please pass a valid API key.")])
    judge = _judge("gemini", server)
    with pytest.raises(
        JudgeError, match=r"HTTP 400: API key not valid\. Please pass a valid API key \(INVALID"
    ):
        judge.complete(JudgeRequest("json"))
    assert server.count() == 1


def test_a_hanging_judge_times_out_within_bounds(serve):
    server = serve([FakeFault.hang(10)])
    judge = _judge("openai", server, timeout_seconds=0.3, max_retries=1)
    started = time.monotonic()
    with pytest.raises(JudgeError, match=r"did not answer within 0\.3 seconds \(2 attempts\)"):
        judge.complete(JudgeRequest("json"))
    assert time.monotonic() - started < 3
    assert server.count() == 2


def test_connection_refused_fails_at_once():
    port = _free_port()
    judge = OpenAIJudge("gpt-4.1", base_url=f"http://127.0.0.1:{port}/v1", **FAST)
    started = time.monotonic()
    with pytest.raises(
        JudgeError,
        match=rf"^Cannot connect to the judge at http://127\.0\.0\.1:{port}/v1/chat/completions: connection "
        r"refused\.$",
    ):
        judge.complete(JudgeRequest("json"))
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "fault", [FakeFault.malformed(), FakeFault.disconnect(), FakeFault.server_error(503)]
)
def test_garbled_or_dropped_replies_are_retried(serve, fault):
    server = serve([fault, '{"ok": 1}'])
    judge = _judge("openai", server)
    assert judge.complete(JudgeRequest("json")).text == '{"ok": 1}'
    assert server.count() == 2


def test_the_official_endpoint_needs_a_key_only_when_a_request_is_sent(monkeypatch):
    for name in ("OPENAI_API_KEY", "VIDSPAN_JUDGE_API_KEY", "VIDSPAN_JUDGE_BASE_URL", "GEMINI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    judge = OpenAIJudge("gpt-4.1", cache=False)
    assert judge.settings.base_url == "https://api.openai.com/v1"
    with pytest.raises(JudgeError, match="needs an OpenAI API key. Set OPENAI_API_KEY"):
        judge.complete(JudgeRequest("json"))
    gemini = GeminiJudge("gemini-2.5-flash", cache=False)
    with pytest.raises(JudgeError, match="needs a Gemini API key. Set GEMINI_API_KEY"):
        gemini.complete(JudgeRequest("json"))


def test_environment_sets_the_openai_base_url_and_key(serve, monkeypatch):
    server = serve(["{}"])
    monkeypatch.setenv("VIDSPAN_JUDGE_BASE_URL", server.openai_base_url)
    monkeypatch.setenv("VIDSPAN_JUDGE_API_KEY", "env-key")
    judge = OpenAIJudge("gpt-4.1", cache=False)
    judge.complete(JudgeRequest("json"))
    assert server.requests[0].headers["authorization"] == "Bearer env-key"
    assert "env-key" not in repr(judge.settings.identity())


# -- unusable replies ------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["openai", "gemini"])
def test_an_empty_reply_is_re_asked_and_never_cached(serve, api, tmp_path):
    server = serve([FakeFault.empty(), '{"ok": true}'])
    judge = _judge(api, server, cache=tmp_path / "cache.sqlite")
    assert judge.ask_json(JudgeRequest("json"), dict) == {"ok": True}
    assert server.count() == 2
    assert len(judge.cache) == 1


@pytest.mark.parametrize("where", ["prompt", "candidate"])
def test_a_gemini_safety_block_is_unusable_and_logged(serve, where, caplog):
    server = serve([FakeFault.safety_block(where)])
    judge = _judge("gemini", server)
    reply = judge.complete(JudgeRequest("json"))
    assert reply.text == "" and reply.prompt_tokens
    assert any("SAFETY" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    with pytest.raises(
        JudgeUnscoredError, match="no usable reply in 2 attempts; the last: the reply is empty"
    ):
        judge.ask_json(JudgeRequest("json"), dict, attempts=2)
    assert judge.usage.unscored == 1


# -- get_judge and arguments -----------------------------------------------------------------------------


def test_get_judge_builds_either_backend(serve):
    server = serve(["{}"])
    judge = get_judge("openai:gpt-4.1-mini", base_url=server.openai_base_url, **{**FAST, "api_key": "k"})
    assert isinstance(judge, OpenAIJudge) and judge.name == "openai:gpt-4.1-mini"
    gemini = get_judge("gemini:gemini-2.5-pro", base_url=server.gemini_base_url, cache=False)
    assert isinstance(gemini, GeminiJudge) and gemini.name == "gemini:gemini-2.5-pro"
    local = get_judge("openai:Qwen/Qwen2.5-7B-Instruct", base_url="http://127.0.0.1:8000/v1", cache=False)
    assert local.settings.model == "Qwen/Qwen2.5-7B-Instruct"


def test_get_judge_rejects_unknown_backends_and_bare_names():
    with pytest.raises(
        UnknownModelError, match=r"Unknown judge backend 'opnai' .* Did you mean: openai:gpt-4\.1\?"
    ):
        get_judge("opnai:gpt-4.1")
    with pytest.raises(ValueError, match=r"It must be BACKEND:MODEL.*Did you mean: openai:gpt-4\.1\?"):
        get_judge("gpt-4.1")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temperature": -1}, "Invalid temperature"),
        ({"max_tokens": 0}, "Invalid max_tokens"),
        ({"seed": 1.5}, "Invalid seed"),
        ({"timeout_seconds": 0}, "Invalid timeout_seconds"),
        ({"max_retries": -1}, "Invalid max_retries"),
        ({"base_url": "ftp://x"}, "Invalid base_url"),
        ({"base_url": "http://user:pw@host/v1"}, "must not hold credentials"),
    ],
)
def test_invalid_arguments_are_rejected(options, message):
    with pytest.raises(ValueError, match=message):
        OpenAIJudge("gpt-4.1", cache=False, **options)
