"""What a run records about itself: RunStarted and Finished, the StepMetrics of a report
window (the one host sync per report), and, under DDP, the controls every rank takes at the
same step. Functions of what setup built (Prepared) and where the run is (RunState)."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import torch

from tui_nn.engine import events as ev
from tui_nn.engine import recovery
from tui_nn.engine.controls import Controls
from tui_nn.engine.device import device_name, memory_in_use
from tui_nn.engine.distributed import all_mean, vote_controls

if TYPE_CHECKING:  # pragma: no cover
    from tui_nn.engine.prepared import Prepared
    from tui_nn.engine.state import RunState


def step_metrics(p: "Prepared", st: "RunState", epoch: int, epoch_step: int,
                 now: float) -> ev.StepMetrics:
    """The window's losses read back in one go (NaN/Inf stops the run here), as a record."""
    stacked = torch.stack(st.losses)
    if p.dist.enabled:
        stacked = all_mean(stacked, p.dist)  # the global batch's loss at each step
    values = stacked.tolist()  # the one host sync per report
    st.losses = []
    bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
    if bad is not None:  # named by the step whose loss it was, not the report's
        recovery.stop_on_nan(p, st, epoch, values[bad], step=st.step - len(values) + 1 + bad)
    done = st.step - st.session_start_step
    elapsed = time.monotonic() - st.t0
    eta = elapsed / done * (p.total_steps - st.step) if done else None
    return ev.StepMetrics(
        epoch=epoch, step=st.step, first_step=st.step - len(values) + 1,
        losses=tuple(values), lr=p.optimizer.param_groups[0]["lr"],
        samples_per_s=st.window_samples / max(now - st.window_t0, 1e-9), eta_s=eta,
        epoch_step=epoch_step, steps_per_epoch=p.steps_per_epoch,
        total_steps=p.total_steps, memory_bytes=memory_in_use(p.device),
        data_wait=p.stream.take_wait(now - st.window_t0) if p.stream is not None else None,
        scalars=st.scalars.take())


def steer_all_ranks(p: "Prepared", st: "RunState", controls: Controls) -> bool:
    """DDP: every rank takes rank 0's pause and lr requests (from its control channel) and
    any rank's stop at the same step. Returns whether to stop."""
    main = p.dist.is_main

    def vote() -> tuple[bool, bool, float]:
        return vote_controls(controls.stop_requested, main and controls.paused,
                             controls.take_lr_factor() if main else 0.0, p.dist, p.device)

    stop, pause, factor = vote()
    if pause and not stop:
        p.emit(ev.StateChanged("paused"))
        since = time.monotonic()
        while pause and not stop:  # every rank meets every 0.2 s: no collective times out
            time.sleep(0.2)
            stop, pause, more = vote()
            factor *= more
        st.leave_out(time.monotonic() - since)
        p.emit(ev.StateChanged("running"))
    recovery.apply_lr_factor(p, st, factor)
    return stop


def run_started(p: "Prepared", st: "RunState") -> ev.RunStarted:
    """The session's first record: what trains on what, where, how long, from where."""
    cfg = p.config
    return ev.RunStarted(
        run_dir=str(p.run_dir.path) if p.run_dir else None, model=cfg.model,
        dataset=cfg.dataset, device=str(p.device), device_name=device_name(p.device),
        task=p.task, metric=p.metric_name, n_train=p.dataset.n_train,
        n_val=p.dataset.n_val, epochs=cfg.epochs, batch_size=p.batch_size,
        steps_per_epoch=p.steps_per_epoch, total_steps=p.total_steps,
        parameters=p.parameters(), start_epoch=st.start_epoch, start_step=st.step,
        changes=p.resume_changes,
        setup="; ".join(n for n in (p.fit_note, str(p.augment or ""), str(p.stream or ""))
                        if n),
        memory_measured=dict(p.measured_memory) if p.measured_memory else None)


def finished(p: "Prepared", st: "RunState", epochs_done: int) -> ev.Finished:
    return ev.Finished(
        status="stopped" if st.stopped else "finished",
        run_dir=str(p.run_dir.path) if p.run_dir else None, epochs_done=epochs_done,
        step=st.step, metric=p.metric_name, best_value=st.best_value,
        last_value=st.last_value, elapsed_s=time.monotonic() - st.t0)
