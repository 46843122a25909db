"""Everything a run does before its first step, into its Prepared (engine/prepared.py): the
config (a resume's merged one), device and process group, data on the device, the model and
its fast paths, optimizer and schedule, a checkpoint restored, the first-batch check, the CPU
thread count, and the run directory claimed last (a model that cannot take the data leaves
no debris)."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from tui_nn.version import __version__
from tui_nn.data import model_fit, tasks
from tui_nn.data.folder import skipped_notice
from tui_nn.data.user_dataset import is_python_spec
from tui_nn.engine import checkpoint, recovery
from tui_nn.engine import events as ev
from tui_nn.engine.config import (THIS_PROCESS, UNRECORDED, TrainConfig, requested_fields,
                                  resume_config)
from tui_nn.engine.device import process_rss, resolve_device
from tui_nn.engine.distributed import DistInfo, init_process_group, rank_device
from tui_nn.engine.controls import Controls
from tui_nn.engine.errors import TrainingError
from tui_nn.engine.optim import build_optimizer, build_schedule
from tui_nn.engine.prepared import Prepared
from tui_nn.engine.resume import read_saved_config
from tui_nn.engine.rundir import (RunDir, check_new_run_dir,
                                  checkpoint_file_given, run_dir_of)
from tui_nn.engine.state import RunState
from tui_nn.modelmode import in_mode
from tui_nn.textsafe import first_line


def setup(p: Prepared, st: RunState, *, model: nn.Module | None = None, dataset: Any = None,
          resume_from: str | Path | None = None, controls: Controls | None = None) -> Prepared:
    """Fill p (and st's starting position) for a run of p.config: model and dataset given
    directly, or by the config's names; resume_from a run to continue; controls what the
    run's control channel steers. Returns p."""
    # A resumed run is locked before anything is read from it (rank 0 of a saving run).
    claimed = (RunDir.reopen(run_dir_of(resume_from)) if resume_from is not None
               and p.config.save and DistInfo.from_env().is_main else None)
    try:
        ckpt = _resolve_config(p, resume_from)
        spec = _resolve_model_spec(p, model)
        _setup_device(p)
        torch.manual_seed(p.config.seed)
        _load_data(p, spec, dataset, controls)
        model = (model if model is not None
                 else spec.build(**model_fit.zoo_build_kwargs(spec, p.dataset))  # sized to data
                 if spec is not None else _load_source(p.config.model))
        p.model = model.to(p.device)
        _setup_speed(p)
        _data_to_device(p)
        _setup_optimisation(p, st)
        _setup_step_plugin(p, spec)
        if ckpt is not None:
            checkpoint.restore(p, st, ckpt)
            st.resumed_threads = int(ckpt.get("threads") or 0)
        if "lr" in p.resume_changes:
            before, now = p.resume_changes["lr"]
            recovery.scale_lr_now(p, now / before)
        _check_and_measure(p, st)
        _claim_run_dir(p, claimed, controls)
    except BaseException:
        if claimed is not None and p.run_dir is None:
            claimed.close()
        raise
    return p


def _check_and_measure(p: Prepared, st: RunState) -> None:
    check_first_batch(p)  # before any run directory exists: a misfit leaves no debris
    wrap_model(p)
    choose_cpu_threads(p, st)
    measure_memory(p)
    from tui_nn.engine.insight_hooks import LiveInsight
    p.insight = LiveInsight.create(p)


# ---- the config -------------------------------------------------------------------------------
def _resolve_config(p: Prepared, resume_from: str | Path | None) -> dict | None:
    """A new run: refuse a --run-dir holding a run, before any work. A resume: merge what was
    asked to change onto its saved config (engine/config.py's rules); its checkpoint, if any."""
    if resume_from is None:
        if p.config.run_dir and p.config.save:
            check_new_run_dir(p.config.run_dir)
        return None
    run_path = run_dir_of(resume_from)
    saved, ckpt = _saved_config(run_path, checkpoint_file_given(resume_from))
    done = int(ckpt["epoch"]) if ckpt is not None else 0
    finished = (ckpt is not None and done >= (saved.epochs or 0)
                and int(ckpt.get("step_in_epoch", 0)) == 0)
    cfg, changes = resume_config(saved, requested_fields(p.config), str(run_path), done, finished)
    p.config = replace(cfg, **{k: getattr(p.config, k) for k in THIS_PROCESS})
    p.resume_changes = {k: v for k, v in changes.items() if k not in UNRECORDED}
    return ckpt


def _saved_config(run_path: Path, given: Path | None = None
                  ) -> tuple[TrainConfig, dict | None]:
    """(config, checkpoint) of a run: from last.pt (or the checkpoint file given), or from
    config.json alone for a run that was killed before its first checkpoint (it resumes from
    step 0)."""
    last = given or run_path / "last.pt"
    if last.exists() or last.is_symlink():
        ckpt = checkpoint.load_checkpoint(last)
        return TrainConfig.from_dict(ckpt["config"]), ckpt
    return read_saved_config(run_path), None  # the bounded reader `runs` uses


def _resolve_model_spec(p: Prepared, model: nn.Module | None) -> Any:
    """The zoo entry (None for a model given directly or loaded from a source), and the config
    resolved against its defaults."""
    from tui_nn.zoo import MODELS, TrainDefaults, get_model_spec

    cfg = p.config
    spec = MODELS.get(cfg.model) if model is None else None
    from_source = spec is None and model is None
    if from_source and ":" not in cfg.model and not cfg.model.endswith(".py"):
        get_model_spec(cfg.model)  # not a source either: unknown name, with a suggestion
    if from_source and not cfg.dataset:
        raise TrainingError(f"--dataset is needed to train {cfg.model} (only zoo models "
                            "have a default dataset)", "usage")
    defaults = spec.defaults if spec else TrainDefaults(epochs=3, batch_size=64, lr=0.01)
    default_dataset = spec.default_dataset if spec else (cfg.dataset or "digits")
    p.config = cfg.resolved(defaults, default_dataset)
    return spec


def _load_source(source: str) -> nn.Module:
    """A model from path/to/model.py:Class or package.module:factory (built on the CPU)."""
    from tui_nn.zoo.sources import SourceError, load_model
    try:
        return load_model(source, device="cpu").model
    except SourceError as e:
        raise TrainingError(str(e), "usage") from None


# ---- device, data, model ----------------------------------------------------------------------
def _setup_device(p: Prepared) -> None:
    """The device, and under torchrun the process group. p.dist is set once the group is up:
    from then on rank 0 alone speaks for the run (Trainer.emit), while a rank that fails
    before (its LOCAL_RANK beyond the GPUs) still says why."""
    try:
        p.device = resolve_device(p.config.device)
    except ValueError as e:
        raise TrainingError(str(e), "usage") from None
    dist = DistInfo.from_env()
    if dist.enabled:
        if p.device.type == "cuda":
            try:
                p.device = rank_device(dist)
            except ValueError as e:
                raise TrainingError(str(e), "usage") from None
        init_process_group(dist, p.device)
    p.dist = dist


def _load_data(p: Prepared, spec: Any, ds: Any, controls: Controls | None) -> None:
    """The dataset given, or the config's, adapted to a zoo model's input."""
    if ds is None:
        from tui_nn.data import adapt_to_input
        cfg = p.config
        # The data stays the same whatever --seed says: seeds vary the init and the shuffle,
        # so runs with different seeds compare on the same samples.
        if is_python_spec(cfg.dataset):
            from tui_nn.engine.loader import load_user_dataset
            ds = load_user_dataset(cfg.dataset, batch_size=cfg.batch_size or 64)
        else:
            ds = _load_decoded(p, cfg, controls)
        if ds.skipped:
            p.notices.append(skipped_notice(ds.skipped))
        # Your own samples of another rank go to the model as they are (its checks speak).
        streamed_flat = getattr(ds, "streamed", False) and len(ds.input_shape) != 3
        if spec is not None and not streamed_flat and not getattr(spec, "variable_length",
                                                                  False):
            ds = adapt_to_input(ds, model_fit.zoo_input_shape(spec, ds), spec.name)
    p.dataset = ds
    p.task = ds.task
    p.loss_task = ds.task  # check_first_batch may make it "binary-logits"


def _load_decoded(p: Prepared, cfg: TrainConfig, controls: Controls | None) -> Any:
    """A registry dataset, a CSV or an image folder; a stop during a long decode ends the
    run here (kind "interrupted": the signal's exit code), with nothing kept."""
    from tui_nn.data import load_dataset
    from tui_nn.data.progress import DecodeStopped
    try:
        return load_dataset(cfg.dataset, cfg.data_dir, seed=0, download=cfg.download,
                            as_uint8=True,  # images: normalised per batch (PixelNorm)
                            memory_budget=_memory_budget(cfg), strict=cfg.strict,
                            progress=_decode_progress(p, controls))
    except DecodeStopped as e:
        raise TrainingError(str(e), "interrupted") from None


def _decode_progress(p: Prepared, controls: Controls | None) -> Any:
    """A long decode's progress lines as notices (the app's log, the headless output; no run
    directory exists yet to record them), and the run's stop heard between two images."""
    from tui_nn.data.progress import Progress
    return Progress(say=lambda text: p.emit(ev.Notice(text, "data")),
                    stopped=lambda: controls is not None and controls.stop_requested)


def _memory_budget(cfg: TrainConfig) -> int:
    from tui_nn.data.image_cache import default_budget
    from tui_nn.fmt import parse_size
    return parse_size(cfg.memory_budget) if cfg.memory_budget else default_budget()


def _setup_speed(p: Prepared) -> None:
    """The CUDA fast paths (each measured in benchmarks/bench_train_speed.py). DDP and
    torch.compile wrap the model later (wrap_model), once its layout is settled."""
    cfg, cuda = p.config, p.device.type == "cuda"
    if cfg.amp in ("bf16", "fp16") and not cuda:
        raise TrainingError(f"--amp {cfg.amp} needs a CUDA device (training on {p.device})",
                            "usage")
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest
        # TF32 tensor cores for fp32 matmuls (Ampere on; cuDNN convolutions use them already).
        torch.set_float32_matmul_precision("high")
    p.amp_dtype = amp_dtype(cfg.amp, p.device)
    # fp16 needs loss scaling to keep small gradients from flushing to zero; bf16 does not.
    # Disabled, the scaler passes everything through: one code path for the step.
    p.scaler = torch.amp.GradScaler("cuda", enabled=p.amp_dtype == torch.float16)
    is_cnn = any(isinstance(m, nn.Conv2d) for m in p.model.modules())
    p.channels_last = cfg.channels_last == "on" or (
        cfg.channels_last == "auto" and cuda and is_cnn)
    if p.channels_last:
        p.model = p.model.to(memory_format=torch.channels_last)
    p.forward_model = p.eager_model = p.eval_model = p.model


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """--amp on this device: auto is bf16 where the device computes it natively (compute
    capability 8.0 on; torch.cuda.is_bf16_supported() also says yes for a T4 or V100, which
    emulate it slowly, and asks the current device rather than the run's), else fp16."""
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "auto":
        native = bool(torch.version.hip) or torch.cuda.get_device_capability(device)[0] >= 8
        amp = "bf16" if native else "fp16"
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)


