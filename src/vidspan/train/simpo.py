"""Preference pairs and SimPO on video.

:func:`make_pairs` samples ``n`` completions per prompt from a model, scores them with TRL-signature rewards
(or a judge wrapped as one), and keeps the best and the worst as ``chosen`` / ``rejected`` with their
scores and margin; groups whose best and worst tie, or in which every completion scored the floor, are
dropped and counted.

:func:`train_simpo` optimises the SimPO loss (Meng et al. 2024; TRL's ``CPOConfig(loss_type="simpo",
cpo_alpha=0)``): ``-log sigmoid(beta * (mean log p(chosen) - mean log p(rejected)) - gamma)``, length-
normalised, no reference model. TRL 1.16 keeps ``CPOTrainer`` in ``trl.experimental`` and its collator
has no video inputs, so the loss runs here over inputs built exactly as inference builds them.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidspan.train.loop import PolicyLoop, Progress
from vidspan.train.rewards import FLOOR, score_group
from vidspan.train.sft import VideoSftCollator, read_rows
from vidspan.video import SamplingConfig

if TYPE_CHECKING:
    from vidspan.scale.ray import RayOptions

__all__ = ["PairStats", "SimpoResult", "make_pairs", "simpo_loss", "train_simpo"]


@dataclass(frozen=True, slots=True)
class PairStats:
    """How many prompts gave a pair, and why the others did not."""

    pairs: int
    ties: int
    all_failed: int


def make_pairs(
    data: str | os.PathLike[str],
    model: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    reward_funcs: list[Any],
    *,
    sampling: SamplingConfig | None = None,
    num_samples: int = 4,
    temperature: float = 1.0,
    max_completion_length: int = 32,
    seed: int = 0,
    device: str | None = None,
    progress: Progress | None = None,
    ray: RayOptions | None = None,
) -> PairStats:
    """Write ``prompt``/``chosen``/``rejected`` JSONL rows (``video``, scores, margin) to ``out_path``.

    The file is written to ``out_path.tmp`` and renamed when whole; ``progress(done, total, message)`` is
    called as every prompt finishes. Each prompt's sampling is seeded by ``seed`` and its position, so the
    pairs do not depend on the order prompts are sampled in: with ``ray`` (one policy per Ray actor, rows
    in input order) the file is the one a single process writes.

    Raises:
        VidspanError: a prompt failed (on Ray: after every other prompt was sampled); nothing is written.
    """
    if num_samples < 2:
        raise ValueError(f"Invalid num_samples: {num_samples}. A pair needs at least 2.")
    rows = read_rows(data)
    sample = functools.partial(_PairSampler, model, device, sampling or SamplingConfig(), reward_funcs,
                               num_samples, temperature, max_completion_length, seed)  # fmt: skip
    counts = {"pair": 0, "tie": 0, "all_failed": 0}

    def arrived(kind: str) -> None:  # as each prompt finishes, in whatever order
        counts[kind] += 1
        if progress is not None:
            progress(sum(counts.values()), len(rows), f"pairs: {counts['pair']} kept, {counts['tie']} ties, "
                                                      f"{counts['all_failed']} all failed")  # fmt: skip

    out = Path(out_path)
    tmp = out.with_name(out.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for _kind, record in _outcomes(rows, sample, ray, arrived):
                if record is not None:
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out)
    return PairStats(counts["pair"], counts["tie"], counts["all_failed"])


def _outcomes(
    rows: list[dict[str, Any]],
    sample: Callable[[], _PairSampler],
    ray: RayOptions | None,
    arrived: Callable[[str], None],
) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """Each row's outcome in input order: sampled here one by one, or by Ray actors (then reordered);
    ``arrived(kind)`` is called as each one finishes."""
    if ray is None:
        sampler = sample()
        for item in enumerate(rows):
            outcome = sampler(item)
            arrived(outcome[0])
            yield outcome
        return
    from vidspan.errors import VidspanError
    from vidspan.scale.ray import ItemFailed, ray_session, run_items

    results: dict[int, Any] = {}
    with ray_session(ray):
        for key, result in run_items(list(enumerate(rows)), decode=_no_decode, load=sample, options=ray):
            results[key] = result
            if not isinstance(result, ItemFailed):
                arrived(result[0])
    for key in range(len(rows)):
        result = results[key]
        if isinstance(result, ItemFailed):
            raise VidspanError(f"Cannot sample prompt {key + 1} ({rows[key].get('video')}): {result.reason}")
        yield result


def _no_decode(_item: Any) -> None:
    """Sampling decodes the prompt's video with the policy's processor, in the model actor."""


class _PairSampler:
    """One loaded policy: samples a prompt's completions, scores them, keeps the best and the worst."""

    def __init__(self, model: Any, device: str | None, sampling: SamplingConfig, reward_funcs: list[Any],
                 num_samples: int, temperature: float, max_completion_length: int, seed: int):  # fmt: skip
        import torch

        from vidspan.train.loop import load_policy

        torch.manual_seed(seed)
        self.vm = load_policy(model, device, freeze_vision=False)
        self.collator = VideoSftCollator(self.vm, sampling)
        self.reward_funcs = reward_funcs
        self.num_samples, self.temperature, self.max_length = num_samples, temperature, max_completion_length
        self.seed = seed

    def __call__(self, item: tuple[int, dict[str, Any]], _decoded: Any = None) -> tuple[str, Any]:
        import torch

        from vidspan.train.grpo import _sample

        index, row = item
        torch.manual_seed(self.seed + index)
        inputs = self.collator.prompt_inputs(row)
        completions = _sample(self.vm, inputs, self.num_samples, self.temperature, self.max_length)
        tokenizer = self.vm.processor.tokenizer
        texts = [tokenizer.decode(c, skip_special_tokens=True) for c in completions]
        scores = score_group(self.reward_funcs, row, texts)
        best = max(range(len(texts)), key=scores.__getitem__)
        worst = min(range(len(texts)), key=scores.__getitem__)
        if all(s <= FLOOR for s in scores):
            return "all_failed", None
        if scores[best] == scores[worst]:
            return "tie", None
        return "pair", {
            "prompt": row["prompt"], "video": row["video"], "chosen": texts[best], "rejected": texts[worst],
            "chosen_score": scores[best], "rejected_score": scores[worst],
            "margin": scores[best] - scores[worst], "id": row.get("id"),
        }  # fmt: skip


