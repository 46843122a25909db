"""tui-nn's engine against the seed notes' DataLoader loop and against the loop an expert writes
by hand (benchmarks/expert_loop.py): same model, same data, same batch size, same epochs,
validation after every epoch, measured in one run. Prints samples/s for each, the ratios
tui-nn / seed and tui-nn / expert, and the accuracies.

    python benchmarks/bench_train_speed.py                 # cnn, mlp, resnet on the CPU
    python benchmarks/bench_train_speed.py --device cuda   # on a GPU box
    python benchmarks/bench_train_speed.py --models cnn --epochs 2 --n-train 60000
    python benchmarks/bench_train_speed.py --n-train 8000 --n-val 2000 --epochs 3 --skip-seed \
        --pairs 3                                   # alternating expert / tui-nn pairs

The data is the embedded `digits` set written as MNIST IDX files, so both sides read the same
bytes offline: the seed side through torchvision.datasets.MNIST + ToTensor + Normalize, tui-nn
through its own `mnist` loader (decoded once, device-resident, index-sliced batches).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from expert_loop import train_expert  # noqa: E402
from idx import write_mnist  # noqa: E402
from seed_style import train_seed_style  # noqa: E402

from tui_nn.data.digits import load_digits  # noqa: E402
from tui_nn.engine import TrainConfig, Trainer  # noqa: E402
from tui_nn.engine import events as ev  # noqa: E402
from tui_nn.zoo import get_model_spec  # noqa: E402


def train_tui_nn(model_name: str, root: str, epochs: int, batch_size: int, device: str,
                 seed: int, extra: dict) -> dict:
    marks: dict[str, float] = {}

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            marks["start"] = time.perf_counter()

    cfg = TrainConfig(model_name, dataset="mnist", data_dir=root, epochs=epochs,
                      batch_size=batch_size, device=device, seed=seed, save=False,
                      download=False, **extra)
    trainer = Trainer(cfg, on_event)
    result = trainer.run()
    if isinstance(result, ev.Failed):
        raise SystemExit(f"tui-nn run failed: {result.message}")
    seconds = time.perf_counter() - marks["start"]
    best_epoch = min(e.epoch_time_s for e in trainer.history)
    return {"seconds": seconds, "samples_per_s": epochs * trainer.dataset.n_train / seconds,
            "accuracy": result.last_value, "best_epoch_s": best_epoch}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", default="cnn,mlp,resnet")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--n-train", type=int, default=60000)
    p.add_argument("--n-val", type=int, default=10000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-seed", action="store_true", help="leave out the seed-style loop")
    p.add_argument("--skip-expert", action="store_true", help="leave out the expert loop")
    p.add_argument("--pairs", type=int, default=1,
                   help="expert/tui-nn runs in alternating pairs; /expert is the median of the "
                        "pairs' ratios, the samples/s columns the median runs")
    p.add_argument("--amp", default=None, help="tui-nn autocast: bf16 or fp16 (CUDA)")
    p.add_argument("--compile", action="store_true", help="tui-nn with torch.compile")
    args = p.parse_args()

    extra = {}
    if args.amp:
        extra["amp"] = args.amp
    if args.compile:
        extra["compile"] = True

    print(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} CPU "
          f"threads, {args.n_train} train / {args.n_val} val samples, batch {args.batch_size}, "
          f"{args.epochs} epoch(s)", flush=True)
    digits = load_digits(n_train=args.n_train, n_val=args.n_val, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = str(write_mnist(Path(tmp), digits.train_x, digits.train_y, digits.val_x,
                               digits.val_y))
        print(HEADER, flush=True)
        for name in args.models.split(","):
            row = run_model(name, root, args, extra)
            print(format_row(name, *row), flush=True)


HEADER = (f"{'model':8} {'seed-style/s':>13} {'expert/s':>10} {'tui-nn/s':>10} {'/seed':>7} "
          f"{'/expert':>8} {'seed acc':>9} {'expert acc':>10} {'tui-nn acc':>10} "
          f"{'tui-nn best epoch':>18}")


def run_model(name: str, root: str, args: argparse.Namespace, extra: dict) -> tuple:
    """(seed, expert, tui-nn) results for one model; None for a side left out. Every side
    starts from the same initial weights (the same seed before build)."""
    seed_res = None
    if not args.skip_seed:
        torch.manual_seed(args.seed)
        seed_res = train_seed_style(get_model_spec(name).build(), root, args.epochs,
                                    args.batch_size, args.device)
    if args.skip_expert:
        return seed_res, None, run_ours(name, root, args, extra)
    expert_runs, our_runs = [], []
    for i in range(args.pairs):  # E T, T E, E T ...: drift on a shared machine hits both
        for side in ("expert", "ours") if i % 2 == 0 else ("ours", "expert"):
            if side == "expert":
                torch.manual_seed(args.seed)
                expert_runs.append(train_expert(get_model_spec(name).build(), root, args.epochs,
                                                args.batch_size, args.device, seed=args.seed))
            else:
                our_runs.append(run_ours(name, root, args, extra))
    ratios = [o["samples_per_s"] / e["samples_per_s"] for o, e in zip(our_runs, expert_runs)]
    if args.pairs > 1:
        print(f"{name}: tui-nn / expert per pair: {', '.join(f'{r:.3f}' for r in ratios)}",
              flush=True)
    expert_res, ours = _median_run(expert_runs), _median_run(our_runs)
    ours["expert_ratio"] = statistics.median(ratios)
    return seed_res, expert_res, ours


def run_ours(name: str, root: str, args: argparse.Namespace, extra: dict) -> dict:
    return train_tui_nn(name, root, args.epochs, args.batch_size, args.device, args.seed, extra)


def _median_run(runs: list[dict]) -> dict:
    """The run with the median samples/s (the lower middle one for an even count)."""
    return dict(sorted(runs, key=lambda r: r["samples_per_s"])[(len(runs) - 1) // 2])


def format_row(name: str, seed: dict | None, expert: dict | None, ours: dict) -> str:
    def rate(r: dict | None) -> str:
        return f"{r['samples_per_s']:,.0f}" if r else "-"

    def ratio(r: dict | None, key: str | None = None) -> str:
        if r is None:
            return "-"
        return f"{ours.get(key) or ours['samples_per_s'] / r['samples_per_s']:.2f}x"

    def acc(r: dict | None) -> str:
        return f"{r['accuracy'] * 100:.2f}%" if r else "-"
    return (f"{name:8} {rate(seed):>13} {rate(expert):>10} {rate(ours):>10} {ratio(seed):>7} "
            f"{ratio(expert, 'expert_ratio'):>8} {acc(seed):>9} {acc(expert):>10} {acc(ours):>10} "
            f"{ours['best_epoch_s']:17.2f}s")


if __name__ == "__main__":
    main()