def wrap_model(p: Prepared) -> None:
    """DDP, then torch.compile, around the model as check_first_batch left it: a DDP built
    while the parameters were channels_last, then switched back, has gradient buckets whose
    strides no longer match (a warning and a copy every step)."""
    cfg, cuda = p.config, p.device.type == "cuda"
    if p.dist.enabled:
        from torch.nn.parallel import DistributedDataParallel
        p.eager_model = DistributedDataParallel(
            p.model, device_ids=[p.device.index] if cuda else None)
    p.forward_model = p.eager_model
    if cfg.compile:
        if not cuda:
            # Inductor's CPU path imports torch's C++-extension helper, which looks for a
            # CUDA toolkit at import and warns "No CUDA runtime is found, using CUDA_HOME=..."
            # when one is installed: noise on a CPU run, which needs no CUDA.
            logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        # CUDA graphs ("reduce-overhead") pay off for small models whose step is bound by
        # kernel-launch latency; bigger ones get the default inductor mode.
        small = sum(p.numel() for p in p.model.parameters()) < 5_000_000
        mode = "reduce-overhead" if cuda and small else None
        p.forward_model = torch.compile(p.eager_model, mode=mode)
        p.eval_model = torch.compile(p.model, mode=mode)
        # The compiled model takes one batch size, the full batch's share of this rank: the
        # last, partial batch of an epoch runs eagerly rather than compiling a second graph.
        world, rank = p.dist.world_size, p.dist.rank
        p.compiled_batch = p.batch_size // world + (rank < p.batch_size % world)


