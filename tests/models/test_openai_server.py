"""The OpenAI-compatible server, alone and end to end with the HTTP client and a tiny real model."""

from __future__ import annotations

import base64
import http.client
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidspan.errors import BackendConnectionError, ModelError
from vidspan.models import families, get_model
from vidspan.models.base import Generation, ModelSpec, VideoModel
from vidspan.models.openai import OpenAICompatServer, serve
from vidspan.models.openai.client import OpenAICompatModel
from vidspan.types import Clip, Span, VideoInfo


class EchoModel(VideoModel):
    """Answers with a summary of the clip it was given; fails when the prompt says so."""

    def __init__(self) -> None:
        self.spec = ModelSpec("echo", families.MARLIN, "echo-checkpoint")

    def generate(self, clip: Clip, prompt: str, *, max_new_tokens: int) -> Generation:
        if prompt == "fail":
            raise ModelError("echo failed on purpose")
        if prompt == "crash":
            raise RuntimeError("unexpected")
        text = f"{clip.num_frames} frames {clip.size[0]}x{clip.size[1]} until {clip.window.end:g}: {prompt}"
        return Generation(text, mean_logprob=-0.25, num_prompt_tokens=11, num_generated_tokens=3)


def make_clip(num_frames: int = 4, start: float = 10.0) -> Clip:
    frames = np.stack([np.full((64, 96, 3), 30 * i, dtype=np.uint8) for i in range(num_frames)])
    timestamps = tuple(start + 0.5 * i + 0.25 for i in range(num_frames))
    window = Span(start, start + 0.5 * num_frames)
    info = VideoInfo("", 60.0, 30.0, 1800, 96, 64, 0, "h264", "mp4")
    return Clip(frames=frames, timestamps=timestamps, window=window, video=info)


def request(server: OpenAICompatServer, method: str, path: str, body: object = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        payload = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def jpeg_b64(frame: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


def chat(content: list | str, **extra: object) -> dict:
    return {"model": "echo", "messages": [{"role": "user", "content": content}], **extra}


@pytest.fixture(scope="module")
def echo_server() -> Iterator[OpenAICompatServer]:
    with serve(EchoModel()) as server:
        yield server


# -- the server alone ---------------------------------------------------------------------------------------


def test_models_lists_the_served_name(echo_server: OpenAICompatServer) -> None:
    assert echo_server.base_url == f"http://127.0.0.1:{echo_server.port}/v1"
    status, body = request(echo_server, "GET", "/v1/models")
    assert status == 200 and body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["echo"] and body["data"][0]["object"] == "model"


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/v1/nothing"), ("POST", "/v1/completions"), ("GET", "/")]
)
def test_unknown_paths_are_404(echo_server: OpenAICompatServer, method: str, path: str) -> None:
    status, body = request(echo_server, method, path, {} if method == "POST" else None)
    assert status == 404 and set(body["error"]) == {"message", "type", "param", "code"}


FRAME = "data:video/jpeg;base64," + jpeg_b64(np.zeros((64, 64, 3), np.uint8))
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + FRAME.split(",", 1)[1]}}
Q = {"type": "text", "text": "Q"}


def video(url: str = FRAME) -> dict:
    return {"type": "video_url", "video_url": {"url": url}}


NOT_A_VIDEO = "data:video/mp4;base64," + base64.b64encode(b"no video").decode()


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (chat("What happens?"), "no video"),
        (chat([{"type": "text", "text": "What happens?"}]), "no video"),
        (chat([video()]), "no text prompt"),
        (chat([video("http://x/a.mp4"), Q]), "Only data URLs"),
        (chat([video("data:video/jpeg;base64,@@"), Q]), "invalid base64"),
        (chat([video("data:video/jpeg;base64,AAAA"), Q]), "not a readable image"),
        (chat([video(), video(), Q]), "one video"),
        (chat([video(), Q], media_io_kwargs={"video": {"fps": 1e3, "frames_indices": [0, 5]}}), "one index"),
        (chat([video(), Q], media_io_kwargs={"video": {"fps": -1}}), "Invalid media_io_kwargs.video.fps"),
        (chat([{"type": "audio", "audio": "x"}, Q]), "Unsupported content part"),
        (chat([video(NOT_A_VIDEO), Q]), "Cannot read the video"),
        (chat([{"type": "text", "text": "0.5 seconds:"}, IMAGE, IMAGE, Q]), "every image or no image"),
        (chat([{"type": "image_url", "image_url": {"url": FRAME}}, Q]), "must hold an image"),
        (chat([video(), Q], max_tokens=0), "max_tokens"),
        (chat([video(), Q], stream=True), "Streaming"),
        ({"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "Q"}]}, "exactly one"),
        (b"{not json", "not valid JSON"),
    ],
)
def test_bad_requests_are_400_in_openai_error_shape(
    echo_server: OpenAICompatServer, body: object, match: str
) -> None:
    status, answer = request(echo_server, "POST", "/v1/chat/completions", body)
    assert status == 400, answer
    error = answer["error"]
    assert error["type"] == "invalid_request_error" and match in error["message"]
    assert set(error) == {"message", "type", "param", "code"}


def test_another_model_name_is_404(echo_server: OpenAICompatServer) -> None:
    status, answer = request(echo_server, "POST", "/v1/chat/completions", chat([video(), Q], model="gpt-x"))
    assert status == 404 and answer["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("prompt", "message"), [("fail", "echo failed on purpose"), ("crash", "RuntimeError: unexpected")]
)
def test_model_failures_are_500_with_the_message(
    echo_server: OpenAICompatServer, prompt: str, message: str
) -> None:
    body = chat([video(), {"type": "text", "text": prompt}])
    status, answer = request(echo_server, "POST", "/v1/chat/completions", body)
    assert status == 500 and answer["error"]["message"] == message


