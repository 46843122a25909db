"""The CUDA paths of the engine, run on the CPU: the branch a GPU takes forced (the per-step
loss check off, as on CUDA), CUDA errors injected where they can be raised, the CUDA queries
monkeypatched. Each test here failed on the code before issue 32."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tui_nn.data.base import Dataset
from tui_nn.engine import TrainConfig, Trainer
from tui_nn.engine import events as ev
from tui_nn.engine.checkpoint import load_checkpoint


def _regression(n: int = 64) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, generator=g)
    return Dataset("line64", "regression", x, 2 * x, x[:16].clone(), 2 * x[:16], (1,))


@pytest.fixture
def gpu_style(monkeypatch):
    """The loop as it runs on a GPU: losses stay on the device until a report reads them."""
    monkeypatch.setattr(Trainer, "_check_each_step", property(lambda self: False))


class NanFrom(nn.Module):
    """A linear model whose output turns NaN from the n-th training forward after arm()."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.lin, self.n, self.calls, self.armed = nn.Linear(1, 1), n, 0, False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lin(x)
        if self.armed and self.training:
            self.calls += 1
            if self.calls >= self.n:
                out = out * float("nan")
        return out


def test_a_save_between_two_reads_never_writes_nan_weights(tmp_path, gpu_style):
    """Finding 1: NaN from step 3, a save every 3 steps, no report before the epoch ends."""
    model, events = NanFrom(3), []

    def on_event(event):
        events.append(event)
        if isinstance(event, ev.RunStarted):
            model.armed = True

    result = Trainer(TrainConfig("linear", epochs=2, batch_size=4, lr=0.01,
                                 checkpoint_every_steps=3, report_interval_s=1000,
                                 run_dir=str(tmp_path / "r")),
                     on_event, model=model, dataset=_regression()).run()
    assert isinstance(result, ev.Failed) and result.kind == "nan", result
    assert "loss became nan at step 3 " in result.message
    ckpt = load_checkpoint(tmp_path / "r")
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())
    assert ckpt["step"] == 0 and "(step 0)" in result.message
    saved = [e.step for e in events if isinstance(e, ev.CheckpointSaved)]
    assert saved == [0]


def test_the_nan_message_names_the_step_the_loss_went_nan(tmp_path, gpu_style):
    """Read at the epoch's report (step 16), the NaN is named by its own step (5)."""
    model = NanFrom(5)
    result = Trainer(TrainConfig("linear", epochs=1, batch_size=4, lr=0.01,
                                 report_interval_s=1000, save=False),
                     lambda e: setattr(model, "armed", model.armed or
                                       isinstance(e, ev.RunStarted)),
                     model=model, dataset=_regression()).run()
    assert isinstance(result, ev.Failed) and "at step 5 " in result.message, result


# ---- out of memory (finding 2) ------------------------------------------------------------------
def _oom_cnn(limit: int, log: list, arm_at_step: int | None = None):
    """cnn whose training forward above `limit` samples raises CUDA's OOM, after allocating a
    tensor the failed step holds (its weak reference is logged, to see when it is freed)."""
    import weakref

    from tui_nn.zoo import get_model_spec
    model = get_model_spec("cnn").build()
    real_forward = model.forward
    armed = {"on": arm_at_step is None}

    def forward(x):
        if armed["on"] and model.training and x.shape[0] > limit:
            held = torch.ones(1000, 1000)  # (1000, 1000): the failed step's activations
            log.append(("oom", weakref.ref(held)))
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if armed["on"] and model.training:
            import sys
            dead = all(r() is None for kind, r in log if kind == "oom")
            log.append(("probe", x.shape[0], dead, sys.exc_info()[0]))
        return real_forward(x)

    def on_event(event):
        log.append(("event", event))
        if isinstance(event, ev.StepMetrics) and event.step == arm_at_step:
            armed["on"] = True
    model.forward = forward
    return model, on_event