def _data_to_device(p: Prepared) -> None:
    """Decode once, move once, normalise once: batches are index slices on the device. Your
    own Dataset streams instead: only its first batches go to the device now (the checks)."""
    if getattr(p.dataset, "streamed", False):
        _stream_setup(p)
        return
    try:
        _move_data(p)
        return
    except torch.cuda.OutOfMemoryError:
        pass  # answered below, once this block has let go of the partial copies
    p.train_x = p.train_y = p.val_x = p.val_y = None
    torch.cuda.empty_cache()
    raise TrainingError(_data_too_large(p), "oom")


def _move_data(p: Prepared) -> None:
    ds = p.dataset
    p.train_x, p.train_y = _to_device(p, ds.train_x, ds), ds.train_y.to(p.device)
    p.val_x, p.val_y = _to_device(p, ds.val_x, ds), ds.val_y.to(p.device)
    # uint8 images stay uint8 on the device (normalised per batch); the transforms are built
    # from the data's mean/std, which the replace below drops.
    _batch_transforms(p, ds, pixel_norm=p.train_x.dtype == torch.uint8)
    # Keep only the device copies (already normalised): the raw CPU tensors would double
    # the memory of a 60,000-image set for nothing.
    p.dataset = replace(ds, train_x=p.train_x, train_y=p.train_y, val_x=p.val_x,
                        val_y=p.val_y, mean=None, std=None)
    if p.dataset.n_train == 0:
        raise TrainingError(f"dataset {ds.name} has no training samples", "data")


