"""A PyTorch Lightning callback that logs `Trainer.fit` into a tui-nn run directory and lets
`watch` / `tui-nn control` steer it:

    from tui_nn.integrations.lightning import TuiNNCallback
    trainer = L.Trainer(max_epochs=3, callbacks=[TuiNNCallback("runs/lit", metric="val_acc")])

Steps: the training_step's loss, the lr of the first optimizer and the metrics logged with
self.log (kept as tensors: read back once per record). Epochs: one per training epoch, with
the metrics of the validation run in it. Pause waits between batches; stop sets
trainer.should_stop; a checkpoint request calls trainer.save_checkpoint(); an lr change
scales every optimizer (and its schedule). Needs `pip install "tui-nn[lightning]"`.
Under DDP rank 0 logs and the run is not steerable (one rank cannot stop or save alone).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from tui_nn.integrations._common import RunOptions, as_float, honours, is_scalar
from tui_nn.run import Run


class TuiNNCallback(RunOptions, Callback):
    """Opens a tui_nn.Run at fit start and closes it (Finished, or Failed on an exception)."""

    def __init__(self, run_dir: str | Path | None = None, **options: Any) -> None:
        super().__init__(run_dir, **options)
        self._val_metrics: dict[str, float] | None = None  # the latest validation's, this epoch

    # ---- open and close -------------------------------------------------------------------------
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        run = Run(self.run_dir, model=self.model or type(pl_module).__name__,
                  dataset=self.dataset, metric=self.metric, mode=self.mode,
                  config={"source": "lightning", "parameters": _n_params(pl_module),
                          "device": str(pl_module.device), **self.config},
                  epochs=max(trainer.max_epochs or 0, 0),
                  steps_per_epoch=_steps_per_epoch(trainer), runs_root=self.runs_root,
                  report_interval_s=self.report_interval_s, honours=honours(trainer.world_size))
        run.enabled = run.enabled and trainer.is_global_zero
        self.run = run.__enter__()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.close()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                     exception: BaseException) -> None:
        self.close(exception)

    # ---- steps: log, then obey the requests from outside ------------------------------------
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        run = self.run
        if run is None:
            return
        optimizers = trainer.optimizers
        lr = optimizers[0].param_groups[0]["lr"] if optimizers else None
        run.log_step(loss=_loss_of(outputs), lr=lr, **_step_metrics(trainer.callback_metrics))
        if trainer.world_size > 1:
            return  # only rank 0 hears requests: acting on one rank would hang the others
        run.apply_lr(optimizers, [c.scheduler for c in trainer.lr_scheduler_configs])
        run.wait_while_paused()
        if run.stop_requested:
            trainer.should_stop = True
        if run.checkpoint_requested:
            path = run.path / "checkpoints" / f"step={trainer.global_step}.ckpt"
            trainer.save_checkpoint(path)
            run.checkpoint_saved(path)

    # ---- epochs -----------------------------------------------------------------------------------
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Here (not on_validation_epoch_end) the epoch's logged values are in callback_metrics.
        if self.run is not None and not trainer.sanity_checking:
            self._val_metrics = {k: as_float(v) for k, v in trainer.callback_metrics.items()
                                 if is_scalar(v) and not k.endswith("_step")}

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        run, values, self._val_metrics = self.run, self._val_metrics, None
        if run is None or (values is None and run.stop_requested):
            return  # an epoch cut short by a stop is not an epoch
        values = dict(values or {})
        if "val_loss" not in values and "val/loss" in values:
            values["val_loss"] = values.pop("val/loss")
        run.log_epoch(**values)


def _loss_of(outputs: Any) -> Any:
    """training_step's loss: a tensor, or a dict's "loss" (None under manual optimisation)."""
    if isinstance(outputs, dict):
        return outputs.get("loss")
    return outputs if is_scalar(outputs) else None


def _step_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The values logged during training (validation ones and epoch means left out)."""
    return {k: v for k, v in metrics.items()
            if is_scalar(v) and k != "loss" and not k.endswith("_epoch")
            and not k.startswith(("val", "test"))}


def _steps_per_epoch(trainer: pl.Trainer) -> int:
    try:
        trainer.estimated_stepping_batches  # sets up the train dataloader (as Lightning does)
        batches = trainer.num_training_batches
    except Exception:  # an iterable without a length: the run still logs, without an ETA
        return 0
    return int(batches) if batches != float("inf") else 0


def _n_params(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())
