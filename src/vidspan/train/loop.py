"""The training loop GRPO and SimPO share: the run directory, step checkpoints, resume, logs and progress.

A :class:`PolicyLoop` opens the run (``header.json`` with every setting; a run started again with other
settings is refused), loads the policy (vision tower frozen by default), and after every step appends a
record to ``log.jsonl`` and reports progress. Every ``save_steps`` steps it writes ``state/``: the weights,
the optimizer state, the step and the random-number state, written to ``state.tmp`` and renamed, so an
interrupted write never replaces a whole checkpoint with part of one. Started again with the same settings,
the loop loads ``state/`` and continues from the step after it, with the same random draws it would have
made; started again on a finished run, it trains no more and returns the saved checkpoint.
:meth:`PolicyLoop.save` writes the final checkpoint into the run directory itself, where ``vidspan find
-m DIR`` loads it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["PolicyLoop", "Progress", "freeze_vision_tower", "load_policy"]

Progress = Callable[[int, int, str], None]
"""``progress(done, total, message)``: the shape every vidspan job reports progress in."""
STATE = "state"


def freeze_vision_tower(model: Any) -> int:
    """Fix the vision tower's weights (as Marlin-2B and TimeLens trained); returns how many were frozen."""
    frozen = 0
    for name, parameter in model.named_parameters():
        if name.startswith("visual") or ".visual." in f".{name}" or ".vision" in name:
            parameter.requires_grad_(False)
            frozen += 1
    return frozen


def load_policy(model: str | os.PathLike[str], device: str | None, freeze_vision: bool) -> Any:
    """The checkpoint ``model`` as a :class:`~vidspan.models.transformers_backend.TransformersModel`."""
    from vidspan.models.registry import resolve
    from vidspan.models.transformers_backend import TransformersModel

    vm = TransformersModel(resolve(str(model)), device=device)
    if freeze_vision:
        freeze_vision_tower(vm.model)
    return vm


class PolicyLoop:
    """One own-loop training run (GRPO, SimPO): policy, optimizer, per-step log, checkpoints and resume.

    Args:
        out: The run directory; the final checkpoint is saved into it.
        kind: The run kind in ``header.json`` (``train-grpo``, ``train-simpo``).
        settings: Every setting of the run (its identity: resuming with others is refused).
        model: The start checkpoint directory.
        learning_rate, freeze_vision, device, seed: As the trainers take them.
        save_steps: Write ``state/`` every this many steps (and never when 0).
        max_grad_norm: Clip the gradient to this norm before each update (TRL's default, 1.0; None: no clip).
        progress: Called after every step as ``progress(step, max_steps, message)``.
    """

    def __init__(
        self,
        out: Path,
        kind: str,
        settings: dict[str, Any],
        model: str | os.PathLike[str],
        *,
        learning_rate: float,
        freeze_vision: bool,
        device: str | None,
        seed: int,
        save_steps: int,
        progress: Progress | None = None,
        max_grad_norm: float | None = 1.0,
    ):
        import torch

        from vidspan.train.sft import open_train_run

        if save_steps < 0:
            raise ValueError(f"Invalid save_steps: {save_steps}. It must be >= 0 (0: no step checkpoints).")
        self.out = out
        self.run = open_train_run(out, kind, settings | {"save_steps": save_steps})
        self.source = Path(str(model))
        self.save_steps = save_steps
        self.total = int(settings["max_steps"])
        self.progress = progress
        self.max_grad_norm = max_grad_norm
        self._pending = False
        state = out / STATE
        resume = self.run.resumed and (state / "state.json").is_file()
        finished = self.run.resumed and self.run.header.get("status") == "finished"
        torch.manual_seed(seed)
        self.vm = load_policy(out if finished else state if resume else model, device, freeze_vision)
        params = [p for p in self.vm.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=learning_rate)
        self.start = self.total if finished else 0
        if resume and not finished:
            info = json.loads((state / "state.json").read_text(encoding="utf-8"))
            self.optimizer.load_state_dict(torch.load(state / "optimizer.pt", weights_only=True))
            torch.set_rng_state(torch.load(state / "rng.pt", weights_only=True))
            self.start = int(info["step"])
            logger.info("%s: resuming after step %d of %d", out, self.start, self.total)
        self._log = self.run.appending("log.jsonl")
        self._append = self._log.__enter__()

    @property
    def steps(self) -> range:
        """The steps still to run (0-based)."""
        return range(self.start, self.total)

    def update(self, loss: Any) -> None:
        """One optimizer step on ``loss``; see :meth:`accumulate` and :meth:`apply`."""
        self.accumulate(loss)
        self.apply()

    def accumulate(self, loss: Any, scale: float = 1.0) -> None:
        """Add the gradient of ``scale * loss`` (freeing its graph at once); a loss without one is skipped."""
        if loss.requires_grad:
            (loss * scale).backward()
            self._pending = True

    def apply(self) -> None:
        """Clip the accumulated gradient to ``max_grad_norm``, take the optimizer step, and zero it."""
        import torch

        if getattr(self, "_pending", False):
            if self.max_grad_norm:
                params = [p for group in self.optimizer.param_groups for p in group["params"]]
                torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
            self.optimizer.step()
        self.optimizer.zero_grad()
        self._pending = False

    def step_done(self, step: int, record: dict[str, float], message: str) -> None:
        """Log step ``step`` (0-based), report progress, and write ``state/`` when one is due."""
        self._append({"id": str(step + 1), "step": step + 1, **record})
        if self.progress is not None:
            self.progress(step + 1, self.total, message)
        if self.save_steps and (step + 1) % self.save_steps == 0 and step + 1 < self.total:
            self._save_state(step + 1)

    def _save_state(self, step: int) -> None:
        import torch

        from vidspan.train.sft import keep_identity

        tmp = self.out / f"{STATE}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        self.vm.model.save_pretrained(tmp)
        self.vm.processor.save_pretrained(tmp)
        keep_identity(self.source, tmp)
        torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(torch.get_rng_state(), tmp / "rng.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step}) + "\n", encoding="utf-8")
        final = self.out / STATE
        old = self.out / f"{STATE}.old"
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)

    def records(self) -> list[dict[str, Any]]:
        """Every logged step, in order (a resumed run's earlier steps included)."""
        records = self.run.records("log.jsonl").values()
        return sorted(records, key=lambda r: int(r["step"]))

    def save(self) -> Path:
        """Write the final checkpoint into the run directory, mark the run finished and drop ``state/``."""
        from vidspan.train.sft import keep_identity

        self._log.__exit__(None, None, None)
        self.vm.model.eval()
        self.vm.model.save_pretrained(self.out)
        self.vm.processor.save_pretrained(self.out)
        keep_identity(self.source, self.out)
        shutil.rmtree(self.out / STATE, ignore_errors=True)
        self.run.finish()
        self.run.close()
        return self.out