def _stream_setup(p: Prepared) -> None:
    from tui_nn.engine.loader import BatchStream
    ds = p.dataset
    p.batch_size = min(p.config.batch_size, ds.n_train)  # as _setup_optimisation sets it
    p.stream = BatchStream(p)
    p.train_x, p.train_y = p.stream.to_device(ds.train_x, ds.train_y)
    p.val_x, p.val_y = p.stream.to_device(ds.val_x, ds.val_y)
    _batch_transforms(p, ds, pixel_norm=p.train_x.dtype == torch.uint8
                      and p.train_x.dim() == 4)  # a folder's cache


def _batch_transforms(p: Prepared, ds: Any, pixel_norm: bool) -> None:
    """What each training batch goes through on the device: uint8 images normalised
    (pixel_norm), then the --augment spec."""
    if pixel_norm:
        from tui_nn.data.base import PixelNorm
        p.pixel_norm = PixelNorm(ds.mean, ds.std, p.device)
    from tui_nn.data.augment import AugmentError, build_augmenter
    try:
        p.augment = build_augmenter(p.config.augment, ds, p.device)
    except AugmentError as e:
        raise TrainingError(str(e), "fit") from None
    p.dataset = replace(ds, train_x=p.train_x, train_y=p.train_y, val_x=p.val_x, val_y=p.val_y)


