"""tui-nn's engine against the seed notes' DataLoader loop: same model, same data, same batch
size, same epochs, measured in one run. Prints samples/s for each, the ratio and both accuracies.

    python benchmarks/bench_train_speed.py                 # cnn, mlp, resnet on the CPU
    python benchmarks/bench_train_speed.py --device cuda   # on a GPU box
    python benchmarks/bench_train_speed.py --models cnn --epochs 2 --n-train 60000

The data is the embedded `digits` set written as MNIST IDX files, so both sides read the same
bytes offline: the seed side through torchvision.datasets.MNIST + ToTensor + Normalize, tui-nn
through its own `mnist` loader (decoded once, device-resident, index-sliced batches).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
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
    p.add_argument("--skip-seed", action="store_true", help="only time tui-nn")
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
        print(f"{'model':8} {'seed-style/s':>13} {'tui-nn/s':>10} {'ratio':>7} "
              f"{'seed acc':>9} {'tui-nn acc':>10} {'tui-nn best epoch':>18}", flush=True)
        for name in args.models.split(","):
            seed_res = None
            if not args.skip_seed:
                torch.manual_seed(args.seed)
                seed_res = train_seed_style(get_model_spec(name).build(), root, args.epochs,
                                            args.batch_size, args.device)
            ours = train_tui_nn(name, root, args.epochs, args.batch_size, args.device,
                                args.seed, extra)
            if seed_res:
                ratio = ours["samples_per_s"] / seed_res["samples_per_s"]
                print(f"{name:8} {seed_res['samples_per_s']:13,.0f} {ours['samples_per_s']:10,.0f} "
                      f"{ratio:6.2f}x {seed_res['accuracy'] * 100:8.2f}% "
                      f"{ours['accuracy'] * 100:9.2f}% {ours['best_epoch_s']:17.2f}s", flush=True)
            else:
                print(f"{name:8} {'-':>13} {ours['samples_per_s']:10,.0f} {'-':>7} {'-':>9} "
                      f"{ours['accuracy'] * 100:9.2f}% {ours['best_epoch_s']:17.2f}s", flush=True)


if __name__ == "__main__":
    main()
