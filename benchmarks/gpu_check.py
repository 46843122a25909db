"""The whole CUDA check in one command, one table at the end.

    python benchmarks/gpu_check.py              # on a CUDA machine: under 10 minutes on one GPU
    python benchmarks/gpu_check.py --dry-run    # every row the CPU can run, at tiny sizes
    python benchmarks/gpu_check.py --json out.json --only zoo,amp

Rows: every zoo model one epoch (finite loss, accuracy sanity for the image models); amp bf16
and fp16 against fp32 (loss agreement, and the dtype the layers really computed in), amp auto
against the card's native bf16, fp16 with --grad-clip saved and resumed with its GradScaler;
channels_last; --compile (one graph per batch size, none for the last partial batch, validation
compiled, CUDA graph replays counted); cudnn.benchmark and TF32 as set during a run; the seed
notes' DataLoader loop against tui-nn (target >= 20x on CUDA); the best cnn epoch time; the
expert's loop against tui-nn; an image folder streamed from its decode-once cache (samples/s
against in memory, and the share of each step spent waiting for data); NVML as the system pane shows it; NaN on the GPU's loss path with
saves between reads (last.pt must stay finite); out of memory (the suggested batch must train;
the GAN probes with its own loss); `tui-nn train --nproc-per-node 2` (DDP really built; "skipped:
1 GPU" on one GPU); more processes than GPUs (one LOCAL_RANK line); predicted against measured
memory. The engine is driven through its public API (Trainer, TrainConfig, `tui-nn train`).

--dry-run runs every row the CPU can run through the same code at tiny sizes: the NaN row forces
the GPU's loss path (no per-step check), the OOM rows inject CUDA's error, the compile row uses
the eager backend, DDP runs two gloo ranks. Rows that need CUDA say "skipped: needs CUDA (what)".
A failed row says FAIL with the error and the others still run; the exit code is 1 when any row
failed.
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
from contextlib import contextmanager
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
from tui_nn.engine.checkpoint import load_checkpoint  # noqa: E402
from tui_nn.engine.validation import validation_batch_size  # noqa: E402
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
    folder: tuple[int, int] = (20000, 64)  # the cache row's JPEG folder: images, side


FULL = Plan(True, "cuda", 60000, 10000, 2, (64, 256, 1024, 4096), 0.5)
# 240 training samples: a last, partial batch at 64, as 60,000 has (the compile row).
DRY = Plan(False, "cpu", 240, 64, 1, (64, 128), 0.0, (300, 32))


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


def train(ctx: Context, model: str, *, module: torch.nn.Module | None = None,
          events: Callable[[ev.Event], None] | None = None, **overrides) -> TuiRun:
    """One Trainer run on the plan's device; image models read the MNIST-shaped IDX set.
    module: the zoo model built here (to inject a fault); events: also sees every event."""
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
        if events is not None:
            events(event)
    trainer = Trainer(TrainConfig(model, **options), on_event, model=module)
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
    """bf16 and fp16 against fp32 (loss agreement), each checked by the dtype the conv and
    linear layers really computed in (a flag set with autocast silently off would pass a
    loss check); auto against the device's native bf16; fp16 with --grad-clip, saved and
    resumed with the GradScaler's state."""
    rows = []
    for amp in ("bf16", "fp16"):
        with layer_dtypes() as seen:
            run = train(ctx, "cnn", epochs=ctx.plan.cmp_epochs, amp=amp, channels_last="off")
        row = agreement_row(ctx, f"amp {amp} vs fp32 (cnn)", run)
        want = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
        if row.status == "ok" and seen != {want}:
            row = Row(row.check, "FAIL", f"layers computed in {sorted(map(str, seen))}")
        rows.append(row)
    return rows + [check_amp_auto(ctx), check_fp16_clip_resume(ctx)]