def test_oversized_requests_are_413() -> None:
    with serve(EchoModel(), max_request_bytes=1000) as server:
        status, answer = request(server, "POST", "/v1/chat/completions", b"x" * 5000)
    assert status == 413 and "at most 1000" in answer["error"]["message"]


def test_a_frame_list_without_times_is_one_frame_per_second(echo_server: OpenAICompatServer) -> None:
    frames = ",".join(jpeg_b64(np.full((70, 100, 3), 9, np.uint8)) for _ in range(3))
    body = chat([{"type": "video_url", "video_url": {"url": "data:video/jpeg;base64," + frames}},
                 {"type": "text", "text": "Q"}], logprobs=True, max_tokens=3)
    status, answer = request(echo_server, "POST", "/v1/chat/completions", body)
    assert status == 200, answer
    clip = echo_server.last_clip
    assert clip is not None and clip.timestamps == (0.0, 1.0, 2.0) and clip.window == Span(0.0, 3.0)
    assert clip.size[0] % 32 == 0 and clip.size[1] % 32 == 0  # resized onto the Marlin patch grid
    assert answer["object"] == "chat.completion" and answer["model"] == "echo"
    (choice,) = answer["choices"]
    assert choice["message"] == {"role": "assistant", "content": answer["choices"][0]["message"]["content"]}
    assert choice["finish_reason"] == "length"
    entries = choice["logprobs"]["content"]
    assert len(entries) == 3 and all(e["logprob"] == -0.25 and e["top_logprobs"] == [] for e in entries)
    assert "".join(e["token"] for e in entries) == choice["message"]["content"]
    assert answer["usage"] == {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}


# -- end to end: client -> server -> tiny real model ---------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenAICompatServer]:
    from support.tiny_models import build_tiny_model
    from vidspan.models.transformers_backend import TransformersModel

    path = build_tiny_model("marlin", tmp_path_factory.mktemp("tiny") / "marlin")
    model = TransformersModel(ModelSpec("tiny-marlin", families.MARLIN, str(path)), device="cpu")
    with serve(model, served_model="tiny-marlin") as server:
        yield server


def tiny_client(server: OpenAICompatServer, input_mode: str, **options: object) -> OpenAICompatModel:
    spec = ModelSpec("tiny-marlin", families.MARLIN, "tiny-marlin", backend="openai")
    return OpenAICompatModel(
        spec, base_url=server.base_url, served_model="tiny-marlin", input_mode=input_mode, timeout_seconds=60,
        **options,
    )


@pytest.mark.parametrize("input_mode", ["frames", "images"])
def test_the_client_gets_an_answer_with_true_times(tiny_server: OpenAICompatServer, input_mode: str) -> None:
    clip = make_clip(num_frames=4, start=10.0)
    generation = tiny_client(tiny_server, input_mode).generate(clip, "Describe.", max_new_tokens=6)
    assert isinstance(generation.text, str) and generation.text  # random weights: only newlines, but some
    assert generation.mean_logprob is not None and generation.mean_logprob <= 0
    assert generation.num_prompt_tokens and 1 <= (generation.num_generated_tokens or 0) <= 6
    received = tiny_server.last_clip
    assert received is not None and tiny_server.last_prompt == "Describe."
    # Times relative to the window start: exact to the millisecond as a frame list, to 0.1 s as image labels.
    tolerance = 1e-3 if input_mode == "frames" else 0.051
    assert received.timestamps == pytest.approx((0.25, 0.75, 1.25, 1.75), abs=tolerance)
    assert received.size == (64, 96) and received.num_frames == 4
    # Greedy decoding: the served answer is what the model says about the clip the server decoded.
    direct = tiny_server.model.generate(received, "Describe.", max_new_tokens=6)
    assert generation.text == direct.text
    assert generation.mean_logprob == pytest.approx(direct.mean_logprob, abs=1e-4)


def test_the_client_sends_a_whole_file(tiny_server: OpenAICompatServer, shared_videos: Path) -> None:
    from vidspan.video import SamplingConfig, sample_clip

    config = SamplingConfig(fps=2.0, max_frames=8, patch_factor=32, max_pixels=64 * 96, min_pixels=32 * 32)
    clip = sample_clip(shared_videos / "asl-eat.mkv", config=config)
    client = get_model("tiny-marlin", base_url=tiny_server.base_url, family="marlin", input_mode="video",
                       media_io_kwargs={"video": {"max_frames": 8}})  # through the registry's openai backend
    assert isinstance(client, OpenAICompatModel) and client.served_model == "tiny-marlin"
    body = client.build_request(clip, "Q", max_new_tokens=4)
    assert body["messages"][0]["content"][0]["video_url"]["url"].startswith("data:video/x-matroska;base64,")
    generation = client.generate(clip, "What happens?", max_new_tokens=4)
    assert generation.text and generation.mean_logprob is not None and generation.mean_logprob <= 0
    received = tiny_server.last_clip
    assert received is not None and received.window.end == pytest.approx(clip.window.end, abs=0.1)
    assert received.num_frames == clip.num_frames
    assert received.timestamps == pytest.approx(clip.timestamps, abs=0.05)


def test_a_server_error_reaches_the_client_as_one_sentence() -> None:
    with serve(EchoModel(), served_model="tiny-marlin") as server:
        client = tiny_client(server, "frames", max_retries=0)
        with pytest.raises(BackendConnectionError, match=r"answered HTTP 500: echo failed on purpose\.$"):
            client.generate(make_clip(), "fail", max_new_tokens=4)
        assert client.generate(make_clip(), "ok", max_new_tokens=4).text.startswith("4 frames 64x96")
