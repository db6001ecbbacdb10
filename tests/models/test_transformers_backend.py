"""The transformers backend on tiny random checkpoints: prompts, timestamps, loading, generation, errors."""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
import time
from types import SimpleNamespace

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from vidspan.errors import MissingDependencyError, ModelError, ModelUnavailableError  # noqa: E402
from vidspan.models import hub  # noqa: E402
from vidspan.models.transformers_backend import (  # noqa: E402
    INSTALL_HINT,
    TransformersModel,
    clip_to_video_inputs,
    import_backend,
)

KINDS = ("qwen2_5_vl", "qwen3_vl", "qwen3_5", "marlin")
QWEN3_KINDS = ("qwen3_vl", "qwen3_5", "marlin")
VFR_TIMES = (0.0, 1.2, 2.5, 3.7, 5.0, 6.23, 7.5, 8.73)
VFR_MARKERS = ["<0.6 seconds>", "<3.1 seconds>", "<5.6 seconds>", "<8.1 seconds>"]
MARKER = re.compile(r"<\d+\.\d seconds>")
FACTOR = {"qwen2_5_vl": 28, "qwen3_vl": 32, "qwen3_5": 32, "marlin": 32}


# -- generation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_family_generates(loaded_models, tiny_clip, kind):
    model = loaded_models[kind]
    clip = tiny_clip(FACTOR[kind])
    built = model.build_inputs(clip, "What happens?")
    grid = built.inputs["video_grid_thw"].tolist()
    assert grid == [[4, 4, 6]]  # 8 frames -> 4 temporal patches; 2x3 merged tokens = 4x6 patches
    assert built.inputs["pixel_values_videos"].shape[0] == 4 * 4 * 6
    assert built.text.count("<|video_pad|>") == 4 * 6
    out = model.generate(clip, "What happens?", max_new_tokens=6)
    assert isinstance(out.text, str)
    assert 1 <= out.num_generated_tokens <= 6
    assert out.num_prompt_tokens == built.num_prompt_tokens
    assert out.mean_logprob is not None and math.isfinite(out.mean_logprob) and out.mean_logprob <= 0
    assert set(out.timings) == {"preprocess", "generate", "detokenize"}
    assert all(v >= 0 for v in out.timings.values())


def test_metadata_is_in_milliseconds_since_the_window_start(tiny_clip):
    times = (100.0, 101.2, 102.5, 103.7, 105.0, 106.23, 107.5)
    frames, meta = clip_to_video_inputs(tiny_clip(32, times, window=(100.0, 110.0)))
    assert frames.shape == (8, 64, 96, 3) and (frames[-1] == frames[-2]).all()
    assert meta.fps == 1000.0
    assert list(meta.frames_indices) == [0, 1200, 2500, 3700, 5000, 6230, 7500, 7500]
    assert (meta.total_num_frames, meta.duration, meta.height, meta.width) == (10000, 10.0, 64, 96)


@pytest.mark.parametrize("kind", QWEN3_KINDS)
def test_markers_are_the_true_pair_average_pts(loaded_models, tiny_clip, kind):
    built = loaded_models[kind].build_inputs(tiny_clip(32, VFR_TIMES), "q")
    assert MARKER.findall(built.text) == VFR_MARKERS


@pytest.mark.parametrize("kind", ("qwen3_vl", "marlin"))
def test_markers_count_from_the_window_start(loaded_models, tiny_clip, kind):
    times = tuple(100 + t for t in VFR_TIMES)
    built = loaded_models[kind].build_inputs(tiny_clip(32, times, window=(100.0, 110.0)), "q")
    assert MARKER.findall(built.text) == VFR_MARKERS


def test_odd_frame_count_repeats_the_last_frame(loaded_models, tiny_clip):
    clip = tiny_clip(32, (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0), (0, 7))
    built = loaded_models["qwen3_vl"].build_inputs(clip, "q")
    assert built.inputs["video_grid_thw"].tolist() == [[4, 4, 6]]
    assert MARKER.findall(built.text) == ["<0.5 seconds>", "<2.5 seconds>", "<4.5 seconds>", "<6.0 seconds>"]


@pytest.mark.parametrize("kind", QWEN3_KINDS)
def test_no_outer_vision_wrapper_by_default(loaded_models, tiny_clip, kind):
    built = loaded_models[kind].build_inputs(tiny_clip(32), "q")
    assert built.outer_vision_wrapper is False
    assert "user\n<0.6 seconds><|vision_start|><|video_pad|>" in built.text
    assert "<|vision_start|><0.6 seconds>" not in built.text
    assert "<|vision_end|>q<|im_end|>" in built.text
    assert built.text.count("<|vision_start|>") == 4
    assert "<|vision_start|>" not in built.chat_text


