"""The whole CUDA check in one command, one table at the end.

    python benchmarks/gpu_check.py              # on a CUDA machine: under 8 minutes on one GPU
    python benchmarks/gpu_check.py --dry-run    # the same plan on the CPU at tiny sizes (< 1 min)
    python benchmarks/gpu_check.py --json out.json --only zoo,amp

Rows: every zoo model one epoch (finite loss, accuracy sanity for the image models); amp bf16
and fp16 (GradScaler) against fp32 (loss agreement); channels_last; --compile; cudnn.benchmark;
the seed notes' DataLoader loop against tui-nn for cnn at batch 64 (target >= 20x on CUDA); the
best cnn epoch time for 60,000 MNIST-shaped samples at any batch size; the expert's hand-written
loop against tui-nn; NVML readings as the system pane shows them; recovery from CUDA out of
memory on a too-large batch; a 1-GPU NCCL DDP smoke run through `tui-nn train`; predicted
against measured memory. The engine is driven through its public API only (Trainer,
TrainConfig, `tui-nn train` subprocesses).

--dry-run keeps the plan and runs it on the CPU with tiny sizes; every CUDA-only row says
"skipped: no CUDA". A failed row says FAIL with the error and the others still run; the exit
code is 1 when any row failed.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).parent))
from expert_loop import train_expert  # noqa: E402
from idx import write_mnist  # noqa: E402
from seed_style import train_seed_style  # noqa: E402

from tui_nn.data.digits import load_digits  # noqa: E402
from tui_nn.engine import TrainConfig, Trainer  # noqa: E402
from tui_nn.engine import events as ev  # noqa: E402
from tui_nn.zoo import get_model_spec, list_models  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
LOSS_AGREEMENT = 0.05  # relative train-loss difference allowed against fp32 after the same steps
SEED_TARGET = 20.0  # tui-nn / seed-style loop on CUDA (issue 19)
OOM_CAP_BYTES = 2 * 1024 ** 3  # the child's CUDA memory cap: batch 60,000 of cnn cannot fit


@dataclass(frozen=True)
class Plan:
    cuda: bool
    device: str
    n_train: int
    n_val: int
    cmp_epochs: int  # epochs of the fp32/amp/compile/expert comparisons
    best_batches: tuple[int, ...]  # batch sizes tried for the best epoch time
    zoo_min_accuracy: float  # image models after one epoch


FULL = Plan(True, "cuda", 60000, 10000, 2, (64, 256, 1024, 4096), 0.5)
DRY = Plan(False, "cpu", 256, 64, 1, (64, 128), 0.0)


@dataclass
class Row:
    check: str
    status: str  # ok, FAIL, below target, ran (no target here), skipped: ...
    figure: str = ""
    seconds: float = 0.0


@dataclass
class Context:
    plan: Plan
    root: str  # MNIST IDX files (torchvision's layout)
    tmp: Path
    cache: dict = field(default_factory=dict)


# ---- driving the engine ------------------------------------------------------------------------
@dataclass
class TuiRun:
    result: ev.Finished | ev.Failed
    history: list
    seconds: float  # RunStarted to the end, the device synchronised
    samples_per_s: float
    trainer: Trainer


def train(ctx: Context, model: str, **overrides) -> TuiRun:
    """One Trainer run on the plan's device; image models read the MNIST-shaped IDX set."""
    options = dict(epochs=1, device=ctx.plan.device, seed=0, save=False, download=False,
                   tensorboard=False, control=False)
    if get_model_spec(model).default_dataset == "digits":
        options.update(dataset="mnist", data_dir=ctx.root)
    options.update(overrides)
    marks: dict[str, float] = {}

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            sync(ctx.plan.device)
            marks["start"] = time.perf_counter()
    trainer = Trainer(TrainConfig(model, **options), on_event)
    result = trainer.run()
    sync(ctx.plan.device)
    seconds = time.perf_counter() - marks.get("start", time.perf_counter())
    n = trainer.dataset.n_train if trainer.dataset is not None else 0
    epochs = len(trainer.history)
    return TuiRun(result, list(trainer.history), seconds,
                  epochs * n / seconds if seconds > 0 else 0.0, trainer)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def finished(run: TuiRun) -> bool:
    return isinstance(run.result, ev.Finished) and bool(run.history) and all(
        math.isfinite(e.train_loss) and math.isfinite(e.val_loss) for e in run.history)