def test_oom_is_handled_outside_the_except_block_and_saves_before_probing(tmp_path):
    from helpers import blobs_images
    log: list = []
    model, on_event = _oom_cnn(16, log, arm_at_step=3)
    result = Trainer(TrainConfig("cnn", epochs=1, batch_size=32, report_interval_s=0.0,
                                 run_dir=str(tmp_path / "o")), on_event,
                     model=model, dataset=blobs_images()).run()
    assert isinstance(result, ev.Failed) and result.kind == "oom", result
    assert "--batch-size 16" in result.message and "saved in" in result.message
    probes = [entry for entry in log if entry[0] == "probe" and entry[1] <= 16]
    assert probes, log
    # The failed step's tensors are gone and no exception is being handled while probing.
    assert all(dead and exc is None for _, _, dead, exc in probes), probes
    # The run's own state is saved before the first probe moves BatchNorm and the RNG.
    first_probe = log.index(probes[0])
    stop = [i for i, e in enumerate(log) if e[0] == "event"
            and isinstance(e[1], ev.CheckpointSaved) and e[1].reason == "stop"]
    assert stop and stop[0] < first_probe
    assert load_checkpoint(tmp_path / "o")["step"] == 3


def test_oom_in_the_gan_probes_with_its_own_loss(monkeypatch):
    """The GAN's D outputs (B, 1): a classification-loss probe raised IndexError."""
    from helpers import blobs_images
    from tui_nn.zoo.gan import Discriminator
    disc_forward = Discriminator.forward

    def forward(self, x):
        if x.shape[0] > 8 and torch.is_grad_enabled():
            raise torch.cuda.OutOfMemoryError("CUDA out of memory.")
        return disc_forward(self, x)
    monkeypatch.setattr(Discriminator, "forward", forward)
    result = Trainer(TrainConfig("gan", epochs=1, batch_size=32, save=False),
                     dataset=blobs_images(64, 16)).run()
    assert isinstance(result, ev.Failed) and result.kind == "oom", result
    assert "--batch-size 8" in result.message


def test_oom_under_ddp_never_probes_and_says_the_same_on_every_rank(monkeypatch):
    from helpers import blobs_images
    from tui_nn.engine import oom
    from tui_nn.engine.distributed import DistInfo
    trainer = Trainer(TrainConfig("cnn", epochs=1, batch_size=32, save=False),
                      dataset=blobs_images(64, 16))
    assert isinstance(trainer.run(), ev.Finished)
    monkeypatch.setattr(oom, "largest_batch_that_fits", lambda *a: pytest.fail("probed"))
    messages = set()
    for rank in (0, 1):
        trainer.dist = DistInfo(rank=rank, world_size=2, local_rank=rank)
        trainer.device = torch.device("cpu")
        messages.add(oom.out_of_memory_message(trainer.prep, trainer.state, trainer.save))
    assert len(messages) == 1 and "--batch-size 16" in messages.pop()


# ---- amp auto, TF32, compile (findings 4 and 6) --------------------------------------------------
@pytest.mark.parametrize("capability,want", [((7, 5), torch.float16), ((7, 0), torch.float16),
                                             ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)])
