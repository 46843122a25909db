"""The main screen: Model (picker + shape inspector), Train (form, status, live curves), Log.

The screen owns the run: it holds the TrainingBridge, turns the bridge's messages into widget
attributes ("attributes down, messages up") and keeps the run state as a CSS class on itself.
All of its workers (catalog loading, model loading, training) belong to it, so their failures
arrive in its one Worker.StateChanged handler.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Header, Input, Select, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from tui_nn.engine.config import FORM_FIELDS
from tui_nn.tui import messages as msg
from tui_nn.tui.bridge import WORKER_NAME, TrainingBridge, freeze_long_lived, in_fresh_thread
from tui_nn.tui.history import RunHistory
from tui_nn.tui.widgets.curves import Curves
from tui_nn.tui.widgets.event_log import EventLog
from tui_nn.tui.widgets.footer import SteadyFooter
from tui_nn.tui.widgets.insight import InsightPane
from tui_nn.tui.widgets.inspector import ShapeInspector
from tui_nn.tui.widgets.memory_line import MemoryLine
from tui_nn.tui.widgets.model_picker import ModelPicker
from tui_nn.tui.widgets.run_memory import RunMemory, predict_activations, run_memory_from
from tui_nn.tui.widgets.run_status import RunStatus
from tui_nn.tui.widgets.system_pane import SystemPane
from tui_nn.tui.widgets.train_form import FormError, TrainForm

if TYPE_CHECKING:
    from tui_nn.engine import events as ev
    from tui_nn.tui.catalog import DatasetEntry, ModelEntry
    from tui_nn.tui.screens.model_diff import Side

# While training, the status and the curves refresh together, at most every FRAME_S; the frame
# interval stretches (up to MAX_FRAME_S) whenever the UI thread uses more than UI_CPU_BUDGET of
# a core, so on a busy CPU box the app leaves the cores to the training run. Measured with
# benchmarks/bench_tui_overhead.py on 2 CPU cores: 0.5 s frames and a 3% budget cost the run
# about 10% of its throughput, 1 s and 1.5% about 3%.
FRAME_S = 1.0
MAX_FRAME_S = 4.0
UI_CPU_BUDGET = 0.015
TAB_FOCUS = {"model": "#zoo", "train": "#start", "log": "#event-log",
             "insight": "#insight-tabs Tabs"}
# What the app asks the engine for, for the Insight tab (a TrainConfig field each).
INSIGHT_OPTIONS = {"grad_flow": True, "live_fit": True, "val_predictions": True}
ACTIVE = ("starting", "running", "paused", "stopping")
FORM_KEYS = FORM_FIELDS  # TrainConfig's fields marked form=True (engine/config.py)


@dataclass
class RunMemoryPredicted(Message):
    """The estimate for a live run's batch, made on a worker (None: it could not be made)."""

    memory: RunMemory
    predicted: int | None


@dataclass
class CatalogLoaded(Message):
    """Zoo models and datasets are known (torch has been imported)."""

    models: list["ModelEntry"]
    datasets: list["DatasetEntry"]
    device: str


@dataclass
class UserModelLoaded(Message):
    """A model from a file or a factory was built (or failed to build)."""

    source: str
    entry: "ModelEntry | None"
    model: Any
    error: str | None


