"""Cost of the live insight views (the Insight tab), on the CPU.

    python benchmarks/bench_insight_live.py [--repeat 30] [--n-train 6000] [--skip-train]

1. Engine hooks, measured inside real headless runs (Trainer with grad_flow, live_fit,
   val_predictions on): milliseconds per call of each hook, how many calls, and their share of
   the run's wall time; and the same run's throughput with the hooks off, for comparison.
   Runs use one thread and a fixed seed; both orders are run (off/on, on/off) to see the noise.
2. Redraw cost per refresh of each view, in a headless Textual app at 100×30: building the
   gradient-flow bars, the confusion matrix, the image grid and the fit plot (plotext), i.e.
   what InsightPane.tick does when a view's data changed (median of --repeat).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the app drivers
sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import median_ms  # noqa: E402



def engine_hooks(n_train: int) -> None:
    import torch

    from tui_nn.data import load_dataset
    from tui_nn.data.digits import load_digits
    from tui_nn.engine import TrainConfig, Trainer
    from tui_nn.engine import insight_hooks as hooks

    spent: dict[str, list[float]] = {}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent.setdefault(name, []).append(time.perf_counter() - t0)
        return wrapper

    originals = {n: getattr(hooks.LiveInsight, n) for n in ("observe_gradients", "fit",
                                                             "after_epoch")}
    for name, fn in originals.items():
        setattr(hooks.LiveInsight, name, timed(name, fn))

    digits = load_digits(n_train=n_train, n_val=2000, seed=0)
    cases = [
        ("cnn, digits", "cnn", digits, dict(epochs=2, batch_size=64, lr=0.01)),
        ("resnet, digits", "resnet", digits, dict(epochs=1, batch_size=64, lr=0.01)),
        ("curve (1-D fit)", "curve", load_dataset("curve"), dict(epochs=3000)),
    ]
    print("engine hooks (1 thread, report every 0.2 s):")
    print(f"{'run':18} {'hooks':>5} {'wall s':>7} {'samples/s':>10} | per call ms (calls)")
    for label, model, data, opts in cases:
        results = {}
        for on in (False, True, True, False):  # both orders: the box is shared and noisy
            spent.clear()
            torch.manual_seed(0)
            cfg = TrainConfig(model, save=False, threads=1, grad_flow=on, live_fit=on,
                              val_predictions=on, **opts)
            events = []
            t0 = time.perf_counter()
            Trainer(cfg, events.append, dataset=data).run()
            wall = time.perf_counter() - t0
            steps = sum(len(e.losses) for e in events if type(e).__name__ == "StepMetrics")
            samples = steps * min(cfg.batch_size or 10**9, data.n_train)
            results.setdefault(on, []).append(wall)
            calls = "  ".join(f"{n} {statistics.mean(v) * 1e3:.3f} ({len(v)})"
                              for n, v in spent.items())
            share = sum(sum(v) for v in spent.values()) / wall * 100
            print(f"{label:18} {'on' if on else 'off':>5} {wall:7.2f} {samples / wall:10,.0f} | "
                  f"{calls}{f'  = {share:.2f}% of the run' if on else ''}", flush=True)
        off, on_ = min(results[False]), min(results[True])
        print(f"{'':18} best-of-2 wall: off {off:.2f}s, on {on_:.2f}s "
              f"({(on_ / off - 1) * 100:+.1f}%)")
    for name, fn in originals.items():
        setattr(hooks.LiveInsight, name, fn)


def redraws(repeat: int) -> None:
    from textual.app import App

    from demo_insight import (fit_event, gradient_flow_events, predictions_event)
    from tui_nn.tui.live_insight import LiveInsightState
    from tui_nn.tui.widgets import insight as w

    flow = gradient_flow_events()
    fit = fit_event()
    preds = predictions_event()
    state = LiveInsightState()
    for e in [*flow, fit, preds]:
        state.add(e)

    # A bigger net than the 8-layer MLP: the resnet's 50-odd parameter tensors.
    import torch

    from tui_nn.engine import events as ev
    from tui_nn.insight.gradflow import GradientMonitor
    from tui_nn.zoo import MODELS

    resnet = MODELS.get("resnet").build()
    x = torch.randn(8, 1, 28, 28)  # (8, 1, 28, 28)
    resnet(x).sum().backward()
    snap = GradientMonitor(resnet, per_tensor=True).observe(resnet, 0.01, step=1)
    big = ev.GradientFlow(epoch=0, step=1, snapshot=snap)

    rows: list[tuple[str, float]] = []

    class Bench(App):
        def compose(self):
            yield w.InsightPane()

    async def run() -> None:
        app = Bench()
        async with app.run_test(size=(100, 30)) as pilot:
            pane = app.query_one(w.InsightPane)
            await pilot.pause()
            flow_view = pane.query_one(w.GradientFlowView)
            rows.append(("gradient flow, 8 layers (show: text + 3 updates)",
                         median_ms(lambda: flow_view.show(flow[-1], state.warnings), repeat)))
            rows.append((f"gradient flow, resnet per tensor ({len(snap.layers)} rows)",
                         median_ms(lambda: flow_view.show(big, ()), repeat)))
            rows.append(("  of which gradflow_text only, 8 layers",
                         median_ms(lambda: w.gradflow_text(flow[-1].snapshot, 96), repeat)))
            classes = pane.query_one(w.ClassifierView)
            rows.append(("classifier: confusion 10×10 + 16-image grid",
                         median_ms(lambda: classes.show(preds), repeat)))
            rows.append(("  of which grid_text only",
                         median_ms(lambda: w.grid_text(preds.samples, 96), repeat)))
            pane.show("fit")
            await pilot.pause()
            plot = pane.query_one(w.FitPlot)
            plot.event = fit
            rows.append(("fit plot (plotext render, 100 points + line)",
                         median_ms(lambda: plot.render(), repeat)))
            rows.append(("InsightPane.tick with nothing new",
                         median_ms(lambda: pane.tick(state), repeat)))

    asyncio.run(run())
    print("\nredraw cost per refresh (median, ms; the app refreshes at most ~1/s while training):")
    for name, ms in rows:
        print(f"  {name:52} {ms:8.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--n-train", type=int, default=6000)
    p.add_argument("--skip-train", action="store_true", help="only the redraw costs")
    args = p.parse_args()
    if not args.skip_train:
        engine_hooks(args.n_train)
    redraws(args.repeat)


if __name__ == "__main__":
    main()
