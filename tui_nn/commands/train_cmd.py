"""`tui-nn train --headless`: validation of arguments, signals, console output, exit codes."""

from __future__ import annotations

import signal
import sys
from typing import Any

from tui_nn.textsafe import error as _err, first_line  # messages quote paths and names

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# Failed kinds that mean what was given cannot train (flags, files, a model that does not fit
# the data, a device or checkpoint that is not there): exit 2 like a bad flag. The others
# ("nan", "oom", "disk", "error") are a run that failed: exit 1. README: Exit codes.
INPUT_KINDS = frozenset({"usage", "data", "shape", "fit", "checkpoint"})


def run_training(model: str | None, options: dict[str, Any], *, resume: str | None = None,
                 debug: bool = False, out=None, freeze_imports: bool = False) -> int:
    """Headless training. With resume, options hold only what the user typed (what the resume
    is asked to change) and model may be None (the run's own). freeze_imports: the process
    is ours alone (the CLI), so the objects alive before training are frozen out of the cyclic
    collector: torch's import leaves ~3e5 of them, and every generation-2 collection during
    the run would walk them all (0.17-0.19 s each, holding the GIL; tui/bridge.py does the
    same for the app)."""
    from tui_nn.engine import ConfigError, Trainer
    from tui_nn.engine.rundir import RunDirError
    from tui_nn.zoo import UnknownModelError

    try:
        cfg = _checked_config(model, options, resume)
    except (ConfigError, UnknownModelError, ValueError, RunDirError) as e:
        _err(str(e))
        if debug:
            import traceback
            traceback.print_exc()
        return EXIT_USAGE

    out = out or sys.stdout
    from tui_nn.commands.console import PlainReporter, RichReporter
    from tui_nn.engine.distributed import DistInfo
    processes = DistInfo.from_env().world_size  # under torchrun: the run's first line says so
    reporter = (RichReporter(out, processes=processes) if out.isatty()
                else PlainReporter(out, processes=processes))
    trainer = Trainer(cfg, reporter, resume_from=resume)

    from tui_nn.engine.stop_signals import StopOnSignals
    # First SIGINT/SIGTERM/SIGHUP: stop at the end of this step and checkpoint it; a step that
    # does not end within the grace period, or a second signal, ends the process without it.
    signals = StopOnSignals(trainer.stop, lambda signum, why: _give_up(trainer, signum, why))
    if freeze_imports:
        import gc
        gc.freeze()
    try:
        with signals:
            result = trainer.run()
    finally:
        reporter.close()
    return _exit_code(result, signals.received, trainer.config.lr, debug)


def _checked_config(model: str | None, options: dict[str, Any], resume: str | None):
    """The run's TrainConfig, every input checked before anything is written (raises the
    usage errors run_training turns into exit 2)."""
    from tui_nn.engine import TrainConfig
    from tui_nn.engine.device import resolve_device
    from tui_nn.engine.rundir import check_new_run_dir

    cfg = TrainConfig(model=model or "", **{k: v for k, v in options.items() if v is not None})
    cfg.validate()
    if resume is None:
        _check_model(model, cfg.dataset)
        if cfg.run_dir:
            check_new_run_dir(cfg.run_dir)
    else:
        import os

        from tui_nn.engine.resume import check_resume
        check_resume(resume, {**options, **({"model": model} if model else {})},
                     check_lock=os.environ.get("RANK", "0") == "0")
    if cfg.dataset:
        _check_dataset_name(cfg.dataset)
    resolve_device(cfg.device)  # an unknown or absent device is a usage error
    return cfg


def _exit_code(result, received: list[int], lr: float, debug: bool) -> int:
    """The exit-code table (README): 0 ok, 1 failed, 2 input error, 128+n a signal."""
    from tui_nn.engine import events as ev

    if isinstance(result, ev.Failed) and result.kind == "interrupted" and received:
        _err(result.message)  # stopped before its first step: nothing to resume
        return 128 + received[0]
    if isinstance(result, ev.Failed):
        _err(result.message)
        if debug and result.details.get("traceback"):
            print(result.details["traceback"], file=sys.stderr)
        if result.kind in INPUT_KINDS:
            return EXIT_USAGE
        if result.run_dir:
            print(f"run directory: {result.run_dir}", file=sys.stderr)
            if result.step:
                _print_resume_hint(result.run_dir, nan_lr=lr if result.kind == "nan" else None)
        return EXIT_FAILED
    if received:
        if result.run_dir:
            _print_resume_hint(result.run_dir)
        return 128 + received[0]
    return EXIT_OK


def _give_up(trainer, signum: int, why: str) -> None:
    """End the process now, from the signal thread: the training thread is stuck in its step.
    The last checkpoint was written whole (checkpoints are renamed into place), so it is kept;
    the run reads as interrupted and resumes from it."""
    import contextlib
    import os
    run_dir = trainer.run_dir.path if trainer.run_dir is not None else None
    step = trainer.state.last_saved_step
    saved = run_dir is not None and step is not None
    _err(f"stopped without waiting for the step: {why}"
         + (f"; the checkpoint of step {step} in {run_dir} is kept" if saved else ""))
    if saved:
        _print_resume_hint(str(run_dir))
    if run_dir is not None:  # the channel's thread is not asked: it goes with the process
        from tui_nn.engine.channel import SOCKET_FILE
        with contextlib.suppress(OSError):
            (run_dir / SOCKET_FILE).unlink()
    sys.stdout.flush()
    os._exit(128 + signum)


