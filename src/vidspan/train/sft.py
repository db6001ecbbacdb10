"""Supervised fine-tuning on TRL's ``SFTTrainer``, with the video through vidspan's sampling and processor.

Each training row (a TRL JSONL row from :mod:`vidspan.train.data`) is turned into model inputs the way
inference builds them: the video is sampled with the run's :class:`~vidspan.video.SamplingConfig`, the
prompt goes through :meth:`TransformersModel.build_inputs` (the family's chat template, time markers and
vision tokens), and the answer tokens are appended with the loss on them only. So the model is trained
on exactly the inputs ``vidspan find`` and ``vidspan caption`` give it.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vidspan.errors import MissingDependencyError
from vidspan.train.loop import Progress
from vidspan.video import SamplingConfig

logger = logging.getLogger(__name__)

__all__ = [
    "SftResult", "VideoSftCollator", "finish_train_run", "keep_identity", "open_train_run", "read_rows",
    "train_sft",
]  # fmt: skip


def _import_trl() -> Any:
    from vidspan.models.torchvision_compat import ensure_torchvision

    ensure_torchvision()  # TRL and peft import transformers' vision code, which imports torchvision
    try:
        import trl
    except ImportError as exc:
        raise MissingDependencyError(
            "Training needs TRL: pip install 'vidspan[train]' (trl, peft, datasets, accelerate)."
        ) from exc
    return trl


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a TRL JSONL training file, each with its video path, prompt and answer pulled out."""
    rows = []
    for line_no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        user, assistant = row["messages"][0], row["messages"][-1]
        video = next(p["path"] for p in user["content"] if p.get("type") == "video")
        prompt = next(p["text"] for p in user["content"] if p.get("type") == "text")
        answer = next(p["text"] for p in assistant["content"] if p.get("type") == "text")
        rows.append(row | {"video": video, "prompt": prompt, "answer": answer, "line": line_no})
    return rows


class VideoSftCollator:
    """Rows → model inputs with labels: prompt as at inference, loss only on the answer and end token.

    Batches hold one example (videos differ in frame count); use gradient accumulation for larger ones.
    Sampled clips and processed prompts are cached: later epochs neither decode nor process again.
    """

    def __init__(self, vm: Any, sampling: SamplingConfig):
        self.vm = vm
        self.sampling = sampling
        self._clips: dict[str, Any] = {}
        self._inputs: dict[tuple[str, str], dict[str, Any]] = {}

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        if len(rows) != 1:
            raise ValueError(f"Invalid batch: {len(rows)} rows. Video SFT batches hold one row each.")
        return self.example(rows[0])

    def prompt_inputs(self, row: dict[str, Any]) -> dict[str, Any]:
        """The model inputs of a row's prompt about its video, exactly as inference builds them."""
        from vidspan.video import sample_clip

        key = (row["video"], row["prompt"])
        if key not in self._inputs:
            video = row["video"]
            if video not in self._clips:
                self._clips[video] = sample_clip(video, self.sampling)
            self._inputs[key] = dict(self.vm.build_inputs(self._clips[video], row["prompt"]).inputs)
        return dict(self._inputs[key])

    def example(self, row: dict[str, Any]) -> dict[str, Any]:
        """One row's inputs, labels and attention mask, as tensors with a batch dimension of 1."""
        import torch

        inputs = self.prompt_inputs(row)
        tokenizer = self.vm.processor.tokenizer
        answer = tokenizer(row["answer"], add_special_tokens=False, split_special_tokens=True,
                           return_tensors="pt").input_ids  # an answer is text: "<|video_pad|>" is no frame
        end = torch.tensor([[tokenizer.eos_token_id]])
        prompt_ids = inputs["input_ids"]
        ids = torch.cat([prompt_ids, answer, end], dim=1)
        n, total = prompt_ids.shape[1], ids.shape[1]
        batch: dict[str, Any] = {}
        for key, value in inputs.items():
            if torch.is_tensor(value) and value.dim() == 2 and value.shape[1] == n and key != "input_ids":
                pad = torch.ones if key == "attention_mask" else torch.zeros
                value = torch.cat([value, pad((1, total - n), dtype=value.dtype)], dim=1)
            batch[key] = value
        batch["input_ids"] = ids
        batch["labels"] = torch.cat([torch.full_like(prompt_ids, -100), answer, end], dim=1)
        return batch


