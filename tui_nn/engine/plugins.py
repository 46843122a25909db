"""Step plugins: a model whose training step is not "one forward, one loss, one optimizer".

The Trainer trains one model with one loss. A zoo entry may instead name a step plugin (the
GAN's two-network step, engine/gan_step.py); the Trainer then hands each batch to the plugin
and keeps everything else: position, shuffling, reports, controls, checkpoints, the run
directory. The Trainer knows nothing of what the plugin trains.

A plugin's contract (duck-typed; ``StepPlugin`` documents it):

- ``setup(run)`` after the Trainer's own optimizer and schedule exist (and before a
  checkpoint is restored): build what the step needs. ``run`` is what setup built
  (engine/prepared.py's Prepared: model, data, device, config, ``emit``...); ``run.optimizer``
  stays the one whose lr the controls scale and StepMetrics report, so a plugin may replace
  it.
- ``train_step(xb, yb) -> (loss, scalars)``: one whole step; loss is a 0-d tensor (the
  curve the Trainer draws), scalars named 0-d tensors (more curves: StepMetrics.scalars
  holds their values at each report's last step, EpochMetrics.scalars their epoch means).
  No host sync needed: the Trainer reads them back at report time, with the losses.
- ``probe_loss(xb, yb)``: a differentiable loss with no optimizer step and no RNG use, for
  the first-batch check and the CPU thread timing.
- ``evaluate() -> (val_loss, value, decoded)``: the epoch's validation, as Trainer.evaluate.
- ``after_epoch(epoch, step)``: after the epoch's record (e.g. live insight events).
- ``state_dict()`` / ``load_state_dict(d)``: whatever else a resume needs (a second
  optimizer, a noise generator); kept in the checkpoint under "step_plugin".
"""

from __future__ import annotations

from typing import Any, Protocol

import torch


class StepPlugin(Protocol):
    def setup(self, run: Any) -> None: ...

    def train_step(self, xb: torch.Tensor, yb: torch.Tensor
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...

    def probe_loss(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor: ...

    def evaluate(self) -> tuple[float, float, str | None]: ...

    def after_epoch(self, epoch: int, step: int) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class ScalarLog:
    """A plugin's extra per-step scalars, kept on the device until a report reads them.

    ``take`` gives each name's value at the last step since the previous report (what
    StepMetrics.scalars holds, as tui_nn.Run writes it); ``epoch_means`` each name's mean over
    the epoch so far, and starts the next epoch."""

    def __init__(self) -> None:
        self._last: dict[str, torch.Tensor] = {}
        self._epoch_sum: dict[str, torch.Tensor] = {}
        self._epoch_n = 0

    def add(self, scalars: dict[str, torch.Tensor]) -> None:
        for name, value in scalars.items():
            value = value.detach().float()
            self._last[name] = value
            total = self._epoch_sum.get(name)
            self._epoch_sum[name] = value if total is None else total + value
        self._epoch_n += 1

    def take(self) -> dict[str, float]:
        if not self._last:
            return {}
        last, self._last = self._last, {}
        return dict(zip(last, torch.stack(list(last.values())).tolist()))  # one host sync

    def state_dict(self) -> dict[str, Any]:
        """The epoch's sums so far (a mid-epoch checkpoint), as plain numbers."""
        sums = {name: float(v) for name, v in self._epoch_sum.items()}
        return {"sums": sums, "n": self._epoch_n}

    def load_state_dict(self, state: dict[str, Any], device: Any) -> None:
        self._epoch_n = int(state.get("n") or 0)
        self._epoch_sum = {str(k): torch.tensor(float(v), device=device)
                           for k, v in dict(state.get("sums") or {}).items()}

    def epoch_means(self) -> dict[str, float]:
        n, sums = self._epoch_n, self._epoch_sum
        self._epoch_sum, self._epoch_n = {}, 0
        if not n:
            return {}
        values = torch.stack(list(sums.values())).tolist()
        return {name: v / n for name, v in zip(sums, values)}
