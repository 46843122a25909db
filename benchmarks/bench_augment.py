"""What --augment costs: training samples/s with and without it, measured in one run, and the
batched implementation against torchvision.transforms.v2.

    python benchmarks/bench_augment.py                       # cnn, rotate=10,crop=2, CPU
    python benchmarks/bench_augment.py --device cuda --spec photos --n-train 60000

1. The engine: the same Trainer, model, data, seed and thread count, trained with no
   augmentation and with --augment SPEC, alternating (A B A B ...) so a busy machine slows both
   alike; the best epoch of each is compared. Target on the CPU: ratio ≥ 0.8.
2. The same step, alternating with and without augmentation step by step (robust to load from
   other processes, which the whole-epoch comparison is not on a shared box).
3. The transform alone on one (64, 1, 28, 28) batch: tui-nn's Augmenter (a random affine per
   sample, one grid_sample), torchvision v2 RandomAffine on the batch tensor (one random draw
   for the whole batch), and v2 applied sample by sample (per-sample draws, a Python loop).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from timing import median_ms  # noqa: E402

from tui_nn.data.augment import Augmenter, parse_augment  # noqa: E402
from tui_nn.data.digits import load_digits  # noqa: E402
from tui_nn.engine import TrainConfig, Trainer  # noqa: E402
from tui_nn.engine import events as ev  # noqa: E402


def train_samples_per_s(model: str, ds, augment: str, args) -> float:
    cfg = TrainConfig(model, epochs=args.epochs, batch_size=args.batch_size, device=args.device,
                      seed=0, save=False, threads=args.threads, augment=augment)
    trainer = Trainer(cfg, dataset=ds)
    result = trainer.run()
    if isinstance(result, ev.Failed):
        raise SystemExit(f"run failed: {result.message}")
    return max(e.samples_per_s for e in trainer.history)


def engine_ratio(args) -> None:
    ds = load_digits(n_train=args.n_train, n_val=1000)
    plain, augmented = [], []
    for _ in range(args.repeats):
        plain.append(train_samples_per_s(args.model, ds, "", args))
        augmented.append(train_samples_per_s(args.model, ds, args.spec, args))
    best_plain, best_aug = max(plain), max(augmented)
    print(f"engine: {args.model} on digits ({args.n_train} train), batch {args.batch_size}, "
          f"{args.device}, threads {args.threads or 'auto'}, best of {args.repeats}")
    print(f"  no augmentation          {best_plain:10,.0f} samples/s")
    print(f"  --augment {args.spec:<14} {best_aug:10,.0f} samples/s")
    print(f"  ratio {best_aug / best_plain:.2f}x (target >= 0.8x on the CPU)")


def interleaved_ratio(args) -> None:
    """The engine's step (index_select, augment, forward, backward, SGD) with and without the
    augmentation, alternating step by step, so load from other processes hits both alike;
    the ratio of median step times is the samples/s ratio."""
    import statistics
    import time

    import torch.nn.functional as F

    from tui_nn.zoo import get_model_spec

    device = torch.device("cpu" if args.device == "auto" else args.device)
    ds = load_digits(n_train=args.n_train, n_val=10)
    mean = torch.tensor(ds.mean, device=device).view(1, -1, 1, 1)  # (1, C, 1, 1)
    std = torch.tensor(ds.std, device=device).view(1, -1, 1, 1)
    x = (ds.train_x.to(device) - mean) / std  # (N, 1, 28, 28), normalised as the engine does
    y = ds.train_y.to(device)
    augment = Augmenter(parse_augment(args.spec), ds.mean, ds.std, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    models = [get_model_spec(args.model).build().to(device) for _ in range(2)]
    opts = [torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.5) for m in models]
    times: list[list[float]] = [[], []]
    steps = args.n_train // args.batch_size
    for i in range(steps):
        idx = torch.randint(0, x.shape[0], (args.batch_size,), device=device)
        for k in (0, 1) if i % 2 else (1, 0):
            sync()
            t0 = time.perf_counter()
            xb = x.index_select(0, idx)  # (B, 1, 28, 28)
            if k:
                xb = augment(xb)
            loss = F.cross_entropy(models[k](xb), y.index_select(0, idx))
            opts[k].zero_grad(set_to_none=True)
            loss.backward()
            opts[k].step()
            sync()
            if i >= 5:  # warm-up steps allocate
                times[k].append(time.perf_counter() - t0)
    plain, aug = (statistics.median(t) for t in times)
    print(f"step by step, interleaved ({len(times[0])} steps each, median):")
    print(f"  no augmentation {plain * 1e3:7.2f} ms/step; --augment {args.spec} "
          f"{aug * 1e3:7.2f} ms/step; ratio {plain / aug:.2f}x")


def transform_costs(args) -> None:
    from torchvision.transforms import v2

    device = torch.device("cpu" if args.device == "auto" else args.device)
    torch.manual_seed(0)
    x = torch.rand(args.batch_size, 1, 28, 28, device=device)  # (B, 1, 28, 28)
    spec = parse_augment(args.spec)
    ours = Augmenter(spec, (0.13,), (0.31,), device)
    affine = v2.RandomAffine(degrees=spec.rotate, translate=(spec.crop / 28, spec.crop / 28),
                             scale=(1 - spec.scale, 1 + spec.scale) if spec.scale else None)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def timed(fn) -> float:
        return median_ms(lambda: (fn(), sync()), args.transform_repeats)

    rows = [
        ("tui-nn Augmenter (per-sample draws, batched)", timed(lambda: ours(x))),
        ("torchvision v2 on the batch (one draw/batch)", timed(lambda: affine(x))),
        ("torchvision v2 per sample (Python loop)",
         timed(lambda: torch.stack([affine(s) for s in x]))),
    ]
    print(f"transform alone, one ({args.batch_size}, 1, 28, 28) batch, geometric part of "
          f"{args.spec} on {device}:")
    for name, ms in rows:
        print(f"  {name:<46} {ms:8.3f} ms/batch")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="cnn")
    p.add_argument("--spec", default="rotate=10,crop=2")
    p.add_argument("--device", default="cpu")
    p.add_argument("--n-train", type=int, default=6000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=0, help="0: the engine picks")
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--transform-repeats", type=int, default=50)
    args = p.parse_args()
    engine_ratio(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    interleaved_ratio(args)
    transform_costs(args)


if __name__ == "__main__":
    main()