@dataclass(frozen=True, slots=True)
class SftResult:
    """A finished SFT run: the checkpoint directory (loadable by ``vidspan find -m DIR``) and its losses."""

    checkpoint: Path
    losses: tuple[float, ...]


def train_sft(
    data: str | os.PathLike[str],
    model: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    sampling: SamplingConfig | None = None,
    learning_rate: float = 2e-3,
    epochs: float = 1.0,
    max_steps: int = -1,
    save_steps: int = 500,
    gradient_accumulation_steps: int = 1,
    freeze_vision: bool = True,
    lora_r: int | None = None,
    activation_checkpointing: bool | None = None,
    seed: int = 0,
    device: str | None = None,
    progress: Progress | None = None,
) -> SftResult:
    """Fine-tune the checkpoint ``model`` on the TRL JSONL ``data`` and save the result in ``out_dir``.

    Args:
        data: A TRL conversational JSONL (:func:`vidspan.train.data.write_trl_jsonl`).
        model: A local checkpoint directory of a family vidspan knows.
        out_dir: Where the trainer writes; the final checkpoint (model + processor) is saved here.
        sampling: The frame plan (default: the inference defaults).
        learning_rate, epochs, max_steps, gradient_accumulation_steps, seed: As for TRL's ``SFTConfig``.
        save_steps: A trainer checkpoint (``checkpoint-N``, the last two kept) every this many steps; a run
            started again with the same settings in ``out_dir`` resumes from the last one.
        freeze_vision: Keep the vision tower's weights fixed (as Marlin-2B and TimeLens did).
        lora_r: Train LoRA adapters of this rank on the language model's linear layers (peft) instead of
            all weights; they are merged into the saved checkpoint, so it loads like any other.
        activation_checkpointing: Recompute activations in the backward pass to save memory (default: on
            for accelerators, off on CPU, where memory is rarely the limit and it costs a third of the time).
        device: ``"cpu"``, ``"cuda"``... (default: the backend's choice). On CPU the run is in float32;
            TRL's default bf16 autocast is used only where the device supports bf16.
        progress: Called after every optimizer step as ``progress(step, total_steps, message)``; TRL's own
            printing is off (the library never prints).

    Returns:
        The checkpoint directory and the logged training losses.
    """
    trl = _import_trl()
    from datasets import Dataset

    from vidspan.train.loop import load_policy

    rows = read_rows(data)
    with_answers = [r for r in rows if r["answer"].strip()]
    if len(with_answers) < len(rows):
        logger.warning("%s: %d of %d rows have no answer (reward-only rows, such as DREAM-1K's); SFT skips "
                       "them", data, len(rows) - len(with_answers), len(rows))  # fmt: skip
    if not with_answers:
        raise ValueError(f"Invalid training file {data}: no row has an answer to learn.")
    rows = with_answers
    vm = load_policy(model, device, freeze_vision)
    if lora_r is not None:
        vm.model = _with_lora(vm.model, lora_r)
    vm.model.train()
    dataset = Dataset.from_list([{k: r[k] for k in ("video", "prompt", "answer")} for r in rows])
    out = Path(out_dir)
    settings = {"data": str(Path(data).resolve()), "model": str(model),
                "sampling": asdict(sampling or SamplingConfig()),
                "learning_rate": learning_rate, "epochs": epochs, "max_steps": max_steps,
                "gradient_accumulation_steps": gradient_accumulation_steps, "freeze_vision": freeze_vision,
                "lora_r": lora_r,
                "seed": seed}  # fmt: skip
    on_cpu = str(vm.model.device) == "cpu"
    if activation_checkpointing is None:
        activation_checkpointing = not on_cpu
    settings["activation_checkpointing"] = activation_checkpointing
    run = open_train_run(out, "train-sft", settings)
    config = trl.SFTConfig(
        output_dir=str(out), per_device_train_batch_size=1,
        gradient_accumulation_steps=gradient_accumulation_steps, learning_rate=learning_rate,
        num_train_epochs=epochs, max_steps=max_steps, seed=seed, remove_unused_columns=False,
        dataset_kwargs={"skip_prepare_dataset": True}, logging_steps=1, save_strategy="steps",
        save_steps=save_steps, save_total_limit=2, report_to=_reporters(),
        use_cpu=on_cpu, lr_scheduler_type="constant", disable_tqdm=True, bf16=not on_cpu and _bf16_ok(),
        activation_checkpointing=activation_checkpointing,
    )  # fmt: skip
    trainer = trl.SFTTrainer(
        model=vm.model, args=config, train_dataset=dataset, processing_class=vm.processor.tokenizer,
        data_collator=VideoSftCollator(vm, sampling or SamplingConfig()),
    )  # fmt: skip
    _report_progress(trainer, progress)
    checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    trainer.train(resume_from_checkpoint=str(checkpoints[-1]) if run.resumed and checkpoints else None)
    if lora_r is not None:
        vm.model = vm.model.merge_and_unload()
    vm.model.eval()
    vm.model.save_pretrained(out)
    vm.processor.save_pretrained(out)
    keep_identity(Path(vm.checkpoint_dir), out)
    losses = tuple(float(e["loss"]) for e in trainer.state.log_history if "loss" in e)
    finish_train_run(run, [{"step": i + 1, "loss": x} for i, x in enumerate(losses)])
    return SftResult(out, losses)


