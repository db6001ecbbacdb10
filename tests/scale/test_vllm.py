"""Captioning with vLLM through Ray Data's LLM processor: the rows vidspan writes for it (the same frame-list
request as the openai backend), the processor it builds, the frame clock that maps vLLM's frame times back
to true times, and the driver's loop on a real local cluster with the GPU stage scripted."""

from __future__ import annotations

import base64
import io
import json
import random

import pytest

from vidspan.caption import caption_windows
from vidspan.errors import ParseError
from vidspan.models import families
from vidspan.models.openai import OpenAICompatModel
from vidspan.models.registry import resolve
from vidspan.scale import RayOptions
from vidspan.scale.vllm import (
    FrameClock,
    VLLMOptions,
    caption_from_rows,
    checkpoint_stop_ids,
    processor_config,
    window_rows,
)
from vidspan.testing.mock import MockVideoModel
from vidspan.video import SamplingConfig
from vidspan.windows import decode_windows, prepare

# car-detection.mp4 is 30.16 s: 3 windows of 12 s; 0.5 fps would give 6 frames, capped at 4 (3 s apart)
CAPPED = {"fps": 0.5, "max_frames": 4, "min_frames": 2, "max_pixels": 64 * 64, "window_seconds": 12.0,
          "overlap_seconds": 2.0}  # fmt: skip


def settings_for(sampling=None, **options):
    return prepare(MockVideoModel(["x"], family=families.MARLIN), sampling, dict(CAPPED, **options))[1]


def test_window_rows_send_the_openai_backends_frame_request_for_every_window(shared_videos):
    video = shared_videos / "car-detection.mp4"
    settings = settings_for()
    rows = window_rows(7, video, settings, families.MARLIN, max_new_tokens=99, stop_token_ids=[5, 6])
    windows = decode_windows(video, settings)
    assert len(rows) == len(windows) == 3
    client = OpenAICompatModel(resolve("marlin-2b"), base_url="http://127.0.0.1:1/v1", served_model="m",
                               input_mode="frames")  # fmt: skip
    for row, item in zip(rows, windows, strict=True):
        clip = item.clip
        assert (row["key"], row["window"], row["windows"]) == (7, item.index, 3)
        assert (row["start"], row["end"]) == (clip.window.start, clip.window.end)
        assert row["times"] == pytest.approx([t - clip.window.start for t in clip.timestamps])
        assert row["fps"] == 0.5
        # the same chat message the openai backend sends in "frames" mode
        body = client.build_request(clip, families.MARLIN.caption_prompt, max_new_tokens=99)
        assert row["messages"] == body["messages"]
        assert row["sampling_params"] == {"temperature": 0.0, "max_tokens": 99, "stop_token_ids": [5, 6]}
        frames = row["messages"][0]["content"][0]["video_url"]["url"].partition(",")[2].split(",")
        assert len(frames) == clip.num_frames == 4
        from PIL import Image

        image = Image.open(io.BytesIO(base64.b64decode(frames[0])))
        assert image.size == (clip.frames.shape[2], clip.frames.shape[1])
    json.dumps(rows)  # plain JSON types: Ray Data stores them as Arrow columns


def test_window_rows_raise_for_a_file_that_is_not_a_video(shared_videos):
    from vidspan.errors import VideoError

    with pytest.raises(VideoError, match="not a video"):
        window_rows(0, shared_videos / "SOURCE.md", settings_for(), families.MARLIN)


def test_processor_config_times_frame_lists_at_the_plan_rate_in_both_stages():
    settings = settings_for(fps=2.0)
    options = RayOptions(workers=4, env={"HF_HUB_OFFLINE": "1"})
    vllm = VLLMOptions(batch_size=8, max_model_len=32768, engine_kwargs={"tensor_parallel_size": 2,
                                                                         "limit_mm_per_prompt": {"video": 2}})
    config = processor_config("/ckpt/marlin", settings, options, vllm)
    assert config["model_source"] == "/ckpt/marlin"
    assert (config["concurrency"], config["batch_size"]) == (4, 8)
    assert config["should_continue_on_error"] is True
    engine = config["engine_kwargs"]
    assert engine["media_io_kwargs"] == {"video": {"fps": 2.0}}
    assert engine["max_model_len"] == 32768 and engine["tensor_parallel_size"] == 2
    assert engine["limit_mm_per_prompt"] == {"video": 2}  # the user's engine arguments win
    stage = config["prepare_multimodal_stage"]
    assert stage["enabled"] is True
    assert stage["model_config_kwargs"]["media_io_kwargs"] == {"video": {"fps": 2.0}}
    assert config["runtime_env"] == {"env_vars": {"HF_HUB_OFFLINE": "1"}}
    # a fixed frame count has no rate of its own: vLLM is told 2 fps and the clock maps it back
    fixed = processor_config("m", settings_for(SamplingConfig(num_frames=8)), RayOptions(), VLLMOptions())
    assert fixed["engine_kwargs"]["media_io_kwargs"] == {"video": {"fps": 2.0}}
    assert "max_model_len" not in fixed["engine_kwargs"]


