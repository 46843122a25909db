"""Cost of one refresh of each insight view that is meant to update live (CPU).

    python benchmarks/bench_insight.py [--repeat 20] [--threads N]

Each figure is the median of --repeat calls after one warm-up, next to the cost of one
training step of the same model for scale. The UI refreshes at most 10 times a second, so a
view that costs under ~10 ms per refresh is cheap enough to redraw on every report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import median_ms  # noqa: E402



def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args()

    import torch
    import torch.nn.functional as F

    if args.threads:
        torch.set_num_threads(args.threads)
    from tui_nn.data import load_dataset
    from tui_nn.insight.activations import activation_curves
    from tui_nn.insight.autograd import grad_fn_tree
    from tui_nn.insight.classify import (confusion_matrix, half_block_cells, half_block_text,
                                         predict, sample_grid)
    from tui_nn.insight.fit import fit_snapshot
    from tui_nn.insight.gradflow import GradientMonitor
    from tui_nn.insight.landscape import descent_paths, mse_grid
    from tui_nn.zoo.regression import CurveNet, LogisticRegressionModel
    from tui_nn.zoo.vision import BasicCNN

    rows: list[tuple[str, float]] = []
    torch.manual_seed(0)
    cnn = BasicCNN()
    opt = torch.optim.SGD(cnn.parameters(), lr=0.01, momentum=0.5)
    xb, yb = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))  # (64, 1, 28, 28)

    def train_step() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(cnn(xb), yb)
        loss.backward()
        opt.step()
        return loss

    rows.append(("reference: one cnn training step, batch 64", median_ms(train_step, args.repeat)))
    monitor = GradientMonitor(cnn, example_input=xb[:1])
    train_step()
    rows.append(("gradflow observe, cnn (3 layers)", median_ms(lambda: monitor.observe(cnn, 0.01),
                                                                args.repeat)))
    tensor_monitor = GradientMonitor(cnn, per_tensor=True)
    rows.append(("gradflow observe, cnn per tensor (6)",
                 median_ms(lambda: tensor_monitor.observe(cnn, 0.01), args.repeat)))

    digits = load_dataset("digits")
    vx = (digits.val_x - digits.mean[0]) / digits.std[0]  # (10000, 1, 28, 28)
    vy = digits.val_y
    rows.append(("confusion matrix, cnn on 10k digits",
                 median_ms(lambda: confusion_matrix(cnn, vx, vy, 10), max(3, args.repeat // 4))))
    preds = predict(cnn, vx, vy)
    rows.append(("  of which bincount + read (predictions given)",
                 median_ms(lambda: confusion_matrix(None, None, vy, 10, predictions=preds),
                           args.repeat)))
    rows.append(("sample grid of 16 (predictions given)",
                 median_ms(lambda: sample_grid(None, vx, vy, 16, predictions=preds), args.repeat)))
    grid = sample_grid(None, vx, vy, 16, predictions=preds)
    rows.append(("half-block cells for 16 images (28×28)",
                 median_ms(lambda: [half_block_cells(s.image) for s in grid], args.repeat)))
    rows.append(("half-block text for 16 images (28×28)",
                 median_ms(lambda: [half_block_text(s.image) for s in grid], args.repeat)))

    curve = load_dataset("curve")
    net = CurveNet()
    rows.append(("fit snapshot, curve (100 points + 100-point line)",
                 median_ms(lambda: fit_snapshot(net, curve), args.repeat)))
    hours = load_dataset("hours")
    rows.append(("fit snapshot, logistic (3 points)",
                 median_ms(lambda: fit_snapshot(LogisticRegressionModel(), hours), args.repeat)))

    loss = F.cross_entropy(cnn(xb), yb)  # a live graph: the tree is read, not rebuilt
    rows.append(("grad_fn tree, cnn loss (17 nodes)",
                 median_ms(lambda: grad_fn_tree(loss, cnn), args.repeat)))
    rows.append(("activation curves, 7 functions × 201 points",
                 median_ms(activation_curves, args.repeat)))
    rows.append(("descent paths gd+sgd+minibatch, 100 epochs",
                 median_ms(descent_paths, args.repeat)))
    rows.append(("MSE w×b grid 41×41", median_ms(mse_grid, args.repeat)))

    width = max(len(name) for name, _ in rows)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of "
          f"{args.repeat} calls")
    for name, ms in rows:
        print(f"{name:<{width}}  {ms:8.2f} ms")


if __name__ == "__main__":
    main()