def failure(run: TuiRun) -> str:
    if isinstance(run.result, ev.Failed):
        return f"{run.result.kind}: {run.result.message}"
    return "non-finite loss" if run.history else "no epoch finished"


def best_epoch(run: TuiRun) -> float:
    return min(e.epoch_time_s for e in run.history)


def base_cnn(ctx: Context) -> TuiRun:
    """cnn, fp32, channels_last off, cmp_epochs: what amp, channels_last and compile match."""
    if "cnn_fp32" not in ctx.cache:
        ctx.cache["cnn_fp32"] = train(ctx, "cnn", epochs=ctx.plan.cmp_epochs,
                                      channels_last="off")
    return ctx.cache["cnn_fp32"]


def agreement_row(ctx: Context, name: str, run: TuiRun, base: TuiRun | None = None) -> Row:
    base = base or base_cnn(ctx)
    if not finished(base):
        return Row(name, "FAIL", f"fp32 baseline: {failure(base)}")
    if not finished(run):
        return Row(name, "FAIL", failure(run))
    loss, ref = run.history[-1].train_loss, base.history[-1].train_loss
    rel = abs(loss - ref) / abs(ref)
    return Row(name, "ok" if rel <= LOSS_AGREEMENT else "FAIL",
               f"train loss {loss:.4f} vs {ref:.4f} ({rel:.1%}); best epoch "
               f"{best_epoch(run):.2f}s vs {best_epoch(base):.2f}s")


# ---- the checks ---------------------------------------------------------------------------------
def check_zoo(ctx: Context) -> list[Row]:
    rows = []
    for spec in list_models():
        t0 = time.perf_counter()
        run = train(ctx, spec.name)
        rows.append(zoo_row(ctx, spec, run, time.perf_counter() - t0))
    return rows


def zoo_row(ctx: Context, spec, run: TuiRun, seconds: float) -> Row:
    name = f"zoo {spec.name}"
    if not finished(run):
        return Row(name, "FAIL", failure(run), seconds)
    last = run.history[-1]
    image = spec.default_dataset == "digits"
    figure = (f"loss {last.train_loss:.4g} / val {last.val_loss:.4g}, {last.metric} "
              f"{last.value:.4g}, epoch {last.epoch_time_s:.2f}s"
              + (", channels_last" if run.trainer.channels_last else ""))
    sane = not (image and last.metric == "accuracy" and last.value < ctx.plan.zoo_min_accuracy)
    return Row(name, "ok" if sane else "FAIL",
               figure if sane else f"{figure} (< {ctx.plan.zoo_min_accuracy:.0%})", seconds)


def check_amp(ctx: Context) -> list[Row]:
    return [agreement_row(ctx, f"amp {amp} vs fp32 (cnn)",
                          train(ctx, "cnn", epochs=ctx.plan.cmp_epochs, amp=amp,
                                channels_last="off"))
            for amp in ("bf16", "fp16")]


def check_channels_last(ctx: Context) -> Row:
    """lenet, the zoo CNN whose forward takes channels_last tensors (cnn, resnet and inception
    flatten with .view as the seeds do: --channels-last auto keeps them contiguous, and the
    zoo rows say which layout each model trained in)."""
    epochs = ctx.plan.cmp_epochs
    base = train(ctx, "lenet", epochs=epochs, channels_last="off")
    run = train(ctx, "lenet", epochs=epochs, channels_last="on")
    row = agreement_row(ctx, "channels_last on vs off (lenet)", run, base)
    if row.status == "ok" and not run.trainer.channels_last:
        return Row(row.check, "FAIL", "the trainer did not use channels_last")
    return row


def check_compile(ctx: Context) -> Row:
    # Best epoch leaves the first epoch (which pays for compilation) out when cmp_epochs > 1.
    return agreement_row(ctx, "--compile (cnn, reduce-overhead)",
                         train(ctx, "cnn", epochs=ctx.plan.cmp_epochs, compile=True,
                               channels_last="off"))


def check_cudnn_benchmark(ctx: Context) -> Row:
    base = base_cnn(ctx)
    on = torch.backends.cudnn.benchmark
    figure = (f"{'on' if on else 'off'} after a CUDA run (the engine sets it; it has no switch "
              f"to time it off), cuDNN {torch.backends.cudnn.version()}")
    return Row("cudnn.benchmark", "ok" if on and finished(base) else "FAIL", figure)