@contextmanager
def layer_dtypes():
    """The output dtypes of every Conv2d and Linear in training mode, while inside."""
    seen: set = set()

    def hook(module, inputs, output):
        if module.training and isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            seen.add(output.dtype)
    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def check_amp_auto(ctx: Context) -> Row:
    name = "amp auto: bf16 only where native (cnn)"
    major = torch.cuda.get_device_capability(0)[0]
    want = torch.bfloat16 if major >= 8 else torch.float16
    with layer_dtypes() as seen:
        run = train(ctx, "cnn", amp="auto", channels_last="off")
    if not finished(run):
        return Row(name, "FAIL", failure(run))
    return Row(name, "ok" if seen == {want} else "FAIL",
               f"compute capability {major}.x -> layers in {sorted(map(str, seen))}")


def check_fp16_clip_resume(ctx: Context) -> Row:
    """fp16 with --grad-clip 1.0 one epoch, saved; resumed for a second: the scaler's scale
    comes back from the checkpoint and both epochs' losses are finite."""
    name = "fp16 + --grad-clip, checkpoint and resume with the scaler (cnn)"
    run_dir = ctx.tmp / "fp16"
    first = train(ctx, "cnn", amp="fp16", grad_clip=1.0, save=True, run_dir=str(run_dir))
    if not finished(first):
        return Row(name, "FAIL", failure(first))
    saved = load_checkpoint(run_dir).get("scaler") or {}
    scales = []
    resumed = Trainer(TrainConfig("cnn", epochs=2, device=ctx.plan.device), lambda e: scales.append(
        resumed.scaler.get_scale()) if isinstance(e, ev.RunStarted) else None,
        resume_from=run_dir)
    result = resumed.run()
    ok = (isinstance(result, ev.Finished) and scales and saved.get("scale") == scales[0]
          and all(math.isfinite(e.train_loss) for e in resumed.history))
    return Row(name, "ok" if ok else "FAIL",
               f"scale saved {saved.get('scale')}, at resume {scales[:1]}, "
               f"{getattr(result, 'status', getattr(result, 'message', ''))}")


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
    """--compile on cnn: one graph for the training batch and one for validation's, none for
    the last, partial batch (60,000 % 64 = 32); on CUDA the CUDA graphs replayed (counted at
    torch.cuda.CUDAGraph.replay, not read from a flag), losses as fp32's. The dry run
    compiles with the eager backend (inductor on two CPU cores takes minutes); the graphs
    are the same."""
    name = "--compile (cnn): graphs per batch size, CUDA graph replays"
    with compiled_graphs(eager=not ctx.plan.cuda) as graphs, cuda_graph_replays() as replays:
        run = train(ctx, "cnn", epochs=ctx.plan.cmp_epochs, compile=True, channels_last="off")
    row = agreement_row(ctx, name, run) if ctx.plan.cuda else Row(
        name, "ok" if finished(run) else "FAIL", "" if finished(run) else failure(run))
    t = run.trainer
    want = [str(t.batch_size), str(min(t.dataset.n_val, validation_batch_size(t.config, t.device)))]
    figure = f"graphs at batch {graphs}" + (f", CUDA graph replays {replays[0]}"
                                             if ctx.plan.cuda else " (eager backend)")
    if row.status == "ok" and (graphs != want or (ctx.plan.cuda and not replays[0])):
        return Row(name, "FAIL", f"{figure} (want graphs at {want}"
                                 + (" and replays)" if ctx.plan.cuda else ")"))
    return Row(name, row.status, f"{figure}; {row.figure}".strip("; "))