def _data_too_large(p: Prepared) -> str:
    from tui_nn.fmt import fmt_bytes
    ds = p.dataset
    size = sum(x.numel() * x.element_size() for x in (ds.train_x, ds.train_y, ds.val_x,
                                                        ds.val_y))
    model = sum(p.numel() * p.element_size() for p in p.model.parameters())
    return (f"the data set {ds.name} ({ds.n_train + ds.n_val:,} samples, {fmt_bytes(size)}) "
            f"does not fit on {p.device} beside the model ({fmt_bytes(model)}): the whole set "
            "is kept on the device; train on a smaller set or with --device cpu")


def _to_device(p: Prepared, x: torch.Tensor, ds: Any) -> torch.Tensor:
    """x on the device, normalised there in place: (x - mean) / std out of place would hold
    three copies of the set at once. The layout is set before the move (one device copy).
    uint8 images stay uint8 (PixelNorm normalises each batch)."""
    if x.dim() == 4 and p.channels_last:
        x_host, x = x, x.contiguous(memory_format=torch.channels_last)
    else:
        x_host = x
    moved = x.to(p.device)
    if ds.mean is None or ds.std is None or moved.dim() != 4 or moved.dtype == torch.uint8:
        return moved
    if not moved.is_floating_point():
        moved = moved.float()
    elif moved.data_ptr() == x_host.data_ptr():  # the caller's own tensor: never changed
        moved = moved.clone(memory_format=torch.preserve_format)
    mean = torch.tensor(ds.mean, device=p.device, dtype=moved.dtype).view(1, -1, 1, 1)
    std = torch.tensor(ds.std, device=p.device, dtype=moved.dtype).view(1, -1, 1, 1)
    return moved.sub_(mean).div_(std)  # (N, C, H, W)


def _setup_optimisation(p: Prepared, st: RunState) -> None:
    cfg, n = p.config, p.dataset.n_train
    p.batch_size = min(cfg.batch_size, n)
    p.steps_per_epoch = math.ceil(n / p.batch_size)
    p.total_steps = cfg.epochs * p.steps_per_epoch
    p.optimizer = build_optimizer(p.model, cfg)
    p.scheduler = build_schedule(p.optimizer, cfg, p.steps_per_epoch, p.total_steps)
    p.generator = torch.Generator().manual_seed(cfg.seed)
    st.epoch_gen_state = p.generator.get_state()


def _setup_step_plugin(p: Prepared, spec: Any) -> None:
    """A zoo entry with its own step (engine/plugins.py) sets it up after the optimizer."""
    name = getattr(spec, "step", None) if spec is not None else None
    if name is not None:
        import importlib
        module, _, cls = name.partition(":")
        p.step_plugin = getattr(importlib.import_module(module), cls)()
        p.step_plugin.setup(p)


def _check_plugin_probe(p: Prepared, x: torch.Tensor, y: torch.Tensor) -> None:
    try:
        with torch.no_grad():
            p.step_plugin.probe_loss(x, y)
    except TrainingError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure becomes one clear line
        raise TrainingError(f"{p.config.model} cannot train on {p.dataset.name} samples of "
                            f"shape {_shape(x[0])}: {first_line(e, with_type=True)}",
                            "shape") from None