def check_seed_loop(ctx: Context) -> Row:
    """The seed notes' loop (DataLoader, per-sample ToTensor, loss.item() each step) against
    tui-nn for cnn at batch 64, one epoch each, validation included on both sides."""
    torch.manual_seed(0)
    seed = train_seed_style(get_model_spec("cnn").build(), ctx.root, 1, 64, ctx.plan.device)
    ours = train(ctx, "cnn", batch_size=64)
    if not finished(ours):
        return Row("seed-style loop vs tui-nn (cnn, batch 64)", "FAIL", failure(ours))
    ratio = ours.samples_per_s / seed["samples_per_s"]
    status = ("ok" if ratio >= SEED_TARGET else f"below target ({SEED_TARGET:.0f}x)") \
        if ctx.plan.cuda else "ran (target on CUDA only)"
    return Row("seed-style loop vs tui-nn (cnn, batch 64)", status,
               f"{ratio:.1f}x: {ours.samples_per_s:,.0f} vs {seed['samples_per_s']:,.0f} "
               f"samples/s; accuracy {ours.history[-1].value:.2%} vs {seed['accuracy']:.2%}")


def check_best_epoch(ctx: Context) -> Row:
    name = f"best cnn epoch, {ctx.plan.n_train:,} samples"
    times = {}
    for bs in ctx.plan.best_batches:
        run = train(ctx, "cnn", batch_size=bs, epochs=ctx.plan.cmp_epochs)
        if not finished(run):
            return Row(name, "FAIL", f"batch {bs}: {failure(run)}")
        times[bs] = best_epoch(run)
    bs = min(times, key=times.get)
    tried = ", ".join(f"{b}: {t:.2f}s" for b, t in times.items())
    return Row(name, "ok", f"{times[bs]:.2f}s at batch {bs} (train + validation; {tried})")


def check_expert_loop(ctx: Context) -> Row:
    """The hand-written loop (benchmarks/expert_loop.py) against tui-nn, same epochs and batch."""
    name = "expert loop vs tui-nn (cnn, batch 64)"
    torch.manual_seed(0)
    expert = train_expert(get_model_spec("cnn").build(), ctx.root, ctx.plan.cmp_epochs, 64,
                          ctx.plan.device)
    ours = base_cnn(ctx) if not ctx.plan.cuda else train(ctx, "cnn", epochs=ctx.plan.cmp_epochs)
    if not finished(ours):
        return Row(name, "FAIL", failure(ours))
    ratio = ours.samples_per_s / expert["samples_per_s"]
    status = ("ok" if ratio >= 1.0 else "below target (1.0x)") if ctx.plan.cuda \
        else "ran (tiny sizes: no target)"
    return Row(name, status,
               f"{ratio:.2f}x: {ours.samples_per_s:,.0f} vs {expert['samples_per_s']:,.0f} "
               f"samples/s; best epoch {best_epoch(ours):.2f}s vs {expert['best_epoch_s']:.2f}s; "
               f"accuracy {ours.history[-1].value:.2%} vs {expert['accuracy']:.2%}")


def check_nvml(ctx: Context) -> Row:
    """What the system pane would show now (its own reading and formatting)."""
    from rich.text import Text

    from tui_nn.tui.widgets.system_pane import format_reading, read_system
    reading = read_system(os.getpid())
    text = Text.from_markup(format_reading(reading)).plain.replace("\n", " | ")
    gpus = reading.gpu.gpus
    ok = reading.gpu.available and all(g.memory_used_bytes and g.memory_total_bytes
                                       for g in gpus)
    return Row("NVML readings (system pane)", "ok" if ok else "FAIL", text)


def check_oom(ctx: Context) -> Row:
    """cnn at batch 60,000 in a child capped at 2 GiB of CUDA memory: the run must fail as
    "oom" with a batch size that fits, and a run at that batch size must finish."""
    name = "OOM recovery (cnn, batch = whole set, 2 GiB cap)"
    out = child(ctx, "--oom-child")
    if out.get("error"):
        return Row(name, "FAIL", out["error"])
    first, retry = out["first"], out.get("retry")
    if first["kind"] != "oom" or retry is None:
        return Row(name, "FAIL", f"expected an oom failure with a hint, got {first}")
    ok = retry.get("status") == "finished"
    return Row(name, "ok" if ok else "FAIL",
               f"{first['message'][:90]} -> retry at batch {out['hint']}: {retry}")


