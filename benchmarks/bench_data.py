"""Data paths for an image folder, in one run: samples/s of `cnn` training epochs 2..E and the
process's peak RSS for

  1. in-memory uint8 (the folder decoded into the process, normalised per batch),
  2. in-memory float (the path before uint8: the set normalised once as float32),
  3. the decode-once cache, forced with --memory-budget a quarter of the decoded pixels (the
     first run decodes; a second one reads it),
  4. torchvision's ImageFolder + DataLoader(num_workers=W, pin_memory=True) with the same
     model, optimizer and batch size, written here as users write it.

Targets (issue 29): cache >= 2x the DataLoader loop; uint8 >= float; the cache path's peak RSS
under 1.5 GB with the decoded data 4x the budget.

    python benchmarks/bench_data.py                        # 20,000 64×64 RGB JPEGs, 10 classes
    python benchmarks/bench_data.py --n 3000 --side 32     # a quick one

Each path runs in its own process (peak RSS is per process); the tree and the cache live in
a temporary folder. The cache path's first process decodes; a second one, timed, reads it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_tree(root: Path, n: int, side: int, classes: int = 10) -> None:
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(n):
        c = i % classes
        folder = root / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (rng.random((side, side, 3)) * 160).astype(np.uint8)  # (H, W, C)
        band = side // classes
        pixels[c * band:(c + 1) * band] += 90
        Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)


def run_tui_nn(root: str, epochs: int, budget: str, workers: int, as_float: bool = False
               ) -> dict:
    import resource

    from tui_nn.data import adapt_to_input
    from tui_nn.data.folder import load_folder
    from tui_nn.engine import TrainConfig, Trainer
    from tui_nn.engine import events as ev
    out: list = []
    cfg = TrainConfig("cnn", dataset=f"folder:{root}", epochs=epochs, batch_size=64, seed=0,
                      save=False, threads=1, memory_budget=budget, workers=workers)
    # The float path: the folder loaded as float32, cropped to cnn's input as the engine
    # does, and given to the Trainer as the engine held it before uint8.
    ds = adapt_to_input(load_folder(root, as_uint8=False), (3, 28, 28), "cnn") \
        if as_float else None
    Trainer(cfg, out.append, dataset=ds).run()
    failed = [e.message for e in out if isinstance(e, ev.Failed)]
    eps = [e for e in out if isinstance(e, ev.EpochMetrics)]
    started = next((e for e in out if isinstance(e, ev.RunStarted)), None)
    return {"failed": failed, "samples_per_s": [e.samples_per_s for e in eps[1:]],
            "accuracy": eps[-1].value if eps else None, "setup": started.setup if started else "",
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_torchvision(root: str, epochs: int, workers: int) -> dict:
    import resource

    import torch
    import torchvision.transforms as T
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder

    from tui_nn.zoo import get_model_spec
    torch.manual_seed(0)
    torch.set_num_threads(1)
    tf = T.Compose([T.CenterCrop(28), T.ToTensor(), T.Normalize((0.5,) * 3, (0.25,) * 3)])
    loader = DataLoader(ImageFolder(root, tf), batch_size=64, shuffle=True,
                        num_workers=workers, pin_memory=True, persistent_workers=workers > 0)
    model = get_model_spec("cnn").build(num_classes=10, in_channels=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    rates = []
    for epoch in range(epochs):
        start, seen = time.perf_counter(), 0
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(y)
        if epoch:
            rates.append(seen / (time.perf_counter() - start))
    return {"samples_per_s": rates,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def uint8_against_float(root: str, rounds: int, epochs: int) -> None:
    """In one process, uint8 and float runs alternating (the box's load drifts between
    processes): epoch samples/s of each round, the set loaded once per path."""
    from tui_nn.data import adapt_to_input
    from tui_nn.data.folder import load_folder
    from tui_nn.engine import TrainConfig, Trainer
    from tui_nn.engine import events as ev
    sets = {kind: adapt_to_input(load_folder(root, as_uint8=kind == "uint8"), (3, 28, 28), "cnn")
            for kind in ("uint8", "float")}
    for r in range(rounds):
        for kind, ds in sets.items():
            out: list = []
            cfg = TrainConfig("cnn", dataset=f"folder:{root}", epochs=epochs, batch_size=64,
                              seed=0, save=False, threads=1)
            Trainer(cfg, out.append, dataset=ds).run()
            rates = [e.samples_per_s for e in out if isinstance(e, ev.EpochMetrics)][1:]
            print(f"round {r + 1} {kind}: " + ", ".join(f"{v:,.0f}" for v in rates)
                  + " samples/s", flush=True)


def child(args: argparse.Namespace) -> None:
    if args.child == "torchvision":
        result = run_torchvision(args.root, args.epochs, args.workers)
    else:
        # The cache path's budget: a quarter of the decoded pixels (RSS is measured against it).
        budget = str(args.n * 3 * args.side ** 2 // 4) if args.child == "cache" else ""
        result = run_tui_nn(args.root, args.epochs, budget, args.workers,
                            as_float=args.child == "float")
    print(json.dumps(result))


def measure(what: str, root: Path, args: argparse.Namespace, cache: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TUI_NN_CACHE": str(cache)}
    cmd = [sys.executable, __file__, "--child", what, "--root", str(root), "--epochs",
           str(args.epochs), "--workers", str(args.workers), "--n", str(args.n), "--side",
           str(args.side)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - start
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--side", type=int, default=64)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--child", default=None)
    p.add_argument("--root", default=None)
    p.add_argument("--ab", type=int, default=0, metavar="ROUNDS",
                   help="only uint8 against float, alternating in one process")
    args = p.parse_args()
    if args.child:
        return child(args)
    if args.ab:
        with tempfile.TemporaryDirectory() as tmp:
            write_tree(Path(tmp), args.n, args.side)
            return uint8_against_float(tmp, args.ab, args.epochs)
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp) / "tree", Path(tmp) / "cache"
        start = time.perf_counter()
        write_tree(root, args.n, args.side)
        print(f"{args.n} {args.side}×{args.side} RGB JPEGs written in "
              f"{time.perf_counter() - start:.1f} s; cnn, batch 64, one thread, "
              f"{args.workers} DataLoader workers; samples/s of epochs 2..{args.epochs}")
        runs = [("in-memory uint8", "memory"), ("in-memory float (before uint8)", "float"),
                ("cache, first run (decodes)", "cache"), ("cache, later run", "cache"),
                ("torchvision ImageFolder + DataLoader", "torchvision")]
        rate = {}
        for label, what in runs:
            r = measure(what, root, args, cache)
            rates = ", ".join(f"{v:,.0f}" for v in r["samples_per_s"])
            rate[what] = max(r["samples_per_s"], default=0.0)  # the later run's, for cache
            print(f"{label}: {rates} samples/s; peak RSS {r['peak_rss_mib']:,.0f} MiB; "
                  f"whole process {r['wall_s']:.1f} s" + (f"; {r['setup']}" if r.get("setup")
                                                           else "")
                  + (f"; FAILED {r['failed']}" if r.get("failed") else ""))
        print(f"cache / DataLoader loop {rate['cache'] / rate['torchvision']:.2f}x (target 2x); "
              f"uint8 / float {rate['memory'] / rate['float']:.2f}x (target 1x); best epochs")


if __name__ == "__main__":
    main()
