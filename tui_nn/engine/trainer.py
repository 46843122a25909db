"""The training engine: one Trainer drives the headless CLI, the TUI, tests and benchmarks.

It knows nothing of any UI. It reports through events passed to a callback and is paused,
resumed and stopped through threading.Events, so it can run in a background thread.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from tui_nn import __version__
from tui_nn.engine import events as ev
from tui_nn.engine import model_fit, tasks
from tui_nn.engine.checkpoint import (CheckpointError, atomic_save, check_state_dict_matches,
                                      load_checkpoint)
from tui_nn.engine.config import ConfigError, TrainConfig
from tui_nn.engine.device import device_name, memory_in_use, resolve_device
from tui_nn.engine.distributed import (DistInfo, all_mean, all_sum, any_rank,
                                       destroy_process_group, init_process_group)
from tui_nn.engine.optim import build_optimizer, build_schedule
from tui_nn.engine.rundir import RunDir

Callback = Callable[[ev.Event], None]

# An epoch-end checkpoint is skipped when the last one is younger than this: a 1000-epoch toy
# run would otherwise fsync a thousand times. Stop, finish and periodic saves are never skipped.
_EPOCH_CHECKPOINT_MIN_INTERVAL_S = 10.0
# A parameter group's lr and what the schedulers (LambdaLR, StepLR, OneCycleLR) derive it from.
_LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")


class TrainingError(Exception):
    """A failure with a user-facing message; kind is one of the Failed event kinds."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


