"""The `tui-nn` command line. torch and textual are imported inside commands so that
`tui-nn --help` stays fast."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any, List, Literal, Optional

import typer

from tui_nn.commands.control_cmd import ACTIONS
from tui_nn.commands.options import ReadableCommand, ReadableGroup, with_train_options
from tui_nn.commands.plot_cmd import CHOICES as PLOTS
from tui_nn.engine.config import AMP_MODES, OPTIMIZERS
from tui_nn.textsafe import error
from tui_nn.version import __version__

app = typer.Typer(
    name="tui-nn",
    cls=ReadableGroup,
    help="Train and understand PyTorch models from the terminal.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _die(message: str, code: int = 2) -> "typer.Exit":
    error(message)  # it quotes what was typed (a run's name, a path): made inert there
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
              resume: Optional[str] = None, input_text: Optional[str] = None,
              runs_roots: Optional[list[str]] = None) -> None:
    try:
        from tui_nn.tui.app import make_app
    except ImportError:
        raise _die("the terminal app is not available in this build; use "
                   "`tui-nn train MODEL --headless`", 2) from None
    from tui_nn.tui.exits import run_app
    code = run_app(make_app(model=model, train_options=train_options, start=start, resume=resume,
                            input_text=input_text, runs_roots=runs_roots))
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


@app.command("models", cls=ReadableCommand)
def models_cmd() -> None:
    """List the model zoo: name, description, input shape, default dataset, parameters."""
    from tui_nn.commands.tables import models_table
    typer.echo(models_table(), nl=False)


@app.command("datasets", cls=ReadableCommand)
def datasets_cmd() -> None:
    """List the datasets: embedded ones are generated in code (no download)."""
    from tui_nn.commands.tables import datasets_table
    typer.echo(datasets_table(), nl=False)


# Training options are declared once, on TrainConfig's fields (engine/config.py), and added
# to `train` and `tui` by commands/options.py.
ResumeOpt = Annotated[Optional[str], typer.Option(
    "--resume", help="Continue the run in this run directory (or a file in it).",
    rich_help_panel="Run")]
RootOpt = Annotated[Optional[str], typer.Option(
    "--root", help="Folder holding the runs (default ./runs); HOST:PATH on another machine.")]


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
    def typed(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")

    return {k: v for k, v in options.items() if typed(k)}


def _ddp(flag: str, help: str) -> Any:
    """A torchrun option of `train`, in --help's Distributed panel."""
    return typer.Option(None, flag, help=f"DDP: {help}", rich_help_panel="Distributed")