@contextmanager
def compiled_graphs(eager: bool):
    """The batch size (the first dim of the image input; "s0" when dynamic) of every graph
    dynamo hands its backend while inside."""
    graphs: list[str] = []
    real = torch.compile

    def record(inputs) -> None:
        images = [i for i in inputs if isinstance(i, torch.Tensor) and i.dim() == 4
                  and tuple(i.shape[1:]) == (1, 28, 28)]
        graphs.extend(str(i.shape[0]) for i in images[:1])

    def eager_backend(gm, inputs):
        record(inputs)
        return gm.forward
    inductor = torch._TorchCompileInductorWrapper.__call__

    def inductor_call(self, gm, inputs, **kw):
        record(inputs)
        return inductor(self, gm, inputs, **kw)
    torch._dynamo.reset()
    if eager:
        torch.compile = lambda model, mode=None, **kw: real(model, backend=eager_backend)
    torch._TorchCompileInductorWrapper.__call__ = inductor_call
    try:
        yield graphs
    finally:
        torch.compile, torch._TorchCompileInductorWrapper.__call__ = real, inductor


@contextmanager
def cuda_graph_replays():
    count = [0]
    real = torch.cuda.CUDAGraph.replay

    def replay(self):
        count[0] += 1
        return real(self)
    torch.cuda.CUDAGraph.replay = replay
    try:
        yield count
    finally:
        torch.cuda.CUDAGraph.replay = real


def check_cudnn_benchmark(ctx: Context) -> Row:
    """cudnn.benchmark and TF32 matmuls as the engine left them during a run (read at its
    first record, not after), and a TF32 matmul that differs from full fp32 (the precision
    setting really reaches cuBLAS)."""
    seen = {}
    run = train(ctx, "cnn", events=lambda e: seen.update(
        benchmark=torch.backends.cudnn.benchmark,
        precision=torch.get_float32_matmul_precision()) if isinstance(e, ev.RunStarted) else None)
    a = torch.randn(1024, 1024, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    tf32 = a @ a
    torch.backends.cuda.matmul.allow_tf32 = False
    exact = a @ a
    torch.set_float32_matmul_precision(seen.get("precision", "highest"))
    ok = (finished(run) and seen.get("benchmark") and seen.get("precision") == "high"
          and not torch.equal(tf32, exact))
    return Row("cudnn.benchmark and TF32", "ok" if ok else "FAIL",
               f"benchmark {seen.get('benchmark')}, matmul precision {seen.get('precision')}, "
               f"TF32 max diff {float((tf32 - exact).abs().max()):.2e}, "
               f"cuDNN {torch.backends.cudnn.version()}")


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


def check_cache(ctx: Context) -> Row:
    """An image folder over --memory-budget: decoded once into its cache, then two epochs read
    from it through the DataLoader (workers, pinned memory, non_blocking copies) against the
    same folder in memory; the share of each step spent waiting for data (StepMetrics)."""
    from bench_data import write_tree
    n, side = ctx.plan.folder
    name = f"cache path (cnn, {n:,} {side}x{side} JPEGs over --memory-budget)"
    root = ctx.tmp / "folder"
    if not root.exists():
        write_tree(root, n, side)
    os.environ["TUI_NN_CACHE"] = str(ctx.tmp / "cache")
    waits: list[float] = []

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.StepMetrics) and event.epoch == 1 and event.data_wait is not None:
            waits.append(event.data_wait)
    runs = {}
    for path, budget in (("cache", "1KB"), ("memory", "")):
        runs[path] = train(ctx, "cnn", dataset=f"folder:{root}", epochs=2, batch_size=256,
                           memory_budget=budget, events=on_event if budget else None)
        if not finished(runs[path]):
            return Row(name, "FAIL", f"{path}: {failure(runs[path])}")
    if runs["cache"].trainer.stream is None or not waits:
        return Row(name, "FAIL", "the folder was not streamed from its cache")
    cached, memory = (runs[k].history[-1].samples_per_s for k in ("cache", "memory"))
    return Row(name, "ok" if ctx.plan.cuda else "ran (tiny sizes: no target)",
               f"epoch 2 {cached:,.0f} samples/s from the cache ({cached / memory:.2f}x "
               f"in-memory uint8, {memory:,.0f}); waiting for data {sum(waits) / len(waits):.0%}"
               f" of each step ({_workers(runs['cache'].trainer.stream.workers)})")


