"""The Trainer: drives the headless CLI, the app, tests and benchmarks; knows no UI. It reports
through events passed to a callback; Controls (pause, stop, ...) steer it from any thread.

Reading order: run() -> setup.setup() -> _train_epoch() -> _train_step() -> _between_steps()
-> _end_epoch(). What setup builds: prepared.py (the Trainer's attributes of the same names);
where the run is: state.py. The step: default_step.py (or a zoo entry's own, plugins.py).
Recovery (NaN, OOM, lr): recovery.py, oom.py; records: reports.py; checkpoints:
checkpoint.py; the run directory: rundir.py; validation: validation.py. None of them imports
this module."""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from tui_nn.data import tasks
from tui_nn.engine import checkpoint, oom, recovery, reports, setup
from tui_nn.engine import events as ev
from tui_nn.engine.config import ConfigError, TrainConfig
from tui_nn.engine.controls import Controls
from tui_nn.engine.default_step import DefaultStep
from tui_nn.engine.distributed import all_sum, destroy_process_group
from tui_nn.engine.errors import CheckpointError, TrainingError, data_error_types
from tui_nn.engine.plugins import StepPlugin
from tui_nn.engine.prepared import Prepared
from tui_nn.engine.rundir import RunDirError
from tui_nn.engine.stop_signals import raised_by_user_code
from tui_nn.engine.state import RunState

Callback = Callable[[ev.Event], None]

# An epoch-end checkpoint is skipped when the last one is younger than this: a 1000-epoch toy
# run would otherwise fsync a thousand times. The step-0, best, stop, finish and periodic saves
# are never skipped, so a NaN always finds a checkpoint from before it.
_EPOCH_CHECKPOINT_MIN_INTERVAL_S = 10.0

__all__ = ["Trainer", "TrainingError", "RunState", "Prepared"]


