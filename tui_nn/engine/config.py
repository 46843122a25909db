"""Training configuration: what the user asked for, then resolved against the model's defaults."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop")
SCHEDULES = ("none", "step", "cosine", "onecycle")
AMP_MODES = ("off", "auto", "bf16", "fp16")
MAX_THREADS = 1024  # far above any CPU; beyond int32 torch.set_num_threads would overflow


class ConfigError(ValueError):
    """A bad setting; the message is shown to the user as one line."""


# What a resume does with a field (its "resume" metadata; "fixed" when it has none):
#   fixed       the run fixes it (the data, the model, the optimizer state's meaning): a resume
#               asking for another value is refused
#   changeable  a resume may change it; the change is recorded in its RunStarted
#   process     how this process runs, not what it computes: a resume takes it from the
#               current config whatever the run started with (a change is recorded)
#   quiet       as process, and not recorded (how the run is watched; where runs are kept)
#   place       the run's own directory: a resume keeps the run's, never asks for another
RESUME_ROLES = ("fixed", "changeable", "process", "quiet", "place")


def on_resume(role: str) -> dict[str, Any]:
    """A field's role on a resume, as metadata (option() adds it to an option's)."""
    if role not in RESUME_ROLES:  # a typo would make the field silently fixed
        raise ValueError(f"unknown resume role {role!r}: one of {', '.join(RESUME_ROLES)}")
    return {"resume": role}


def option(flag: str, help: str, *, short: str | None = None, panel: str = "Optimisation",
           choices: tuple[str, ...] | None = None, form: bool = False,
           metavar: str | None = None, resume: str = "fixed") -> dict[str, Any]:
    """A field's command-line option: `tui-nn train` and `tui-nn tui` get every field that has
    one, the app's form those with form=True (tui_nn/commands/options.py turns these into
    Typer options; choices are listed in --help); resume: its role on a resume (above)."""
    return {"option": {"flag": flag, "short": short, "help": help, "panel": panel,
                       "choices": choices, "form": form, "metavar": metavar},
            **on_resume(resume)}


@dataclass(frozen=True)
class TrainConfig:
    """A training run. None means 'the model's default' (see zoo.TrainDefaults).

    A field with option(...) metadata is a command-line option; a new option is one field.
    Its role on a resume is metadata too (option(resume=...), on_resume(...)): a new field is
    fixed by the run unless it says otherwise."""

    model: str
    dataset: str | None = field(default=None, metadata=option(
        "--dataset", "Dataset name, csv:PATH, folder:PATH, longrange:LEN, or your own "
        "Dataset as FILE.py:build (default: the model's).", short="-d", panel="Data", form=True))
    data_dir: str | None = field(default=None, metadata=option(
        "--data-dir", "Where torchvision datasets live (default $TUI_NN_DATA or ./data).",
        panel="Data", resume="changeable"))
    augment: str = field(default="", metadata=option(
        "--augment", "Augment training images on the device, comma-separated: crop=2, flip, "
        "rotate=10, scale=0.1, jitter=0.2, blur=1, noise=0.1 (e.g. crop=2,flip), or a preset "
        "(digits, photos).", panel="Data", metavar="SPEC",
        resume="changeable"))  # never applied to validation (tui_nn/data/augment.py)
    workers: int = field(default=-1, metadata=option(
        "--workers", "DataLoader worker processes for your own Dataset (FILE.py:build): -1 "
        "from the CPU cores, 0 loads in the training process.", panel="Data", resume="process"))
    memory_budget: str = field(default="", metadata=option(
        "--memory-budget", "An image folder whose decoded pixels pass this (e.g. 2GiB) is "
        "decoded once into a cache file and read from it by batch (default: half the free "
        "memory).", panel="Data", metavar="SIZE", resume="process"))
    strict: bool = field(default=False, metadata=option(
        "--strict", "Stop (exit 2) at an image of a folder that cannot be read, rather than "
        "skip it and list it in the run's log.", panel="Data", resume="process"))
    epochs: int | None = field(default=None, metadata=option(
        "--epochs", "Epochs (default: the model's).", short="-e", form=True, resume="changeable"))
    batch_size: int | None = field(default=None, metadata=option(
        "--batch-size", "Batch size (the global batch under DDP).", short="-b", form=True))
    lr: float | None = field(default=None, metadata=option(
        "--lr", "Learning rate.", form=True, resume="changeable"))
    optimizer: str | None = field(default=None, metadata=option(
        "--optimizer", "The optimizer.", short="-o", choices=OPTIMIZERS, form=True))
    momentum: float | None = field(default=None, metadata=option(
        "--momentum", "SGD/RMSprop momentum."))
    weight_decay: float = field(default=0.0, metadata=option(
        "--weight-decay", "L2 weight decay."))
    schedule: str = field(default="none", metadata=option(
        "--schedule", "lr schedule.", choices=SCHEDULES, form=True))
    grad_clip: float | None = field(default=None, metadata=option(
        "--grad-clip", "Clip the global gradient norm to this.",
        resume="changeable"))  # None = off
    device: str = field(default="auto", metadata=option(
        "--device", "auto, cpu, cuda, cuda:N or mps.", panel="Hardware", resume="process"))
    seed: int = field(default=0, metadata=option(
        "--seed", "Random seed (runs on the CPU are reproducible).", panel="Run"))
    run_dir: str | None = field(default=None, metadata=option(
        "--run-dir", "Run directory (default runs/<time>-<model>-<data>); refused if it holds "
        "a run.", panel="Run", resume="place"))
    runs_root: str = field(default="runs", metadata=on_resume("quiet"))  # parent of new runs
    save: bool = field(default=True, metadata=on_resume("quiet"))  # False: no run directory
    # 0: by device (validation_batch_size); validation's batch does not change the result.
    val_batch_size: int = field(default=0, metadata=on_resume("changeable"))
    checkpoint_every_steps: int = field(default=0, metadata=option(
        "--checkpoint-every", "Also checkpoint every N steps (0: step 0, epoch ends, every 5 "
        "minutes and on stop).", panel="Run", resume="changeable"))
    checkpoint_every_minutes: float = field(default=5.0, metadata=on_resume("changeable"))
    # How often step losses are read back from the device.
    report_interval_s: float = field(default=0.2, metadata=on_resume("quiet"))
    # Allow torchvision downloads when the data is missing.
    download: bool = field(default=True, metadata=on_resume("changeable"))
    amp: str = field(default="off", metadata=option(
        "--amp", "CUDA mixed precision (fp16 uses a GradScaler).", choices=AMP_MODES,
        panel="Hardware", resume="changeable"))
    compile: bool = field(default=False, metadata=option(
        "--compile", "torch.compile the model, on the CPU or CUDA (CUDA graphs for small "
        "models on CUDA); the first steps wait for the compiler.",
        panel="Hardware", resume="changeable"))
    channels_last: str = field(default="auto", metadata=option(
        "--channels-last", "auto (CNNs on CUDA), on or off.", choices=("auto", "on", "off"),
        panel="Hardware", resume="changeable"))
    threads: int = field(default=0, metadata=option(
        "--threads", "CPU threads (0: pick the faster of 1 and all by timing).",
        panel="Hardware", resume="changeable"))
    # Also write TensorBoard events when the package is installed.
    tensorboard: bool = field(default=True, metadata=on_resume("quiet"))
    # Serve the run's control channel (engine/channel.py).
    control: bool = field(default=True, metadata=on_resume("quiet"))
    # NaN/Inf loss: "stop" checkpoints the last good state and fails (headless); "pause" keeps
    # the run alive, paused on the last good weights (the app). Per-step detection, and so
    # "pause", needs the per-step check the CPU does; elsewhere a NaN always stops the run.
    on_nan: str = field(default="stop", metadata=on_resume("quiet"))
    # Live insight events (the app turns them on; see tui_nn/engine/insight_hooks.py). Read-only
    # looks at the run: they never change what it computes.
    # Per-layer gradient norms at report time (ev.GradientFlow).
    grad_flow: bool = field(default=False, metadata=on_resume("quiet"))
    # 1-D models: data + prediction line at report time (ev.FitUpdate).
    live_fit: bool = field(default=False, metadata=on_resume("quiet"))
    # Classifiers: confusion matrix + images per epoch.
    val_predictions: bool = field(default=False, metadata=on_resume("quiet"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def resolved(self, defaults: Any, default_dataset: str) -> "TrainConfig":
        """Fill None fields from the zoo's TrainDefaults and validate everything."""
        cfg = replace(
            self,
            dataset=self.dataset or default_dataset,
            epochs=self.epochs if self.epochs is not None else defaults.epochs,
            batch_size=self.batch_size if self.batch_size is not None else defaults.batch_size,
            lr=self.lr if self.lr is not None else defaults.lr,
            optimizer=(self.optimizer or defaults.optimizer).lower(),
            momentum=self.momentum if self.momentum is not None else defaults.momentum,
            schedule=(self.schedule or "none").lower(),
        )
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.epochs is not None and (not isinstance(self.epochs, int) or self.epochs < 1):
            raise ConfigError(f"--epochs must be an integer ≥ 1 (got {self.epochs})")
        if self.batch_size is not None and (not isinstance(self.batch_size, int)
                                            or self.batch_size < 1):
            raise ConfigError(f"--batch-size must be an integer ≥ 1 (got {self.batch_size})")
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr)
                                        and self.lr > 0):
            raise ConfigError(f"--lr must be a number > 0 (got {self.lr})")
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer '{self.optimizer}': choose one of "
                              f"{', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule '{self.schedule}': choose one of "
                              f"{', '.join(SCHEDULES)}")
        if self.momentum is not None and not (0 <= self.momentum < 1):
            raise ConfigError(f"--momentum must be in [0, 1) (got {self.momentum})")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"--weight-decay must be ≥ 0 (got {self.weight_decay})")
        if self.grad_clip is not None and not (math.isfinite(self.grad_clip) and self.grad_clip > 0):
            raise ConfigError(f"--grad-clip must be > 0 (got {self.grad_clip})")
        if self.val_batch_size < 0:
            raise ConfigError(f"validation batch size must be ≥ 1, or 0 for the device's default "
                              f"(got {self.val_batch_size})")
        if self.amp not in AMP_MODES:
            raise ConfigError(f"unknown --amp '{self.amp}': choose one of {', '.join(AMP_MODES)}")
        if self.channels_last not in ("auto", "on", "off"):
            raise ConfigError(f"--channels-last must be auto, on or off (got {self.channels_last})")
        if self.on_nan not in ("stop", "pause"):
            raise ConfigError(f"on_nan must be stop or pause (got {self.on_nan})")
        if not 0 <= self.threads <= MAX_THREADS:
            raise ConfigError(f"--threads must be in 0..{MAX_THREADS} (got {self.threads}; "
                              "0 picks automatically)")
        if not 0 <= self.seed < 2**63:  # torch.manual_seed takes a 64-bit integer
            raise ConfigError(f"--seed must be an integer in 0..2^63-1 (got {self.seed})")
        if self.augment:
            from tui_nn.data.augment_spec import AugmentError, parse_augment
            try:
                parse_augment(self.augment)
            except AugmentError as e:
                raise ConfigError(str(e)) from None
        if self.memory_budget:
            from tui_nn.fmt import parse_size
            try:
                parse_size(self.memory_budget)
            except ValueError as e:
                raise ConfigError(f"--memory-budget: {e}") from None
        if not -1 <= self.workers <= 256:
            raise ConfigError(f"--workers must be in 0..256, or -1 for one per free core "
                              f"(got {self.workers})")
        if self.checkpoint_every_steps < 0:
            raise ConfigError(f"--checkpoint-every must be ≥ 0 steps "
                              f"(got {self.checkpoint_every_steps})")


