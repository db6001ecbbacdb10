"""The tiny random checkpoints: files, tokenizer, chat template, Marlin shape, offline reload, determinism."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from support.tiny_models import KINDS, SPECIALS, build_tiny_model, build_tiny_models  # noqa: E402

EXPECTED_FILES = {
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "processor_config.json",
    "chat_template.jinja",
}
MESSAGES = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What happens?"}]}]
PLAIN_PROMPT = (
    "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>What happens?<|im_end|>\n"
    "<|im_start|>assistant\n"
)


@pytest.mark.parametrize("kind", KINDS)
def test_directory_holds_model_tokenizer_and_processor(tiny_model_dirs, tiny_build_seconds, kind):
    files = {p.name for p in tiny_model_dirs[kind].iterdir()}
    assert EXPECTED_FILES <= files
    assert ("modeling_marlin.py" in files) == (kind == "marlin")
    assert tiny_build_seconds[kind] < 10  # includes first-use imports; the warm rebuild is timed below


def test_warm_rebuild_is_fast_and_deterministic(tiny_model_dirs, tmp_path):
    from safetensors.torch import load_file

    started = time.perf_counter()
    again = build_tiny_model("qwen3_5", tmp_path / "again")
    assert time.perf_counter() - started < 2.0
    first = load_file(tiny_model_dirs["qwen3_5"] / "model.safetensors")
    second = load_file(again / "model.safetensors")
    assert first.keys() == second.keys()
    assert all((first[k] == second[k]).all() for k in first)


def test_build_tiny_models_builds_every_kind(tmp_path):
    dirs = build_tiny_models(tmp_path)
    assert set(dirs) == set(KINDS)
    assert all((d / "config.json").is_file() for d in dirs.values())


def test_unknown_kind_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown tiny model kind 'llava'\. Choose one of: qwen2_5_vl, "):
        build_tiny_model("llava", tmp_path)


@pytest.mark.parametrize("kind", KINDS)
def test_reloads_offline_with_auto_classes(tiny_model_dirs, kind):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    expected = {
        "qwen2_5_vl": ("Qwen2_5_VLProcessor", "Qwen2_5_VLForConditionalGeneration"),
        "qwen3_vl": ("Qwen3VLProcessor", "Qwen3VLForConditionalGeneration"),
        "qwen3_5": ("Qwen3VLProcessor", "Qwen3_5ForConditionalGeneration"),
        "marlin": ("Qwen3VLProcessor", "Qwen3_5ForConditionalGeneration"),
    }[kind]
    processor = AutoProcessor.from_pretrained(tiny_model_dirs[kind], local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dirs[kind], local_files_only=True)
    assert (type(processor).__name__, type(model).__name__) == expected
    assert sum(p.numel() for p in model.parameters()) < 1_000_000


def test_tokenizer_is_byte_level_with_qwen_specials(tiny_model_dirs):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dirs["qwen3_vl"], local_files_only=True)
    assert len(tok) == 256 + len(SPECIALS)
    text = "Ünïcode ✓ and spaces  \n<5.0 - 7.5> From 1.0 to 2.0."
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text.encode("utf-8"))
    assert tok.decode(ids) == text
    for special in SPECIALS:
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1
    assert (tok.video_token, tok.vision_start_token) == ("<|video_pad|>", "<|vision_start|>")
    assert (tok.eos_token, tok.pad_token) == ("<|im_end|>", "<|endoftext|>")


@pytest.mark.parametrize("kind", KINDS)
def test_chat_template(tiny_model_dirs, kind):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model_dirs[kind], local_files_only=True)
    def render(**kwargs):
        return processor.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True, **kwargs)

    assert render() == PLAIN_PROMPT
    if kind in ("qwen3_5", "marlin"):
        assert render(enable_thinking=False) == PLAIN_PROMPT + "<think>\n\n</think>\n\n"
        assert render(enable_thinking=True) == PLAIN_PROMPT


def test_marlin_directory_is_shaped_like_marlin(tiny_model_dirs):
    from transformers import AutoTokenizer

    d = tiny_model_dirs["marlin"]
    config = json.loads((d / "config.json").read_text())
    generation = json.loads((d / "generation_config.json").read_text())
    tok = AutoTokenizer.from_pretrained(d, local_files_only=True)
    end_of_text, im_end = tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>"])
    assert config["architectures"] == ["MarlinForConditionalGeneration"]
    assert config["auto_map"] == {"AutoModelForCausalLM": "modeling_marlin.MarlinForConditionalGeneration"}
    assert config["model_type"] == "qwen3_5"
    assert config["tie_word_embeddings"] is True
    assert config["text_config"]["layer_types"] == ["linear_attention"] * 3 + ["full_attention"]
    assert config["vision_config"]["deepstack_visual_indexes"] == []
    assert generation["eos_token_id"] == [end_of_text, im_end]
    assert config["eos_token_id"] == im_end


def test_marlin_remote_code_raises_when_imported(tiny_model_dirs):
    source = (tiny_model_dirs["marlin"] / "modeling_marlin.py").read_text()
    with pytest.raises(RuntimeError, match="vidspan must not execute checkpoint code"):
        exec(compile(source, "modeling_marlin.py", "exec"), {})