class Trainer(Controls):
    """Trains one model on one dataset.

    model/dataset may be given directly (tests, the TUI with a user's model); otherwise they come
    from the zoo and the data registry by the names in the config. resume_from is a run directory
    (or a file in one) to continue; then the config's non-default settings are what the resume
    asks to change (see config.resume_config). pause/resume/stop/request_checkpoint/
    scale_lr come from Controls (engine/controls.py) and are safe from any thread.
    What setup builds is self.prep (engine/prepared.py): trainer.model is trainer.prep.model.
    """

    def __init__(self, config: TrainConfig, callback: Callback | None = None, *,
                 model: nn.Module | None = None, dataset: Any = None,
                 resume_from: str | Path | None = None) -> None:
        self._callback = callback or (lambda event: None)
        self._given = {"model": model, "dataset": dataset, "resume_from": resume_from}
        Controls.__init__(self)
        self.prep = Prepared(config, self.emit)  # filled by prepare()
        self.state = RunState()
        self.history: list[ev.EpochMetrics] = []
        self._step: StepPlugin | None = None  # the zoo entry's step plugin, or DefaultStep

    def prepare(self) -> Prepared:
        """Everything before the first step (engine/setup.py), into self.prep."""
        p = setup.setup(self.prep, self.state, controls=self, **self._given)
        self._step = p.step_plugin
        if self._step is None:
            self._step = DefaultStep(self.state, self._observe_gradients,
                                     lambda: self._check_each_step)
            self._step.setup(p)
        return p

    # ---- running ---------------------------------------------------------------------------
    def run(self) -> ev.Finished | ev.Failed:
        """Train to the end (or until stopped). Never raises for training failures: the last
        event, Finished or Failed, is both emitted and returned."""
        try:
            try:
                return self._run()
            except torch.cuda.OutOfMemoryError:
                pass  # handled below, once this block has dropped the failed step's frames
            return self._fail(oom.out_of_memory_message(self.prep, self.state, self.save),
                              "oom")
        except TrainingError as e:
            return self._fail(str(e), e.kind)
        except (ConfigError, RunDirError) as e:
            return self._fail(str(e), "usage")
        except CheckpointError as e:  # only loading raises it: the --resume file given
            return self._fail(str(e), "checkpoint")
        except data_error_types() as e:
            return self._fail(str(e), "data")
        except OSError as e:
            return self._fail(checkpoint.os_reason(e) + checkpoint.intact_note(self.state), "disk")
        except Exception as e:  # noqa: BLE001 - surfaced as an event, with the traceback kept
            return self._fail(f"{type(e).__name__}: {e}", "error",
                              {"traceback": traceback.format_exc()})
        except (SystemExit, KeyboardInterrupt) as e:
            if not raised_by_user_code(e):
                raise  # a real Ctrl-C (the second one): end now
            return self._fail(f"the model's code (or its dataset's) raised {e!r}: an error of "
                              "that code, not a way to end a run", "error",
                              {"traceback": traceback.format_exc()})
        finally:
            self._close()

    def _close(self) -> None:
        # Every rank leaves the process group first, at the same moment: rank 0's own closing
        # (channel, files) must not keep the others waiting in the group's shutdown.
        p = self.prep
        if p.stream is not None:
            p.stream.close()
        if p.dist is not None and p.dist.enabled:
            destroy_process_group()
        for part in (p.channel, p.tensorboard, p.run_dir):
            if part is not None:
                part.close()
        if self.state.threads_before:
            torch.set_num_threads(self.state.threads_before)

    def emit(self, event: ev.Event) -> None:
        """To the run's record writers in turn (metrics.jsonl, then TensorBoard: Prepared.
        writers), then to the callback (rank 0's only: it speaks for the run). A record that
        cannot be written ends the run (kind "disk"): training on without a record would
        lose it."""
        p = self.prep
        if not isinstance(event, ev.LIVE_ONLY):
            for write in tuple(p.writers):  # a writer may drop itself (TensorBoard's, failing)
                write(event)
        if p.dist is None or p.dist.is_main:
            self._callback(event)

    def _fail(self, message: str, kind: str, details: dict | None = None) -> ev.Failed:
        event = ev.Failed(message=message, kind=kind,
                          run_dir=str(self.run_dir.path) if self.run_dir else None,
                          step=self.state.step if self.model is not None else None,
                          details=details or {})
        try:
            self.emit(event)
        except OSError:  # the disk that failed the run may refuse its last record too
            if self.dist is None or self.dist.is_main:
                self._callback(event)
        return event

    def _run(self) -> ev.Finished | ev.Failed:
        st = self.state
        st.t0 = time.monotonic()
        self.prepare()
        self.emit(reports.run_started(self.prep, st))
        for message in self.prep.notices:
            self.emit(ev.Notice(message))
        st.last_save = time.monotonic()
        if self.run_dir is not None and not self.run_dir.last_checkpoint.exists():
            # Step 0 is saved before anything can go wrong: every run can be resumed, and a
            # NaN always has a checkpoint from before it to keep.
            self.save(st.start_epoch, st.start_step_in_epoch, "start")
        st.session_start_step = st.step
        self.model.train()
        epoch = st.start_epoch
        while epoch < self.config.epochs and not st.stopped:
            if not self._train_epoch(epoch):
                break  # stopped mid-epoch, or nothing trained in it
            self._end_epoch(epoch)
            epoch += 1
        finished = reports.finished(self.prep, st, epoch)
        self.emit(finished)
        return finished

    # ---- one epoch -----------------------------------------------------------------------------
    def _train_epoch(self, epoch: int) -> bool:
        """Train the epoch's steps. False when the epoch ends early: stopped mid-epoch, or
        stopped with nothing trained in it (a NaN batch skipped at its only step)."""
        st, n = self.state, self.dataset.n_train
        st.epoch = epoch
        if st.start_step_in_epoch == 0:
            st.epoch_gen_state = self.generator.get_state()
        perm = torch.randperm(n, generator=self.generator)  # (N,)
        first, st.start_step_in_epoch = st.start_step_in_epoch, 0
        carried, st.carried = (st.carried or {}), None  # a resumed epoch goes on from its sums
        st.epoch_t0 = time.monotonic() - float(carried.get("time_s", 0.0))
        self._open_window()
        st.epoch_loss_sum = torch.full((), float(carried.get("loss_sum", 0.0)),
                                       device=self.device)
        st.epoch_terms = int(carried.get("terms", 0))
        if carried.get("scalars"):
            st.scalars.load_state_dict(carried["scalars"], self.device)
        last = self.steps_per_epoch - 1
        batches = (self.stream.epoch(perm, first) if self.stream is not None
                   else self._slices(perm.to(self.device), first))
        for i, (xb, yb, global_n) in enumerate(batches, start=first):
            st.step_in_epoch = i
            if self.augment is not None:
                xb = self.augment(xb)  # (b, C, H, W): training batches only, on the device
            loss = self._train_step(xb, yb, global_n)
            if loss is None:  # a NaN batch skipped after a rollback (on_nan="pause")
                if self._stop.is_set():
                    self._stop_at(epoch, i)
                    return i == last and st.epoch_terms > 0
                continue
            self._record_loss(loss, global_n)
            if self._between_steps(epoch, i):
                return i == last and st.epoch_terms > 0
        return True

    def _slices(self, perm: torch.Tensor, first: int
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        """In-memory data: (x, y, global batch size) for steps first.. as index slices of the
        device tensors by the epoch's order perm (N,) (this rank's share under DDP)."""
        bs = self.batch_size
        for i in range(first, self.steps_per_epoch):
            idx = perm[i * bs:(i + 1) * bs]
            global_n = idx.numel()
            if self.dist.enabled:
                idx = idx.tensor_split(self.dist.world_size)[self.dist.rank]
            # (b, *input_shape), (b, ...)
            yield (self.prep.inputs(self.train_x.index_select(0, idx)),
                   self.train_y.index_select(0, idx), global_n)

    def _train_step(self, xb: torch.Tensor, yb: torch.Tensor,
                    global_n: int) -> torch.Tensor | None:
        """One step of the model's step plugin (engine/default_step.py unless its zoo entry
        has its own): it owns forward, backward and its optimizers; its extra scalars wait on
        the device for the next report, with the losses. Returns the detached loss, or None
        for a NaN batch skipped after a rollback."""
        st = self.state
        st.global_n = global_n
        loss, scalars = self._step.train_step(xb, yb)
        if self._check_each_step and not math.isfinite(loss.item()):  # a CPU read: 0.2 µs
            if not getattr(self._step, "rolls_back", False):
                # No rollback: it would restore the Trainer's state but not the plugin's.
                recovery.stop_on_nan(self.prep, st, st.epoch, float(loss))
            self._pause_on_nan(float(loss))
            st.step += 1  # the skipped batch still counts: steps track the position
            return None
        if scalars:
            st.scalars.add(scalars)
        st.step += 1
        return loss.detach()

    def _observe_gradients(self, grad_scale: float) -> None:
        """Between backward and the optimizer step: the live gradient view, when due."""
        st = self.state
        if self._look and self._look_now(st.step_in_epoch):
            self.insight.observe_gradients(st.epoch, st.step + 1, grad_scale)

    def _record_loss(self, loss: torch.Tensor, global_n: int) -> None:
        st = self.state
        st.losses.append(loss)
        # Under DDP each rank adds its share of the global batch mean (summed at epoch end).
        st.epoch_loss_sum.add_(loss, alpha=global_n / self.dist.world_size
                               if self.dist.enabled else global_n)
        st.epoch_terms += global_n
        st.window_samples += global_n

    def _between_steps(self, epoch: int, i: int) -> bool:
        """Reports, then the controls (stop, pause, lr, checkpoints). True when stopped."""
        st, cfg = self.state, self.config
        now = time.monotonic()
        last_in_epoch = i == self.steps_per_epoch - 1
        due = ((i + 1) % self._report_every == 0) if self._report_every else now >= st.next_report
        if due or last_in_epoch:
            self._report(epoch, i + 1, now)
            insight = self.insight
            if insight is not None and insight.fit_data is not None and insight.due(
                    "fit", last_in_epoch and epoch == cfg.epochs - 1):
                insight.fit(epoch, st.step)
            self._open_window()
        if self.dist.enabled:
            if not (due or last_in_epoch):
                return False  # under DDP the controls act only where every rank meets
            stop_now = reports.steer_all_ranks(self.prep, st, self)
        else:
            stop_now = self._stop.is_set()
            if not stop_now:
                if not self._running.is_set():
                    self.wait_while_paused(lambda: self._checkpoint_if_requested(epoch, i))
                recovery.apply_lr_factor(self.prep, st, self.take_lr_factor())
                stop_now = self._stop.is_set()  # a stop while paused ends the run here
        if stop_now:
            self._stop_at(epoch, i)
            return True
        if not self._checkpoint_if_requested(epoch, i) and self._periodic_due(now):
            self._save_after(epoch, i, "periodic")
        return False

    def _save_after(self, epoch: int, i: int, reason: str) -> None:
        """last.pt := the position after step i of this epoch. The steps it holds are recorded
        first: a resume from it (after a kill) starts after them and would never record them."""
        if self.state.losses:
            self._report(epoch, i + 1, time.monotonic())
            self._open_window()
        resume_at = (epoch + 1, 0) if i == self.steps_per_epoch - 1 else (epoch, i + 1)
        self.save(*resume_at, reason)

    def _checkpoint_if_requested(self, epoch: int, i: int) -> bool:
        if not self._checkpoint_requested.is_set():
            return False
        self._checkpoint_requested.clear()
        self._save_after(epoch, i, "requested")
        return True

    def _stop_at(self, epoch: int, i: int) -> None:
        """Checkpoint the exact position after step i of this epoch and mark the run stopped."""
        self.state.stopped = True
        self._save_after(epoch, i, "stop")

    def _open_window(self) -> None:
        st = self.state
        st.losses = []
        st.window_t0, st.window_samples = time.monotonic(), 0
        st.next_report = st.window_t0 + self.config.report_interval_s

    def _end_epoch(self, epoch: int) -> None:
        """Validation, the epoch's record, and its checkpoints: best.pt at once when the epoch
        is the best so far, last.pt unless one was written in the last few seconds."""
        st, cfg = self.state, self.config
        loss_sum = st.epoch_loss_sum
        if self.dist.enabled:
            loss_sum = all_sum(loss_sum, self.dist)
        train_loss = float(loss_sum) / max(st.epoch_terms, 1)
        if not math.isfinite(train_loss):
            recovery.stop_on_nan(self.prep, st, epoch, train_loss)
        if self.insight is not None:
            self.insight.prepare_epoch(final=epoch == cfg.epochs - 1)
        val_loss, value, decoded = self.evaluate()
        st.last_value = value
        better = st.best_value is None or (value > st.best_value
                                           if tasks.higher_is_better(self.task)
                                           else value < st.best_value)
        if better:
            st.best_value = value
        epoch_time = time.monotonic() - st.epoch_t0
        em = ev.EpochMetrics(
            epoch=epoch, step=st.step, train_loss=train_loss, val_loss=val_loss,
            metric=self.prep.metric_name, value=value, best_value=st.best_value,
            is_best=better, elapsed_s=time.monotonic() - st.t0, epoch_time_s=epoch_time,
            samples_per_s=st.epoch_terms / max(epoch_time, 1e-9), decoded=decoded,
            scalars=st.scalars.epoch_means())
        # best.pt first: a record that says "best" always has its weights on disk.
        saved_best = (checkpoint.write_best(self.prep, st, epoch)
                      if better and self.run_dir is not None else None)
        self.history.append(em)
        self.emit(em)
        if saved_best is not None:
            self.emit(saved_best)
        if self.insight is not None and self.insight.collect_now:
            self.insight.after_epoch(epoch, st.step, st.predictions)
        self._step.after_epoch(epoch, st.step)
        is_last = epoch + 1 >= cfg.epochs
        if not st.stopped and (is_last or time.monotonic() - st.last_save
                               >= _EPOCH_CHECKPOINT_MIN_INTERVAL_S or self._periodic_due()):
            self.save(epoch + 1, 0, "epoch")

    # ---- checkpoints ---------------------------------------------------------------------------
    def save(self, epoch: int, step_in_epoch: int, reason: str) -> None:
        """last.pt := the state after the current step (rank 0 only; no-op without a run),
        once the losses since the last read are known finite."""
        if self.run_dir is not None:
            recovery.check_finite_before_save(self.prep, self.state)
            self.emit(checkpoint.write_last(self.prep, self.state, epoch, step_in_epoch, reason))

    def _pause_on_nan(self, value: float) -> None:
        """Roll back to last.pt and pause (on_nan "pause"; else stop, recovery.py); on resume
        the run goes on from the next batch at the lr asked for meanwhile."""
        event = recovery.roll_back_on_nan(self.prep, self.state, self.state.epoch, value)
        self.pause()  # first: a consumer may resume from inside the event
        self.emit(event)
        self.wait_while_paused()
        recovery.apply_lr_factor(self.prep, self.state, self.take_lr_factor())

    def _periodic_due(self, now: float | None = None) -> bool:
        cfg = self.config
        if cfg.checkpoint_every_steps and self.state.step % cfg.checkpoint_every_steps == 0:
            return True
        if cfg.checkpoint_every_minutes and cfg.checkpoint_every_minutes > 0:
            now = time.monotonic() if now is None else now
            return now - self.state.last_save >= cfg.checkpoint_every_minutes * 60
        return False

    def wait_while_paused(self, while_waiting: Callable[[], object] | None = None) -> None:
        """Block until resumed (or stopped); while_waiting runs every 0.2 s meanwhile (a
        checkpoint asked for during the pause is written at once)."""
        self.emit(ev.StateChanged("paused"))
        since = time.monotonic()
        while not self._running.wait(0.2):
            if while_waiting is not None:
                while_waiting()
        self.state.leave_out(time.monotonic() - since)
        self.emit(ev.StateChanged("running"))

    # ---- reports -------------------------------------------------------------------------------
    def _report(self, epoch: int, epoch_step: int, now: float) -> None:
        self.emit(reports.step_metrics(self.prep, self.state, epoch, epoch_step, now))

    def _look_now(self, i: int) -> bool:
        """Read the gradients at step i (0-based in its epoch)? When the step will end with a
        report (the rule in _between_steps), at most once per report interval, and at the
        last step."""
        last = i == self.steps_per_epoch - 1
        report = last or (((i + 1) % self._report_every == 0) if self._report_every
                          else time.monotonic() >= self.state.next_report)
        return report and self.insight.due(
            "gradients", last and self.state.epoch == self.config.epochs - 1)

    @property
    def _check_each_step(self) -> bool:
        # A per-step sync is free on the CPU only; under DDP a lone rank must not stop alone.
        return self.device.type == "cpu" and not self.dist.enabled

    @property
    def _look(self) -> bool:
        return self.insight is not None and self.insight.monitor is not None

    @property
    def _report_every(self) -> int:
        # Under DDP reports (and the stop vote that rides on them) happen at the same steps on
        # every rank, so they are counted in steps rather than seconds.
        return max(1, int(self.config.report_interval_s * 100)) if self.dist.enabled else 0

    # ---- validation ----------------------------------------------------------------------------
    def evaluate(self) -> tuple[float, float, str | None]:
        """Validation loss and metric (engine/validation.py, or the step plugin's)."""
        return self._step.evaluate()


class _InPrep:
    """A Trainer attribute that is its Prepared's field of the same name (read and written)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, trainer: Trainer | None, owner: type | None = None) -> Any:
        return self if trainer is None else getattr(trainer.prep, self.name)

    def __set__(self, trainer: Trainer, value: Any) -> None:
        setattr(trainer.prep, self.name, value)


for _field in fields(Prepared):
    if _field.name != "emit":  # the Trainer's own emit is the method Prepared.emit calls
        setattr(Trainer, _field.name, _InPrep(_field.name))