def test_amp_auto_takes_bf16_only_where_the_runs_device_has_it_natively(
        monkeypatch, capability, want):
    """A T4 (7.5) or V100 (7.0) says yes to is_bf16_supported() (emulation); and the run's
    device (cuda:1 here) is asked, not the current one."""
    from tui_nn.engine.setup import amp_dtype
    asked = []
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.version, "hip", None)

    def capability_of(device=None):
        asked.append(device)
        return capability if device == torch.device("cuda", 1) else (9, 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", capability_of)
    assert amp_dtype("auto", torch.device("cuda", 1)) is want
    assert asked == [torch.device("cuda", 1)]
    assert amp_dtype("fp16", torch.device("cuda", 1)) is torch.float16
    assert amp_dtype("auto", torch.device("cpu")) is None


def test_tf32_matmuls_are_enabled_on_cuda_only(monkeypatch):
    from helpers import blobs_images
    from tui_nn.engine import setup
    precision = []
    monkeypatch.setattr(torch, "set_float32_matmul_precision", precision.append)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(setup, "amp_dtype", lambda amp, device: None)
    trainer = Trainer(TrainConfig("cnn", save=False), dataset=blobs_images(8, 8))
    trainer.model = nn.Linear(1, 1)
    trainer.device = torch.device("cpu")
    setup._setup_speed(trainer)
    assert precision == []
    trainer.device = torch.device("cuda")
    setup._setup_speed(trainer)
    assert precision == ["high"]


def test_compile_never_recompiles_for_the_last_batch_and_validation_is_compiled(monkeypatch):
    """72 samples at batch 32: 32, 32, 8. One graph for training at 32, one for validation."""
    from helpers import blobs_images
    graphs = []
    real_compile = torch.compile

    def backend(gm, inputs):
        images = [tuple(i.shape) for i in inputs  # the batch, not the conv weights
                  if isinstance(i, torch.Tensor) and tuple(i.shape[1:]) == (1, 28, 28)]
        graphs.append((images, torch.is_inference_mode_enabled()))
        return gm.forward
    monkeypatch.setattr(torch, "compile", lambda model, mode=None: real_compile(
        model, backend=backend))
    torch._dynamo.reset()
    try:
        result = Trainer(TrainConfig("cnn", epochs=2, batch_size=32, compile=True, save=False,
                                     threads=1), dataset=blobs_images(72, 40)).run()
    finally:
        torch._dynamo.reset()
    assert isinstance(result, ev.Finished), result
    assert [images for images, _ in graphs] == [[(32, 1, 28, 28)], [(40, 1, 28, 28)]], graphs


# ---- devices (finding 7) -------------------------------------------------------------------------
def test_a_local_rank_beyond_the_gpus_is_one_usage_error(monkeypatch, tmp_path):
    from helpers import blobs_images
    from tui_nn.engine import distributed
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(distributed, "init_process_group",
                        lambda *a: pytest.fail("joined a group with no device"))
    result = Trainer(TrainConfig("cnn", device="cuda", run_dir=str(tmp_path / "r")),
                     dataset=blobs_images(8, 8)).run()
    assert isinstance(result, ev.Failed) and result.kind == "usage", result
    assert "LOCAL_RANK 3 but 2 CUDA device(s)" in result.message
    assert "--nproc-per-node 2" in result.message and not (tmp_path / "r").exists()


def test_the_process_group_is_bound_to_the_ranks_gpu(monkeypatch):
    from tui_nn.engine import distributed
    calls = []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda **kw: calls.append(kw))
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    info = distributed.DistInfo(rank=1, world_size=2, local_rank=1)
    distributed.init_process_group(info, torch.device("cuda", 1))
    distributed.init_process_group(info, torch.device("cpu"))
    assert calls[0]["backend"] == "nccl" and calls[0]["device_id"] == torch.device("cuda", 1)
    assert calls[1]["backend"] == "gloo" and "device_id" not in calls[1]


def test_gpu_mem_is_the_peak_of_the_steps_since_the_last_report(monkeypatch):
    from tui_nn.engine.device import memory_in_use
    stats = {"now": 100, "peak": 900}
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: stats["now"])
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: stats["peak"])
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats",
                        lambda device=None: stats.update(peak=stats["now"]))
    cuda = torch.device("cuda", 0)
    assert memory_in_use(cuda) == 900  # the step's activations, not what is left between steps
    stats["peak"] = 400
    assert memory_in_use(cuda) == 400  # reset at each report: this window's own peak


def test_the_max_batch_budget_of_a_gpu_keeps_a_reserve_for_context_and_workspaces(monkeypatch):
    from types import SimpleNamespace

    from tui_nn.shapes.memory import visible_gpu_bytes
    total = 16 * 2**30
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device: SimpleNamespace(total_memory=total))
    budget = visible_gpu_bytes()
    assert total - budget >= 512 * 2**20 + int(0.05 * total)  # context + 5%: 1.3 GiB of 16


