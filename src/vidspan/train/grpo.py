"""GRPO on video: group-relative policy optimisation with vidspan's rewards (TimeLens' thinking-free recipe).

Why not TRL's ``GRPOTrainer`` (1.16): its rollout and log-probability paths carry image tensors
(``pixel_values``/``image_grid_thw``) but not video ones (``pixel_values_videos``/``video_grid_thw``), so a
video VLM loses its frames in the loss pass. This loop implements the same objective as TRL's
``loss_type="grpo"`` with ``beta=0`` (no reference model, as TimeLens and Marlin-2B used): for each prompt,
``num_generations`` completions are sampled at ``temperature``; each gets a reward from TRL-signature
reward functions (:mod:`vidspan.train.rewards`); advantages are the rewards standardised within their
group; the loss is ``-mean(advantage * log p(completion))`` over completion tokens (one on-policy update
per group, so the importance ratio is 1). Inputs are built exactly as inference builds them. Checkpoints,
resume, logs and progress come from :class:`~vidspan.train.loop.PolicyLoop`.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vidspan.train.loop import PolicyLoop, Progress
from vidspan.train.rewards import score_group
from vidspan.train.sft import read_rows
from vidspan.video import SamplingConfig

logger = logging.getLogger(__name__)

__all__ = ["GrpoResult", "group_advantages", "train_grpo"]


def group_advantages(rewards: list[float], eps: float = 1e-4) -> list[float]:
    """Rewards standardised within one group: ``(r - mean) / (std + eps)``; all equal gives zeros."""
    mean = sum(rewards) / len(rewards)
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / len(rewards))
    return [(r - mean) / (std + eps) for r in rewards]


@dataclass(frozen=True, slots=True)
class GrpoResult:
    """A finished GRPO run: the checkpoint, and per step the mean reward and the loss."""

    checkpoint: Path
    rewards: tuple[float, ...]
    losses: tuple[float, ...]


def train_grpo(
    data: str | os.PathLike[str],
    model: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    reward_funcs: list[Any],
    *,
    sampling: SamplingConfig | None = None,
    num_generations: int = 8,
    prompts_per_step: int = 1,
    temperature: float = 1.0,
    max_completion_length: int = 32,
    learning_rate: float = 1e-6,
    max_steps: int = 100,
    save_steps: int = 50,
    freeze_vision: bool = True,
    seed: int = 0,
    device: str | None = None,
    progress: Progress | None = None,
) -> GrpoResult:
    """Train ``model`` with GRPO on the prompts of the TRL JSONL ``data``; save the result in ``out_dir``.

    Args:
        data: Rows with the prompt, video and reward columns (``start``, ``end``, ``duration``...).
        model: A local checkpoint directory (usually the SFT result).
        out_dir: The run directory; the final checkpoint (model + processor) is saved in it.
        reward_funcs: TRL-signature rewards; their values are summed.
        num_generations: Completions per prompt (the group).
        prompts_per_step: Groups whose losses are averaged into one update (TRL's generation batch).
        temperature, max_completion_length: Rollout sampling.
        learning_rate, max_steps, seed: One step is one update over ``prompts_per_step`` groups; prompts
            cycle in file order.
        save_steps: A resumable checkpoint (``state/``) every this many steps; started again with the same
            settings, the run continues after the last one.
        freeze_vision: Keep the vision tower fixed.
        progress: Called after every step as ``progress(step, max_steps, message)``.

    Returns:
        The checkpoint and the per-step mean rewards and losses (a resumed run's earlier steps included).
    """
    if num_generations < 2:
        raise ValueError(f"Invalid num_generations: {num_generations}. GRPO needs at least 2 per group.")
    if prompts_per_step < 1:
        raise ValueError(f"Invalid prompts_per_step: {prompts_per_step}. It must be >= 1.")
    from vidspan.train.sft import VideoSftCollator

    rows = read_rows(data)
    if not rows:
        raise ValueError(f"Invalid training file {data}: it holds no rows.")
    settings = {"data": str(Path(data).resolve()), "model": str(model),
                "rewards": [r.__name__ for r in reward_funcs],
                "sampling": asdict(sampling or SamplingConfig()), "num_generations": num_generations,
                "prompts_per_step": prompts_per_step, "temperature": temperature,
                "max_completion_length": max_completion_length,
                "learning_rate": learning_rate, "max_steps": max_steps, "freeze_vision": freeze_vision,
                "seed": seed, "beta": 0.0}  # fmt: skip
    loop = PolicyLoop(Path(out_dir), "train-grpo", settings, model, learning_rate=learning_rate,
                      freeze_vision=freeze_vision, device=device, seed=seed, save_steps=save_steps,
                      progress=progress)  # fmt: skip
    vm = loop.vm
    collator = VideoSftCollator(vm, sampling or SamplingConfig())
    tokenizer = vm.processor.tokenizer
    for step in loop.steps:
        loss_sum, rewards = 0.0, []
        for k in range(prompts_per_step):
            row = rows[(step * prompts_per_step + k) % len(rows)]
            prompt_inputs = collator.prompt_inputs(row)
            completions = _sample(vm, prompt_inputs, num_generations, temperature, max_completion_length)
            texts = [tokenizer.decode(c, skip_special_tokens=True) for c in completions]
            total = score_group(reward_funcs, row, texts)
            rewards.extend(total)
            vm.model.train()
            loss = _policy_loss(vm, prompt_inputs, completions, group_advantages(total))
            loop.accumulate(loss, 1.0 / prompts_per_step)  # the mean over the groups, one graph at a time
            loss_sum += float(loss.detach())
        loop.apply()
        mean_reward, loss_value = sum(rewards) / len(rewards), loss_sum / prompts_per_step
        loop.step_done(step, {"reward": mean_reward, "loss": loss_value},
                       f"grpo: mean reward {mean_reward:.3f}, loss {loss_value:.4f}")  # fmt: skip
    records = loop.records()
    out = loop.save()
    return GrpoResult(out, tuple(r["reward"] for r in records), tuple(r["loss"] for r in records))


def _sample(
    vm: Any, inputs: dict[str, Any], n: int, temperature: float, max_new_tokens: int
) -> list[list[int]]:
    """``n`` sampled completions (token ids, end token included when produced) for one prompt.

    The vision placeholder tokens are suppressed: a completion holding one would make the model look for
    frames it was not given when the completion is scored (a tiny or young policy does sample them).
    """
    import torch

    prompt = {k: v for k, v in inputs.items() if k != "labels"}
    length = prompt["input_ids"].shape[1]
    completions = []
    vm.model.eval()
    with torch.no_grad():
        for _ in range(n):
            out = vm.model.generate(**prompt, do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                                    max_new_tokens=max_new_tokens, eos_token_id=vm.eos_token_ids,
                                    pad_token_id=vm.processor.tokenizer.pad_token_id or 0,
                                    suppress_tokens=placeholder_ids(vm.model.config) or None)  # fmt: skip
            completions.append(out[0, length:].tolist())
    return completions


def placeholder_ids(config: Any) -> list[int]:
    """The ids of the image/video placeholder and vision start/end tokens a config names."""
    names = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
    found = [getattr(config, name, None) for name in names]
    return sorted({int(i) for i in found if isinstance(i, int)})


def _policy_loss(
    vm: Any, inputs: dict[str, Any], completions: list[list[int]], advantages: list[float]
) -> Any:
    """``-mean over completion tokens of advantage * log p(token)``, summed over the group."""
    import torch

    prompt_ids = inputs["input_ids"]
    n = prompt_ids.shape[1]
    terms = []
    for completion, advantage in zip(completions, advantages, strict=True):
        if not completion or advantage == 0.0:
            continue
        ids = torch.cat([prompt_ids, torch.tensor([completion])], dim=1)
        batch = {}
        for key, value in inputs.items():
            if key == "labels":
                continue
            if torch.is_tensor(value) and value.dim() == 2 and value.shape[1] == n:
                pad = torch.ones if key == "attention_mask" else torch.zeros
                value = torch.cat([value, pad((1, len(completion)), dtype=value.dtype)], dim=1)
            batch[key] = value
        batch["input_ids"] = ids
        logits = vm.model(**batch).logits[0, n - 1 : -1].float()
        logps = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(completion).unsqueeze(1)).squeeze(1)
        terms.append(-advantage * logps.mean())
    if not terms:
        return torch.zeros((), requires_grad=False)
    return torch.stack(terms).mean()
