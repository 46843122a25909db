"""Fixed insight events for the Insight tab's snapshot tests and screenshots (--quick).

Computed from real tiny models with fixed seeds on one CPU thread, so a frame is the same from
run to run; replayed through the bridge like demo.replay does for the curves.
"""

from __future__ import annotations

from typing import Any


def gradient_flow_events(step: int = 420) -> list[Any]:
    """A deep sigmoid MLP's gradients over four SGD steps: fc1 vanishing, warned at the third
    observation (patience 3)."""
    import torch

    from tui_nn.engine import events as ev
    from tui_nn.insight.gradflow import GradientMonitor, deep_mlp, synthetic_batch
    from tui_nn.insight.threads import torch_threads

    with torch_threads(1):
        model = deep_mlp("sigmoid", depth=8, width=32, seed=0)
        x, y = synthetic_batch(256, 32, seed=0)  # (256, 32), (256, 1)
        monitor = GradientMonitor(model, patience=3)
        events = []
        for i in range(4):
            model.zero_grad(set_to_none=True)
            torch.nn.functional.mse_loss(model(x), y).backward()
            snap = monitor.observe(model, 0.01, step=step - 3 + i)
            events.append(ev.GradientFlow(epoch=2, step=step - 3 + i, snapshot=snap))
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(p.grad, alpha=-0.01)
    return events


def fit_event(step: int = 40) -> Any:
    """The seed's curve net (1 -> 10 -> 1, SGD lr 0.2) after ``step`` full-batch steps."""
    import torch

    from tui_nn.data import load_dataset
    from tui_nn.engine import events as ev
    from tui_nn.insight.fit import fit_snapshot
    from tui_nn.insight.threads import torch_threads
    from tui_nn.zoo.regression import CurveNet

    data = load_dataset("curve")
    with torch_threads(1), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = CurveNet()
        opt = torch.optim.SGD(model.parameters(), lr=0.2)
        for _ in range(step):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(data.train_x), data.train_y).backward()
            opt.step()
        snap = fit_snapshot(model, data, points=100)
    return ev.FitUpdate(epoch=step - 1, step=step, snapshot=snap)


def predictions_event(steps: int = 60) -> Any:
    """Confusion matrix and images of the basic CNN after ``steps`` SGD steps on 2,000 of the
    embedded digits (about 80% right on 300 validation digits: mistakes left to show)."""
    import torch

    from tui_nn.data.digits import load_digits
    from tui_nn.engine import events as ev
    from tui_nn.insight.classify import confusion_matrix, predict, sample_grid
    from tui_nn.insight.threads import torch_threads
    from tui_nn.zoo.vision import BasicCNN

    data = load_digits(n_train=2000, n_val=300, seed=0)
    mean, std = data.mean[0], data.std[0]
    train_x = (data.train_x.float() - mean) / std  # (2000, 1, 28, 28)
    val_x = (data.val_x.float() - mean) / std  # (300, 1, 28, 28)
    with torch_threads(1), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = BasicCNN()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
        for s in range(steps):
            i = (s * 64) % 1984
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(train_x[i:i + 64]),
                                              data.train_y[i:i + 64]).backward()
            opt.step()
        preds = predict(model, val_x, data.val_y)
    cm = confusion_matrix(None, None, data.val_y, 10, labels=data.labels, predictions=preds)
    samples = sample_grid(None, val_x, data.val_y, 16, data.labels, predictions=preds,
                          image_size=16)
    return ev.ValPredictions(epoch=0, step=steps, confusion=cm, samples=tuple(samples))


async def show_insight(pilot: Any, view: str, events: list[Any]) -> None:
    """Feed insight events through the bridge and show one Insight view."""
    main = pilot.app.main
    for event in events:
        main.bridge._on_event(event)
    await pilot.pause(0.1)
    main.action_show_insight(view)
    await pilot.pause(0.1)
    main.query_one("InsightPane").tick(main.bridge.insight)
    await pilot.pause(0.2)
