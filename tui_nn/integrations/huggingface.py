"""A Hugging Face `transformers.TrainerCallback` that logs `Trainer.train()` into a tui-nn run
directory and lets `watch` / `tui-nn control` steer it:

    from tui_nn.integrations.huggingface import TuiNNCallback
    trainer = Trainer(model=model, args=args, ..., callbacks=[TuiNNCallback("runs/hf")])

Steps: the Trainer reports the loss once per `logging_steps` (the window's mean); each step of
the window is logged with that mean, so step numbers are the Trainer's global_step. lr and
grad_norm ride along. Epochs: one per evaluation (eval_strategy) (eval_loss -> val_loss, eval_accuracy ->
accuracy), or per training epoch when there is no evaluation. Pause waits between steps; stop
sets control.should_training_stop; a checkpoint request sets control.should_save (the Trainer
writes output_dir/checkpoint-N); an lr change scales the optimizer and its schedule.
The Trainer has no exception hook: use the callback as a context manager (`with cb:
trainer.train()`) to record a crash as Failed. Needs `pip install "tui-nn[huggingface]"`.
With several processes rank 0 logs and the run is not steerable (one rank cannot stop alone).
"""

from __future__ import annotations

import os
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from tui_nn.integrations._common import RunOptions, as_float, honours, is_scalar
from tui_nn.run import Run

_NOT_CURVES = ("runtime", "samples_per_second", "steps_per_second", "epoch", "total_flos")


class TuiNNCallback(RunOptions, TrainerCallback):
    """Opens a tui_nn.Run at on_train_begin and closes it at on_train_end."""

    # ---- open and close -------------------------------------------------------------------------
    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, model: Any = None, **kwargs: Any) -> None:
        # state.num_train_epochs: what max_steps, if given, makes of args.num_train_epochs
        epochs = max(int(-(-float(state.num_train_epochs or args.num_train_epochs) // 1)), 1)
        run = Run(self.run_dir, model=self.model or type(model).__name__, dataset=self.dataset,
                  metric=(self.metric or "").removeprefix("eval_") or None, mode=self.mode,
                  config={"source": "transformers", "lr": args.learning_rate,
                          "device": str(args.device),
                          "parameters": sum(p.numel() for p in model.parameters())
                          if model is not None else 0, **self.config},
                  epochs=epochs, steps_per_epoch=-(-state.max_steps // epochs),
                  batch_size=args.per_device_train_batch_size, runs_root=self.runs_root,
                  report_interval_s=self.report_interval_s, honours=honours(args.world_size))
        run.enabled = run.enabled and state.is_world_process_zero
        self.run = run.__enter__()
        run.step = state.global_step  # resumed: the steps go on from the checkpoint's

    def on_train_end(self, args: TrainingArguments, state: TrainerState,
                     control: TrainerControl, **kwargs: Any) -> None:
        self.close()

    def __enter__(self) -> "TuiNNCallback":
        return self

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> bool:
        self.close(error)
        return False

    # ---- steps ----------------------------------------------------------------------------------
    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        run = self.run
        if run is None or not logs or "loss" not in logs:
            return  # eval logs come through on_evaluate, the final summary is not a step
        scalars = {k: v for k, v in logs.items() if k not in ("loss", "learning_rate")
                   and is_scalar(v) and not k.endswith(_NOT_CURVES)}
        for _ in range(max(state.global_step - run.step, 1)):
            run.log_step(loss=logs["loss"], lr=logs.get("learning_rate"), **scalars)

    def on_step_end(self, args: TrainingArguments, state: TrainerState,
                    control: TrainerControl, optimizer: Any = None, lr_scheduler: Any = None,
                    **kwargs: Any) -> None:
        run = self.run
        if run is None or args.world_size > 1:
            return  # only rank 0 hears requests: acting on one rank would hang the others
        run.apply_lr(optimizer, lr_scheduler)
        run.wait_while_paused()
        if run.stop_requested:
            control.should_training_stop = True
        if run.checkpoint_requested:
            control.should_save = True  # the Trainer saves, then calls on_save

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                **kwargs: Any) -> None:
        if self.run is not None:
            self.run.checkpoint_saved(
                os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"))

    # ---- epochs -----------------------------------------------------------------------------------
    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    metrics: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if self.run is None:
            return
        values = {k.removeprefix("eval_"): as_float(v) for k, v in (metrics or {}).items()
                  if is_scalar(v) and not k.endswith(_NOT_CURVES)}
        if "loss" in values:
            values["val_loss"] = values.pop("loss")
        self.run.log_epoch(**values)

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState,
                     control: TrainerControl, **kwargs: Any) -> None:
        # The Trainer evaluates after on_epoch_end: with evaluation, epochs come from on_evaluate.
        strategy = getattr(args.eval_strategy, "value", args.eval_strategy)
        if self.run is not None and strategy == "no" and not self.run.stop_requested:
            self.run.log_epoch()
