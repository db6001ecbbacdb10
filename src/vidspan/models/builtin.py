"""The built-in plugin: vidspan's models, backends, judges and benchmarks, registered like any plugin's.

A plugin package does the same from its own module, listed under ``[project.entry-points.vidspan]``
(see ``docs/models.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vidspan.models import families
from vidspan.models.base import ModelSpec, VideoModel
from vidspan.models.registry import BackendFactory, hookimpl


class BuiltinPlugin:
    """vidspan's own models, backends and judges, registered through the hooks any plugin uses."""

    @hookimpl
    def register_models(self, register: Callable[[ModelSpec], None]) -> None:
        f = families
        register(
            ModelSpec(
                "marlin-2b",
                f.MARLIN,
                "NemoStation/Marlin-2B",
                aliases=("marlin",),
                gated=True,
                description="Marlin-2B: Qwen3.5-2B fine-tuned for dense captions and grounding",
            )
        )
        register(ModelSpec("qwen3.5-2b", f.QWEN3_5, "Qwen/Qwen3.5-2B", description="Qwen3.5 2B"))
        for size in ("2b", "4b", "8b", "32b"):
            register(
                ModelSpec(
                    f"qwen3-vl-{size}",
                    f.QWEN3_VL,
                    f"Qwen/Qwen3-VL-{size.upper()}-Instruct",
                    description=f"Qwen3-VL {size.upper()} Instruct",
                )
            )
        for size in ("3b", "7b", "32b", "72b"):
            register(
                ModelSpec(
                    f"qwen2.5-vl-{size}",
                    f.QWEN2_5_VL,
                    f"Qwen/Qwen2.5-VL-{size.upper()}-Instruct",
                    description=f"Qwen2.5-VL {size.upper()} Instruct",
                )
            )
        register(
            ModelSpec(
                "timelens-8b",
                f.TIMELENS,
                "TencentARC/TimeLens-8B",
                aliases=("timelens",),
                description="TimeLens-8B: Qwen3-VL-8B trained for temporal grounding",
            )
        )
        for name, hub, aliases, about in (
            ("molmo2-8b", "allenai/Molmo2-8B", ("molmo2",), "Molmo2 8B (Qwen3): points, counts and tracks"),
            ("molmo2-4b", "allenai/Molmo2-4B", (), "Molmo2 4B (Qwen3): points, counts and tracks"),
            ("molmo2-o-7b", "allenai/Molmo2-O-7B", (), "Molmo2-O 7B (OLMo): points, counts and tracks"),
        ):
            register(ModelSpec(name, f.MOLMO2, hub, aliases=aliases, description=about))

    @hookimpl
    def register_backends(self, register: Callable[[str, BackendFactory], None]) -> None:
        def transformers_backend(spec: ModelSpec, **options: Any) -> VideoModel:
            if spec.family.time_encoding == "frame-timestamps":
                from vidspan.models.molmo2 import Molmo2Model

                return Molmo2Model(spec, **options)
            from vidspan.models.transformers_backend import TransformersModel

            return TransformersModel(spec, **options)

        def openai_backend(spec: ModelSpec, **options: Any) -> VideoModel:
            from vidspan.models.openai.client import OpenAICompatModel

            return OpenAICompatModel(spec, **options)

        register("transformers", transformers_backend)
        register("openai", openai_backend)

    @hookimpl
    def register_judges(self, register: Callable[[str, Callable[..., Any]], None]) -> None:
        from vidspan.judge.gemini_judge import GeminiJudge
        from vidspan.judge.openai_judge import OpenAIJudge

        register("openai", OpenAIJudge)
        register("gemini", GeminiJudge)

    @hookimpl
    def register_benchmarks(self, register: Callable[[Any], None]) -> None:
        from vidspan.eval.captions.datasets import CAPTION_BENCHMARKS
        from vidspan.eval.grounding.datasets import BENCHMARKS

        for spec in (*BENCHMARKS.values(), *CAPTION_BENCHMARKS.values()):
            register(spec)