@pytest.mark.parametrize(
    "options, message",
    [({"batch_size": 0}, "batch_size"), ({"max_model_len": -1}, "max_model_len"),
     ({"jpeg_quality": 101}, "jpeg_quality"), ({"engine_kwargs": [1]}, "engine_kwargs")],
)  # fmt: skip
def test_vllm_options_refuse_bad_values(options, message):
    with pytest.raises(ValueError, match=message):
        VLLMOptions(**options)


def test_frame_clock_maps_vllm_frame_times_back_to_true_times():
    uniform = FrameClock(2.0, (0.0, 0.5, 1.0, 1.5), 2.0)
    assert [uniform(t) for t in (0.0, 0.75, 1.5, 2.0)] == [0.0, 0.75, 1.5, 2.0]
    capped = FrameClock(0.5, (0.0, 3.0, 6.0, 9.0), 12.0)  # frames 3 s apart, shown 2 s apart
    assert capped.model_duration == 8.0
    assert [capped(t) for t in (0.0, 2.0, 3.0, 6.0, 8.0, 50.0)] == [0.0, 3.0, 4.5, 9.0, 12.0, 12.0]
    vfr = FrameClock(1.0, (0.0, 1.533), 1.566)  # two frames of a 1.566 s clip
    assert vfr(1.0) == pytest.approx(1.533)


def test_caption_from_rows_gives_the_caption_one_process_gives_for_the_same_answers(shared_videos):
    video = shared_videos / "car-detection.mp4"
    settings = settings_for()
    windows = decode_windows(video, settings)
    rows = window_rows(0, video, settings, families.MARLIN)

    def true_text(clip, _prompt):  # one event from the second frame to the last, in true seconds
        a, b = (t - clip.window.start for t in (clip.timestamps[1], clip.timestamps[-1]))
        return f"Scene: cars.\nEvents:\n<{a:.3f} - {b:.3f}> A car drives by at {clip.window.start:.0f}.\n"

    one = caption_windows(MockVideoModel([true_text], family=families.MARLIN), windows, settings)
    answered = []
    for row in rows:  # vLLM saw frame i at i / fps: the same answer on its clock
        n = len(row["times"])
        text = f"Scene: cars.\nEvents:\n<{1 / row['fps']:.3f} - {(n - 1) / row['fps']:.3f}> "
        answered.append(row | {"generated_text": text + f"A car drives by at {row['start']:.0f}.\n"})
    random.Random(0).shuffle(answered)  # rows come back in completion order
    got = caption_from_rows(answered, model="marlin-2b", settings={"engine": "vllm"})
    assert got.scene == one.scene == "cars."
    assert [e.description for e in got.events] == [e.description for e in one.events]
    for mine, theirs in zip(got.events, one.events, strict=True):
        assert mine.span.start == pytest.approx(theirs.span.start, abs=1e-3)
        assert mine.span.end == pytest.approx(theirs.span.end, abs=1e-3)
    assert got.windows == one.windows and got.violations == one.violations == ()
    # raw keeps the model's own text, on the clock it was shown (frames 2 s apart at 0.5 fps)
    assert got.raw.startswith("[window 1/3: 0.0-11.4 s]\nScene: cars.\nEvents:\n<2.000 - 6.000>")
    bad = [dict(answered[0], generated_text="no caption here")] + answered[1:]
    assert caption_from_rows(bad, model="m", settings={}).violations
    with pytest.raises(ParseError):
        caption_from_rows(bad, model="m", settings={}, strict=True)


def test_checkpoint_stop_ids_read_every_eos_id_a_local_checkpoint_declares(tmp_path):
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [248044, 248046]}))
    (tmp_path / "config.json").write_text(json.dumps({"eos_token_id": 248046,
                                                      "text_config": {"eos_token_id": 248044}}))  # fmt: skip
    assert checkpoint_stop_ids(str(tmp_path)) == [248044, 248046]
    assert checkpoint_stop_ids("nvidia/Marlin-2B") == []  # a hub id: vLLM reads its generation config


# -- on a real local Ray cluster ----------------------------------------------------------------------------

LIGHT = {"num_cpus": 0.5, "decode_cpus": 0.5}
CLIPS = ("asl-eat.mkv", "asl-walk.mkv", "car-detection.mp4")


