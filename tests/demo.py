"""Scenarios for snapshot tests and screenshots: wait for the app to settle, drive it to a view,
and replay a recorded or synthetic run through the real bridge callback.

A replayed run goes through exactly the path a live one takes (engine event -> bridge ->
RunHistory + messages -> widgets); only the training thread is missing, so the frame is
deterministic (fixed throughput, ETA and memory numbers, no wall-clock times).
"""

from __future__ import annotations

import math
import random
import time
from typing import Any, Iterable

SNAPSHOT_SIZE = (100, 30)


async def settle(pilot: Any, timeout: float = 60.0) -> None:
    """Wait until the catalog is loaded, a model is selected and its inspection (and training-
    memory estimate) is shown."""
    from textual.css.query import NoMatches

    main = pilot.app.main
    deadline = time.monotonic() + timeout
    while True:  # an auto-pilot may start before the screen is composed
        try:
            inspector = main.query_one("#inspector")
            break
        except NoMatches:
            if time.monotonic() > deadline:
                raise TimeoutError("the app did not start") from None
            await pilot.pause(0.05)
    memory_line = main.query_one("#memory-line")
    while (main.run_state == "loading" or main.model_source is None
           or (inspector.inspection is None and inspector.error is None)
           or inspector.pending or memory_line.pending):
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not settle")
        await pilot.pause(0.05)
    table = inspector.query_one("#layers")
    while table._require_update_dimensions:  # DataTable sizes its columns when idle
        await pilot.pause(0.05)
    await pilot.pause(0.1)


async def select_model(pilot: Any, name: str, input_text: str | None = None) -> None:
    """Highlight ``name`` in the zoo list (as arrow keys would) and wait for its inspection."""
    main = pilot.app.main
    main.query_one("#picker").highlight(name)
    deadline = time.monotonic() + 60
    while main.model_source != name:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} was not selected")
        await pilot.pause(0.05)
    if input_text is not None:
        main.query_one("#inspector").input_text = input_text
    await settle(pilot)


def synthetic_run(*, epochs: int = 3, steps_per_epoch: int = 150, upto_step: int | None = None,
                  chunk: int = 10, seed: int = 0, model: str = "cnn",
                  dataset: str = "digits") -> list[Any]:
    """Engine events of a plausible classification run with fixed numbers (for snapshots)."""
    from tui_nn.engine import events as ev

    rng = random.Random(seed)
    total = epochs * steps_per_epoch
    upto = total if upto_step is None else min(upto_step, total)
    events: list[Any] = [ev.RunStarted(
        run_dir=None, model=model, dataset=dataset, device="cpu", device_name="CPU (demo)",
        task="classification", metric="accuracy", n_train=steps_per_epoch * 64, n_val=2000,
        epochs=epochs, batch_size=64, steps_per_epoch=steps_per_epoch, total_steps=total,
        parameters=8490)]
    best = None
    step = 0
    for epoch in range(epochs):
        epoch_losses = []
        while step < (epoch + 1) * steps_per_epoch and step < upto:
            first = step + 1
            losses = []
            for _ in range(min(chunk, (epoch + 1) * steps_per_epoch - step, upto - step)):
                step += 1
                base = 0.08 + 2.2 * math.exp(-step / 90.0)
                losses.append(round(base * (1 + 0.35 * (rng.random() - 0.5)), 4))
            epoch_losses += losses
            events.append(ev.StepMetrics(
                epoch=epoch, step=step, first_step=first, losses=tuple(losses), lr=0.01,
                samples_per_s=5120.0, eta_s=(total - step) / 80.0,
                epoch_step=step - epoch * steps_per_epoch, steps_per_epoch=steps_per_epoch,
                total_steps=total, memory_bytes=512 * 1024 ** 2))
        if step < (epoch + 1) * steps_per_epoch:
            break
        value = round(0.9 + 0.085 * (1 - math.exp(-(epoch + 1) / 1.5)), 4)
        is_best = best is None or value > best
        best = value if is_best else best
        events.append(ev.EpochMetrics(
            epoch=epoch, step=step, train_loss=sum(epoch_losses) / len(epoch_losses),
            val_loss=round(0.05 + 0.3 * math.exp(-(epoch + 1) / 1.2), 4), metric="accuracy",
            value=value, best_value=best, is_best=is_best, elapsed_s=1.0 * (epoch + 1),
            epoch_time_s=1.0, samples_per_s=5120.0))
    if upto >= total:
        events.append(ev.Finished(status="finished", run_dir=None, epochs_done=epochs, step=step,
                                  metric="accuracy", best_value=best, last_value=best,
                                  elapsed_s=float(epochs)))
    return events


def demo_reading(pid: int = 4242) -> Any:
    """A fixed system-pane reading without a GPU (snapshot tests and --quick screenshots)."""
    from tui_nn.system import GpuReport, ProcessStats
    from tui_nn.tui.widgets.system_pane import SystemReading

    return SystemReading(
        GpuReport(available=False, reason="no NVIDIA GPU"),
        ProcessStats(pid, True, cpu_percent=98.0, rss_bytes=612 * 1024 ** 2, threads=6,
                     cpu_count=2, ram_total_bytes=8 * 1024 ** 3,
                     ram_available_bytes=5 * 1024 ** 3))


async def replay(pilot: Any, events: Iterable[Any], *, running: bool = True) -> None:
    """Feed engine events to the app through its bridge, as the training thread would."""
    main = pilot.app.main
    for log in main.query("EventLog"):  # the startup lines name this machine's CPU
        log.clear()
        log.lines_written.clear()
    main.run_state = "starting" if running else main.run_state
    from tui_nn.tui.widgets.system_pane import SystemPane

    for pane in main.query(SystemPane):  # live readings would differ from frame to frame
        pane.freeze(demo_reading())
    for event in events:
        main.bridge._on_event(event)
        main.bridge._last_post = 0.0  # no throttle: every event reaches the UI, in order
    await pilot.pause(0.2)
    main.run.sync_progress()  # what the next frame would show, without waiting for it
    main.query_one("#curves").redraw()
    await pilot.pause(0.1)