def oom_child(root: str) -> dict:
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(OOM_CAP_BYTES / total, 0)
    ctx = Context(FULL, root, Path(tempfile.mkdtemp()))
    first = train(ctx, "cnn", batch_size=10 ** 9)
    out = {"first": {"kind": getattr(first.result, "kind", "finished"),
                     "message": getattr(first.result, "message", "")}}
    del first
    gc.collect()  # the failed run's tensors, before the cache is emptied
    torch.cuda.empty_cache()
    hint = re.search(r"--batch-size (\d+)", out["first"]["message"])
    if hint:
        out["hint"] = int(hint.group(1))
        retry = train(ctx, "cnn", batch_size=out["hint"])
        out["retry"] = {"status": getattr(retry.result, "status", "failed"),
                        "accuracy": retry.history[-1].value if retry.history else None}
    return out


def check_ddp(ctx: Context) -> list[Row]:
    """`tui-nn train --nproc-per-node 1` on CUDA (torchrun, one rank), and NCCL itself on one
    rank: at world size 1 the engine does not wrap the model in DDP (DistInfo.enabled is
    world_size > 1), so the NCCL row initialises a one-rank process group directly."""
    run_dir = ctx.tmp / "ddp"
    args = [sys.executable, "-m", "tui_nn", "train", "cnn", "--dataset", "mnist", "--data-dir",
            ctx.root, "--epochs", "1", "--device", "cuda", "--nproc-per-node", "1",
            "--run-dir", str(run_dir), "--headless"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=ctx.tmp,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
               if line.strip()] if (run_dir / "metrics.jsonl").exists() else []
    last = records[-1] if records else {}
    world = json.loads((run_dir / "config.json").read_text()).get("world_size") \
        if (run_dir / "config.json").exists() else None
    ok = proc.returncode == 0 and last.get("type") == "Finished"
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
    run_row = Row("tui-nn train --nproc-per-node 1 (torchrun, CUDA)", "ok" if ok else "FAIL",
                  f"exit {proc.returncode}, last record {last.get('type')} "
                  f"{last.get('status', '')}, world_size {world}" + ("" if ok else f": {tail[0]}"))
    nccl = child(ctx, "--nccl-child")
    nccl_row = Row("NCCL one-rank all_reduce", "ok" if nccl.get("sum") == 6.0 else "FAIL",
                   nccl.get("error") or f"all_reduce of 1+2+3 on cuda:0 = {nccl.get('sum')}, "
                                        f"NCCL {nccl.get('version')}")
    return [run_row, nccl_row]


def nccl_child() -> dict:
    import torch.distributed as dist
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    torch.cuda.set_device(0)
    dist.init_process_group("nccl", rank=0, world_size=1)
    try:
        t = torch.tensor([1.0, 2.0, 3.0], device="cuda")
        dist.all_reduce(t)
        return {"sum": float(t.sum().item()),
                "version": ".".join(map(str, torch.cuda.nccl.version()))}
    finally:
        dist.destroy_process_group()


def child(ctx: Context, flag: str) -> dict:
    """Run this script in a fresh process (a memory cap or a process group stays there)."""
    proc = subprocess.run([sys.executable, __file__, flag, ctx.root], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"child {flag} exit {proc.returncode}: {err}"}
    return json.loads(lines[-1])


def check_memory(ctx: Context) -> Row:
    """What one training forward saved (config.json "memory_measured") against inspect's
    prediction at the same batch; on CUDA also the peak allocated against the predicted total
    plus the device-resident data."""
    from tui_nn.shapes import inspect_model
    from tui_nn.shapes.memory import MemoryRequest
    name = "memory: predicted vs measured (cnn, batch 64)"
    if ctx.plan.cuda:
        torch.cuda.reset_peak_memory_stats()
    run = train(ctx, "cnn", batch_size=64, save=True, run_dir=str(ctx.tmp / "mem"))
    if not finished(run):
        return Row(name, "FAIL", failure(run))
    measured = json.loads((ctx.tmp / "mem" / "config.json").read_text()).get("memory_measured")
    if not measured:
        return Row(name, "FAIL", "config.json has no memory_measured")
    predicted = inspect_model(get_model_spec("cnn").build(), [(1, 28, 28)], memory=MemoryRequest(
        batch_size=64, optimizer=run.trainer.config.optimizer)).memory
    ratio = measured["saved_activation_bytes"] / predicted.activations
    figure = (f"saved for backward {measured['saved_activation_bytes'] / 1024 ** 2:.2f} MiB "
              f"vs predicted {predicted.activations / 1024 ** 2:.2f} MiB ({ratio:.3f}x)")
    if ctx.plan.cuda:
        data = sum(t.numel() * t.element_size() for t in (
            run.trainer.train_x, run.trainer.train_y, run.trainer.val_x, run.trainer.val_y))
        figure += (f"; CUDA peak {torch.cuda.max_memory_allocated() / 1024 ** 2:.0f} MiB vs "
                   f"predicted {predicted.total / 1024 ** 2:.1f} MiB + data "
                   f"{data / 1024 ** 2:.0f} MiB (+ validation batches)")
    return Row(name, "ok" if abs(ratio - 1) <= 0.1 else "FAIL", figure)