def scripted_processor(refuse=()):
    """Ray's processor with its GPU stages replaced by the scripted engine; error rows skip postprocess."""
    import ray

    from support.ray_jobs import ScriptedEngine
    from vidspan.scale import vllm

    def build(*_args):
        def processor(ds):
            pool = ray.data.ActorPoolStrategy(size=1)
            ds = ds.map(ScriptedEngine, fn_constructor_args=(refuse,), compute=pool, num_cpus=0.5)
            return ds.map(lambda r: r if r.get("__inference_error__") else vllm._keep_answer(r), num_cpus=0.5)

        return processor

    return build


def test_generate_captions_with_vllm_on_ray_maps_answers_to_true_times(ray_cluster, shared_videos, tmp_path,
                                                                      monkeypatch):  # fmt: skip
    from vidspan.eval.benchmark import Benchmark
    from vidspan.eval.captions.generate import generate_captions
    from vidspan.eval.captions.samples import CaptionSample

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 2048)
    names = [*CLIPS, "broken.mp4"]
    samples = tuple(CaptionSample(id=str(i), video=n, reference="r", subset="all")
                    for i, n in enumerate(names))  # fmt: skip
    paths = {n: shared_videos / n for n in CLIPS} | {"broken.mp4": broken}
    bench = Benchmark("t", str(shared_videos / "events.coarse.json"), samples, str(shared_videos), paths)
    monkeypatch.setattr("vidspan.scale.vllm.build_caption_processor", scripted_processor(refuse=(1,)))
    monkeypatch.setattr("vidspan.scale.vllm.check_gpus", lambda *_: None)  # the scripted engine needs none
    ray = RayOptions(vllm=VLLMOptions(batch_size=2), **LIGHT)
    model = MockVideoModel(["never asked"], family=families.MARLIN)
    result = generate_captions(bench, model, tmp_path / "run", ray=ray, **CAPPED)
    failed = {f["id"]: f["error"] for f in result["failed"]}
    assert result["generated"] == 2 and set(failed) == {"1", "3"}
    assert failed["1"] == "vLLM could not answer window 1: prompt is longer than max_model_len"
    assert "Cannot read video" in failed["3"]
    lines = (tmp_path / "run" / "captions.jsonl").read_text().splitlines()
    rows = {json.loads(x)["id"]: json.loads(x) for x in lines}
    assert sorted(rows) == ["0", "2"]
    # each window's one event, first frame to last on vLLM's clock, comes back at the true frame times
    settings = settings_for()
    for key, name in (("0", "asl-eat.mkv"), ("2", "car-detection.mp4")):
        windows = decode_windows(shared_videos / name, settings)
        spans = [(w.clip.timestamps[0], w.clip.timestamps[-1]) for w in windows]
        got = [(e["start"], e["end"]) for e in rows[key]["events"]]
        assert got[0][0] == pytest.approx(spans[0][0], abs=1e-3)  # (the windows' events merge on overlap)
        assert got[-1][1] == pytest.approx(spans[-1][1], abs=1e-3)
    assert rows["0"]["events"][0]["end"] == pytest.approx(1.533)  # shown at 2.0 s (0.5 fps), truly at 1.533 s


def test_build_caption_processor_builds_ray_s_vllm_stages(ray_cluster, tiny_model_dirs):
    pytest.importorskip("ray.data.llm")
    from vidspan.scale.vllm import build_caption_processor

    checkpoint = str(tiny_model_dirs["qwen3_5"])
    processor = build_caption_processor(checkpoint, families.MARLIN, settings_for(fps=2.0),
                                        RayOptions(workers=2), VLLMOptions())  # fmt: skip
    assert processor.list_stage_names() == [
        "PrepareMultimodalStage", "ChatTemplateStage", "TokenizeStage", "vLLMEngineStage", "DetokenizeStage",
    ]  # fmt: skip
    prepare_stage = processor.get_stage_by_name("PrepareMultimodalStage").fn_constructor_kwargs
    assert prepare_stage["model_config_kwargs"]["media_io_kwargs"] == {"video": {"fps": 2.0}}
    template = processor.get_stage_by_name("ChatTemplateStage").fn_constructor_kwargs
    assert template["chat_template_kwargs"] == {"enable_thinking": False}
    engine = processor.get_stage_by_name("vLLMEngineStage").fn_constructor_kwargs
    assert engine["engine_kwargs"]["limit_mm_per_prompt"] == {"video": 1, "image": 0}


def test_vllm_on_a_cluster_without_gpus_is_refused_in_one_sentence(ray_cluster, shared_videos):
    from vidspan.scale.ray import RayError
    from vidspan.scale.vllm import vllm_captions

    model = MockVideoModel(["x"], family=families.MARLIN)
    with pytest.raises(RayError, match="needs GPU nodes, and the Ray cluster at 'local' has no GPU"):
        clips = [shared_videos / "asl-eat.mkv"]
        list(vllm_captions(model, settings_for(), clips, RayOptions(), VLLMOptions()))