def _workers(n: int) -> str:
    return f"{n} DataLoader worker{'s' if n != 1 else ''}"


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


# ---- faults: NaN, out of memory ------------------------------------------------------------------
@contextmanager
def gpu_loss_path(ctx: Context):
    """The loop as on CUDA: losses read only at reports. On CUDA it is the engine's own
    branch; the dry run forces it on the CPU (the per-step check off)."""
    if ctx.plan.cuda:
        yield
        return
    prop = Trainer._check_each_step
    Trainer._check_each_step = property(lambda self: False)
    try:
        yield
    finally:
        Trainer._check_each_step = prop


def nan_from(model: torch.nn.Module, step: int) -> Callable[[ev.Event], None]:
    """Make model's training output NaN from the step-th training forward after RunStarted;
    returns the event callback that arms it."""
    real, calls, armed = model.forward, [0], [False]

    def forward(x):
        out = real(x)
        if armed[0] and model.training:
            calls[0] += 1
            if calls[0] >= step:
                out = out * float("nan")
        return out
    model.forward = forward
    return lambda e: armed.__setitem__(0, armed[0] or isinstance(e, ev.RunStarted))


def check_nan(ctx: Context) -> Row:
    """A NaN from step 5, a save every 3 steps, no report before the epoch ends: the run
    fails "nan" naming step 5, and last.pt is finite and from before it (step 3)."""
    name = "NaN on the GPU path: last.pt finite (cnn, save every 3 steps)"
    model = get_model_spec("cnn").build()
    run_dir = ctx.tmp / "nan"
    with gpu_loss_path(ctx):
        run = train(ctx, "cnn", module=model, events=nan_from(model, 5), batch_size=16,
                    save=True, run_dir=str(run_dir), checkpoint_every_steps=3,
                    report_interval_s=1e6)
    result = run.result
    if not isinstance(result, ev.Failed) or result.kind != "nan":
        return Row(name, "FAIL", f"expected a nan failure, got {result}")
    ckpt = load_checkpoint(run_dir)
    finite = all(bool(torch.isfinite(t).all()) for t in ckpt["model"].values())
    ok = finite and ckpt["step"] == 3 and " at step 5 " in result.message
    return Row(name, "ok" if ok else "FAIL",
               f"last.pt step {ckpt['step']}, finite {finite}: {result.message[:70]}")


def check_oom(ctx: Context) -> list[Row]:
    """Out of memory: the run fails "oom", saved, with a batch size that then trains. On CUDA
    in a child capped at 2 GiB (cnn, batch = the whole set); the dry run injects CUDA's error
    above 32 samples. The GAN's own probe: no IndexError."""
    name = "OOM: the suggested batch trains (cnn)"
    out = child(ctx, "--oom-child") if ctx.plan.cuda else oom_attempts(ctx, inject=True)
    if out.get("error"):
        return [Row(name, "FAIL", out["error"])]
    first, retry = out["first"], out.get("retry")
    ok = first["kind"] == "oom" and retry is not None and retry.get("status") == "finished" \
        and (ctx.plan.cuda or "saved in" in first["message"])  # on CUDA it fails at step 0
    row = Row(name, "ok" if ok else "FAIL",
              f"{first['message'][:90]} -> retry at batch {out.get('hint')}: {retry}")
    data = out["data"] if ctx.plan.cuda else data_too_large(ctx, inject=True)
    named = "the data set mnist" in data and "smaller model" not in data
    return [row, Row("OOM: a data set too large is named", "ok" if named else "FAIL",
                     data[:100]), check_gan_oom(ctx)]