# ---- what does not fit (finding 3) ---------------------------------------------------------------
def test_a_data_set_too_large_for_the_device_is_named(monkeypatch, tmp_path):
    from helpers import blobs_images
    from tui_nn.engine import setup

    def to_device(t, x, ds):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 180.00 GiB")
    monkeypatch.setattr(setup, "_to_device", to_device)
    result = Trainer(TrainConfig("cnn", run_dir=str(tmp_path / "r")),
                     dataset=blobs_images(64, 16)).run()
    assert isinstance(result, ev.Failed) and result.kind == "oom", result
    assert "the data set blobs (80 samples" in result.message
    assert "smaller model" not in result.message and not (tmp_path / "r").exists()


def test_normalising_on_the_device_makes_one_copy_of_the_set_not_three():
    """In place: the CPU path clones the caller's tensor once (it must not change it); on a
    GPU the moved copy is the only one."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from helpers import blobs_images
    from tui_nn.engine.setup import _to_device

    ds = blobs_images(64, 16)
    before = ds.train_x.clone()
    full = ds.train_x.numel()
    copies = []

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if isinstance(out, torch.Tensor) and out.numel() == full \
                    and not func._schema.name.endswith("_"):
                copies.append(func._schema.name)
            return out

    trainer = Trainer(TrainConfig("cnn", save=False), dataset=ds)
    trainer.device, trainer.channels_last = torch.device("cpu"), False
    with Count():
        x = _to_device(trainer, ds.train_x, ds)
    assert torch.equal(x, (before - 0.1) / 0.3) and torch.equal(ds.train_x, before)
    assert len(copies) == 1, copies


def test_validation_out_of_memory_halves_its_own_batch_and_goes_on():
    from helpers import blobs_images
    from tui_nn.zoo import get_model_spec
    model = get_model_spec("cnn").build()
    real_forward = model.forward

    def forward(x):
        if not model.training and x.shape[0] > 16:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory.")
        return real_forward(x)
    model.forward = forward
    events = []
    result = Trainer(TrainConfig("cnn", epochs=2, batch_size=32, save=False, threads=1),
                     events.append, model=model, dataset=blobs_images(64, 40)).run()
    assert isinstance(result, ev.Finished), result
    notices = [e.message for e in events if isinstance(e, ev.Notice)]
    assert [n for n in notices if n.startswith("validation ran out of memory")] == [
        "validation ran out of memory on cpu at batch size 256: it goes on at 128",
        "validation ran out of memory on cpu at batch size 128: it goes on at 64",
        "validation ran out of memory on cpu at batch size 64: it goes on at 32",
        "validation ran out of memory on cpu at batch size 32: it goes on at 16"]
    assert len([e for e in events if isinstance(e, ev.EpochMetrics)]) == 2


# ---- the suite on a GPU box (finding 8) ----------------------------------------------------------
@pytest.mark.parametrize("module,name", [
    ("test_engine", "test_resume_after_one_epoch_is_bitwise_identical_to_two_straight"),
    ("test_engine", "test_stop_mid_epoch_checkpoints_the_exact_step_and_resume_matches"),
    ("test_gan", "test_stop_mid_epoch_and_resume_match_an_uninterrupted_run")])
def test_bitwise_resume_tests_stay_on_the_cpu_where_cuda_is_there(monkeypatch, tmp_path,
                                                                   module, name):
    """On a GPU box device "auto" would train them on CUDA, where cuDNN picks its algorithms
    by timing and index_select's backward adds atomically: not bitwise. Every run they start
    must ask for the CPU."""
    import importlib

    from tui_nn.engine import setup
    real = setup.resolve_device
    asked = []
    monkeypatch.setattr(setup, "resolve_device", lambda n="auto": asked.append(n) or real(n))
    getattr(importlib.import_module(module), name)(tmp_path)
    assert asked and set(asked) == {"cpu"}


# ---- DDP and channels_last (finding 5) -----------------------------------------------------------
class ViewAfterConv(nn.Module):
    """x.view(B, -1) after a conv, as the seeds (and cnn, resnet, inception) write it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 5)  # (B, 4, 24, 24)
        self.conv2 = nn.Conv2d(4, 4, 3)  # (B, 4, 22, 22): a weight whose layout shows (C > 1)
        self.fc = nn.Linear(4 * 22 * 22, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv2(torch.relu(self.conv(x))).view(x.size(0), -1))