def simpo_loss(chosen_logp: Any, rejected_logp: Any, beta: float = 2.0, gamma: float = 0.5) -> Any:
    """SimPO's loss from length-normalised (mean per token) log-probabilities of chosen and rejected."""
    import torch

    return -torch.nn.functional.logsigmoid(beta * (chosen_logp - rejected_logp) - gamma)


@dataclass(frozen=True, slots=True)
class SimpoResult:
    """A finished SimPO run: the checkpoint and the loss per step."""

    checkpoint: Path
    losses: tuple[float, ...]


def train_simpo(
    pairs: str | os.PathLike[str],
    model: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    sampling: SamplingConfig | None = None,
    beta: float = 2.0,
    gamma: float = 0.5,
    learning_rate: float = 1e-6,
    max_steps: int = 100,
    save_steps: int = 50,
    freeze_vision: bool = True,
    seed: int = 0,
    device: str | None = None,
    progress: Progress | None = None,
) -> SimpoResult:
    """Train ``model`` with SimPO on the JSONL ``pairs`` (from :func:`make_pairs`); save it in ``out_dir``.

    One step is one pair; pairs cycle in file order. ``save_steps`` and ``progress`` work as for
    :func:`~vidspan.train.grpo.train_grpo`: the run resumes after its last ``state/`` checkpoint.
    """
    rows = [json.loads(line) for line in Path(pairs).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"Invalid pairs file {pairs}: it holds no pairs.")
    settings = {"pairs": str(Path(pairs).resolve()), "model": str(model),
                "sampling": asdict(sampling or SamplingConfig()),
                "beta": beta, "gamma": gamma, "learning_rate": learning_rate, "max_steps": max_steps,
                "freeze_vision": freeze_vision, "seed": seed}  # fmt: skip
    loop = PolicyLoop(Path(out_dir), "train-simpo", settings, model, learning_rate=learning_rate,
                      freeze_vision=freeze_vision, device=device, seed=seed, save_steps=save_steps,
                      progress=progress)  # fmt: skip
    vm = loop.vm
    collator = VideoSftCollator(vm, sampling or SamplingConfig())
    vm.model.train()
    for step in loop.steps:
        row = rows[step % len(rows)]
        chosen = _mean_logp(vm, collator.example(row | {"answer": row["chosen"]}))
        rejected = _mean_logp(vm, collator.example(row | {"answer": row["rejected"]}))
        loss = simpo_loss(chosen, rejected, beta, gamma)
        loop.update(loss)
        value = float(loss.detach())
        loop.step_done(step, {"loss": value}, f"simpo: loss {value:.4f}")
    records = loop.records()
    return SimpoResult(loop.save(), tuple(r["loss"] for r in records))


def _mean_logp(vm: Any, batch: dict[str, Any]) -> Any:
    """Mean log-probability of the labelled (answer) tokens of one example."""
    import torch

    labels = batch.pop("labels")
    logits = vm.model(**batch).logits[0, :-1].float()
    target = labels[0, 1:]
    mask = target != -100
    logps = torch.log_softmax(logits[mask], dim=-1).gather(1, target[mask].unsqueeze(1)).squeeze(1)
    return logps.mean()
