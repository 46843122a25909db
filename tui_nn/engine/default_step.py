"""The step of every model without its own: one forward, one loss, one backward, the optimizer
and the schedule. A step plugin (engine/plugins.py) like the GAN's: the Trainer calls both the
same way, and knows what neither trains."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

from tui_nn.data import tasks
from tui_nn.engine import validation

if TYPE_CHECKING:  # pragma: no cover
    from tui_nn.engine.prepared import Prepared
    from tui_nn.engine.state import RunState


class DefaultStep:
    """One path for every step, the GradScaler disabled unless fp16. on_gradients(scale) is
    called between backward and the optimizer step (the live insight's gradient view reads
    them there). When check_loss() says so (the Trainer's per-step read, on the CPU), a
    non-finite loss is returned before backward: nothing is stepped, and the Trainer rolls
    back or stops."""

    metric = None  # the task's own (Prepared.metric_name)
    # A NaN loss may roll back to last.pt and pause (on_nan "pause"): the Trainer's state is
    # all this step has, and last.pt holds all of it.
    rolls_back = True

    def __init__(self, state: "RunState", on_gradients: Callable[[float], None],
                 check_loss: Callable[[], bool]) -> None:
        self.state, self.on_gradients, self.check_loss = state, on_gradients, check_loss
        self.run: Any = None

    def setup(self, run: "Prepared") -> None:
        self.run = run

    def train_step(self, xb: torch.Tensor, yb: torch.Tensor
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        run = self.run
        cfg, scaler, opt = run.config, run.scaler, run.optimizer
        model = (run.forward_model if run.compiled_batch in (None, xb.shape[0])
                 else run.eager_model)  # a last, partial batch runs eagerly
        loss = self._loss(run.forward(model, xb), yb, xb.shape[0], self.state.global_n)
        if self.check_loss() and not math.isfinite(loss.item()):
            return loss.detach(), {}
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        self.on_gradients(scaler.get_scale())
        if cfg.grad_clip:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        if run.scheduler is not None:
            run.scheduler.step()
        return loss.detach(), {}

    def _loss(self, out: torch.Tensor, yb: torch.Tensor, local_n: int,
              global_n: int) -> torch.Tensor:
        run = self.run
        if not run.dist.enabled:
            return tasks.loss_mean(run.loss_task, out, yb)
        # Sum over this rank's slice / the global count, times world: DDP's mean of the
        # ranks' gradients is then the gradient of the global batch mean.
        ls, k = tasks.loss_sum(run.loss_task, out, yb)
        terms = global_n * (k // max(local_n, 1)) if local_n else global_n
        return ls * (run.dist.world_size / max(terms, 1))

    def probe_loss(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return self.run.probe_loss(xb, yb)

    def evaluate(self) -> tuple[float, float, str | None]:
        return validation.evaluate(self.run, self.state)

    def after_epoch(self, epoch: int, step: int) -> None:
        pass  # the live insight's epoch views are the Trainer's (they need its predictions)

    def state_dict(self) -> dict[str, Any]:
        return {}  # nothing beyond the Trainer's own state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