class MainScreen(Screen):
    """Everything the app shows, in three tabs."""

    BINDINGS = [
        Binding("1", "show_tab('model')", "Model", tooltip="Model picker and shape inspector"),
        Binding("2", "show_tab('train')", "Train", tooltip="Hyperparameters, status, curves"),
        Binding("3", "show_tab('log')", "Log", tooltip="Events and errors"),
        # Not in the footer (the tab's label shows the key): at 80 columns it would push out
        # Save and Quit.
        Binding("4", "show_tab('insight')", "Insight", show=False,
                tooltip="Gradient flow, vanishing gradients, live fit, confusion matrix"),
        Binding("s", "start_training", "Start", tooltip="Start training with the form's values"),
        Binding("p", "toggle_pause", "Pause", tooltip="Pause or resume the run"),
        Binding("x", "stop_training", "Stop", tooltip="Stop the run and save a checkpoint"),
        Binding("c", "checkpoint", "Save", tooltip="Save a checkpoint now"),
        Binding("u", "resume_run", "Resume run", show=False,
                tooltip="Continue a stopped run from its checkpoint"),
        Binding("l", "halve_lr", "Halve lr", show=False,
                tooltip="Halve the learning rate of the run in progress"),
        Binding("i", "edit_input", "Input shape", show=False),
        Binding("o", "open_source", "Open model", show=False),
        Binding("m", "mark_model", "Mark model", show=False,
                tooltip="Mark this model to compare it with another (then d)"),
        Binding("d", "diff_models", "Diff", show=False,
                tooltip="Compare the marked model with this one, layer by layer"),
        Binding("v", "sort_saved", "Saved bytes", show=False,
                tooltip="Sort the layers by the bytes they save for backward (and back)"),
        Binding("plus,equals_sign", "depth(1)", "Deeper", show=False),
        Binding("minus", "depth(-1)", "Shallower", show=False),
        Binding("left_square_bracket", "smoothing(-1)", "Less smoothing", show=False),
        Binding("right_square_bracket", "smoothing(1)", "More smoothing", show=False),
        Binding("g", "toggle_log_scale", "Log axis", show=False),
        Binding("escape", "leave_field", "Leave field", show=False),
    ]

    run_state: reactive[str] = reactive("loading")
    """loading, idle, starting, running, paused, stopping, finished, stopped or failed."""

    model_source: reactive[str | None] = reactive(None)
    """The selected model (zoo name or source string); the inspector and form follow it."""

    def __init__(self, model: str | None = None, train_options: dict[str, Any] | None = None,
                 dataset: Any = None, start: bool = False, resume: str | None = None,
                 input_text: str | None = None) -> None:
        super().__init__()
        self.initial_model = model
        self.initial_input = input_text  # the inspector's input for the initial model
        self.start_when_ready = start
        self.resume_when_ready = resume  # a run directory to continue once torch is loaded
        options = {k: v for k, v in (train_options or {}).items() if v is not None}
        self.form_overrides = {k: options[k] for k in FORM_KEYS if k in options}
        # Every other option (device, seed, run_dir, amp, threads, ...) goes to every run as is.
        self.pass_through = {k: v for k, v in options.items() if k not in FORM_KEYS}
        self.dataset_override = dataset  # an in-memory Dataset (tests, benchmarks)
        self.history = RunHistory()
        self.bridge = TrainingBridge(self, self.history)
        self.entries: dict[str, ModelEntry] = {}
        self.user_models: dict[str, Any] = {}
        self._marked: Side | None = None  # `m`: the model `d` compares the current one with
        self._form_model: str | None = None  # the model whose defaults the form holds
        self._logged_epochs = 0
        self._paused_on_nan = False  # a NaN paused the run and its lr was not lowered since

    # ---- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≋")
        with TabbedContent(initial="model", id="tabs"):
            with TabPane("Model [dim]1[/]", id="model"):
                with Horizontal(id="model-row"):
                    yield ModelPicker(id="picker")
                    yield ShapeInspector(id="inspector")
                yield MemoryLine(id="memory-line")
            with TabPane("Train [dim]2[/]", id="train"):
                with Horizontal(id="train-row"):
                    with Vertical(id="train-side"):
                        yield TrainForm(id="form")
                        yield RunStatus(id="status")
                    with Vertical(id="train-main"):
                        yield Curves(self.history, id="curves")
                        yield SystemPane(id="system", compact=True)
                        yield EventLog(id="mini-log")
            with TabPane("Log [dim]3[/]", id="log"):
                yield EventLog(id="event-log")
            with TabPane("Insight [dim]4[/]", id="insight"):
                yield InsightPane(self.bridge.insight, id="insight-pane")
        yield SteadyFooter()

    def on_mount(self) -> None:
        self.title = "tui-nn"
        # While a run is live, one "frame" every FRAME_S updates the status and the curves
        # together (one screen update, not one per widget), and picks up progress a throttled
        # message did not carry (the last steps before a long validation).
        self._frame_timer = self.set_interval(FRAME_S / 2, self._maybe_frame, pause=True)
        self._last_frame = 0.0
        self.frame_interval = FRAME_S
        self._cpu_mark = (time.monotonic(), time.thread_time())
        self._idle_animation_level = self.app.animation_level
        self._log("tui-nn: loading PyTorch and the model zoo…", "dim")
        from tui_nn.tui.catalog import quick_zoo_entries

        # The names and descriptions need no torch: the first frame lists them (the picker
        # selects nothing until the catalog is loaded).
        self.query_one(ModelPicker).set_models(quick_zoo_entries(), selected=self.initial_model)
        # After the first frame is on screen: importing torch in a thread takes the GIL for
        # seconds, and the first paint should not wait for it.
        self.call_after_refresh(self._load_catalog)

    def on_unmount(self) -> None:
        # However the app ends, a run in progress stops and writes its checkpoint (the worker
        # thread finishes the step; the interpreter waits for it before exiting).
        self.bridge.stop()

    # ---- catalog (thread: imports torch) ----------------------------------------------------
    @work(thread=True, name="catalog", group="catalog", exit_on_error=False)
    def _load_catalog(self) -> None:
        from tui_nn.engine.device import device_name, resolve_device
        from tui_nn.tui.catalog import dataset_entries, zoo_entries

        models = zoo_entries()
        datasets = dataset_entries()
        try:
            device = device_name(resolve_device(self.pass_through.get("device", "auto")))
        except ValueError as exc:
            device = f"? ({exc})"
        self.post_message(CatalogLoaded(models, datasets, device))

    @on(CatalogLoaded)
    def _catalog_loaded(self, event: CatalogLoaded) -> None:
        # torch and the zoo are imported: their objects out of every later collection (no
        # collect first: import leaves next to no garbage, and a full pass would stall the UI).
        freeze_long_lived(collect=False)
        self.entries = {e.source: e for e in event.models}
        self.query_one(TrainForm).set_datasets([(d.name, d.description) for d in event.datasets])
        self.query_one(RunStatus).device = event.device
        self.run_state = "idle"
        initial = self.initial_model
        picker = self.query_one(ModelPicker)
        if initial is not None and initial not in self.entries:
            picker.set_models(event.models)
            self._open_source(initial)
            return
        picker.set_models(event.models, selected=initial or picker.highlighted_source())
        if initial is not None and (self.form_overrides or self.pass_through):
            self.show_tab("train")  # `tui-nn train MODEL`
        else:
            self.query_one("#zoo").focus()
        self._log(f"{len(event.models)} models, {len(event.datasets)} datasets; "
                  f"device {event.device}", "dim")
        if self.resume_when_ready is not None:
            self.call_after_refresh(self._maybe_autostart)

    def _maybe_autostart(self) -> None:
        if self.resume_when_ready is not None and self.run_state == "idle":
            run_dir, self.resume_when_ready = self.resume_when_ready, None
            self.resume_run(run_dir, with_cli_options=True)
            return
        # A model from a file loads after the zoo list has selected its first entry: wait
        # for the model that was asked for, not whichever is selected first.
        if self.start_when_ready and self.model_source is not None \
                and self.model_source == (self.initial_model or self.model_source) \
                and self.run_state != "loading":
            self.start_when_ready = False
            self.show_tab("train")
            self.action_start_training()

    # ---- model selection -------------------------------------------------------------------
    @on(ModelPicker.Selected)
    def _model_selected(self, event: ModelPicker.Selected) -> None:
        if self.run_state == "loading":
            return  # the names only, before torch: the catalog selects once it is loaded
        if event.source in self.entries:
            self.model_source = event.source
            if event.confirmed:
                self.show_tab("train")
        else:
            self._open_source(event.source)

    def _open_source(self, source: str) -> None:
        self.notify(f"loading {source}…", timeout=2, markup=False)
        self._load_user_model(source)

    @work(thread=True, name="load-model", group="load-model", exclusive=True,
          exit_on_error=False)
    def _load_user_model(self, source: str) -> None:
        from tui_nn.tui.catalog import ModelEntry, shape_text

        try:
            from tui_nn.zoo.sources import load_model

            loaded = in_fresh_thread(lambda: load_model(source, device="cpu"), "tui-nn-load")
        except Exception as exc:  # noqa: BLE001 - SourceError and whatever user code raises
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.post_message(UserModelLoaded(source, None, None, text))
            return
        shapes = loaded.default_input_shapes or []
        entry = ModelEntry(
            source=source,
            description=f"{type(loaded.model).__name__} from {loaded.name}",
            input_text=",".join(shape_text(s, loaded.dtype) for s in shapes),
            default_dataset=None, in_zoo=False)
        self.post_message(UserModelLoaded(source, entry, loaded.model, None))

    @on(UserModelLoaded)
    def _user_model_loaded(self, event: UserModelLoaded) -> None:
        if event.error is not None or event.entry is None:
            self.notify(event.error or "could not load the model", title="model",
                        severity="error", timeout=8, markup=False)
            self._log(f"cannot open {event.source}: {event.error}", "error")
            return
        self.entries[event.source] = event.entry
        self.user_models[event.source] = event.model
        self.query_one(ShapeInspector).register_model(event.source, event.model)
        self.query_one(MemoryLine).register_model(event.source, event.model)
        self.query_one(ModelPicker).add_model(event.entry)
        self.model_source = event.source
        self._log(f"opened {event.source}: {event.entry.description}", "good")

    def watch_model_source(self, source: str | None) -> None:
        if source is None:
            return
        entry = self.entries[source]
        inspector = self.query_one(ShapeInspector)
        about = escape(entry.description)  # inert (catalog.ModelEntry): data, not markup
        if entry.lesson:
            about += f"\n[dim]→ {escape(entry.lesson)}[/]"
        inspector.about = about
        inspector.source = source
        inspector.input_text = entry.input_text
        if source == self.initial_model and self.initial_input is not None:
            inspector.input_text, self.initial_input = self.initial_input, None
        line = self.query_one(MemoryLine)
        line.source = source
        line.input_text = entry.input_text
        self.sub_title = self._subtitle()
        if self.run_state not in ACTIVE and self._form_model != source:  # (a resumed run's
            self._fill_form(source)  # settings are in the form already: not its defaults)
        self.call_after_refresh(self._maybe_autostart)

    def _fill_form(self, source: str) -> None:
        entry = self.entries[source]
        d = entry.defaults
        values: dict[str, Any] = dict(
            dataset=entry.default_dataset,
            epochs=d.epochs if d else 3, batch_size=d.batch_size if d else 64,
            lr=d.lr if d else 0.01, optimizer=d.optimizer if d else "adam", schedule="none")
        if source == self.initial_model or self.initial_model is None:
            values.update(self.form_overrides)  # the CLI's options win for the model it named
        self.query_one(TrainForm).fill(**values)
        self._form_model = source

    @on(TrainForm.Changed)
    def _form_changed(self, event: TrainForm.Changed) -> None:
        # Fields read directly: TrainForm.read() validates, which posts Changed again.
        form, line = self.query_one(TrainForm), self.query_one(MemoryLine)
        text = form.query_one("#batch-size", Input).value.strip()
        line.batch_size = int(text) if text.isdigit() and int(text) > 0 else None
        line.optimizer = str(form.query_one("#optimizer", Select).value)

    @on(ShapeInspector.Inspected)
    def _inspected(self, event: ShapeInspector.Inspected) -> None:
        insp = event.inspection
        if insp is not None and insp.ok:  # the estimate follows the input being inspected
            self.query_one(MemoryLine).input_text = event.input_text
        if event.error:
            self._log(f"inspect {event.source} {event.input_text}: {event.error}", "warning")
        elif insp is not None and not insp.ok:
            problem = insp.diagnosis.text if insp.diagnosis else next(
                (c.text for c in insp.checks if not c.ok), "mismatch")
            self._log(f"inspect {event.source} {event.input_text}: {problem}", "warning")

    @on(TrainForm.Sampled)
    def _dataset_sampled(self, event: TrainForm.Sampled) -> None:
        """Your own Dataset's sample shape: the inspector takes it for a model of yours (a zoo
        model is sized to the data when it trains, from its own input)."""
        if event.error is not None:
            self.query_one(TrainForm).show_error(event.error, "dataset-custom")
            self._log(f"dataset {event.spec}: {event.error}", "warning")
            return
        self._log(f"dataset {event.spec}: samples of {event.input_text}", "dim")
        entry = self.entries.get(self.model_source) if self.model_source else None
        if entry is not None and not entry.in_zoo:
            self.query_one(ShapeInspector).input_text = event.input_text

    # ---- training ----------------------------------------------------------------------------
    def action_start_training(self) -> None:
        if self.bridge.running:
            self.notify("a run is already in progress", severity="warning", markup=False)
            return
        source = self.model_source
        if source is None:
            self.notify("choose a model first", severity="warning", markup=False)
            return
        form = self.query_one(TrainForm)
        try:
            values = form.read()
        except FormError as exc:
            self.notify(str(exc), title="cannot start", severity="error", markup=False)
            self.show_tab("train")
            self.query_one(f"#{exc.field}").focus()
            return
        from dataclasses import fields

        from tui_nn.engine import ConfigError, TrainConfig

        known = {f.name for f in fields(TrainConfig)}
        ignored = sorted(set(self.pass_through) - known)
        if ignored:
            self._log(f"ignoring options this engine does not know: {', '.join(ignored)}",
                      "warning")
        options = {k: v for k, v in INSIGHT_OPTIONS.items() if k in known}
        options["on_nan"] = "pause"  # in the app a NaN pauses: the user decides
        options.update({k: v for k, v in self.pass_through.items() if k in known})
        options.update({k: v for k, v in values.items() if v is not None})
        try:
            config = TrainConfig(model=source, **options)
            config.validate()
        except (ConfigError, TypeError, ValueError) as exc:
            form.show_error(str(exc))
            self.notify(str(exc), title="cannot start", severity="error", markup=False)
            return
        def build(source: str = source) -> Any:  # built on the training thread
            from tui_nn.zoo.sources import load_model

            return load_model(source, device="cpu").model

        factory = build if source in self.user_models else None
        self.pass_through.pop("run_dir", None)  # --run-dir names one run: the next gets its own
        status = self.query_one(RunStatus)
        status.started = status.latest = status.epoch = None
        self.query_one(SystemPane).run_memory = None  # the new run's RunStarted brings its own
        self.query_one(SystemPane).data_wait = None
        status.best_epoch = 0
        self.query_one(Curves).set_axis(0, 0)
        self._logged_epochs = 0
        self.bridge.start(config, model_factory=factory, dataset=self.dataset_override)
        self.run_state = "starting"
        self.query_one(Curves).redraw()
        self._log(f"starting {source}: {_describe(config)}")

    def action_resume_run(self) -> None:
        """Choose a stopped (or failed, or finished) run and continue it from last.pt."""
        if self.bridge.running:
            self.notify("a run is already in progress", severity="warning", markup=False)
            return
        from tui_nn.tui.screens.resume import ResumeScreen

        root = self.pass_through.get("runs_root") or "runs"

        def chosen(run_dir: str | None) -> None:
            if run_dir:
                self.resume_run(run_dir)

        self.app.push_screen(ResumeScreen(root), chosen)

    def resume_run(self, run_dir: str, with_cli_options: bool = False) -> None:
        """Continue the run in ``run_dir`` from its last.pt: the saved config, model, optimizer
        and RNG state (Trainer resume_from). The picker, the form and the curves show the run's
        own model, settings and history. Only the device comes from this app, and with
        ``with_cli_options`` (`tui-nn train --resume DIR --epochs 8`) the options typed."""
        from pathlib import Path

        from tui_nn.engine import TrainConfig
        from tui_nn.engine.rundir import run_dir_of
        from tui_nn.runs.records import read_config
        from tui_nn.tui.screens.resume import describe_run_dir

        if self.bridge.running:
            self.notify("a run is already in progress", severity="warning", markup=False)
            return
        info, error = describe_run_dir(Path(run_dir))
        if error is not None:
            self.notify(error, title="cannot resume", severity="error", timeout=10,
                        markup=False)
            self._log(f"cannot resume {run_dir}: {error}", "error")
            return
        options = self._resume_options(with_cli_options)
        saved, _ = read_config(run_dir_of(run_dir))
        self._show_run(info["model"], {**saved, **options})
        config = TrainConfig(model=info["model"], **options)
        status = self.query_one(RunStatus)
        status.started = status.latest = status.epoch = None
        self.query_one(SystemPane).run_memory = None  # the new run's RunStarted brings its own
        self.query_one(SystemPane).data_wait = None
        status.best_epoch = 0
        self.query_one(Curves).set_axis(0, 0)
        self._logged_epochs = 0
        self.bridge.start(config, dataset=self.dataset_override, resume_from=run_dir)
        self.run_state = "starting"
        self.show_tab("train")
        self._log(f"resuming {run_dir} ({info['model']} on {info['dataset']}, "
                  f"{info['progress']})")

    def _resume_options(self, with_cli_options: bool) -> dict[str, Any]:
        """TrainConfig fields for a resume: the app's own, plus the CLI's options (what a
        resume was asked to change: the engine merges them onto the run's saved config)."""
        from dataclasses import fields

        from tui_nn.engine import TrainConfig

        options: dict[str, Any] = {"device": self.pass_through.get("device", "auto"),
                                   "on_nan": "pause", **INSIGHT_OPTIONS}
        if with_cli_options:
            known = {f.name for f in fields(TrainConfig)} - {"model", "run_dir", "runs_root"}
            typed = {**self.pass_through, **self.form_overrides}
            options.update({k: v for k, v in typed.items() if k in known})
        return options

    def _show_run(self, model: str, settings: dict[str, Any]) -> None:
        """Select a resumed run's model and put its settings in the form (the form is locked
        while it trains; afterwards Start trains a new run with them)."""
        picker = self.query_one(ModelPicker)
        if model in self.entries:
            picker.highlight(model)
            self.model_source = model  # fills the form with the model's defaults first
        else:
            self._open_source(model)  # a model from a file: the picker lists it once loaded
        self.query_one(TrainForm).fill(**{k: settings.get(k) for k in FORM_KEYS})
        self._form_model = model

    def action_halve_lr(self) -> None:
        if self.run_state not in ("running", "paused"):
            return
        try:
            taken = self.bridge.scale_lr(0.5)
        except ValueError as e:  # halvings gathered while paused: past the lr factor range
            self._log(str(e), "warning")
            return
        if taken:
            self._log("halving the learning rate before the next step", "dim")

    def action_toggle_pause(self) -> None:
        if self.run_state == "running":
            self.bridge.pause()
            self._log("pausing…", "dim")
        elif self.run_state == "paused":
            self.bridge.resume()
            self._log("resuming…", "dim")

    def action_stop_training(self) -> None:
        if self.run_state in ("starting", "running", "paused"):
            self.bridge.stop()
            self.run_state = "stopping"
            self._log("stopping after this step; a checkpoint will be saved", "warning")

    def action_checkpoint(self) -> None:
        if self.run_state in ("running", "paused"):
            self.bridge.request_checkpoint()
            if self.run_state == "paused":
                self.notify("the checkpoint is written when the run resumes (or stops)",
                            timeout=4, markup=False)

    async def stop_for_quit(self) -> str:
        """Stop a run in progress and wait for its checkpoint; a line for the terminal."""
        if not self.bridge.running:
            return ""
        self.action_stop_training()
        self.notify("stopping the run and saving a checkpoint…", timeout=10, markup=False)
        await self.bridge.wait()
        return self.stopped_text()

    def stopped_text(self) -> str:
        """The line for the terminal once a stopped run's thread has returned."""
        if not self.bridge.last_checkpoint:
            return "tui-nn: run stopped"
        return (f"tui-nn: run stopped; checkpoint saved to {self.bridge.last_checkpoint}"
                + self._resume_hint())

    def _resume_hint(self) -> str:
        """The command that continues the run (as a headless run prints it); after a NaN the
        run paused on, one with half the lr (the same lr would blow up again)."""
        from tui_nn.engine.recovery import halved_lr
        from tui_nn.engine.resume import resume_command

        started, trainer = self.bridge.started, self.bridge.trainer
        if started is None or not started.run_dir:
            return ""
        lower = (f" --lr {halved_lr(trainer.config.lr)}"
                 if self._paused_on_nan and trainer is not None and trainer.config.lr else "")
        return f"\ncontinue with: {resume_command(started.run_dir, headless=False)}{lower}"

    @on(msg.TrainingStarted)
    def _started(self, message: msg.TrainingStarted) -> None:
        e = message.event
        if self.run_state == "starting":
            self.run_state = "running"
        self._paused_on_nan = False
        status = self.query_one(RunStatus)
        status.started = e
        curves = self.query_one(Curves)
        curves.set_axis(e.start_step, e.total_steps)
        curves.live = True
        entry = self.entries.get(e.model)
        self.query_one(InsightPane).reset(own_step=entry is not None and entry.own_step)
        self.frame_interval = FRAME_S
        self._cpu_mark = (time.monotonic(), time.thread_time())
        self._frame_timer.resume()
        where = f" → {e.run_dir}" if e.run_dir else ""
        self._log(f"training {e.model} ({e.parameters:,} params) on {e.dataset} "
                  f"[{e.n_train:,} train / {e.n_val:,} val] on {e.device_name}: {e.epochs} epochs "
                  f"× {e.steps_per_epoch} steps, batch {e.batch_size}"
                  f"{'; ' + e.setup if e.setup else ''}{where}", "good")
        if self.bridge.resuming:
            self._show_earlier(e)
            trainer = self.bridge.trainer
            if trainer is not None:
                # The lr the run has: its config's, scaled by every l / `control lr` since
                # (a schedule's base: OneCycleLR's max_lr, the others' initial_lr).
                group = trainer.optimizer.param_groups[0]
                lr = group.get("max_lr", group.get("initial_lr", group["lr"]))
                self.query_one(TrainForm).fill(**{
                    **{k: getattr(trainer.config, k, None) for k in FORM_KEYS}, "lr": lr})
        self._show_run_memory(e)

    def _show_run_memory(self, e: "ev.RunStarted") -> None:
        """The system pane's 'predicted · measured' line: the Model tab's estimate when it is
        for this model and batch, else one made on a worker."""
        pane = self.query_one(SystemPane)
        pane.run_memory = memory = run_memory_from(e)
        if memory is None:
            return
        line = self.query_one(MemoryLine)
        estimate = line.estimate
        if line.source == e.model and estimate is not None \
                and estimate.batch_size == memory.batch_size:
            pane.run_memory = replace(memory, predicted=estimate.activations)
            return
        entry = self.entries.get(e.model)
        input_text = line.input_text if line.source == e.model else \
            entry.input_text if entry is not None else ""
        self._predict_run_memory(self.user_models.get(e.model, e.model),
                                 input_text.strip() or None, memory)

    @work(thread=True, exclusive=True, group="run-memory", exit_on_error=False)
    def _predict_run_memory(self, target: Any, input_text: str | None,
                            memory: RunMemory) -> None:
        try:
            predicted = predict_activations(target, input_text, memory.batch_size)
        except Exception:  # noqa: BLE001 - the line then shows the measured figure alone
            predicted = None
        self.post_message(RunMemoryPredicted(memory, predicted))

    @on(RunMemoryPredicted)
    def _run_memory_predicted(self, message: RunMemoryPredicted) -> None:
        pane, asked = self.query_one(SystemPane), message.memory
        now = pane.run_memory
        if message.predicted is not None and now is not None and \
                (now.batch_size, now.measured) == (asked.batch_size, asked.measured):  # same run
            pane.run_memory = replace(now, predicted=message.predicted)

    @on(msg.RecordedHistoryLoaded)
    def _recorded_loaded(self) -> None:
        # A resumed run's curves so far, drawn at once; TrainingStarted (always later) cuts
        # them back to the checkpoint and sets the axis to the run's length.
        curves = self.query_one(Curves)
        curves.set_axis(0, 0)
        curves.redraw()

    def _show_earlier(self, e: "ev.RunStarted") -> None:
        """A resumed run: the settings the engine merged, and the steps and epochs recorded
        before its checkpoint (the bridge loaded them from metrics.jsonl) on the curves and
        the status, so they continue rather than restart."""
        from tui_nn.engine import events as ev

        trainer = self.bridge.trainer
        if trainer is not None:  # set before the run began; its config no longer changes
            self.query_one(TrainForm).fill(**{k: getattr(trainer.config, k) for k in FORM_KEYS})
        history = self.history
        earlier = [r for r in list(history.epochs) if r.epoch < e.start_epoch]
        self._logged_epochs = len(earlier)
        curves = self.query_one(Curves)
        curves.set_axis(0, e.total_steps)  # the whole run, not only this session
        curves.redraw()
        best = history.best_epoch()
        if not earlier or best is None:
            return
        last = earlier[-1]
        # The status reads an epoch's metrics; the timings of a past epoch are not shown.
        status = self.query_one(RunStatus)
        status.epoch = ev.EpochMetrics(
            epoch=last.epoch, step=last.step, train_loss=last.train_loss,
            val_loss=last.val_loss, metric=history.metric, value=last.value,
            best_value=best.value, is_best=best is last, elapsed_s=0.0, epoch_time_s=0.0,
            samples_per_s=0.0)
        status.best_epoch = best.epoch + 1
        done = f"epochs 1–{last.epoch + 1}" if last.epoch else "epoch 1"
        self._log(f"{done} and steps up to {e.start_step:,} from the run's metrics.jsonl", "dim")

    @on(msg.TrainingProgress)
    def _progress(self, message: msg.TrainingProgress) -> None:
        self._maybe_frame()

    def _maybe_frame(self) -> None:
        if time.monotonic() - self._last_frame >= 0.95 * self.frame_interval:
            self._frame()

    def _frame(self) -> None:
        now, cpu = time.monotonic(), time.thread_time()
        wall0, cpu0 = self._cpu_mark
        if now - wall0 >= 2.0:  # the UI thread's share of a core over the last seconds
            share = (cpu - cpu0) / (now - wall0)
            if share > UI_CPU_BUDGET:
                self.frame_interval = min(self.frame_interval * 1.5, MAX_FRAME_S)
            elif share < UI_CPU_BUDGET / 2:
                self.frame_interval = max(self.frame_interval / 1.25, FRAME_S)
            self._cpu_mark = (now, cpu)
        self._last_frame = now
        self._sync_progress()
        self.query_one(Curves).tick()
        self.query_one(InsightPane).tick(self.bridge.insight)

    def _sync_progress(self) -> None:
        """Show the bridge's newest metrics (they may be newer than the message that woke us:
        progress messages are throttled and replaceable) and log the epochs not yet logged."""
        status = self.query_one(RunStatus)
        bridge = self.bridge
        if bridge.latest is not None:
            status.latest = bridge.latest
            self._note_gpu_allocated(bridge.latest.memory_bytes)
            self.query_one(SystemPane).data_wait = bridge.latest.data_wait
        if bridge.latest_epoch is not None:
            status.epoch = bridge.latest_epoch
            if bridge.latest_epoch.is_best:
                status.best_epoch = bridge.latest_epoch.epoch + 1
        self._log_epochs()

    def _note_gpu_allocated(self, allocated: int | None) -> None:
        """On CUDA the steps report memory_allocated: the memory line keeps the most seen."""
        started, pane = self.bridge.started, self.query_one(SystemPane)
        memory = pane.run_memory
        if memory is None or allocated is None or started is None \
                or not started.device.startswith("cuda"):
            return
        if memory.gpu_allocated is None or allocated > memory.gpu_allocated:
            pane.run_memory = replace(memory, gpu_allocated=allocated)

    def _log_epochs(self) -> None:
        from tui_nn.fmt import fmt_metric

        if self.bridge.started is None:  # a resume that failed before its first step: the
            return  # history holds only the run's recorded epochs, logged by no one
        epochs = self.history.epochs
        new = epochs[self._logged_epochs:len(epochs)]
        if not new:
            return
        self._logged_epochs += len(new)
        started = self.bridge.started
        total = started.epochs if started else "?"
        metric = self.history.metric
        last = self.bridge.latest_epoch
        if len(new) > 3:  # fast epochs: one line per batch of them, not a flood
            e = new[-1]
            best = f" (best {fmt_metric(metric, last.best_value)})" if last else ""
            self._log(f"epochs {new[0].epoch + 1}–{e.epoch + 1}/{total}: train loss "
                      f"{e.train_loss:.4g}, val loss {e.val_loss:.4g}, {metric} "
                      f"{fmt_metric(metric, e.value)}{best}")
            return
        for e in new:
            extra = ""
            if last is not None and last.epoch == e.epoch:
                extra = " *" if last.is_best else ""
                extra += f" ({last.epoch_time_s:.1f}s)"
                if last.decoded is not None:
                    extra += f" output '{last.decoded}'"
            self._log(f"epoch {e.epoch + 1}/{total}: train loss {_loss(e.train_loss)}, val "
                      f"loss {_loss(e.val_loss)}, {metric} {fmt_metric(metric, e.value)}{extra}")

    @on(msg.CheckpointWritten)
    def _checkpoint(self, message: msg.CheckpointWritten) -> None:
        self._log_epochs()  # the epoch lines this checkpoint follows come first
        e = message.event
        if e.reason == "best":
            return  # written with every better epoch: the epoch line's * says so
        self._log(f"checkpoint ({e.reason}, step {e.step}): {e.path}", "dim")
        if e.reason == "requested":
            self.notify(f"checkpoint saved: {e.path}", title="checkpoint", timeout=4,
                        markup=False)

    @on(msg.GradientWarnings)
    def _gradient_warnings(self, message: msg.GradientWarnings) -> None:
        for line in message.warnings:
            self._log(f"gradients: {line}", "warning")

    @on(msg.TrainingStateChanged)
    def _state(self, message: msg.TrainingStateChanged) -> None:
        if self.run_state in ("running", "paused", "starting"):
            self.run_state = message.event.state
        self._log(message.event.state, "dim")

    @on(msg.TrainingAlert)
    def _alert(self, message: msg.TrainingAlert) -> None:
        from tui_nn.engine import events as ev

        e = message.event
        self._paused_on_nan = isinstance(e, ev.NonFiniteLoss)
        if isinstance(e, ev.NonFiniteLoss):
            self._sync_progress()
            self._log(e.message, "error")
            self.notify(f"{e.message}.\nkeys: l halves the lr, p resumes, x stops",
                        title="loss is NaN: run paused", severity="error", timeout=20,
                        markup=False)
        elif isinstance(e, ev.LrScaled):
            self._log(f"lr × {e.factor:g} → {e.lr:.3g} (step {e.step})", "warning")
            self.notify(f"learning rate now {e.lr:.3g}", timeout=4, markup=False)
        elif isinstance(e, ev.Notice):  # the data's are progress; the others, warnings
            self._log(e.message, "dim" if e.source == "data" else "warning")

    @on(msg.TrainingEnded)
    def _ended(self, message: msg.TrainingEnded) -> None:
        from tui_nn.engine import events as ev
        from tui_nn.fmt import summary_line

        e = message.event
        self._sync_progress()
        self.query_one(InsightPane).tick(self.bridge.insight)
        self._frame_timer.pause()
        curves = self.query_one(Curves)
        curves.live = False
        if isinstance(e, ev.Finished):
            self.run_state = e.status  # finished | stopped
            line = summary_line(e)
            self._log(line, "good")
            self.notify(line, title=f"run {e.status}", timeout=8, markup=False)
        else:
            self.run_state = "failed"
            self._log(f"failed ({e.kind}): {e.message}", "error")
            if e.details.get("traceback"):
                for tb_line in e.details["traceback"].rstrip().splitlines()[-6:]:
                    self._log(tb_line, "dim")
            title = {"nan": "loss is NaN", "oom": "out of memory", "data": "data",
                     "shape": "shape mismatch", "fit": "model does not fit the data",
                     "disk": "disk"}.get(e.kind, "training failed")
            self.notify(e.message, title=title, severity="error", timeout=12, markup=False)

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        """The one place worker failures surface: as a notification, never a crash."""
        worker = event.worker
        if event.state == WorkerState.ERROR:
            error = worker.error
            text = f"{type(error).__name__}: {error}" if error is not None else "unknown error"
            self.notify(text, title=f"{worker.name or 'worker'} failed", severity="error",
                        timeout=12, markup=False)
            self._log(f"{worker.name} failed: {text}", "error")
            if worker.name == WORKER_NAME:
                self.run_state = "failed"
                self.query_one(Curves).live = False
                self._frame_timer.pause()
            elif worker.name == "catalog":
                self.run_state = "idle"

    # ---- state -------------------------------------------------------------------------------
    def watch_run_state(self, old: str, new: str) -> None:
        # The state class goes on the widgets that style by it, not on the screen: a class
        # change re-applies CSS to the whole subtree below it.
        self.query_one(RunStatus).state = new
        buttons = self.query_one("#run-buttons")
        buttons.remove_class(f"-{old}")
        buttons.add_class(f"-{new}")
        self.query_one(TrainForm).locked = new in ACTIVE
        self._animate_only_when_idle(new in ACTIVE)
        self.sub_title = self._subtitle()
        self.refresh_bindings()
        pause = self.query_one("#pause")
        pause.label = "Resume" if new == "paused" else "Pause"
        if new not in ACTIVE and self.model_source and self._form_model != self.model_source \
                and new != "loading":
            self._fill_form(self.model_source)

    def _animate_only_when_idle(self, run_live: bool) -> None:
        # A tab switch slides the underline for 0.3 s at 60 frames a second: about 18 screen
        # updates, 40 ms of the UI thread per switch that a run on the same cores pays for. While
        # a run is live it jumps. TEXTUAL_ANIMATIONS, when set, is the user's choice: kept.
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            self.app.animation_level = "none" if run_live else self._idle_animation_level

    def _subtitle(self) -> str:
        from tui_nn.tui.widgets.run_status import STATE_LABELS

        parts = [self.model_source or "no model", STATE_LABELS.get(self.run_state, "")]
        return " · ".join(p for p in parts if p)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        state = self.run_state
        if action == "start_training":
            return True if state not in ACTIVE and state != "loading" else None
        if action == "resume_run":
            return True if state not in ACTIVE and state != "loading" else None
        if action in ("toggle_pause", "checkpoint", "halve_lr"):
            return True if state in ("running", "paused") else None
        if action == "stop_training":
            return True if state in ("starting", "running", "paused") else None
        return True

    # ---- small actions -----------------------------------------------------------------------
    def action_show_tab(self, tab: str) -> None:
        self.show_tab(tab)

    def action_show_insight(self, view: str) -> None:
        """The Insight tab, on one of its views (flow, vanish, fit, classes)."""
        self.show_tab("insight")
        self.query_one(InsightPane).show(view)

    def show_tab(self, tab: str) -> None:
        """Switch tabs and focus the new tab's main widget (otherwise focus would stay on a
        hidden widget, and TabbedContent follows focus back to the old tab)."""
        self.query_one("#tabs", TabbedContent).active = tab
        self.query_one(TAB_FOCUS[tab]).focus()

    def action_edit_input(self) -> None:
        self.show_tab("model")
        self.query_one("#input-shape").focus()

    def action_open_source(self) -> None:
        self.show_tab("model")
        self.query_one("#source").focus()

    def _side(self) -> "Side | None":
        from tui_nn.tui.screens.model_diff import Side

        inspector = self.query_one(ShapeInspector)
        if inspector.source is None:
            return None
        source = inspector.source
        return Side(source, self.user_models.get(source), inspector.input_text)

    def action_mark_model(self) -> None:
        self._marked = self._side()
        if self._marked is not None:
            self.notify(f"marked {self._marked.source}: pick another model and press d",
                        timeout=4, markup=False)

    def action_diff_models(self) -> None:
        from tui_nn.tui.screens.model_diff import ModelDiffScreen

        marked, current = self._marked, self._side()
        if marked is None or current is None or marked.source == current.source:
            self.notify("mark a model with m, pick a second one, then press d", timeout=4)
            return
        self.app.push_screen(ModelDiffScreen(marked, current))

    def action_sort_saved(self) -> None:
        inspector = self.query_one(ShapeInspector)
        inspector.batch_size = self.query_one(MemoryLine).batch_size  # the form's batch
        inspector.by_saved = not inspector.by_saved

    def action_depth(self, delta: int) -> None:
        inspector = self.query_one(ShapeInspector)
        inspector.depth = min(max(inspector.depth + delta, 1), max(inspector._max_depth(), 1))

    def action_smoothing(self, direction: int) -> None:
        self.query_one(Curves).cycle_smoothing(direction)

    def action_toggle_log_scale(self) -> None:
        curves = self.query_one(Curves)
        curves.log_scale = not curves.log_scale

    def action_leave_field(self) -> None:
        target = TAB_FOCUS.get(self.query_one("#tabs", TabbedContent).active)
        if target:
            self.query_one(target).focus()

    def _log(self, text: str, level: str = "info") -> None:
        for log in self.query(EventLog):
            log.add(text, level)


def _loss(value: float) -> str:
    """4 decimals, as the headless console prints, unless the loss has blown up."""
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"


def _describe(config: Any) -> str:
    parts = [f"dataset {config.dataset or 'default'}"]
    for key in ("epochs", "batch_size", "lr", "optimizer"):
        value = getattr(config, key)
        if value is not None:
            parts.append(f"{key.replace('_', ' ')} {value:g}" if isinstance(value, float)
                         else f"{key.replace('_', ' ')} {value}")
    if config.schedule != "none":
        parts.append(f"schedule {config.schedule}")
    return ", ".join(parts)
