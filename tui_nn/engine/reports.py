"""What the Trainer records about itself: RunStarted and Finished, the StepMetrics of a report
window (the one host sync per report), and, under DDP, the controls every rank takes at the
same step."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import torch

from tui_nn.engine import events as ev
from tui_nn.engine import recovery
from tui_nn.engine.device import device_name, memory_in_use
from tui_nn.engine.distributed import all_mean, vote_controls

if TYPE_CHECKING:  # pragma: no cover
    from tui_nn.engine.trainer import Trainer


def step_metrics(t: "Trainer", epoch: int, epoch_step: int, now: float) -> ev.StepMetrics:
    """The window's losses read back in one go (NaN/Inf stops the run here), as a record."""
    st = t.state
    stacked = torch.stack(st.losses)
    if t.dist.enabled:
        stacked = all_mean(stacked, t.dist)  # the global batch's loss at each step
    values = stacked.tolist()  # the one host sync per report
    st.losses = []
    bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
    if bad is not None:  # named by the step whose loss it was, not the report's
        recovery.stop_on_nan(t, epoch, epoch_step, values[bad],
                             step=st.step - len(values) + 1 + bad)
    done = st.step - st.session_start_step
    elapsed = time.monotonic() - st.t0
    eta = elapsed / done * (t.total_steps - st.step) if done else None
    return ev.StepMetrics(
        epoch=epoch, step=st.step, first_step=st.step - len(values) + 1,
        losses=tuple(values), lr=t.optimizer.param_groups[0]["lr"],
        samples_per_s=st.window_samples / max(now - st.window_t0, 1e-9), eta_s=eta,
        epoch_step=epoch_step, steps_per_epoch=t.steps_per_epoch,
        total_steps=t.total_steps, memory_bytes=memory_in_use(t.device),
        data_wait=t.stream.take_wait(now - st.window_t0) if t.stream is not None else None,
        scalars=t._scalars.take())


def steer_all_ranks(t: "Trainer") -> bool:
    """DDP: every rank takes rank 0's pause and lr requests (from its control channel) and
    any rank's stop at the same step. Returns whether to stop."""
    main = t.dist.is_main

    def vote() -> tuple[bool, bool, float]:
        return vote_controls(t.stop_requested, main and t.paused,
                             t.take_lr_factor() if main else 0.0, t.dist, t.device)

    stop, pause, factor = vote()
    if pause and not stop:
        t.emit(ev.StateChanged("paused"))
        since = time.monotonic()
        while pause and not stop:  # every rank meets every 0.2 s: no collective times out
            time.sleep(0.2)
            stop, pause, more = vote()
            factor *= more
        t.state.leave_out(time.monotonic() - since)
        t.emit(ev.StateChanged("running"))
    if factor != 1.0:
        recovery.scale_lr_now(t, factor)
        t.emit(ev.LrScaled(step=t.state.step, factor=factor,
                           lr=t.optimizer.param_groups[0]["lr"]))
    return stop


def run_started(t: "Trainer") -> ev.RunStarted:
    """The session's first record: what trains on what, where, how long, from where."""
    cfg, st = t.config, t.state
    return ev.RunStarted(
        run_dir=str(t.run_dir.path) if t.run_dir else None, model=cfg.model,
        dataset=cfg.dataset, device=str(t.device), device_name=device_name(t.device),
        task=t.task, metric=t.metric_name, n_train=t.dataset.n_train,
        n_val=t.dataset.n_val, epochs=cfg.epochs, batch_size=t.batch_size,
        steps_per_epoch=t.steps_per_epoch, total_steps=t.total_steps,
        parameters=t.parameters(), start_epoch=st.start_epoch, start_step=st.step,
        changes=t.resume_changes,
        setup="; ".join(n for n in (t.fit_note, str(t.augment or ""), str(t.stream or ""))
                        if n),
        memory_measured=dict(t.measured_memory) if t.measured_memory else None)


def finished(t: "Trainer", epochs_done: int) -> ev.Finished:
    st = t.state
    return ev.Finished(
        status="stopped" if st.stopped else "finished",
        run_dir=str(t.run_dir.path) if t.run_dir else None, epochs_done=epochs_done,
        step=st.step, metric=t.metric_name, best_value=st.best_value,
        last_value=st.last_value, elapsed_s=time.monotonic() - st.t0)
