"""The model registry: names, aliases, local directories, did-you-mean, plugins."""

from __future__ import annotations

import json

import pytest

from vidspan.errors import ModelError, UnknownModelError
from vidspan.models import families, get_model, list_models, register_plugin, resolve, unregister_plugin
from vidspan.testing.mock import MockPlugin, MockVideoModel


def test_builtin_models_and_aliases():
    names = [m.name for m in list_models()]
    assert names[0] == "marlin-2b"
    assert {"qwen3-vl-8b", "qwen2.5-vl-7b", "timelens-8b", "qwen3.5-2b"} <= set(names)
    assert resolve("marlin").checkpoint == "NemoStation/Marlin-2B"
    assert resolve("MARLIN-2B").family is families.MARLIN
    assert resolve("NemoStation/Marlin-2B").name == "marlin-2b"
    assert resolve("timelens").family is families.TIMELENS


def test_unknown_model_suggests_close_names():
    with pytest.raises(
        UnknownModelError, match=r"Unknown model 'qwen2-vl'\. Did you mean: qwen2\.5-vl-.*vidspan models"
    ):
        resolve("qwen2-vl")
    with pytest.raises(UnknownModelError, match="Run 'vidspan models' to list all"):
        resolve("zzzzzz")


def test_hub_ids_map_to_families_by_name():
    assert resolve("Qwen/Qwen3-VL-30B-A3B-Instruct").family is families.QWEN3_VL
    assert resolve("someone/Qwen2.5-VL-7B-finetune").family is families.QWEN2_5_VL
    assert resolve("someone/whatever", family="qwen3-vl").family is families.QWEN3_VL
    with pytest.raises(UnknownModelError, match="Did you mean: qwen3-vl"):
        resolve("x/y", family="qwen3vl")


@pytest.mark.parametrize(
    ("config", "family"),
    [
        ({"model_type": "qwen3_vl"}, families.QWEN3_VL),
        ({"model_type": "qwen2_5_vl"}, families.QWEN2_5_VL),
        ({"model_type": "qwen3_5"}, families.QWEN3_5),
        ({"model_type": "molmo2", "architectures": ["Molmo2ForConditionalGeneration"]}, families.MOLMO2),
        ({"model_type": "qwen3_5", "architectures": ["MarlinForConditionalGeneration"]}, families.MARLIN),
    ],
)
def test_local_directories_by_config(tmp_path, config, family):
    (tmp_path / "config.json").write_text(json.dumps(config))
    spec = resolve(str(tmp_path))
    assert spec.family is family
    assert spec.checkpoint == str(tmp_path.resolve())


def test_local_directory_errors(tmp_path):
    with pytest.raises(ModelError, match="has no config.json"):
        resolve(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llava"}))
    with pytest.raises(
        ModelError, match="model_type 'llava'. Supported model types: molmo2, qwen2_5_vl, qwen3_5, qwen3_vl"
    ):
        resolve(str(tmp_path))


def test_plugins_register_models_and_backends():
    mock = MockVideoModel(name="mock-plugin")
    plugin = MockPlugin(mock)
    register_plugin(plugin)
    try:
        assert "mock-plugin" in [m.name for m in list_models()]
        assert get_model("mock-plugin") is mock
    finally:
        unregister_plugin(plugin)
    with pytest.raises(UnknownModelError):
        resolve("mock-plugin")


def test_unknown_backend_and_misplaced_base_url():
    with pytest.raises(UnknownModelError, match="Unknown backend 'openia'. Did you mean: openai"):
        get_model("marlin-2b", backend="openia")
    with pytest.raises(ValueError, match="only used with the openai backend"):
        get_model("marlin-2b", backend="transformers", base_url="http://127.0.0.1:1/v1")


def test_served_model_with_unknown_family_asks_for_family():
    with pytest.raises(UnknownModelError, match="Pass --family"):
        get_model("my-served-model", base_url="http://127.0.0.1:1/v1")


def test_a_plugin_registers_a_judge_backend_like_the_builtins():
    from vidspan.judge import get_judge, judge_backends
    from vidspan.judge.openai_judge import OpenAIJudge
    from vidspan.models.registry import hookimpl

    class LocalJudge(OpenAIJudge):
        pass

    class JudgePlugin:
        @hookimpl
        def register_judges(self, register):
            register("local", lambda model, **options: LocalJudge(model, cache=False, **options))

    plugin = JudgePlugin()
    register_plugin(plugin)
    try:
        assert {"openai", "gemini", "local"} <= set(judge_backends())
        judge = get_judge("local:qwen", base_url="http://127.0.0.1:9/v1")
        assert isinstance(judge, LocalJudge) and judge.settings.model == "qwen"
    finally:
        unregister_plugin(plugin)
    with pytest.raises(UnknownModelError, match=r"Unknown judge backend 'local'"):
        get_judge("local:qwen")


def test_a_plugin_registers_a_benchmark_that_loads_and_scores_like_the_builtins(tmp_path):
    """A new benchmark is one module: a loader plus a ``register_benchmarks`` hook (no core change)."""
    from click.testing import CliRunner

    from vidspan.cli.main import cli
    from vidspan.errors import UnknownBenchmarkError
    from vidspan.eval.benchmark import BenchmarkSpec, benchmark_specs, get_benchmark_spec, load_benchmark
    from vidspan.eval.grounding.samples import GroundingSample
    from vidspan.models.registry import hookimpl

    def load_tsv(path):  # "<video>\t<start>\t<end>\t<query>" per line
        rows = [line.split("\t") for line in open(path, encoding="utf-8").read().splitlines() if line]
        return [GroundingSample(id=f"{v}#{i}", video=v, query=q, gt_spans=((float(s), float(e)),),
                                subset="tsv") for i, (v, s, e, q) in enumerate(rows)]  # fmt: skip

    class BenchPlugin:
        @hookimpl
        def register_benchmarks(self, register):
            register(BenchmarkSpec("my-tsv", "grounding", load_tsv, "A TSV of spans", aliases=("tsv",)))

    annotations = tmp_path / "gt.tsv"
    annotations.write_text("a\t1\t3\tthe door opens\nb\t0\t2\ta dog runs\n", encoding="utf-8")
    predictions = tmp_path / "preds.json"  # TimeChat form, joined by video and query
    predictions.write_text('{"0": {"timestamp": [[1, 3]], "query": "the door opens", "vid": "a"}}')
    plugin = BenchPlugin()
    register_plugin(plugin)
    try:
        assert "my-tsv" in benchmark_specs("grounding") and "my-tsv" not in benchmark_specs("captions")
        assert get_benchmark_spec("TSV").name == "my-tsv"
        bench = load_benchmark("my-tsv", annotations)
        assert [s.query for s in bench.samples] == ["the door opens", "a dog runs"]
        result = CliRunner().invoke(cli, ["eval", "score", str(predictions), "--bench", "my-tsv",
                                          "--annotations", str(annotations), "--json"])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert '"mIoU": 50.0' in result.stdout  # one exact hit of two samples
    finally:
        unregister_plugin(plugin)
    with pytest.raises(UnknownBenchmarkError, match="Unknown benchmark 'my-tsv'"):
        get_benchmark_spec("my-tsv")