# ---- checks before the first step ---------------------------------------------------------------
def check_first_batch(p: Prepared) -> None:
    """Run two samples through the model and the loss before training, so a model that
    cannot take this data fails with the shape inspector's diagnosis, not mid-run."""
    x, y = p.inputs(p.train_x[:2]), p.train_y[:2]
    try:
        out = _eval_forward(p.model, x)
    except torch.cuda.OutOfMemoryError:
        raise  # not a shape problem: the Trainer's out-of-memory answer
    except Exception as e:  # noqa: BLE001 - any forward failure becomes one clear line
        if not p.channels_last:
            raise TrainingError(_diagnose(p, x, e), "shape") from None
        # A forward written for contiguous tensors (x.view(B, -1) after a conv, as the
        # seeds do) fails on channels_last activations.
        if p.config.channels_last == "on":
            raise TrainingError(
                f"--channels-last on: the forward pass fails on channels_last tensors "
                f"({first_line(e, with_type=True)}); use x.reshape/x.flatten(1) instead of "
                "x.view, or --channels-last off", "shape") from None
        _drop_channels_last(p)
        x = p.inputs(p.train_x[:2])
        try:
            out = _eval_forward(p.model, x)
        except Exception as e2:  # noqa: BLE001
            raise TrainingError(_diagnose(p, x, e2), "shape") from None
    if p.step_plugin is not None:  # its own losses: no check of the output against targets
        _check_plugin_probe(p, x, y)
        return
    try:
        fit = model_fit.check_output_fits(p.model, x, y, p.dataset)
    except model_fit.FitError as e:
        raise TrainingError(str(e), "fit") from None
    p.loss_task, p.fit_note = fit.loss_task, fit.note
    try:
        tasks.loss_mean(p.loss_task, out.float(), y)
    except Exception as e:  # noqa: BLE001
        raise TrainingError(
            f"the model's output {_shape(out)} does not fit {p.dataset.name}'s "
            f"{p.task} targets {_shape(y)}: {first_line(e, with_type=True)}", "shape") from None


def _eval_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with in_mode(model, training=False), torch.no_grad():
        return model(x)


def _drop_channels_last(p: Prepared) -> None:
    """--channels-last auto, and the model can't take it: train in the default layout."""
    p.channels_last = False
    p.model.to(memory_format=torch.contiguous_format)
    p.train_x = p.train_x.contiguous()
    p.val_x = p.val_x.contiguous()
    p.dataset = replace(p.dataset, train_x=p.train_x, val_x=p.val_x)


def _diagnose(p: Prepared, x: torch.Tensor, error: Exception) -> str:
    where = f"{p.config.model} on {p.dataset.name} samples of shape {_shape(x[0])}"
    try:
        from tui_nn.shapes import inspect_model
        diagnosis = inspect_model(p.model, [tuple(x.shape)], dtype=x.dtype).diagnosis
    except Exception:  # noqa: BLE001 - the plain error below is still worth showing
        diagnosis = None
    if diagnosis is not None:
        layer = f" at {diagnosis.path}" if diagnosis.path else ""
        return f"{where}: {diagnosis.text}{layer}"
    return f"{where}: the forward pass failed: {first_line(error, with_type=True)}"


def choose_cpu_threads(p: Prepared, st: RunState) -> None:
    """On the CPU, more intra-op threads only pay off when a step has enough work: the
    tiny seed models (a 16-unit RNN above all, measured 50× slower with 2 threads on this
    2-core box) run fastest on one. Time a few forward+backward passes both ways (no
    optimizer step, RNG forked, grads cleared: training is unaffected) and keep the faster."""
    st.threads_before = torch.get_num_threads()
    if p.device.type != "cpu":
        return
    # Results are bitwise reproducible for a given seed *and* thread count, so a resumed
    # run keeps the count its checkpoint was trained with.
    pinned = p.config.threads or st.resumed_threads
    if pinned:
        torch.set_num_threads(pinned)
        return
    many = st.threads_before
    if many <= 1 or p.dist.enabled:
        return
    x, y = p.inputs(p.train_x[:p.batch_size]), p.train_y[:p.batch_size]

    def step_time(threads: int) -> float:
        torch.set_num_threads(threads)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            p.probe_loss(x, y).backward()
            best = min(best, time.perf_counter() - start)
        return best

    with torch.random.fork_rng(devices=[]):
        multi, single = step_time(many), step_time(1)
    p.model.zero_grad(set_to_none=True)
    torch.set_num_threads(1 if single < 0.9 * multi else many)