def test_outer_vision_wrapper_when_asked(tiny_model_dirs, tiny_spec, tiny_clip):
    model = TransformersModel(tiny_spec("qwen3_vl", tiny_model_dirs["qwen3_vl"], outer_vision_wrapper=True))
    built = model.build_inputs(tiny_clip(32), "q")
    assert built.outer_vision_wrapper is True
    assert "user\n<|vision_start|><0.6 seconds><|vision_start|>" in built.text
    assert "<|vision_end|><|vision_end|>q<|im_end|>" in built.text
    assert MARKER.findall(built.text) == VFR_MARKERS
    settings = model.settings()
    assert settings["outer_vision_wrapper"] is True and settings["outer_vision_wrapper_seen"] is True


def test_qwen2_5_vl_time_lives_in_second_per_grid_ts(loaded_models, tiny_clip):
    model = loaded_models["qwen2_5_vl"]
    for times in (VFR_TIMES, tuple(1.25 * i for i in range(8))):
        built = model.build_inputs(tiny_clip(28, times, window=(0.0, 10.0)), "q")
        average_interval = 10.0 / 8
        assert built.inputs["second_per_grid_ts"].tolist() == pytest.approx([2 * average_interval])
        assert MARKER.findall(built.text) == []
        assert built.outer_vision_wrapper is None
        assert "user\n<|vision_start|><|video_pad|>" in built.text  # Qwen2.5-VL keeps its template's pair