def _report_progress(trainer: Any, progress: Progress | None) -> None:
    """Replace the trainer's console printer with ``progress(step, total, "sft: loss X")`` calls."""
    from transformers import PrinterCallback, ProgressCallback, TrainerCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if progress is None:
        return

    class _Progress(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if logs and "loss" in logs:
                progress(state.global_step, state.max_steps, f"sft: loss {float(logs['loss']):.4f}")

    trainer.add_callback(_Progress())


def _bf16_ok() -> bool:
    """Whether the accelerator computes in bfloat16 (TRL's default precision, where it is supported)."""
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def _reporters() -> list[str]:
    """``["tensorboard"]`` when TensorBoard is installed (logs under the run's ``runs/``), else none."""
    import importlib.util

    return ["tensorboard"] if importlib.util.find_spec("tensorboard") is not None else []


def _with_lora(model: Any, rank: int) -> Any:
    """``model`` with LoRA adapters of ``rank`` on the language model's attention and MLP projections."""
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"Invalid lora_r: {rank!r}. It must be an integer >= 1.")
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise MissingDependencyError("LoRA needs peft: pip install 'vidspan[train]'.") from exc
    names = sorted({
        name.rsplit(".", 1)[-1] for name, module in model.named_modules()
        if type(module).__name__ == "Linear" and "visual" not in name and "lm_head" not in name
    })  # fmt: skip
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=names,
                        exclude_modules=r".*visual.*")  # fmt: skip
    return get_peft_model(model, config)


def open_train_run(out: Path, kind: str, settings: dict[str, Any]) -> Any:
    """The training run's :class:`~vidspan.eval.rundir.RunDir`: every setting in the header, one writer."""
    from vidspan.eval.rundir import RunDir

    return RunDir.open(out, kind, settings, settings=settings)


def finish_train_run(run: Any, log: list[dict[str, Any]]) -> None:
    """Write the per-step log (``log.jsonl``), stamp the run finished and release its lock."""
    with run.appending("log.jsonl") as append:
        for entry in log:
            append(entry | {"id": str(entry["step"])})
    run.finish()
    run.close()


def keep_identity(source: Path, out: Path) -> None:
    """Give the saved checkpoint its source's identity: ``architectures``, ``auto_map`` and remote code.

    ``save_pretrained`` writes the class that ran (``Qwen3_5ForConditionalGeneration`` for Marlin-2B); the
    source's names are what tell vidspan (and ``trust_remote_code`` users) which family it is.
    """
    import shutil

    source_config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    path = out / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    for key in ("architectures", "auto_map"):
        if key in source_config:
            config[key] = source_config[key]
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for code in source.glob("*.py"):
        shutil.copy2(code, out / code.name)