def data_too_large(ctx: Context, inject: bool) -> str:
    """The message of a run whose data set does not fit on the device: on CUDA under a 64 MiB
    cap (MNIST takes 219 MB there), with CUDA's error injected in the dry run."""
    from tui_nn.engine import setup
    real = setup._to_device

    def to_device(t, x, ds):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
    if inject:
        setup._to_device = to_device
    else:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(
            64 * 2**20 / torch.cuda.get_device_properties(0).total_memory, 0)
    try:
        return getattr(train(ctx, "cnn").result, "message", "")
    finally:
        setup._to_device = real


def oom_attempts(ctx: Context, inject: bool) -> dict:
    """The first run (too large a batch, saving, stopped by out of memory at its 2nd step
    when injected) and a run at the batch size its message suggests."""
    model = get_model_spec("cnn").build()
    events = inject_oom(model, 32, after_step=1) if inject else None
    first = train(ctx, "cnn", module=model, events=events, batch_size=128 if inject else 10 ** 9,
                  save=True, run_dir=str(ctx.tmp / "oom"), report_interval_s=0.0)
    out = {"first": {"kind": getattr(first.result, "kind", "finished"),
                     "message": getattr(first.result, "message", "")}}
    del first
    gc.collect()  # the failed run's tensors, before the cache is emptied
    if ctx.plan.cuda:
        torch.cuda.empty_cache()
    hint = re.search(r"--batch-size (\d+)", out["first"]["message"])
    if hint:
        out["hint"] = int(hint.group(1))
        model = get_model_spec("cnn").build()
        retry = train(ctx, "cnn", module=model, batch_size=out["hint"],
                      events=inject_oom(model, 32) if inject else None)
        out["retry"] = {"status": getattr(retry.result, "status", "failed"),
                        "accuracy": retry.history[-1].value if retry.history else None}
    return out


def inject_oom(model: torch.nn.Module, limit: int, after_step: int = 0):
    """CUDA's out-of-memory error from model's training forward above limit samples, once
    after_step steps are reported; returns the event callback that arms it."""
    real, armed = model.forward, [after_step == 0]

    def forward(x):
        if armed[0] and model.training and x.shape[0] > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return real(x)
    model.forward = forward
    return lambda e: armed.__setitem__(0, armed[0] or (
        isinstance(e, ev.StepMetrics) and e.step >= after_step))


def check_gan_oom(ctx: Context) -> Row:
    """The GAN's D outputs (B, 1): its batch probe must use the GAN's own loss."""
    name = "OOM in the GAN: its own probe, a batch suggested"
    from tui_nn.zoo.gan import Discriminator
    real = Discriminator.forward

    def forward(self, x):
        if x.shape[0] > 16 and torch.is_grad_enabled():
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return real(self, x)
    Discriminator.forward = forward
    try:
        run = train(ctx, "gan", batch_size=64)
    finally:
        Discriminator.forward = real
    result = run.result
    ok = isinstance(result, ev.Failed) and result.kind == "oom" and "--batch-size 16" in \
        result.message
    return Row(name, "ok" if ok else "FAIL", getattr(result, "message", str(result))[:100])


def check_ddp(ctx: Context) -> list[Row]:
    """`tui-nn train --nproc-per-node 2` (torchrun): two ranks, so the engine really builds
    DDP (at world size 1 it does not). NCCL on two GPUs, gloo on the CPU in the dry run; one
    GPU: skipped. cnn: on CUDA channels_last auto meets DDP (no "Grad strides" warning)."""
    name = "tui-nn train --nproc-per-node 2 (DDP)"
    rows = []
    if ctx.plan.cuda and torch.cuda.device_count() < 2:
        rows.append(Row(name, "skipped: 1 GPU"))
    else:
        rows.append(ddp_row(ctx, name))
    if ctx.plan.cuda:
        nccl = child(ctx, "--nccl-child")
        rows.append(Row("NCCL one-rank all_reduce", "ok" if nccl.get("sum") == 6.0 else "FAIL",
                        nccl.get("error") or f"all_reduce of 1+2+3 on cuda:0 = "
                                             f"{nccl.get('sum')}, NCCL {nccl.get('version')}"))
    return rows