def _print_resume_hint(run_dir: str, nan_lr: float | None = None) -> None:
    """After a NaN/inf the same lr would blow up again: the command halves it."""
    from tui_nn.engine.recovery import halved_lr
    from tui_nn.engine.resume import resume_command
    lower = f" --lr {halved_lr(nan_lr)}" if nan_lr else ""
    print(f"continue with: {resume_command(run_dir)}{lower}", file=sys.stderr, flush=True)


def _check_model(model: str | None, dataset: str | None) -> None:
    """A zoo name, or a source the shape inspector's loader can build (checked on meta)."""
    from tui_nn.zoo import MODELS
    if model in MODELS:
        return
    from tui_nn.zoo.sources import SourceError, load_model
    try:
        load_model(model, device="meta")
    except SourceError as e:
        raise ValueError(str(e)) from None
    if not dataset:
        raise ValueError(f"--dataset is needed to train {model} (only zoo models have a "
                         "default dataset)")


def _check_dataset_name(name: str) -> None:
    """The registry's own resolution (a name, an alias, a prefix or a bare path), so the
    command accepts exactly what training will load."""
    from tui_nn.data.base import DataError
    from tui_nn.data.registry import resolve_spec
    try:
        resolve_spec(name)
    except DataError as e:
        raise ValueError(str(e)) from None


def train_argv(model: str | None, options: dict[str, Any], *, resume: str | None,
               debug: bool) -> list[str]:
    """The `tui-nn train` arguments that reproduce these options (for the torchrun workers);
    the flags are TrainConfig's own (engine/config.py option fields)."""
    from tui_nn.engine.config import OPTION_FIELDS
    argv = [model] if model else []
    for key, spec in OPTION_FIELDS.items():
        value = options.get(key)
        if isinstance(value, bool):
            argv += [spec["flag"]] if value else []
        elif value is not None and value != "":
            argv += [spec["flag"], str(value)]
    if resume:
        argv += ["--resume", resume]
    if debug:
        argv.append("--debug")
    return argv + ["--headless"]


def launch_distributed(model: str | None, options: dict[str, Any], *, resume: str | None, debug: bool,
                       nproc_per_node: int, nnodes: str | None, node_rank: int | None,
                       rdzv_endpoint: str | None, rdzv_id: str | None) -> int:
    """Start one `tui-nn train` per process through PyTorch's own launcher (torchrun)."""
    if nproc_per_node < 1:
        _err(f"--nproc-per-node must be ≥ 1 (got {nproc_per_node})")
        return EXIT_USAGE
    from tui_nn.engine import ConfigError, TrainConfig
    from tui_nn.zoo import UnknownModelError, get_model_spec
    try:
        TrainConfig(model=model or "",
                    **{k: v for k, v in options.items() if v is not None}).validate()
        if resume is None:
            get_model_spec(model)
    except (ConfigError, UnknownModelError) as e:
        _err(str(e))
        return EXIT_USAGE
    if options.get("run_dir") is None and resume is None:
        # Every rank must agree on the run directory; rank 0 alone writes it.
        from tui_nn.engine.rundir import new_run_path
        options = {**options, "run_dir": str(new_run_path(
            options.get("runs_root") or "runs", model,
            options.get("dataset") or get_model_spec(model).default_dataset))}
    from tui_nn.engine.distributed import torchrun_argv
    argv = torchrun_argv(nproc_per_node, nnodes, node_rank, rdzv_endpoint, rdzv_id,
                         train_argv(model, options, resume=resume, debug=debug))
    from torch.distributed.run import main as torchrun_main
    try:
        torchrun_main(argv)
    except SystemExit as e:
        return int(e.code or 0)
    except Exception as e:  # noqa: BLE001 - torchrun's ChildFailedError carries the rank's exit
        code = _worker_exit_code(e)
        if code is not None:  # the rank said what went wrong; its code is the run's
            return code
        _err(f"distributed run failed: {first_line(e)}")
        return EXIT_FAILED
    return EXIT_OK


def _worker_exit_code(error: Exception) -> int | None:
    """The exit code of the rank whose failure ended the run (a usage error stays 2 under
    torchrun, a signal 128+n), or None when torchrun's error names no rank's exit. Once one
    rank fails, torchrun sends SIGTERM to the others, so a rank that ended on SIGTERM (143, or
    -15 when it died of it) is a bystander whenever another rank failed otherwise; among
    the rest, the earliest (torchrun's timestamps are whole seconds), then the lowest rank."""
    failures = getattr(error, "failures", None)
    if not isinstance(failures, dict) or not failures:
        return None

    def order(rank):
        failure = failures[rank]
        terminated = getattr(failure, "exitcode", None) in (128 + signal.SIGTERM, -signal.SIGTERM)
        return terminated, getattr(failure, "timestamp", 0), rank

    code = getattr(failures[min(failures, key=order)], "exitcode", None)
    if not isinstance(code, int) or code == 0:
        return None
    return 128 - code if code < 0 else code  # torchrun reports a signal n as -n