# ---- the plan and its table ----------------------------------------------------------------------
# (group name, check, needs CUDA); a check returns a Row or a list of rows.
CHECKS: list[tuple[str, Callable, bool]] = [
    ("zoo", check_zoo, False),
    ("amp", check_amp, True),
    ("channels_last", check_channels_last, False),
    ("compile", check_compile, True),
    ("cudnn", check_cudnn_benchmark, True),
    ("seed", check_seed_loop, False),
    ("best", check_best_epoch, False),
    ("expert", check_expert_loop, False),
    ("nvml", check_nvml, True),
    ("oom", check_oom, True),
    ("ddp", check_ddp, True),
    ("memory", check_memory, False),
]


def run_checks(ctx: Context, only: set[str] | None) -> list[Row]:
    rows: list[Row] = []
    for group, check, needs_cuda in CHECKS:
        if only and group not in only:
            continue
        t0 = time.perf_counter()
        if needs_cuda and not ctx.plan.cuda:
            got: Row | list[Row] = Row(group, "skipped: no CUDA")
        else:
            try:
                got = check(ctx)
            except Exception as e:  # noqa: BLE001 - one broken path must not hide the others
                first = (str(e).strip().splitlines() or [""])[0]
                got = Row(group, "FAIL", f"{type(e).__name__}: {first}"[:200])
        new = got if isinstance(got, list) else [got]
        if len(new) == 1 and not new[0].seconds:
            new[0].seconds = time.perf_counter() - t0
        for row in new:
            print(f"  {row.check}: {row.status} ({row.seconds:.1f}s)", file=sys.stderr, flush=True)
        rows += new
    return rows


def print_table(rows: list[Row], header: str) -> None:
    width = max(len(r.check) for r in rows)
    status_width = max(len(r.status) for r in rows)
    print(header)
    print(f"{'check':{width}}  {'status':{status_width}}  {'s':>6}  figure")
    for r in rows:
        print(f"{r.check:{width}}  {r.status:{status_width}}  {r.seconds:6.1f}  {r.figure}")


def environment(plan: Plan) -> str:
    gpu = torch.cuda.get_device_name(0) if plan.cuda else "no GPU (dry run)"
    return (f"gpu_check {'' if plan.cuda else '--dry-run '}| torch {torch.__version__} | "
            f"{gpu} | {torch.get_num_threads()} CPU threads | {plan.n_train:,} train / "
            f"{plan.n_val:,} val MNIST-shaped samples")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="the plan on the CPU at tiny sizes")
    p.add_argument("--only", default="", help="comma-separated groups: "
                   + ",".join(group for group, _, _ in CHECKS))
    p.add_argument("--json", default=None, help="also write the rows to this file")
    p.add_argument("--oom-child", metavar="ROOT", help=argparse.SUPPRESS)
    p.add_argument("--nccl-child", metavar="ROOT", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.oom_child or args.nccl_child:
        print(json.dumps(oom_child(args.oom_child) if args.oom_child else nccl_child()))
        return 0
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run it on a GPU machine, or use --dry-run",
              file=sys.stderr)
        return 2
    plan = DRY if args.dry_run else FULL
    only = {s.strip() for s in args.only.split(",") if s.strip()} or None
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        digits = load_digits(n_train=plan.n_train, n_val=plan.n_val, seed=0)
        root = str(write_mnist(Path(tmp), digits.train_x, digits.train_y, digits.val_x,
                               digits.val_y))
        rows = run_checks(Context(plan, root, Path(tmp)), only)
    print_table(rows, f"{environment(plan)} | {time.perf_counter() - t0:.0f}s in all")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 1 if any(r.status == "FAIL" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