def tui_nn_train(ctx: Context, run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "tui_nn", "train", "cnn", "--dataset", "mnist", "--data-dir",
            ctx.root, "--epochs", "1", "--device", ctx.plan.device, "--run-dir", str(run_dir),
            "--headless", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ctx.tmp,
                          env=env)


def ddp_row(ctx: Context, name: str) -> Row:
    run_dir = ctx.tmp / "ddp"
    proc = tui_nn_train(ctx, run_dir, "--nproc-per-node", "2")
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
               if line.strip()] if (run_dir / "metrics.jsonl").exists() else []
    last = records[-1] if records else {}
    world = json.loads((run_dir / "config.json").read_text()).get("world_size") \
        if (run_dir / "config.json").exists() else None
    starts = [r["type"] for r in records].count("RunStarted")
    strides = "Grad strides do not match" in proc.stderr
    ok = (proc.returncode == 0 and last.get("type") == "Finished" and world == 2
          and starts == 1 and not strides)
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
    return Row(name, "ok" if ok else "FAIL",
               f"exit {proc.returncode}, last record {last.get('type')} "
               f"{last.get('status', '')}, world_size {world}, {starts} RunStarted"
               + (", DDP stride warning" if strides else "") + ("" if ok else f": {tail[0]}"))


def check_local_rank(ctx: Context) -> Row:
    """One process more than GPUs: the extra rank stops with one line naming LOCAL_RANK (not
    CUDA's "invalid device ordinal"), and the job ends rather than hanging."""
    n = torch.cuda.device_count()
    proc = tui_nn_train(ctx, ctx.tmp / "ranks", "--nproc-per-node", str(n + 1))
    said = "LOCAL_RANK" in proc.stderr and "invalid device ordinal" not in proc.stderr
    line = next((x for x in proc.stderr.splitlines() if "LOCAL_RANK" in x), "no LOCAL_RANK line")
    return Row(f"--nproc-per-node {n + 1} on {n} GPU(s)",
               "ok" if proc.returncode != 0 and said else "FAIL", f"exit {proc.returncode}: {line}")


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
# (group name, check, what it needs beyond the CPU: "" or the reason a dry run skips it); a check
# returns a Row or a list of rows.
CUDA_ONLY = "skipped: needs CUDA"
CHECKS: list[tuple[str, Callable, str]] = [
    ("zoo", check_zoo, ""),
    ("amp", check_amp, f"{CUDA_ONLY} (autocast bf16/fp16, GradScaler)"),
    ("channels_last", check_channels_last, ""),
    ("compile", check_compile, ""),
    ("cudnn", check_cudnn_benchmark, f"{CUDA_ONLY} (cuDNN, TF32)"),
    ("seed", check_seed_loop, ""),
    ("best", check_best_epoch, ""),
    ("expert", check_expert_loop, ""),
    ("cache", check_cache, ""),
    ("nvml", check_nvml, f"{CUDA_ONLY} (NVML)"),
    ("nan", check_nan, ""),
    ("oom", check_oom, ""),
    ("ddp", check_ddp, ""),
    ("ranks", check_local_rank, f"{CUDA_ONLY} (LOCAL_RANK against the GPU count)"),
    ("memory", check_memory, ""),
]


def run_checks(ctx: Context, only: set[str] | None) -> list[Row]:
    rows: list[Row] = []
    for group, check, needs in CHECKS:
        if only and group not in only:
            continue
        t0 = time.perf_counter()
        if needs and not ctx.plan.cuda:
            got: Row | list[Row] = Row(group, needs)
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


def oom_child(root: str) -> dict:
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(OOM_CAP_BYTES / total, 0)
    ctx = Context(FULL, root, Path(tempfile.mkdtemp()))
    out = oom_attempts(ctx, inject=False)
    return {**out, "data": data_too_large(ctx, inject=False)}


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
