"""The engine side of the live insight views: what the Trainer computes for them, and when.

Each hook is off unless the TrainConfig asks (``grad_flow``, ``live_fit``, ``val_predictions``;
the app turns them on, headless runs leave them off), and each only reads the run:

- gradients are read after backward and before the optimizer step, at report time only
  (about every ``report_interval_s``, not every step): one batched norm and one host sync;
- the fit line is a forward pass of a 1-D model over its (at most FIT_MAX_POINTS) data points
  and a grid, under inference_mode in eval mode, the mode restored afterwards;
- the confusion matrix reuses the outputs of the epoch's own validation pass (no second pass).

Each hook also runs at most once per ``report_interval_s`` (and always at the run's last step
or epoch): a toy model whose epochs are one step long reports every step, and observing every
step would double its run time (measured: curve, +124%; benchmarks/bench_insight_live.py).

Nothing here touches the RNG or the weights, so a run's losses are the same with the hooks on
(tests/test_insight_live.py checks it). The events go to the callback only (not metrics.jsonl).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import torch

from tui_nn.engine import events as ev

# The fit view's data: a 1-D csv could hold a million rows, and a forward over all of them
# five times a second would slow the run; an even subsample draws the same picture.
FIT_MAX_POINTS = 2000
GRID_SAMPLES = 16  # validation images per epoch (misclassified first)
GRID_IMAGE_WIDTH = 16  # pixels per image in the message: 16 × 16 -> 16 cells × 8 lines


class LiveInsight:
    """Built by the Trainer after setup when at least one hook is on (see ``create``)."""

    def __init__(self, trainer: Any) -> None:
        from tui_nn.insight.fit import supports_fit

        self.trainer = trainer
        cfg, ds = trainer.config, trainer.dataset
        self.monitor = None
        if cfg.grad_flow:
            from tui_nn.insight.gradflow import GradientMonitor

            try:  # forward order needs one forward pass (eval mode, no_grad, hooks removed)
                self.monitor = GradientMonitor(trainer.model, example_input=trainer.inputs(
                    trainer.train_x[:1]))
            except Exception:  # noqa: BLE001 - a model that cannot: registration order
                self.monitor = GradientMonitor(trainer.model)
        self.fit_data = None
        if cfg.live_fit and supports_fit(ds):
            n = ds.train_x.shape[0]
            keep = (torch.linspace(0, n - 1, FIT_MAX_POINTS).round().long()  # (FIT_MAX_POINTS,)
                    if n > FIT_MAX_POINTS else None)
            x, y = (ds.train_x.cpu(), ds.train_y.cpu()) if keep is None else (
                ds.train_x.cpu()[keep], ds.train_y.cpu()[keep])
            # On the CPU (fit_snapshot builds its grid there and moves the batch to the model).
            self.fit_data = replace(ds, train_x=x, train_y=y, val_x=ds.val_x.cpu(),
                                    val_y=ds.val_y.cpu())
        self.wants_predictions = (cfg.val_predictions and not trainer.dist.enabled
                                  and trainer.task in ("classification", "binary", "sequence"))
        self.collect_now = False  # this epoch's validation pass keeps its predictions
        self.interval = cfg.report_interval_s
        self._next = {"gradients": 0.0, "fit": 0.0, "predictions": 0.0}

    def due(self, kind: str, force: bool = False) -> bool:
        """Whether the ``kind`` hook may run now (at most once per report interval)."""
        now = time.monotonic()
        if force or now >= self._next[kind]:
            self._next[kind] = now + self.interval
            return True
        return False

    def prepare_epoch(self, final: bool) -> None:
        """Before the epoch's validation pass: should it keep its predictions?"""
        self.collect_now = self.wants_predictions and self.due("predictions", final)

    @classmethod
    def create(cls, trainer: Any) -> "LiveInsight | None":
        cfg = trainer.config
        if not (cfg.grad_flow or cfg.live_fit or cfg.val_predictions):
            return None
        if getattr(trainer, "dist", None) is not None and not trainer.dist.is_main:
            return None  # rank 0 speaks for the run
        return cls(trainer)

    # ---- gradients (after backward, before the optimizer step) --------------------------------
    def observe_gradients(self, epoch: int, step: int, grad_scale: float = 1.0) -> None:
        t = self.trainer
        snap = self.monitor.observe(t.model, t.optimizer.param_groups[0]["lr"], step=step,
                                    grad_scale=grad_scale)
        t.emit(ev.GradientFlow(epoch=epoch, step=step, snapshot=snap))

    # ---- the fit line (at report time) -----------------------------------------------------------
    def fit(self, epoch: int, step: int) -> None:
        from tui_nn.insight.fit import fit_snapshot

        snap = fit_snapshot(self.trainer.model, self.fit_data, split="train",
                            logits=self.trainer.loss_task == "binary-logits")
        self.trainer.emit(ev.FitUpdate(epoch=epoch, step=step, snapshot=snap))

    # ---- after each epoch's validation pass -----------------------------------------------------
    def after_epoch(self, epoch: int, step: int, predictions: Any) -> None:
        from tui_nn.insight.classify import confusion_matrix, sample_grid

        if predictions is None or predictions.pred.numel() == 0:
            return
        t = self.trainer
        ds = t.dataset
        labels = getattr(ds, "labels", None)
        if t.task == "binary":
            classes = 2
        else:
            classes = getattr(ds, "num_classes", None) or (len(labels) if labels else 0)
            classes = max(classes, int(torch.maximum(predictions.pred.max(),
                                                     predictions.target.max())) + 1)
        cm = confusion_matrix(None, None, predictions.target, classes, labels=labels,
                              predictions=predictions)
        samples: tuple[Any, ...] = ()
        if t.val_x.dim() == 4 and predictions.pred.numel() == t.val_x.shape[0]:
            samples = tuple(sample_grid(None, t.inputs(t.val_x), t.val_y, GRID_SAMPLES, labels,
                                        predictions=predictions,
                                        image_size=GRID_IMAGE_WIDTH))
        t.emit(ev.ValPredictions(epoch=epoch, step=step, confusion=cm, samples=samples))