class Trainer:
    """Trains one model on one dataset.

    model/dataset may be given directly (tests, the TUI with a user's model); otherwise they come
    from the zoo and the data registry by the names in the config. resume_from is a run directory
    or checkpoint file to continue from.
    """

    def __init__(self, config: TrainConfig, callback: Callback | None = None, *,
                 model: nn.Module | None = None, dataset: Any = None,
                 resume_from: str | Path | None = None) -> None:
        self.config = config
        self._callback = callback or (lambda event: None)
        self._model_override = model
        self._dataset_override = dataset
        self._resume_from = resume_from
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()
        self._checkpoint_requested = threading.Event()
        self._lr_lock = threading.Lock()
        self._lr_factor = 1.0  # pending scale_lr() requests, applied between steps
        self.model: nn.Module | None = None
        self.run_dir: RunDir | None = None
        self._tensorboard = None
        self.history: list[ev.EpochMetrics] = []
        self.insight = None  # LiveInsight when the config asks for live insight events
        self._predictions = None  # the last validation pass's predictions (insight only)

    # ---- control, safe to call from any thread -------------------------------------------
    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so it can stop

    def request_checkpoint(self) -> None:
        self._checkpoint_requested.set()

    def scale_lr(self, factor: float) -> None:
        """Multiply the learning rate by ``factor`` before the next step (a schedule keeps its
        shape, scaled). Applied by the training thread, so it is safe from any thread."""
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"lr factor must be a number > 0 (got {factor})")
        with self._lr_lock:
            self._lr_factor *= factor

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    # ---- running ---------------------------------------------------------------------------
    def run(self) -> ev.Finished | ev.Failed:
        """Train to the end (or until stopped). Never raises for training failures: the last
        event, Finished or Failed, is both emitted and returned."""
        try:
            return self._run()
        except TrainingError as e:
            return self._fail(str(e), e.kind)
        except (ConfigError, CheckpointError) as e:
            return self._fail(str(e), "error")
        except _data_error_types() as e:
            return self._fail(str(e), "data")
        except torch.cuda.OutOfMemoryError:
            return self._fail(self._out_of_memory_message(), "oom")
        except OSError as e:
            return self._fail(f"{e}", "disk")
        except Exception as e:  # noqa: BLE001 - surfaced as an event, with the traceback kept
            return self._fail(f"{type(e).__name__}: {e}", "error",
                              {"traceback": traceback.format_exc()})
        finally:
            if self.run_dir is not None:
                self.run_dir.close()
            if self._tensorboard is not None:
                self._tensorboard.close()
            if getattr(self, "_threads_before", None):
                torch.set_num_threads(self._threads_before)
            if getattr(self, "dist", None) is not None and self.dist.enabled:
                destroy_process_group()

    def _emit(self, event: ev.Event) -> None:
        if self.run_dir is not None and not isinstance(event, ev.LIVE_ONLY):
            try:
                self.run_dir.append_metrics(event.to_dict())
            except OSError:
                pass  # a full disk must not kill training; the checkpoint write will say so
            if self._tensorboard is not None:
                self._tensorboard(event)  # never raises: it disables itself on errors
        self._callback(event)

    def _fail(self, message: str, kind: str, details: dict | None = None) -> ev.Failed:
        event = ev.Failed(message=message, kind=kind,
                          run_dir=str(self.run_dir.path) if self.run_dir else None,
                          step=getattr(self, "_step", None), details=details or {})
        self._emit(event)
        return event

    def _setup(self) -> None:
        from tui_nn.zoo import MODELS, TrainDefaults

        cfg = self.config
        ckpt = None
        if self._resume_from is not None:
            ckpt = load_checkpoint(self._resume_from)
            saved = TrainConfig.from_dict(ckpt["config"])
            # Only the length of the run, where it runs and how it is watched (NaN policy,
            # insight events: none changes what is computed) may change on resume.
            cfg = replace(saved, epochs=cfg.epochs or saved.epochs, device=cfg.device,
                          on_nan=cfg.on_nan, grad_flow=cfg.grad_flow, live_fit=cfg.live_fit,
                          val_predictions=cfg.val_predictions,
                          run_dir=str(Path(self._resume_from).parent
                                      if Path(self._resume_from).is_file()
                                      else self._resume_from))
        spec = MODELS.get(cfg.model) if self._model_override is None else None
        from_source = spec is None and self._model_override is None
        if from_source and ":" not in cfg.model and not cfg.model.endswith(".py"):
            from tui_nn.zoo import get_model_spec
            get_model_spec(cfg.model)  # not a source either: unknown name, with a suggestion
        if from_source and not cfg.dataset:
            raise TrainingError(f"--dataset is needed to train {cfg.model} (only zoo models "
                                "have a default dataset)")
        defaults = spec.defaults if spec else TrainDefaults(epochs=3, batch_size=64, lr=0.01)
        default_dataset = spec.default_dataset if spec else (cfg.dataset or "digits")
        cfg = cfg.resolved(defaults, default_dataset)
        self.config = cfg

        try:
            self.device = resolve_device(cfg.device)
        except ValueError as e:
            raise TrainingError(str(e)) from None
        self.dist = DistInfo.from_env()
        if self.dist.enabled:
            if self.device.type == "cuda":
                self.device = torch.device("cuda", self.dist.local_rank)
            init_process_group(self.dist, self.device)
            if not self.dist.is_main:
                self._callback = lambda event: None  # rank 0 speaks for the run

        torch.manual_seed(cfg.seed)
        ds = self._dataset_override
        if ds is None:
            from tui_nn.data import adapt_to_input, load_dataset
            # The data stays the same whatever --seed says: seeds vary the init and the shuffle,
            # so runs with different seeds compare on the same samples.
            ds = load_dataset(cfg.dataset, cfg.data_dir, seed=0, download=cfg.download)
            if spec is not None and not getattr(spec, "variable_length", False):
                ds = adapt_to_input(ds, model_fit.zoo_input_shape(spec, ds), spec.name)
        self.dataset = ds
        self.task = ds.task
        self.loss_task = ds.task  # _check_first_batch may make it "binary-logits"
        self.fit_note = ""

        if self._model_override is not None:
            model = self._model_override
        elif spec is not None:
            model = spec.build(**model_fit.zoo_build_kwargs(spec, ds))  # sized to the data
        else:
            model = self._load_source(cfg.model)
        self.model = model.to(self.device)
        self._setup_speed(cfg)

        # Decode once, move once, normalise once: batches are index slices on the device.
        self.train_x, self.train_y = self._to_device(ds.train_x, ds), ds.train_y.to(self.device)
        self.val_x, self.val_y = self._to_device(ds.val_x, ds), ds.val_y.to(self.device)
        from tui_nn.data.augment import AugmentError, build_augmenter
        try:  # built from the data's mean/std, which the replace below drops
            self.augment = build_augmenter(cfg.augment, ds, self.device)
        except AugmentError as e:
            raise TrainingError(str(e), "fit") from None
        # Keep only the device copies (already normalised): the raw CPU tensors would double
        # the memory of a 60,000-image set for nothing.
        ds = replace(ds, train_x=self.train_x, train_y=self.train_y, val_x=self.val_x,
                     val_y=self.val_y, mean=None, std=None)
        self.dataset = ds
        n = ds.n_train
        if n == 0:
            raise TrainingError(f"dataset {ds.name} has no training samples", "data")
        self.batch_size = min(cfg.batch_size, n)
        self.steps_per_epoch = math.ceil(n / self.batch_size)
        self.total_steps = cfg.epochs * self.steps_per_epoch

        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = build_schedule(self.optimizer, cfg, self.steps_per_epoch, self.total_steps)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self._step = 0
        self._epoch, self._step_in_epoch = 0, 0
        self.start_epoch = 0
        self._start_step_in_epoch = 0
        self._epoch_gen_state = self.generator.get_state()
        self.best_value: float | None = None

        if ckpt is not None:
            self._restore(ckpt)
        self._resumed_threads = int(ckpt.get("threads") or 0) if ckpt is not None else 0
        self._check_first_batch()  # before any run directory exists: a misfit leaves no debris
        self._choose_cpu_threads()
        from tui_nn.engine.insight_hooks import LiveInsight
        self.insight = LiveInsight.create(self)
        if cfg.save and self.dist.is_main:
            self.run_dir = (RunDir(cfg.run_dir) if cfg.run_dir
                            else RunDir.new(cfg.runs_root, cfg.model, cfg.dataset))
            if cfg.tensorboard:
                from tui_nn.engine.tensorboard import make_tensorboard_sink
                self._tensorboard = make_tensorboard_sink(self.run_dir.path)
            if ckpt is None:
                self.run_dir.write_config({
                    **cfg.to_dict(), "task": self.task, "device_resolved": str(self.device),
                    "parameters": self._parameters(), "tui_nn_version": __version__,
                    "n_train": ds.n_train, "n_val": ds.n_val,
                    "num_classes": ds.num_classes, "loss": tasks.LOSS_NAMES[self.loss_task],
                    "labels": list(ds.labels) if ds.labels else None,
                    "world_size": self.dist.world_size,
                    "threads_used": (torch.get_num_threads() if self.device.type == "cpu"
                                     else None),
                    "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                })

    @staticmethod
    def _load_source(source: str) -> nn.Module:
        """A model from path/to/model.py:Class or package.module:factory (built on the CPU)."""
        from tui_nn.zoo.sources import SourceError, load_model
        try:
            return load_model(source, device="cpu").model
        except SourceError as e:
            raise TrainingError(str(e)) from None

    def _check_first_batch(self) -> None:
        """Run two samples through the model and the loss before training, so a model that
        cannot take this data fails with the shape inspector's diagnosis, not mid-run."""
        x, y = self.train_x[:2], self.train_y[:2]
        try:
            out = self._eval_forward(x)
        except Exception as e:  # noqa: BLE001 - any forward failure becomes one clear line
            if not self.channels_last:
                raise TrainingError(self._diagnose(x, e), "shape") from None
            # A forward written for contiguous tensors (x.view(B, -1) after a conv, as the
            # seeds do) fails on channels_last activations.
            if self.config.channels_last == "on":
                raise TrainingError(
                    f"--channels-last on: the forward pass fails on channels_last tensors "
                    f"({_first_line(e)}); use x.reshape/x.flatten(1) instead of x.view, or "
                    "--channels-last off", "shape") from None
            self._drop_channels_last()
            x = self.train_x[:2]
            try:
                out = self._eval_forward(x)
            except Exception as e2:  # noqa: BLE001
                raise TrainingError(self._diagnose(x, e2), "shape") from None
        try:
            fit = model_fit.check_output_fits(self.model, x, y, self.dataset)
        except model_fit.FitError as e:
            raise TrainingError(str(e), "fit") from None
        self.loss_task, self.fit_note = fit.loss_task, fit.note
        try:
            tasks.loss_mean(self.loss_task, out.float(), y)
        except Exception as e:  # noqa: BLE001
            raise TrainingError(
                f"the model's output {_shape(out)} does not fit {self.dataset.name}'s "
                f"{self.task} targets {_shape(y)}: {_first_line(e)}", "shape") from None

    def _eval_forward(self, x: torch.Tensor) -> torch.Tensor:
        model = self.model
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return model(x)
        finally:
            model.train(was_training)

    def _drop_channels_last(self) -> None:
        """--channels-last auto, and the model can't take it: train in the default layout."""
        self.channels_last = False
        self.model.to(memory_format=torch.contiguous_format)
        self.train_x = self.train_x.contiguous()
        self.val_x = self.val_x.contiguous()
        self.dataset = replace(self.dataset, train_x=self.train_x, val_x=self.val_x)

    def _choose_cpu_threads(self) -> None:
        """On the CPU, more intra-op threads only pay off when a step has enough work: the
        tiny seed models (a 16-unit RNN above all, measured 50× slower with 2 threads on this
        2-core box) run fastest on one. Time a few forward+backward passes both ways (no
        optimizer step, RNG forked, grads cleared: training is unaffected) and keep the faster."""
        self._threads_before = torch.get_num_threads()
        if self.device.type != "cpu":
            return
        # Results are bitwise reproducible for a given seed *and* thread count, so a resumed
        # run keeps the count its checkpoint was trained with.
        pinned = self.config.threads or self._resumed_threads
        if pinned:
            torch.set_num_threads(pinned)
            return
        many = self._threads_before
        if many <= 1 or self.dist.enabled:
            return
        x = self.train_x[:self.batch_size]
        y = self.train_y[:self.batch_size]

        def step_time(threads: int) -> float:
            torch.set_num_threads(threads)
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                tasks.loss_mean(self.loss_task, self.model(x), y).backward()
                best = min(best, time.perf_counter() - t)
            return best

        with torch.random.fork_rng(devices=[]):
            multi, single = step_time(many), step_time(1)
        self.model.zero_grad(set_to_none=True)
        torch.set_num_threads(1 if single < 0.9 * multi else many)

    def _diagnose(self, x: torch.Tensor, error: Exception) -> str:
        where = f"{self.config.model} on {self.dataset.name} samples of shape {_shape(x[0])}"
        try:
            from tui_nn.shapes import inspect_model
            diagnosis = inspect_model(self.model, [tuple(x.shape)], dtype=x.dtype).diagnosis
        except Exception:  # noqa: BLE001 - the plain error below is still worth showing
            diagnosis = None
        if diagnosis is not None:
            layer = f" at {diagnosis.path}" if diagnosis.path else ""
            return f"{where}: {diagnosis.text}{layer}"
        return f"{where}: the forward pass failed: {_first_line(error)}"

    def _setup_speed(self, cfg: TrainConfig) -> None:
        """The CUDA fast paths (each measured in benchmarks/bench_train_speed.py)."""
        cuda = self.device.type == "cuda"
        self.amp_dtype: torch.dtype | None = None
        amp = cfg.amp
        if amp in ("bf16", "fp16") and not cuda:
            raise TrainingError(f"--amp {amp} needs a CUDA device (training on {self.device})")
        if cuda:
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest
            if amp == "auto":
                amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
        # fp16 needs loss scaling to keep small gradients from flushing to zero; bf16 does not.
        self.scaler = (torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16
                       else None)
        is_cnn = any(isinstance(m, nn.Conv2d) for m in self.model.modules())
        self.channels_last = cfg.channels_last == "on" or (
            cfg.channels_last == "auto" and cuda and is_cnn)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward_model: nn.Module = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel
            self.forward_model = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if cuda else None)
        if cfg.compile:
            # CUDA graphs ("reduce-overhead") pay off for small models whose step is bound by
            # kernel-launch latency; bigger ones get the default inductor mode.
            small = sum(p.numel() for p in self.model.parameters()) < 5_000_000
            mode = "reduce-overhead" if cuda and small else None
            self.forward_model = torch.compile(self.forward_model, mode=mode)

    def _to_device(self, x: torch.Tensor, ds: Any) -> torch.Tensor:
        x = x.to(self.device)
        if ds.mean is not None and ds.std is not None and x.dim() == 4:
            mean = torch.tensor(ds.mean, device=self.device).view(1, -1, 1, 1)  # (1, C, 1, 1)
            std = torch.tensor(ds.std, device=self.device).view(1, -1, 1, 1)
            x = (x - mean) / std
        if x.dim() == 4 and getattr(self, "channels_last", False):
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def _restore(self, ckpt: dict[str, Any]) -> None:
        check_state_dict_matches(self.model, ckpt["model"], "checkpoint")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler"):
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self._step = int(ckpt["step"])
        self.start_epoch = int(ckpt["epoch"])
        self._start_step_in_epoch = int(ckpt.get("step_in_epoch", 0))
        self._epoch_gen_state = ckpt["epoch_gen_state"]
        self.generator.set_state(ckpt["epoch_gen_state"])
        torch.set_rng_state(ckpt["torch_rng"])
        if self.device.type == "cuda" and ckpt.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ckpt["cuda_rng"], self.device)
        self.best_value = ckpt.get("best_value")

    def _checkpoint_state(self, epoch: int, step_in_epoch: int) -> dict[str, Any]:
        return {
            "format": 1,
            "tui_nn_version": __version__,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "epoch": epoch,
            "step_in_epoch": step_in_epoch,
            "step": self._step,
            # At an epoch boundary the generator already sits at the next epoch's start.
            "epoch_gen_state": (self.generator.get_state() if step_in_epoch == 0
                                else self._epoch_gen_state),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": (torch.cuda.get_rng_state(self.device)
                         if self.device.type == "cuda" else None),
            "best_value": self.best_value,
            "config": self.config.to_dict(),
            "threads": torch.get_num_threads() if self.device.type == "cpu" else 0,
        }

    def _save(self, epoch: int, step_in_epoch: int, reason: str) -> None:
        if self.run_dir is None:
            return
        try:
            path = atomic_save(self._checkpoint_state(epoch, step_in_epoch),
                               self.run_dir.last_checkpoint)
        except OSError as e:
            raise TrainingError(f"could not write checkpoint in {self.run_dir.path}: "
                                f"{e.strerror or e}", "disk") from None
        self._last_save = time.monotonic()
        self._emit(ev.CheckpointSaved(path=str(path), step=self._step, epoch=epoch, reason=reason))

    def _run(self) -> ev.Finished | ev.Failed:
        t0 = time.monotonic()
        self._setup()
        cfg, task = self.config, self.task
        metric = tasks.metric_name(task)
        self._emit(ev.RunStarted(
            run_dir=str(self.run_dir.path) if self.run_dir else None, model=cfg.model,
            dataset=cfg.dataset, device=str(self.device), device_name=device_name(self.device),
            task=task, metric=metric, n_train=self.dataset.n_train, n_val=self.dataset.n_val,
            epochs=cfg.epochs, batch_size=self.batch_size, steps_per_epoch=self.steps_per_epoch,
            total_steps=self.total_steps, parameters=self._parameters(),
            start_epoch=self.start_epoch, start_step=self._step,
            setup="; ".join(n for n in (self.fit_note, str(self.augment or "")) if n)))

        self._last_save = time.monotonic()
        if cfg.on_nan == "pause" and self.run_dir is not None \
                and not self.run_dir.last_checkpoint.exists():
            # Somewhere to roll back to if the loss goes NaN before the first checkpoint.
            self._save(self.start_epoch, self._start_step_in_epoch, "start")
        session_start_step = self._step
        self._train_time = 0.0
        model, opt, sched = self.model, self.optimizer, self.scheduler
        fwd, amp_dtype, scaler = self.forward_model, self.amp_dtype, self.scaler
        X, Y, n, bs = self.train_x, self.train_y, self.dataset.n_train, self.batch_size
        loss_task, augment = self.loss_task, self.augment
        # A per-step sync is free on the CPU only; under DDP a lone rank must not stop alone.
        check_each_step = self.device.type == "cpu" and not self.dist.enabled
        dist_info = self.dist
        # Under DDP reports (and the stop vote that rides on them) happen at the same steps on
        # every rank, so they are counted in steps rather than seconds.
        report_every = max(1, int(cfg.report_interval_s * 100)) if dist_info.enabled else 0
        stopped = False
        epoch = self.start_epoch
        last_value: float | None = None
        insight = self.insight
        look = insight is not None and insight.monitor is not None  # gradient flow, at reports
        model.train()

        while epoch < cfg.epochs and not stopped:
            epoch_t0 = time.monotonic()
            if self._start_step_in_epoch == 0:
                self._epoch_gen_state = self.generator.get_state()
            perm = torch.randperm(n, generator=self.generator).to(self.device)  # (N,)
            first = self._start_step_in_epoch
            self._start_step_in_epoch = 0
            losses: list[torch.Tensor] = []
            window_t0, window_samples = time.monotonic(), 0
            next_report = window_t0 + cfg.report_interval_s
            epoch_loss_sum = torch.zeros((), device=self.device)
            epoch_terms = 0
            i = first
            self._epoch = epoch
            for i in range(first, self.steps_per_epoch):
                self._step_in_epoch = i  # where a failure mid-step resumes from
                idx = perm[i * bs:(i + 1) * bs]
                global_n = idx.numel()
                if dist_info.enabled:
                    idx = idx.tensor_split(dist_info.world_size)[dist_info.rank]
                xb = X.index_select(0, idx)  # (b, *input_shape)
                yb = Y.index_select(0, idx)
                if augment is not None:
                    xb = augment(xb)  # (b, C, H, W): training batches only, on the device
                if amp_dtype is not None:
                    with torch.autocast(self.device.type, dtype=amp_dtype):
                        out = fwd(xb)
                    out = out.float()  # losses (BCE above all) are computed in fp32
                else:
                    out = fwd(xb)
                if dist_info.enabled:
                    # Sum over this rank's slice / the global count, times world: DDP's mean of
                    # the ranks' gradients is then the gradient of the global batch mean.
                    ls, k = tasks.loss_sum(loss_task, out, yb)
                    terms = global_n * (k // max(idx.numel(), 1)) if idx.numel() else global_n
                    loss = ls * (dist_info.world_size / max(terms, 1))
                else:
                    loss = tasks.loss_mean(loss_task, out, yb)
                if check_each_step and not torch.isfinite(loss):
                    if self._pause_on_nan(epoch, i, float(loss.detach())):
                        self._step += 1  # the skipped batch still counts: steps track position
                        if self._stop.is_set():
                            stopped = True
                            last = i == self.steps_per_epoch - 1
                            self._save(epoch + 1 if last else epoch, 0 if last else i + 1,
                                       "stop")
                            break
                        continue
                opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    if look and self._look_now(epoch, i, report_every, next_report):
                        insight.observe_gradients(epoch, self._step + 1, scaler.get_scale())
                    if cfg.grad_clip:
                        scaler.unscale_(opt)
                        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    scaler.step(opt)
                    scaler.update()
                else:
                    loss.backward()
                    if look and self._look_now(epoch, i, report_every, next_report):
                        insight.observe_gradients(epoch, self._step + 1)
                    if cfg.grad_clip:
                        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    opt.step()
                if sched is not None:
                    sched.step()
                self._step += 1
                detached = loss.detach()
                losses.append(detached)
                # Under DDP each rank adds its share of the global batch mean (summed below).
                epoch_loss_sum += detached * (global_n / dist_info.world_size
                                              if dist_info.enabled else global_n)
                epoch_terms += global_n
                window_samples += global_n

                now = time.monotonic()
                last_in_epoch = i == self.steps_per_epoch - 1
                due = ((i + 1) % report_every == 0) if report_every else now >= next_report
                if due or last_in_epoch:
                    self._report(epoch, i + 1, losses, window_samples, now - window_t0,
                                 session_start_step, t0)
                    if insight is not None and insight.fit_data is not None and insight.due(
                            "fit", last_in_epoch and epoch == cfg.epochs - 1):
                        insight.fit(epoch, self._step)
                    losses = []
                    window_t0, window_samples = time.monotonic(), 0
                    next_report = window_t0 + cfg.report_interval_s
                stop_now = self._stop.is_set()
                if dist_info.enabled:
                    stop_now = (due or last_in_epoch) and any_rank(stop_now, dist_info,
                                                                  self.device)
                if stop_now:
                    stopped = True
                    if losses:
                        self._report(epoch, i + 1, losses, window_samples,
                                     time.monotonic() - window_t0, session_start_step, t0)
                    self._save(epoch if not last_in_epoch else epoch + 1,
                               0 if last_in_epoch else i + 1, "stop")
                    break
                if not self._running.is_set():
                    self._wait_while_paused()
                if self._lr_factor != 1.0:
                    self._apply_lr_factor()
                if self._checkpoint_requested.is_set():
                    self._checkpoint_requested.clear()
                    self._save(epoch, i + 1, "requested")
                elif self._periodic_due(now):
                    self._save(epoch, i + 1, "periodic")
            if stopped and (i < self.steps_per_epoch - 1 or epoch_terms == 0):
                break  # mid-epoch, or nothing trained in it (stopped at a skipped NaN batch)

            if dist_info.enabled:
                epoch_loss_sum = all_sum(epoch_loss_sum, dist_info)
            train_loss = float(epoch_loss_sum) / max(epoch_terms, 1)
            if not math.isfinite(train_loss):
                self._on_nan(epoch, self.steps_per_epoch, train_loss)
            if insight is not None:
                insight.prepare_epoch(final=epoch == cfg.epochs - 1)
            val_loss, value, decoded = self.evaluate()
            last_value = value
            better = (self.best_value is None
                      or (value > self.best_value if tasks.higher_is_better(task)
                          else value < self.best_value))
            if better:
                self.best_value = value
            epoch_time = time.monotonic() - epoch_t0
            em = ev.EpochMetrics(
                epoch=epoch, step=self._step, train_loss=train_loss, val_loss=val_loss,
                metric=metric, value=value, best_value=self.best_value, is_best=better,
                elapsed_s=time.monotonic() - t0, epoch_time_s=epoch_time,
                samples_per_s=epoch_terms / max(epoch_time, 1e-9), decoded=decoded)
            self.history.append(em)
            self._emit(em)
            if insight is not None and insight.collect_now:
                insight.after_epoch(epoch, self._step, self._predictions)
            epoch += 1
            is_last = epoch >= cfg.epochs
            if not stopped and (is_last or time.monotonic() - self._last_save
                                >= _EPOCH_CHECKPOINT_MIN_INTERVAL_S or self._periodic_due()):
                self._save(epoch, 0, "epoch")
            if better and self.run_dir is not None and (is_last or stopped):
                self._save_best()
            elif better and self.run_dir is not None:
                self._best_dirty = True
        if getattr(self, "_best_dirty", False):
            self._save_best()

        finished = ev.Finished(
            status="stopped" if stopped else "finished",
            run_dir=str(self.run_dir.path) if self.run_dir else None, epochs_done=epoch,
            step=self._step, metric=metric, best_value=self.best_value, last_value=last_value,
            elapsed_s=time.monotonic() - t0)
        self._emit(finished)
        return finished

    def _out_of_memory_message(self) -> str:
        """Free what the failed step held, find a batch size whose forward+backward fits, and
        keep the work done so far."""
        bs = getattr(self, "batch_size", None) or self.config.batch_size or 0
        fits = None
        if getattr(self, "optimizer", None) is not None:
            self.optimizer.zero_grad(set_to_none=True)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            fits = self._largest_batch_that_fits(bs)
        saved = ""
        if self.run_dir is not None and getattr(self, "_step", 0) > 0:
            try:
                self._save(self._epoch, self._step_in_epoch, "stop")
                saved = f"; the run so far is saved in {self.run_dir.path}"
            except TrainingError:
                pass
        hint = (f"try --batch-size {fits}" if fits else
                "even batch size 1 does not fit: use a smaller model or --amp bf16")
        return f"out of memory on {self.device} at batch size {bs}: {hint}{saved}"

    def _largest_batch_that_fits(self, bs: int) -> int | None:
        n = self.train_x.shape[0]
        candidate = bs // 2
        while candidate >= 1:
            try:
                idx = torch.arange(min(candidate, n), device=self.device)
                out = self.forward_model(self.train_x.index_select(0, idx))
                tasks.loss_mean(self.loss_task, out.float(),
                                self.train_y.index_select(0, idx)).backward()
                self.optimizer.zero_grad(set_to_none=True)
                return candidate
            except torch.cuda.OutOfMemoryError:
                self.optimizer.zero_grad(set_to_none=True)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                candidate //= 2
        return None

    def _save_best(self) -> None:
        """best.pt holds the weights of the best epoch seen so far (model state only)."""
        self._best_dirty = False
        try:
            atomic_save({"format": 1, "model": self.model.state_dict(),
                         "best_value": self.best_value, "step": self._step,
                         "config": self.config.to_dict()}, self.run_dir.best_checkpoint)
        except OSError as e:
            raise TrainingError(f"could not write {self.run_dir.best_checkpoint}: "
                                f"{e.strerror or e}", "disk") from None
        self._emit(ev.CheckpointSaved(path=str(self.run_dir.best_checkpoint), step=self._step,
                                      epoch=len(self.history), reason="best"))

    def _periodic_due(self, now: float | None = None) -> bool:
        cfg = self.config
        if cfg.checkpoint_every_steps and self._step % cfg.checkpoint_every_steps == 0:
            return True
        if cfg.checkpoint_every_minutes and cfg.checkpoint_every_minutes > 0:
            now = time.monotonic() if now is None else now
            return now - self._last_save >= cfg.checkpoint_every_minutes * 60
        return False

    def _wait_while_paused(self) -> None:
        self._emit(ev.StateChanged("paused"))
        self._running.wait()
        self._emit(ev.StateChanged("running"))

    def _pause_on_nan(self, epoch: int, step_in_epoch: int, value: float) -> bool:
        """on_nan == "pause" (the app): roll the weights, optimizer and schedule back to last.pt
        (the last state whose losses were all finite: weights that give an Inf loss are finite
        but already diverged), keep the current lr, pause, and on resume go on from the next
        batch. Otherwise (or without a run directory) stop as headless does."""
        if self.config.on_nan != "pause" or self.run_dir is None \
                or not self.run_dir.last_checkpoint.exists():
            self._on_nan(epoch, step_in_epoch, value)
        ckpt = load_checkpoint(self.run_dir.last_checkpoint)
        lrs = [{k: g[k] for k in _LR_KEYS if k in g} for g in self.optimizer.param_groups]
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        for group, saved in zip(self.optimizer.param_groups, lrs):
            group.update(saved)  # the user's lr changes since that checkpoint stay
        if self.scheduler is not None and ckpt.get("scheduler"):
            base_lrs = getattr(self.scheduler, "base_lrs", None)
            self.scheduler.load_state_dict(ckpt["scheduler"])
            if base_lrs is not None:
                self.scheduler.base_lrs = base_lrs
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        lr = self.optimizer.param_groups[0]["lr"]
        self._running.clear()  # first: a consumer may resume from inside the event
        self._emit(ev.NonFiniteLoss(
            epoch=epoch, step=self._step + 1, value=value, rolled_back_to=int(ckpt["step"]),
            message=f"loss became {value} at step {self._step + 1} (epoch {epoch + 1}); rolled "
                    f"back to the checkpoint of step {int(ckpt['step'])} and paused: lower the "
                    f"lr (now {lr:.3g}) and resume, or stop"))
        self._wait_while_paused()
        if self._lr_factor != 1.0:
            self._apply_lr_factor()
        return True

    def _apply_lr_factor(self) -> None:
        with self._lr_lock:
            factor, self._lr_factor = self._lr_factor, 1.0
        for group in self.optimizer.param_groups:
            for key in _LR_KEYS:
                if isinstance(group.get(key), float):
                    group[key] *= factor
        if self.scheduler is not None and hasattr(self.scheduler, "base_lrs"):
            self.scheduler.base_lrs = [b * factor for b in self.scheduler.base_lrs]
        self._emit(ev.LrScaled(step=self._step, factor=factor,
                               lr=self.optimizer.param_groups[0]["lr"]))

    def _on_nan(self, epoch: int, step_in_epoch: int, value: float) -> None:
        # An existing last.pt predates the blow-up; the current weights are finite on the CPU
        # (this runs before backward) but may already have diverged, so they are saved only
        # when there is no earlier checkpoint to keep.
        kept = ""
        if self.run_dir is not None and self.run_dir.last_checkpoint.exists():
            kept = f"; {self.run_dir.last_checkpoint} keeps the last checkpoint before it"
        elif self.device.type == "cpu":
            self._save(epoch, step_in_epoch, "stop")
        raise TrainingError(
            f"loss became {value} at step {self._step + 1} (epoch {epoch + 1}): "
            f"try a lower --lr (now {self.config.lr}) or --grad-clip 1.0{kept}", "nan")

    def _report(self, epoch: int, epoch_step: int, losses: list[torch.Tensor], samples: int,
                seconds: float, session_start_step: int, t0: float) -> None:
        stacked = torch.stack(losses)
        if self.dist.enabled:
            stacked = all_mean(stacked, self.dist)  # the global batch's loss at each step
        values = stacked.tolist()  # the one host sync per report
        if not all(math.isfinite(v) for v in values):
            self._on_nan(epoch, epoch_step, next(v for v in values if not math.isfinite(v)))
        done = self._step - session_start_step
        elapsed = time.monotonic() - t0
        remaining = self.total_steps - self._step
        eta = elapsed / done * remaining if done else None
        self._emit(ev.StepMetrics(
            epoch=epoch, step=self._step, first_step=self._step - len(values) + 1,
            losses=tuple(values), lr=self.optimizer.param_groups[0]["lr"],
            samples_per_s=samples / max(seconds, 1e-9), eta_s=eta, epoch_step=epoch_step,
            steps_per_epoch=self.steps_per_epoch, total_steps=self.total_steps,
            memory_bytes=memory_in_use(self.device)))

    def _look_now(self, epoch: int, i: int, report_every: int, next_report: float) -> bool:
        """Read the gradients at step i (0-based in its epoch)? When the step will end with a
        report (the rule in _run), at most once per report interval, and at the last step."""
        last = i == self.steps_per_epoch - 1
        report = last or (((i + 1) % report_every == 0) if report_every
                          else time.monotonic() >= next_report)
        return report and self.insight.due(
            "gradients", last and epoch == self.config.epochs - 1)

    def evaluate(self) -> tuple[float, float, str | None]:
        """Validation loss and metric, in large batches without autograd. With the insight
        hooks' val_predictions on, the same outputs also become self._predictions."""
        task, model = self.task, self.model
        collect = self.insight is not None and self.insight.collect_now
        if collect:
            from tui_nn.insight.classify import Predictions, predictions_from_output
        parts = []
        was_training = model.training
        model.eval()
        loss_total = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        terms = 0
        vbs = self.config.val_batch_size
        decoded = None
        val_x, val_y = self.val_x, self.val_y
        if self.dist.enabled:  # each rank scores its shard; the sums are added up below
            val_x = val_x.tensor_split(self.dist.world_size)[self.dist.rank]
            val_y = val_y.tensor_split(self.dist.world_size)[self.dist.rank]
        try:
            with torch.inference_mode():
                for s in range(0, val_x.shape[0], vbs):
                    if self.amp_dtype is not None:
                        with torch.autocast(self.device.type, dtype=self.amp_dtype):
                            out = model(val_x[s:s + vbs])
                        out = out.float()
                    else:
                        out = model(val_x[s:s + vbs])
                    yb = val_y[s:s + vbs]
                    ls, k = tasks.loss_sum(self.loss_task, out, yb)
                    loss_total += ls
                    terms += k
                    if task != "regression":
                        correct += tasks.correct_count(self.loss_task, out, yb)
                    if collect:
                        parts.append(predictions_from_output(
                            tasks.probabilities(self.loss_task, out), yb))
                    if task == "sequence" and s == 0 and self.dataset.labels:
                        ids = out[0].argmax(dim=-1).tolist()
                        decoded = "".join(self.dataset.labels[j] for j in ids)
        finally:
            model.train(was_training)
        if collect:
            self._predictions = Predictions.cat(parts)
        if self.dist.enabled:
            loss_total = all_sum(loss_total, self.dist)
            correct = all_sum(correct, self.dist)
            terms = int(all_sum(torch.tensor(terms, device=self.device), self.dist))
        val_loss = float(loss_total) / max(terms, 1)
        value = val_loss if task == "regression" else int(correct) / max(terms, 1)
        return val_loss, value, decoded


def _data_error_types() -> tuple[type[BaseException], ...]:
    from tui_nn.zoo import UnknownModelError
    try:
        from tui_nn.data.base import DataError
    except ImportError:  # pragma: no cover
        return (UnknownModelError,)
    return (DataError, UnknownModelError)


def _shape(t: torch.Tensor) -> str:
    return "×".join(str(d) for d in t.shape) or "scalar"


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__
