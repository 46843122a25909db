"""Small in-memory datasets for engine tests (no data layer, no files)."""

from __future__ import annotations

import torch

from tui_nn.data.base import Dataset


def line_dataset() -> Dataset:
    x = torch.tensor([[1.0], [2.0], [3.0]])
    return Dataset("line", "regression", x, 2 * x, x.clone(), 2 * x, (1,))


def blobs_images(n_train: int = 256, n_val: int = 64, seed: int = 0) -> Dataset:
    """Ten classes of 1×28×28 images, each a bright square in a class-specific spot plus noise:
    easy enough that a CNN learns it in a few dozen steps."""
    g = torch.Generator().manual_seed(seed)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 10, (n,), generator=g)
        x = 0.1 * torch.rand(n, 1, 28, 28, generator=g)  # (n, 1, 28, 28)
        for i, c in enumerate(y.tolist()):
            r, col = divmod(c, 5)
            x[i, 0, 4 + r * 12:12 + r * 12, 2 + col * 5:6 + col * 5] = 1.0
        return x, y

    tx, ty = make(n_train)
    vx, vy = make(n_val)
    return Dataset("blobs", "classification", tx, ty, vx, vy, (1, 28, 28), num_classes=10,
                   mean=(0.1,), std=(0.3,))


def epoch_records_of_train(run_dir, args: list[str], env: dict | None = None) -> list[dict]:
    """`python -m tui_nn train ARGS --run-dir RUN_DIR` as a real child process (forked by
    fastproc; with --nproc-per-node its torchrun agent starts each rank as a fresh interpreter),
    exit 0 asserted; the run's EpochMetrics records."""
    import os

    import fastproc
    from tui_nn.engine.rundir import read_metrics

    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    env.pop("WORLD_SIZE", None)  # a test runner started under torchrun must not look like a rank
    done = fastproc.run(["train", *args, "--run-dir", str(run_dir)], capture_output=True,
                        text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    return [r for r in read_metrics(run_dir) if r["type"] == "EpochMetrics"]