def test_ddp_wraps_the_model_in_the_layout_it_trains_in(monkeypatch):
    """channels_last auto (as on CUDA), a model that cannot take it: the first-batch check
    drops it, and DDP, built after that check, sees contiguous parameters (built before, its
    gradient buckets kept channels_last strides: a warning and a copy every step)."""
    import torch.nn.parallel

    from helpers import blobs_images
    from tui_nn.engine import setup
    from tui_nn.engine.distributed import DistInfo
    wrapped = []

    def ddp(module, device_ids=None):
        weights = [p for p in module.parameters() if p.dim() == 4]
        wrapped.append(any(not p.is_contiguous() for p in weights))
        return module
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", ddp)
    monkeypatch.setattr(torch, "set_float32_matmul_precision", lambda precision: None)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    real_device, real_speed = setup._setup_device, setup._setup_speed

    def two_ranks(t):
        real_device(t)
        t.dist = DistInfo(rank=0, world_size=2, local_rank=0)

    def speed_as_on_cuda(t):  # --channels-last auto takes channels_last for a CNN on CUDA
        t.device = torch.device("cuda")
        try:
            real_speed(t)
        finally:
            t.device = torch.device("cpu")
    monkeypatch.setattr(setup, "_setup_device", two_ranks)
    monkeypatch.setattr(setup, "_setup_speed", speed_as_on_cuda)
    trainer = Trainer(TrainConfig("view", dataset="blobs", save=False, threads=1, amp="off"),
                      model=ViewAfterConv(), dataset=blobs_images(8, 8))
    trainer.prepare()
    assert trainer.channels_last is False and wrapped == [False]


# ---- NVML against CUDA_VISIBLE_DEVICES (finding 7) ---------------------------------------------
def _nvml(names: list[str], migs: dict[int, list[str]]):
    """A pynvml stand-in: GPUs (handles are indices) and their MIG slices (handles (i, k))."""
    from types import SimpleNamespace

    def uuid(h):
        return migs[h[0]][h[1]] if isinstance(h, tuple) else f"GPU-{h}{h}{h}{h}"
    return SimpleNamespace(
        NVML_TEMPERATURE_GPU=0, nvmlInit=lambda: None, nvmlSystemGetDriverVersion=lambda: "550",
        nvmlDeviceGetCount=lambda: len(names), nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetUUID=uuid, nvmlDeviceGetName=lambda h: names[h],
        nvmlDeviceGetMaxMigDeviceCount=lambda h: len(migs.get(h, [])),
        nvmlDeviceGetMigDeviceHandleByIndex=lambda h, k: (h, k),
        nvmlDeviceGetUtilizationRates=lambda h: SimpleNamespace(gpu=0),
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(used=1, total=2),
        nvmlDeviceGetTemperature=lambda h, s: 30, nvmlDeviceGetPowerUsage=lambda h: 1000,
        nvmlDeviceGetEnforcedPowerLimit=lambda h: 2000)


@pytest.mark.parametrize("visible,order,names,shown", [
    ("1", None, ["H100", "H100"], [1]),  # one model: CUDA's order is PCI's
    ("1", None, ["A100", "H100"], [0, 1]),  # fastest first: CUDA's 1 may be NVML's 0
    ("1", "PCI_BUS_ID", ["A100", "H100"], [1]),
    ("5", None, ["A100", "H100"], None),
    ("MIG-b1", None, ["A100", "A100"], [1]),  # the slice's own GPU, not both
])
def test_the_system_pane_shows_the_gpus_cuda_sees(monkeypatch, visible, order, names, shown):
    from tui_nn.system import NvmlSession, gpu_stats
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    if order:
        monkeypatch.setenv("CUDA_DEVICE_ORDER", order)
    else:
        monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    report = gpu_stats(NvmlSession(lambda: _nvml(names, {0: ["MIG-a0"], 1: ["MIG-b1"]})))
    assert (report.available and [g.index for g in report.gpus]) == (shown or False), report