# ---- resuming --------------------------------------------------------------------------------
def fields_on_resume(*roles: str) -> tuple[str, ...]:
    """The TrainConfig fields whose resume role is one of roles (see RESUME_ROLES)."""
    return tuple(f.name for f in fields(TrainConfig)
                 if f.metadata.get("resume", "fixed") in roles)


# Settings a resumed run may change (they do not change what the checkpoint's state means).
CHANGEABLE_ON_RESUME = fields_on_resume("changeable", "process", "quiet")
# Taken from this process on a resume; of those, the ones whose change is not recorded.
THIS_PROCESS, UNRECORDED = fields_on_resume("process", "quiet"), fields_on_resume("quiet")


def flag(field_name: str) -> str:
    """The command-line name of a TrainConfig field ('--batch-size'; MODEL)."""
    if field_name == "model":
        return "MODEL"
    spec = OPTION_FIELDS.get(field_name)
    return spec["flag"] if spec else "--" + field_name.replace("_", "-")


def requested_fields(cfg: TrainConfig) -> dict[str, Any]:
    """The settings of cfg that differ from TrainConfig's defaults: what a resume was asked to
    change (the model name counts only when given)."""
    out = {}
    for f in fields(TrainConfig):
        if f.name == "model" or f.metadata.get("resume") == "place":
            continue
        value = getattr(cfg, f.name)
        if value is not None and value != f.default:
            out[f.name] = value
    if cfg.model and cfg.model != "?":
        out["model"] = cfg.model
    return out


