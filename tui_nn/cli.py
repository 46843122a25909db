"""The `tui-nn` command line. torch and textual are imported inside commands so that
`tui-nn --help` stays fast."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from tui_nn import __version__

app = typer.Typer(
    name="tui-nn",
    help="Train and understand PyTorch models from the terminal.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _die(message: str, code: int = 2) -> "typer.Exit":
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tui-nn {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """With no command, open the app."""
    if ctx.invoked_subcommand is None:
        _open_app(None, {})


def _open_app(model: Optional[str], train_options: dict, *, start: bool = False,
              resume: Optional[str] = None, input_text: Optional[str] = None) -> None:
    try:
        from tui_nn.tui.app import make_app
    except ImportError:
        raise _die("the terminal app is not available in this build; use "
                   "`tui-nn train MODEL --headless`", 2) from None
    from tui_nn.tui.exits import run_app
    code = run_app(make_app(model=model, train_options=train_options, start=start, resume=resume,
                            input_text=input_text))
    if code:  # 128+signal after a signal, 1 after a crash
        raise typer.Exit(code)


def _check_options(model: Optional[str], options: dict) -> None:
    """Bad numbers and names fail here, with the headless command's message, before the app
    opens (inside it they would only be a notification)."""
    from tui_nn.engine.config import ConfigError, TrainConfig
    from tui_nn.zoo.names import ZOO_NAMES, looks_like_source, unknown_model_message

    if model is not None and model not in ZOO_NAMES and not looks_like_source(model):
        raise _die(f"{unknown_model_message(model)}; or give path/to/model.py:Class or "
                   "package.module:factory")
    try:
        TrainConfig(model=model or "?", **{k: v for k, v in options.items()
                                          if v is not None}).validate()
    except ConfigError as e:
        raise _die(str(e)) from None


@app.command("models")
def models_cmd() -> None:
    """List the model zoo: name, description, input shape, default dataset, parameters."""
    from tui_nn.report.tables import models_table
    typer.echo(models_table(), nl=False)


@app.command("datasets")
def datasets_cmd() -> None:
    """List the datasets: embedded ones are generated in code (no download)."""
    from tui_nn.report.tables import datasets_table
    typer.echo(datasets_table(), nl=False)


# Options shared by `train` and `tui` (the app's form starts from them).
DatasetOpt = Annotated[Optional[str], typer.Option(
    "--dataset", "-d", help="Dataset name, csv:PATH, folder:PATH (default: the model's).")]
EpochsOpt = Annotated[Optional[int], typer.Option("--epochs", "-e",
                                                  help="Epochs (default: model's).")]
BatchOpt = Annotated[Optional[int], typer.Option("--batch-size", "-b", help="Batch size.")]
LrOpt = Annotated[Optional[float], typer.Option("--lr", help="Learning rate.")]
OptimizerOpt = Annotated[Optional[str], typer.Option(
    "--optimizer", "-o", help="sgd, momentum, nesterov, adam, adamw or rmsprop.")]
ScheduleOpt = Annotated[str, typer.Option("--schedule",
                                          help="lr schedule: none, step, cosine or onecycle.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
SeedOpt = Annotated[int, typer.Option("--seed",
                                      help="Random seed (runs on the CPU are reproducible).")]
ResumeOpt = Annotated[Optional[str], typer.Option(
    "--resume", help="Continue the run in this run directory.")]
AmpOpt = Annotated[str, typer.Option("--amp",
                                     help="CUDA mixed precision: off, auto, bf16, fp16.")]
ThreadsOpt = Annotated[int, typer.Option(
    "--threads", help="CPU threads (0: pick the faster of 1 and all by timing).")]


def _check_resume(resume: Optional[str], requested: Optional[dict] = None) -> None:
    """The same checks as headless training, before the app opens (torch-free)."""
    if resume is None:
        return
    from tui_nn.engine.config import ConfigError
    from tui_nn.engine.resume import check_resume
    try:
        check_resume(resume, requested or {})
    except ConfigError as e:
        raise _die(str(e)) from None


def _given(ctx: typer.Context, options: dict) -> dict:
    """The options the user typed (not Typer's defaults): what a resume is asked to change."""
    names = {"checkpoint_every_steps": "checkpoint_every", "compile": "compile_"}

    def typed(name: str) -> bool:
        source = ctx.get_parameter_source(names.get(name, name))
        return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")

    return {k: v for k, v in options.items() if typed(k)}


@app.command("train")
def train_cmd(
    ctx: typer.Context,
    model: Optional[str] = typer.Argument(
        None, help="Zoo model name (see `tui-nn models`), path/to/model.py:Class or "
                   "module:factory; left out with --resume (the run's own)."),
    dataset: DatasetOpt = None,
    data_dir: Optional[str] = typer.Option(None, "--data-dir",
                                           help="Where torchvision datasets live "
                                                "(default $TUI_NN_DATA or ./data)."),
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    lr: LrOpt = None,
    optimizer: OptimizerOpt = None,
    momentum: Optional[float] = typer.Option(None, "--momentum", help="SGD/RMSprop momentum."),
    weight_decay: float = typer.Option(0.0, "--weight-decay", help="L2 weight decay."),
    augment: Optional[str] = typer.Option(
        None, "--augment", metavar="SPEC",
        help="Augment training images on the device: crop=2,flip,rotate=10,scale=0.1,"
             "jitter=0.2,blur=1,noise=0.1 or a preset (digits, photos)."),
    schedule: ScheduleOpt = "none",
    grad_clip: Optional[float] = typer.Option(None, "--grad-clip",
                                              help="Clip the global gradient norm to this."),
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    run_dir: Optional[str] = typer.Option(None, "--run-dir",
                                          help="Run directory (default runs/<time>-<model>-<data>)."),
    resume: ResumeOpt = None,
    checkpoint_every: int = typer.Option(0, "--checkpoint-every",
                                         help="Also checkpoint every N steps (0: epoch ends, "
                                              "every 5 minutes and on stop)."),
    amp: AmpOpt = "off",
    compile_: bool = typer.Option(False, "--compile",
                                  help="torch.compile the model (CUDA graphs for small models)."),
    channels_last: str = typer.Option("auto", "--channels-last",
                                      help="auto (CNNs on CUDA), on or off."),
    threads: ThreadsOpt = 0,
    headless: bool = typer.Option(False, "--headless",
                                  help="Train in this terminal without the app."),
    nproc_per_node: Optional[int] = typer.Option(
        None, "--nproc-per-node", help="DDP: processes (GPUs) on this machine, via torchrun."),
    nnodes: Optional[str] = typer.Option(None, "--nnodes", help="DDP: number of machines."),
    node_rank: Optional[int] = typer.Option(None, "--node-rank", help="DDP: this machine's rank."),
    rdzv_endpoint: Optional[str] = typer.Option(None, "--rdzv-endpoint",
                                                help="DDP: HOST:PORT of the rendezvous."),
    rdzv_id: Optional[str] = typer.Option(None, "--rdzv-id", help="DDP: a job id shared by nodes."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Train a model: in the app (it starts at once) on a terminal, or with --headless (and
    whenever output is not a terminal) with progress lines for logs.

    --batch-size is the global batch; with --nproc-per-node N it is split across N processes."""
    options = dict(dataset=dataset, data_dir=data_dir, epochs=epochs, batch_size=batch_size,
                   lr=lr, optimizer=optimizer, momentum=momentum, weight_decay=weight_decay,
                   augment=augment, schedule=schedule, grad_clip=grad_clip, device=device,
                   seed=seed, run_dir=run_dir, checkpoint_every_steps=checkpoint_every, amp=amp,
                   compile=compile_, channels_last=channels_last, threads=threads)
    if resume is not None:
        # Only what was typed may change a resumed run; the rest comes from the run.
        options = _given(ctx, options)
    elif model is None:
        raise _die("give a MODEL to train (see `tui-nn models`), or --resume RUN_DIR")
    if nproc_per_node is not None and "WORLD_SIZE" not in os.environ:
        from tui_nn.report.train_cmd import launch_distributed
        raise typer.Exit(launch_distributed(model, options, resume=resume, debug=debug,
                                            nproc_per_node=nproc_per_node, nnodes=nnodes,
                                            node_rank=node_rank, rdzv_endpoint=rdzv_endpoint,
                                            rdzv_id=rdzv_id))
    if not headless and "WORLD_SIZE" not in os.environ:
        if sys.stdout.isatty() and sys.stdin.isatty():
            _check_options(model, options)
            _check_resume(resume, {**options, **({"model": model} if model else {})})
            _open_app(model, options, start=resume is None, resume=resume)
            return
        # No terminal to draw on (a pipe, nohup, CI): headless is the only thing that works.
    from tui_nn.report.train_cmd import run_training
    code = run_training(model, options, resume=resume, debug=debug)
    raise typer.Exit(code)


@app.command("inspect")
def inspect_cmd(
    source: str = typer.Argument(..., help="Zoo name, path/to/model.py:Class or module:factory."),
    input: Optional[list[str]] = typer.Option(None, "--input", "-i",
                                              help="Input shape, e.g. 1x28x28 (repeatable)."),
    depth: Optional[int] = typer.Option(None, "--depth", "-d", help="Module-tree depth to show."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    dtype: Optional[str] = typer.Option(None, "--dtype",
                                        help="Input dtype, e.g. int64 for Embedding models."),
    batch_size: Optional[int] = typer.Option(
        None, "--batch-size", "-b", help="Estimate training memory at this batch size."),
    optimizer: Optional[str] = typer.Option(
        None, "--optimizer", "-o",
        help="Optimizer for the memory estimate: sgd, momentum, nesterov, adam, adamw, rmsprop."),
    amp: Optional[str] = typer.Option(None, "--amp",
                                      help="Precision for the memory estimate: off, bf16, fp16."),
    device_memory: Optional[str] = typer.Option(
        None, "--device-memory", help="Memory budget, e.g. 80GiB (default: the visible GPU's)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Every layer's shape and the arithmetic behind it; diagnoses mismatches; with --batch-size
    (or --optimizer, --amp, --device-memory) whether training fits in memory."""
    from tui_nn.report.inspect_cmd import MemoryOptions, run_inspect
    memory = MemoryOptions(batch_size, optimizer, amp, device_memory)
    raise typer.Exit(run_inspect(source, list(input or []), depth, as_json, dtype, debug,
                                 memory=memory))


@app.command("tui")
def tui_cmd(
    model: Optional[str] = typer.Argument(None, help="Model to select (zoo name, "
                                                     "path/to/model.py:Class, module:factory)."),
    dataset: DatasetOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    lr: LrOpt = None,
    optimizer: OptimizerOpt = None,
    schedule: ScheduleOpt = "none",
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    amp: AmpOpt = "off",
    threads: ThreadsOpt = 0,
    start: bool = typer.Option(False, "--start", help="Start training MODEL at once."),
    resume: ResumeOpt = None,
    input: Optional[list[str]] = typer.Option(
        None, "--input", "-i", help="The inspector's input shape for MODEL, e.g. 1x28x28."),
) -> None:
    """Open the app (the same as `tui-nn` with no command), its form filled from the options."""
    options = dict(dataset=dataset, epochs=epochs, batch_size=batch_size, lr=lr,
                   optimizer=optimizer, schedule=schedule, device=device, seed=seed, amp=amp,
                   threads=threads)
    if start and model is None:
        raise _die("--start needs a MODEL")
    _check_options(model, options)
    _check_resume(resume)
    # Only what the user set: defaults must not make the app jump to the Train tab.
    defaults = dict(schedule="none", device="auto", seed=0, amp="off", threads=0)
    options = {k: v for k, v in options.items() if v is not None and defaults.get(k) != v}
    _open_app(model, options, start=start, resume=resume, input_text=_input_text(input))


def _input_text(inputs: Optional[list[str]]) -> Optional[str]:
    """--input values as the inspector's field takes them; a bad shape fails here."""
    if not inputs:
        return None
    from tui_nn.shapes.parse import ShapeParseError, parse_inputs  # imports torch: only then
    try:
        parse_inputs(inputs)
    except ShapeParseError as e:
        raise _die(str(e)) from None
    return ",".join(inputs)


@app.command("runs")
def runs_cmd(
    root: Optional[str] = typer.Option(None, "--root",
                                       help="Folder holding the runs (default ./runs)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List runs: model, dataset, status, epochs, best metric, duration, size on disk."""
    from tui_nn.report.runs_cmd import run_runs
    raise typer.Exit(run_runs(root, as_json))


@app.command("watch")
def watch_cmd(
    run: Optional[str] = typer.Argument(
        None, help="Run directory, a run's name under --root, or latest (the default)."),
    root: Optional[str] = typer.Option(None, "--root",
                                       help="Folder holding the runs (default ./runs)."),
) -> None:
    """Open the app read-only on a run in progress or finished, following its run directory
    (a run started headless, under nohup, Slurm or torchrun, or in another terminal)."""
    from tui_nn.runs import DEFAULT_ROOT, RunNotFound, resolve_run
    try:
        run_dir = resolve_run(run or "latest", root or DEFAULT_ROOT)
    except RunNotFound as e:
        raise _die(str(e)) from None
    try:
        from tui_nn.tui.screens.watch import make_watch_app
    except ImportError:
        raise _die("the terminal app is not available in this build; use `tui-nn runs`") from None
    from tui_nn.tui.exits import run_app
    raise typer.Exit(run_app(make_watch_app(run_dir)))


@app.command("control")
def control_cmd(
    run: str = typer.Argument(..., help="Run directory, a run's name or unique prefix under "
                                        "--root, or latest."),
    action: str = typer.Argument(..., help="pause, resume, checkpoint, lr or stop."),
    factor: Optional[str] = typer.Argument(None, help="lr only: multiply the lr by FACTOR "
                                                      "(0.5 halves it)."),
    root: Optional[str] = typer.Option(None, "--root",
                                       help="Folder holding the runs (default ./runs)."),
) -> None:
    """Steer a run that is training (headless, under nohup/Slurm, or in the app) through its
    control channel: exit 0 when the run took the request, 1 when it is not training."""
    from tui_nn.report.control_cmd import run_control
    raise typer.Exit(run_control(run, action, factor, root))


@app.command("export")
def export_cmd(
    run: str = typer.Argument(..., help="Run directory, a run's name under ./runs, or latest."),
    csv: bool = typer.Option(False, "--csv",
                             help="metrics_steps.csv and metrics_epochs.csv (the default)."),
    tensorboard: bool = typer.Option(False, "--tensorboard",
                                     help="TensorBoard event files (needs tensorboard)."),
    out: Optional[str] = typer.Option(None, "--out",
                                      help="Write here instead of into the run directory."),
) -> None:
    """Export a run's metrics for other tools: CSV files or TensorBoard event files."""
    from tui_nn.report.runs_cmd import run_export
    raise typer.Exit(run_export(run, csv, out, tensorboard=tensorboard))


@app.command("plot")
def plot_cmd(
    what: str = typer.Argument(..., help="activations, landscape or vanishing."),
    derivatives: bool = typer.Option(False, "--derivatives",
                                     help="activations: also plot the derivatives."),
    lr: float = typer.Option(0.01, "--lr", help="landscape: learning rate of the walks."),
    epochs: int = typer.Option(100, "--epochs",
                               help="landscape: passes over the three points."),
    steps: int = typer.Option(10, "--steps", help="vanishing: SGD steps per net."),
    width: Optional[int] = typer.Option(None, "--width", help="Plot width in columns."),
    height: Optional[int] = typer.Option(None, "--height", help="Plot height in lines."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Insight plots in the terminal: activation functions, the MSE landscape with GD/SGD
    walks, vanishing gradients in a deep sigmoid net."""
    from tui_nn.report.plot_cmd import run_plot
    raise typer.Exit(run_plot(what, derivatives=derivatives, lr=lr, epochs=epochs, steps=steps,
                              width=width, height=height, debug=debug))


def main() -> None:
    # Typer's own usage errors exit 2 with one message; everything else is handled per command.
    os.environ.setdefault("TYPER_USE_RICH", "1")
    app()


if __name__ == "__main__":
    main()