def measure_memory(p: Prepared) -> None:
    """What one training forward really saves for backward (shapes/memory.py counts it as
    `tui-nn inspect --batch-size` predicts it) and the process's RSS, recorded in config.json
    beside the prediction's inputs. Off the training path: RNG forked, nothing kept."""
    from tui_nn.shapes.memory import measure_saved_bytes
    # Copies, as the step's index_select makes: a view would count the whole set's storage
    # (the loss saves its target: a view of train_y counted all of it, 480 kB on digits).
    x, y = p.inputs(p.train_x[:p.batch_size].clone()), p.train_y[:p.batch_size].clone()
    # A training forward moves BatchNorm's running statistics: put them back after.
    buffers = {name: b.detach().clone() for name, b in p.model.named_buffers()}
    try:
        with torch.random.fork_rng(devices=[p.device] if p.device.type == "cuda" else []):
            saved = measure_saved_bytes(p.model, x, lambda out: tasks.loss_mean(
                p.loss_task, out.float(), y))
    except Exception:  # noqa: BLE001 - a measurement must never stop a run
        return
    finally:
        with torch.no_grad():
            for name, b in p.model.named_buffers():
                b.copy_(buffers[name])
    p.measured_memory = {"batch_size": p.batch_size, "saved_activation_bytes": saved,
                         "rss_bytes": process_rss()}


# ---- the run directory ------------------------------------------------------------------------
def _claim_run_dir(p: Prepared, claimed: RunDir | None, controls: Controls | None) -> None:
    """Rank 0 of a saving run owns the directory: a resume's was locked at the start; a new
    one is created and locked now, and its config.json written."""
    cfg = p.config
    if not (cfg.save and p.dist.is_main):
        return
    if claimed is None:
        claimed = (RunDir.create(cfg.run_dir) if cfg.run_dir
                   else RunDir.new(cfg.runs_root, cfg.model, cfg.dataset))
    p.run_dir = claimed
    p.writers.append(lambda event: claimed.append_metrics(event.to_dict()))
    if cfg.tensorboard:
        from tui_nn.engine.tensorboard import make_tensorboard_sink
        p.tensorboard = make_tensorboard_sink(claimed.path)
        if p.tensorboard is not None:
            p.writers.append(_tensorboard_writer(p))
    if not claimed.config_path.exists():
        claimed.write_config(_config_record(p))
    if cfg.control and controls is not None:
        _open_channel(p, controls)


def _tensorboard_writer(p: Prepared) -> Callable[[ev.Event], None]:
    """The TensorBoard sink as a writer that, when the sink fails (it never raises: it
    disables itself), leaves the run's writers and says so once; training goes on."""
    sink = p.tensorboard

    def write(event: ev.Event) -> None:
        sink(event)
        if sink.error is not None:
            p.writers.remove(write)
            p.tensorboard = None
            sink.close()
            p.emit(ev.Notice(f"{sink.error}; training goes on, metrics.jsonl keeps every "
                             "record", "tensorboard"))
    return write


def _open_channel(p: Prepared, controls: Controls) -> None:
    """`tui-nn control`, `watch` and the app in another terminal steer the run through it."""
    from tui_nn.engine.channel import ControlServer
    try:
        p.channel = ControlServer(p.run_dir.path, controls).start()
    except OSError as e:  # a filesystem without sockets: the run trains, unsteerable
        p.notices.append(f"no control channel in {p.run_dir.path}: "
                                 f"{e.strerror or e}")


def _config_record(p: Prepared) -> dict[str, Any]:
    cfg, ds = p.config, p.dataset
    return {
        **cfg.to_dict(), "run_dir": str(p.run_dir.path), "task": p.task,
        "device_resolved": str(p.device), "parameters": p.parameters(),
        "tui_nn_version": __version__, "n_train": ds.n_train, "n_val": ds.n_val,
        "num_classes": ds.num_classes, "loss": tasks.LOSS_NAMES[p.loss_task],
        "labels": list(ds.labels) if ds.labels else None,
        "world_size": p.dist.world_size, "memory_measured": p.measured_memory,
        "threads_used": torch.get_num_threads() if p.device.type == "cpu" else None,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _shape(x: torch.Tensor) -> str:
    from tui_nn.fmt import format_shape
    return format_shape(tuple(x.shape))