def resume_config(saved: TrainConfig, requested: dict[str, Any], run_dir: str,
                  epochs_done: int, finished: bool) -> tuple[TrainConfig, dict[str, list]]:
    """The config a resumed run trains with, and what changed ({name: [old, new]}).

    Raises ConfigError for a fixed setting asked to differ, and for a finished run that is
    not extended."""
    # Anything not known to be changeable is fixed (a new option is safe by default).
    fixed = [f"{flag(k)} {v} (the run has {getattr(saved, k)})" for k, v in requested.items()
             if k not in CHANGEABLE_ON_RESUME and v != getattr(saved, k, v)]
    if fixed:
        raise ConfigError(f"cannot change {'; '.join(fixed)} when resuming {run_dir}: they are "
                          "fixed by the run; start a new run for them")
    epochs = requested.get("epochs")
    if finished and (epochs is None or epochs <= epochs_done):
        raise ConfigError(
            f"{run_dir} is finished ({epochs_done} epochs): train it further with "
            f"`--resume {run_dir} --epochs N` (N > {epochs_done})")
    if epochs is not None and epochs <= epochs_done:
        raise ConfigError(f"--epochs {epochs}: {run_dir} has already trained {epochs_done} "
                          f"epochs; give more than {epochs_done}")
    changes = {k: [getattr(saved, k), v] for k, v in requested.items()
               if k in CHANGEABLE_ON_RESUME and v != getattr(saved, k)}
    cfg = replace(saved, run_dir=run_dir, **{k: v[1] for k, v in changes.items()})
    cfg.validate()
    return cfg, changes


# field name -> its option(...) spec, in declaration order (the CLI, train_argv and the form).
OPTION_FIELDS: dict[str, dict[str, Any]] = {
    f.name: f.metadata["option"] for f in fields(TrainConfig) if "option" in f.metadata}
FORM_FIELDS = tuple(name for name, spec in OPTION_FIELDS.items() if spec["form"])