@app.command("train", cls=ReadableCommand)
@with_train_options()
def train_cmd(
    ctx: typer.Context,
    model: Optional[str] = typer.Argument(
        None, help="Zoo model name (see `tui-nn models`), path/to/model.py:Class or "
                   "module:factory; left out with --resume (the run's own)."),
    resume: ResumeOpt = None,
    headless: bool = typer.Option(False, "--headless",
                                  help="Train in this terminal without the app."),
    nproc_per_node: Optional[int] = _ddp("--nproc-per-node",
                                         "processes (GPUs) on this machine, via torchrun."),
    nnodes: Optional[str] = _ddp("--nnodes", "number of machines."),
    node_rank: Optional[int] = _ddp("--node-rank", "this machine's rank."),
    rdzv_endpoint: Optional[str] = _ddp("--rdzv-endpoint", "HOST:PORT of the rendezvous."),
    rdzv_id: Optional[str] = _ddp("--rdzv-id", "a job id shared by nodes."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
    options: Optional[dict] = None,
) -> None:
    """Train a model: in the app (it starts at once) on a terminal, or with --headless (and
    whenever output is not a terminal) with progress lines for logs.

    --batch-size is the global batch; with --nproc-per-node N it is split across N processes."""
    options = dict(options or {})
    if resume is not None:
        # Only what was typed may change a resumed run; the rest comes from the run.
        options = _given(ctx, options)
    elif model is None:
        raise _die("give a MODEL to train (see `tui-nn models`), or --resume RUN_DIR")
    if nproc_per_node is not None and "WORLD_SIZE" not in os.environ:
        from tui_nn.commands.train_cmd import launch_distributed
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
    from tui_nn.commands.train_cmd import run_training
    code = run_training(model, options, resume=resume, debug=debug,
                        freeze_imports=_OWN_PROCESS)
    if "WORLD_SIZE" in os.environ:
        # A torchrun worker whose run has ended (files closed, process group destroyed): in the
        # teardown, C++ destructors of the communication backend race its own threads, and now
        # and then a rank aborted after a clean stop ('terminate called without an active
        # exception', exit 134), failing the whole job (pytorch#179291, #190489).
        _end_own_process(code)
    _skip_collection_at_exit()
    raise typer.Exit(code)


def _end_own_process(code: int) -> None:
    """In our own process, end now without the interpreter's teardown: flush, run the atexit
    handlers, os._exit. Elsewhere (a test runner calling the app), or when a flush fails (a
    closed pipe), return, and the caller exits as usual."""
    if not _OWN_PROCESS:
        return
    import atexit

    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        return
    os._exit(code)


# inspect estimates one precision: "auto" is the trainer's choice on the device it finds.
_INSPECT_AMP = tuple(m for m in AMP_MODES if m != "auto")


@app.command("inspect", cls=ReadableCommand)
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
    optimizer: Optional[Literal[OPTIMIZERS]] = typer.Option(  # type: ignore[valid-type]
        None, "--optimizer", "-o", case_sensitive=False,
        help="Optimizer for the memory estimate: sgd, momentum, nesterov, adam, adamw, rmsprop."),
    amp: Optional[Literal[_INSPECT_AMP]] = typer.Option(  # type: ignore[valid-type]
        None, "--amp", case_sensitive=False,
        help="Precision for the memory estimate: off, bf16, fp16."),
    device_memory: Optional[str] = typer.Option(
        None, "--device-memory", help="Memory budget, e.g. 80GiB (default: the visible GPU's)."),
    measure: bool = typer.Option(
        False, "--measure",
        help="Also build the model for real (GPU if any, else CPU), run one training step at "
             "the batch size and show measured memory beside the prediction."),
    diff: Optional[str] = typer.Option(
        None, "--diff", help="Compare with a second model (zoo name, file.py:Class, ...)."),
    diff_input: Optional[list[str]] = typer.Option(
        None, "--diff-input", help="The --diff model's own input shape (default: --input)."),
    dataset: Optional[str] = typer.Option(
        None, "--dataset", help="The input shape from a dataset's first sample: a name, "
        "csv:PATH, folder:PATH or your own FILE.py:build."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Every layer's shape and the arithmetic behind it; diagnoses mismatches; with --batch-size
    (or --optimizer, --amp, --device-memory) whether training fits in memory; with --measure,
    the prediction against one real training step; with --diff B, the two models aligned."""
    from tui_nn.commands.inspect_cmd import DiffOptions, MemoryOptions, run_inspect
    memory = MemoryOptions(batch_size, optimizer, amp, device_memory, measure)
    other = DiffOptions(diff, list(diff_input or [])) if diff is not None else None
    code = run_inspect(source, list(input or []), depth, as_json, dtype, debug, memory=memory,
                       freeze_imports=_OWN_PROCESS, diff=other, dataset=dataset)
    # An inspection's results are all on stdout and stderr: the interpreter's teardown
    # (freeing torch's modules and objects one by one) would cost as much CPU as tracing a
    # 70B decoder.
    _end_own_process(code)
    raise typer.Exit(code)


def _skip_collection_at_exit() -> None:
    """The interpreter's shutdown collects every object torch made at import: 0.35 s of a
    2.4 s inspection. A command that has closed its files leaves nothing that needs collecting
    (output is flushed at exit as usual, atexit handlers still run), so freeze them out of
    that pass. Only in our own process: a test runner calling the app keeps collecting."""
    if _OWN_PROCESS:
        import gc

        gc.freeze()


# True when `main()` runs the CLI as its own process (the console script, `python -m tui_nn`):
# only then may a command change process-wide settings such as the garbage collector's.
_OWN_PROCESS = False


@app.command("tui", cls=ReadableCommand)
@with_train_options()
def tui_cmd(
    ctx: typer.Context,
    model: Optional[str] = typer.Argument(None, help="Model to select (zoo name, "
                                                     "path/to/model.py:Class, module:factory)."),
    start: bool = typer.Option(False, "--start", help="Start training MODEL at once."),
    resume: ResumeOpt = None,
    input: Optional[list[str]] = typer.Option(
        None, "--input", "-i", help="The inspector's input shape for MODEL, e.g. 1x28x28."),
    runs: Optional[list[str]] = typer.Option(
        None, "--runs", metavar="ROOT", rich_help_panel="Run",
        help="A runs folder for the runs screen (r), local or HOST:PATH over ssh; repeat "
             "for several (default ./runs)."),
    options: Optional[dict] = None,
) -> None:
    """Open the app (the same as `tui-nn` with no command), its form filled from the options."""
    if start and model is None:
        raise _die("--start needs a MODEL")
    options = dict(options or {})
    _check_options(model, options)
    _check_resume(resume)
    _check_roots(runs or [], "--runs ")
    # Only what the user typed: defaults must not make the app jump to the Train tab.
    _open_app(model, {k: v for k, v in _given(ctx, options).items() if v is not None},
              start=start, resume=resume, input_text=_input_text(input), runs_roots=runs)


def _check_roots(roots: list[str], what: str = "") -> None:
    from tui_nn.commands.runs_cmd import bad_root
    bad = bad_root(roots)
    if bad is not None:
        raise _die(f"{what}{bad}")


def _input_text(inputs: Optional[list[str]]) -> Optional[str]:
    """--input values as the inspector's field takes them; a bad shape fails here."""
    if not inputs:
        return None
    from tui_nn.shapes.parse import ShapeParseError, parse_inputs
    try:
        parse_inputs(inputs)
    except ShapeParseError as e:
        raise _die(str(e)) from None
    return ",".join(inputs)


@app.command("runs", cls=ReadableCommand)
def runs_cmd(
    roots: Optional[List[str]] = typer.Argument(
        None, metavar="ROOT",
        help="Folders holding runs (default ./runs); HOST:PATH reads one over ssh."),
    root: Optional[str] = typer.Option(None, "--root",
                                       help="Folder holding the runs (default ./runs)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    in_app: bool = typer.Option(False, "--app", help="Open them in the app's runs screen: "
                                                     "mark runs to overlay their curves."),
) -> None:
    """List runs: model, dataset, status, epochs, best metric, duration, size on disk.
    Several roots, local or on other machines (gpu1:~/proj/runs), make one table with a
    host column."""
    from tui_nn.commands.runs_cmd import run_runs
    if in_app:
        raise typer.Exit(_runs_app([*(roots or []), *([root] if root else [])]))
    raise typer.Exit(run_runs(root, as_json, roots=roots))


def _runs_app(roots: list[str]) -> int:
    """`tui-nn runs --app ROOT...`: the runs screen alone (q quits)."""
    from tui_nn.runs import DEFAULT_ROOT
    _check_roots(roots)
    try:
        from tui_nn.tui.screens.runs import RunsScreen
        from tui_nn.tui.viewer_app import ViewerApp
    except ImportError:
        raise _die("the terminal app is not available in this build; use `tui-nn runs`") from None
    from tui_nn.tui.exits import run_app
    return run_app(ViewerApp(RunsScreen(roots or [DEFAULT_ROOT])))


@app.command("watch", cls=ReadableCommand)
def watch_cmd(
    run: Optional[str] = typer.Argument(
        None, help="Run directory, a run's name under --root, or latest (the default); "
                   "HOST:PATH for a run on another machine (over ssh), e.g. "
                   "gpu1:~/runs/latest."),
    root: RootOpt = None,
) -> None:
    """Open the app read-only on a run in progress or finished, following its run directory
    (a run started headless, under nohup, Slurm or torchrun, or in another terminal), or on a
    TensorBoard log directory of any framework (every scalar tag as a curve)."""
    from tui_nn.runs import DEFAULT_ROOT, RunNotFound, resolve_run
    from tui_nn.runs.remote import remote_run
    target = remote_run(run, root)
    if target is not None:
        raise typer.Exit(_watch_remote(target))
    try:
        run_dir = resolve_run(run or "latest", root or DEFAULT_ROOT)
    except RunNotFound as e:
        raise _die(str(e)) from None
    from tui_nn.runs import tensorboard
    if tensorboard.is_tensorboard_dir(run_dir):
        try:
            tensorboard.check_available()
        except tensorboard.TensorBoardMissing as e:
            raise _die(str(e)) from None
    try:
        from tui_nn.tui.screens.tb_watch import TensorBoardWatchApp
        from tui_nn.tui.screens.watch import WatchApp
    except ImportError:
        raise _die("the terminal app is not available in this build; use `tui-nn runs`") from None
    from tui_nn.tui.exits import run_app
    make = TensorBoardWatchApp if tensorboard.is_tensorboard_dir(run_dir) else WatchApp
    raise typer.Exit(run_app(make(run_dir)))


@app.command("fleet", cls=ReadableCommand)
def fleet_cmd(
    roots: List[str] = typer.Argument(..., metavar="HOST:PATH",
                                      help="Runs folders on other machines, read over ssh."),
) -> None:
    """Every run on every host in one live table, with each host's GPUs; w watches the
    highlighted run, p c l x steer it (pause/resume, checkpoint, halve lr, stop)."""
    from tui_nn.runs.remote import split_target
    targets = [split_target(r) for r in roots]
    if None in targets:
        raise _die(f"{roots[targets.index(None)]}: not HOST:PATH (`tui-nn runs` lists "
                   "local folders)")
    try:
        from tui_nn.tui.screens.fleet import FleetApp
    except ImportError:
        raise _die("the terminal app is not available in this build; use `tui-nn runs`") from None
    from tui_nn.tui.exits import run_app
    raise typer.Exit(run_app(FleetApp(targets)))


def _watch_remote(target) -> int:
    """`tui-nn watch HOST:RUN`: the run mirrored over ssh and kept current (runs.remote.
    FollowedRun), in the watch app. Exit 2 when HOST:RUN names no run, 1 when the host cannot
    be reached."""
    from tui_nn.runs.remote import FollowedRun, NotARun
    from tui_nn.runs.ssh import SshError
    try:
        followed = FollowedRun(target).start()
    except NotARun as e:
        raise _die(str(e)) from None
    except SshError as e:
        raise _die(f"{target.host}: {e}", 1) from None
    try:
        from tui_nn.tui.exits import run_app
        from tui_nn.tui.screens.watch import WatchApp
        return run_app(WatchApp(followed.run_dir, gpu_reader=followed.gpu_report,
                                liveness_of=followed.liveness))
    finally:
        followed.stop()


@app.command("control", cls=ReadableCommand)
def control_cmd(
    run: str = typer.Argument(..., help="Run directory, a run's name or unique prefix under "
                                        "--root, or latest; HOST:PATH for a run on another "
                                        "machine (over ssh), e.g. gpu1:~/runs/latest."),
    action: Literal[ACTIONS] = typer.Argument(  # type: ignore[valid-type]
        ..., help="pause, resume, checkpoint, lr or stop."),
    factor: Optional[str] = typer.Argument(None, help="lr only: multiply the lr by FACTOR "
                                                      "(0.5 halves it)."),
    root: RootOpt = None,
) -> None:
    """Steer a run that is training (headless, under nohup/Slurm, or in the app) through its
    control channel: exit 0 when the run took the request, 1 when it is not training."""
    from tui_nn.commands.control_cmd import run_control
    raise typer.Exit(run_control(run, action, factor, root))


@app.command("serve", cls=ReadableCommand)
def serve_cmd(
    args: Optional[list[str]] = typer.Argument(
        None, help="The tui-nn command to serve, after `--` (default: the app), e.g. "
                   "`-- watch RUN`."),
    port: int = typer.Option(8000, "--port", "-p", help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Address to listen on (default: this machine only)."),
) -> None:
    """The app in a browser (textual-serve), on localhost: forward it from a GPU box with
    `ssh -L 8000:localhost:8000 gpu-box` and open the URL it prints. Ctrl-C stops it."""
    from tui_nn.commands.serve_cmd import run_serve
    raise typer.Exit(run_serve(host, port, list(args or [])))


@app.command("export", cls=ReadableCommand)
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
    from tui_nn.commands.runs_cmd import run_export
    raise typer.Exit(run_export(run, csv, out, tensorboard=tensorboard))


@app.command("plot", cls=ReadableCommand)
def plot_cmd(
    what: Literal[PLOTS] = typer.Argument(  # type: ignore[valid-type]
        ..., help="activations, landscape or vanishing."),
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
    from tui_nn.commands.plot_cmd import run_plot
    raise typer.Exit(run_plot(what, derivatives=derivatives, lr=lr, epochs=epochs, steps=steps,
                              width=width, height=height, debug=debug))


def main() -> None:
    # Typer's own usage errors exit 2 with one message; everything else is handled per command.
    global _OWN_PROCESS
    _OWN_PROCESS = True
    os.environ.setdefault("TYPER_USE_RICH", "1")
    app()


if __name__ == "__main__":
    main()