@pytest.mark.parametrize("kind", ("qwen3_5", "marlin"))
def test_enable_thinking_false_adds_the_empty_think_block(loaded_models, tiny_model_dirs, tiny_spec, kind):
    text = loaded_models[kind].chat_text("q")
    assert text.endswith("q<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
    unset = TransformersModel(tiny_spec(kind, tiny_model_dirs[kind], enable_thinking=None))
    assert unset.chat_text("q").endswith("q<|im_end|>\n<|im_start|>assistant\n")


def test_generate_many_processes_the_video_once(loaded_models, tiny_clip, monkeypatch):
    model = loaded_models["qwen3_5"]
    clip = tiny_clip(32)
    prompts = ["Describe the clip.", 'When does "a dog barks" happen?', "q"]
    singles = [model.build_inputs(clip, p) for p in prompts]
    calls = []
    original = model.processor._process_videos
    monkeypatch.setattr(
        model.processor, "_process_videos", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    shared = model.build_many(clip, prompts)
    assert len(calls) == 1
    for one, many in zip(singles, shared, strict=False):
        assert one.text == many.text
        assert set(one.inputs.keys()) == set(many.inputs.keys())
        for key in one.inputs:
            assert (one.inputs[key] == many.inputs[key]).all(), key
    outs = model.generate_many(clip, prompts, max_new_tokens=4)
    assert [o.text for o in outs] == [model.generate(clip, p, max_new_tokens=4).text for p in prompts]


def test_generate_many_shares_qwen2_5_vl_video_inputs(loaded_models, tiny_clip):
    model = loaded_models["qwen2_5_vl"]
    clip = tiny_clip(28)
    one = model.build_inputs(clip, "second prompt")
    many = model.build_many(clip, ["first", "second prompt"])[1]
    assert one.text == many.text
    for key in one.inputs:
        assert (one.inputs[key] == many.inputs[key]).all(), key


def test_marlin_loads_with_the_stock_class_and_never_runs_its_code(tiny_model_dirs, tiny_spec, tiny_clip):
    model = TransformersModel(tiny_spec("marlin", tiny_model_dirs["marlin"]))
    assert type(model.model).__name__ == "Qwen3_5ForConditionalGeneration"
    assert model.generate(tiny_clip(32), "q", max_new_tokens=3).num_generated_tokens >= 1
    assert not any("modeling_marlin" in name for name in sys.modules)
    end_of_text, im_end = model.processor.tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>"])
    assert model.eos_token_ids == [end_of_text, im_end]
    assert model.settings()["model_class"] == "Qwen3_5ForConditionalGeneration"


def test_generate_stops_on_every_eos_id(loaded_models, tiny_clip, monkeypatch):
    model = loaded_models["marlin"]
    seen = {}
    original = model.model.generate

    def spy(**kwargs):
        seen.update(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(model.model, "generate", spy)
    model.generate(tiny_clip(32), "q", max_new_tokens=2)
    assert seen["eos_token_id"] == model.eos_token_ids and len(seen["eos_token_id"]) == 2
    assert seen["do_sample"] is False and seen["max_new_tokens"] == 2


def test_decoding_keeps_think_tags_and_scores_the_chosen_tokens(loaded_models, tiny_clip, monkeypatch):
    import torch

    model = loaded_models["qwen3_5"]
    tok = model.processor.tokenizer
    clip = tiny_clip(32)
    prompt_len = model.build_inputs(clip, "q").num_prompt_tokens
    answer = [tok.convert_tokens_to_ids("<think>")] + tok("\n\n", add_special_tokens=False)["input_ids"]
    answer += [tok.convert_tokens_to_ids("</think>")]
    answer += tok("From 1.0 to 2.0.", add_special_tokens=False)["input_ids"]
    answer += [tok.convert_tokens_to_ids("<|im_end|>")]
    vocab = len(tok)

    def canned(**kwargs):
        for step, token in enumerate(answer):  # flat scores except a peak at the canned token
            scores = torch.zeros(1, vocab)
            scores[0, token] = math.log(2.0) if step % 2 else 0.0
            for processor in kwargs["logits_processor"]:
                scores = processor(kwargs["input_ids"], scores)
        sequences = torch.cat([kwargs["input_ids"], torch.tensor([answer])], dim=1)
        return SimpleNamespace(sequences=sequences)

    monkeypatch.setattr(model.model, "generate", canned)
    out = model.generate(clip, "q", max_new_tokens=64)
    assert prompt_len == out.num_prompt_tokens
    assert out.text == "<think>\n\n</think>From 1.0 to 2.0."
    assert out.num_generated_tokens == len(answer)
    odd, even = math.log(2 / (vocab + 1)), -math.log(vocab)
    expected = [odd if step % 2 else even for step in range(len(answer))]
    assert out.mean_logprob == pytest.approx(sum(expected) / len(expected))


def test_mean_logprob_matches_the_full_scores(loaded_models, tiny_clip):
    import torch

    model = loaded_models["qwen3_vl"]
    clip = tiny_clip(32)
    out = model.generate(clip, "q", max_new_tokens=5)
    inputs = dict(model.build_inputs(clip, "q").inputs)
    with torch.inference_mode():
        full = model.model.generate(
            **inputs, max_new_tokens=5, do_sample=False, return_dict_in_generate=True, output_scores=True
        )
    new = full.sequences[0, inputs["input_ids"].shape[1] :].tolist()
    logprobs = [float(torch.log_softmax(s[0], -1)[t]) for s, t in zip(full.scores, new, strict=False)]
    assert out.num_generated_tokens == len(new)
    assert out.mean_logprob == pytest.approx(sum(logprobs) / len(logprobs), abs=1e-5)


@pytest.mark.parametrize("kind", ("qwen3_vl", "qwen2_5_vl"))
def test_save_load_gives_identical_greedy_outputs(loaded_models, tiny_spec, tiny_clip, tmp_path, kind):
    first = loaded_models[kind]
    clip = tiny_clip(FACTOR[kind])
    before = first.generate(clip, "Describe.", max_new_tokens=8)
    first.model.save_pretrained(tmp_path)
    first.processor.save_pretrained(tmp_path)
    second = TransformersModel(tiny_spec(kind, tmp_path))
    after = second.generate(clip, "Describe.", max_new_tokens=8)
    assert (after.text, after.num_generated_tokens) == (before.text, before.num_generated_tokens)
    assert after.mean_logprob == pytest.approx(before.mean_logprob)


def test_dtype_override_and_settings(tiny_model_dirs, tiny_spec, tiny_clip):
    model = TransformersModel(tiny_spec("qwen3_vl", tiny_model_dirs["qwen3_vl"]), device="cpu", dtype="bf16")
    assert str(model.model.dtype) == "torch.bfloat16"
    assert model.generate(tiny_clip(32), "q", max_new_tokens=2).num_generated_tokens >= 1
    settings = model.settings()
    assert settings["dtype"] == "bfloat16" and settings["device"] == "cpu"
    assert settings["checkpoint_path"] == str(tiny_model_dirs["qwen3_vl"].resolve())
    assert re.fullmatch(r"[0-9a-f]{64}", settings["chat_template_sha256"])
    assert {"transformers_version", "torch_version", "outer_vision_wrapper", "backend"} <= set(settings)


def test_default_device_and_dtype_on_cpu(loaded_models):
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the CPU defaults")
    assert (loaded_models["qwen3_vl"].device, loaded_models["qwen3_vl"].dtype) == ("cpu", "float32")


# -- bad input -----------------------------------------------------------------------------------------


def test_frames_off_the_factor_grid_are_rejected(loaded_models, tiny_clip):
    with pytest.raises(ValueError, match=r"frame size 56x84: tiny-qwen3_vl needs multiples of 32 pixels"):
        loaded_models["qwen3_vl"].build_inputs(tiny_clip(28), "q")


def test_invalid_dtype_and_max_new_tokens(tiny_model_dirs, tiny_spec, loaded_models, tiny_clip):
    with pytest.raises(ValueError, match=r"Invalid dtype 'int8'\. Choose one of: bfloat16, float16, float32"):
        TransformersModel(tiny_spec("qwen3_vl", tiny_model_dirs["qwen3_vl"]), dtype="int8")
    with pytest.raises(ValueError, match="max_new_tokens=0"):
        loaded_models["qwen3_vl"].generate(tiny_clip(32), "q", max_new_tokens=0)


def test_frame_prefix_family_is_not_supported_yet(tiny_model_dirs, tiny_spec):
    with pytest.raises(ModelError, match="does not support tiny-qwen2_5_vl's frame-prefix time encoding"):
        TransformersModel(
            tiny_spec("qwen2_5_vl", tiny_model_dirs["qwen2_5_vl"], time_encoding="frame-prefix")
        )


def test_unknown_model_type_is_a_model_error(tiny_model_dirs, tiny_spec, tmp_path):
    d = shutil.copytree(tiny_model_dirs["qwen3_vl"], tmp_path / "odd")
    config = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps(config | {"model_type": "qwen4_exp"}))
    expected = (
        f"Unsupported model_type 'qwen4_exp' in {d.resolve() / 'config.json'}; "
        "the transformers backend supports: qwen2_5_vl, qwen3_vl, qwen3_5, molmo2."
    )
    with pytest.raises(ModelError) as info:
        TransformersModel(tiny_spec("qwen3_vl", d))
    assert str(info.value) == expected


def test_missing_directory_and_directory_without_config(tiny_spec, tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ModelUnavailableError) as info:
        TransformersModel(tiny_spec("qwen3_vl", missing))
    assert str(info.value) == f"The checkpoint directory {missing} does not exist."
    with pytest.raises(ModelUnavailableError) as info:
        TransformersModel(tiny_spec("qwen3_vl", tmp_path))
    assert str(info.value).startswith(f"The checkpoint directory {tmp_path} has no config.json;")


def test_missing_torch_or_transformers_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependencyError) as info:
        import_backend()
    assert str(info.value) == INSTALL_HINT
    assert "pip install torch==2.13.0 'vidspan[qwen]'" in INSTALL_HINT


# -- hub resolution ------------------------------------------------------------------------------------


def test_hub_id_offline_fails_fast_with_hints(tiny_spec, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as info:
        TransformersModel(tiny_spec("marlin", "NemoStation/Marlin-2B"))
    assert time.perf_counter() - started < 5
    message = str(info.value)
    assert message.startswith("The weights of NemoStation/Marlin-2B are not available here (no local copy")
    assert "HF_HUB_OFFLINE=1" in message
    assert "local checkpoint directory with --model /path/to/Marlin-2B" in message
    assert message.count(". ") == 0  # one sentence
    assert "--base-url http://HOST:8000/v1" in message


def _online(monkeypatch, reachable: bool):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout_seconds=3.0: reachable)


def test_unreachable_hub_fails_fast(tiny_spec, monkeypatch):
    _online(monkeypatch, reachable=False)
    expected = r"the Hub cannot be reached\), so pass a local checkpoint"
    with pytest.raises(ModelUnavailableError, match=expected):
        hub.resolve_checkpoint("NemoStation/Marlin-2B")


def test_gated_repo_says_how_to_log_in(monkeypatch):
    import huggingface_hub

    class Refused(Exception):
        response = SimpleNamespace(status_code=401)

    def fake_download(repo_id, **kwargs):
        if kwargs.get("local_files_only"):
            raise FileNotFoundError(repo_id)
        raise Refused()

    _online(monkeypatch, reachable=True)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    expected = r"refused access to NemoStation/Marlin-2B \(HTTP 401\).*huggingface-cli login"
    with pytest.raises(ModelUnavailableError, match=expected):
        hub.resolve_checkpoint("NemoStation/Marlin-2B")


def test_hub_id_found_in_the_local_cache(tiny_model_dirs, tiny_spec, tiny_clip, monkeypatch, tmp_path):
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--NemoStation--Marlin-2B"
    shutil.copytree(tiny_model_dirs["marlin"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    model = TransformersModel(tiny_spec("marlin", "NemoStation/Marlin-2B"))
    assert model.checkpoint_dir == repo / "snapshots" / commit
    assert model.generate(tiny_clip(32), "q", max_new_tokens=2).num_generated_tokens >= 1
