"""The main screen: Model (picker + shape inspector), Train (form and the run), Log, Insight.

The screen holds the model being looked at and the run state; the run itself (the bridge, its
messages, the frame timer) is its RunController's (screens/run_control.py), drawn by the Train
tab's RunView, the widget `watch` draws a run with. Every worker's failure (catalog, model
loading, training) arrives in the screen's one Worker.StateChanged handler.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Header, Input, Select, TabbedContent, TabPane
from textual.worker import Worker

from tui_nn.engine.config import FORM_FIELDS  # TrainConfig's fields marked form=True
from tui_nn.tui import messages as msg
from tui_nn.tui.bridge import WORKER_NAME, freeze_long_lived
from tui_nn.tui.history import RunHistory
from tui_nn.tui.screens.model_tab import ModelTab, UserModelLoaded
from tui_nn.tui.screens.run_control import (INSIGHT_OPTIONS, RunController, describe,
                                            resume_settings)
from tui_nn.tui.screens.worker_errors import notify_worker_error
from tui_nn.tui.widgets.curves import Curves
from tui_nn.tui.widgets.event_log import EventLog
from tui_nn.tui.widgets.footer import SteadyFooter
from tui_nn.tui.widgets.insight import InsightPane
from tui_nn.tui.widgets.memory_line import MemoryLine
from tui_nn.tui.widgets.model_picker import ModelPicker
from tui_nn.tui.widgets.run_status import LIVE_STATES, STATE_LABELS, RunStatus
from tui_nn.tui.widgets.run_view import RunView
from tui_nn.tui.widgets.system_pane import SystemPane
from tui_nn.tui.widgets.train_form import FormError, TrainForm

if TYPE_CHECKING:
    from tui_nn.tui.catalog import DatasetEntry, ModelEntry

TAB_FOCUS = {"model": "#zoo", "train": "#start", "log": "#event-log",
             "insight": "#insight-tabs Tabs"}


@dataclass
class CatalogLoaded(Message):
    """Zoo models and datasets are known (torch has been imported)."""

    models: list["ModelEntry"]
    datasets: list["DatasetEntry"]
    device: str


class MainScreen(Screen):
    """Everything the app shows, in four tabs."""

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
        self.form_overrides = {k: options[k] for k in FORM_FIELDS if k in options}
        # Every other option (device, seed, run_dir, amp, threads, ...) goes to every run as is.
        self.pass_through = {k: v for k, v in options.items() if k not in FORM_FIELDS}
        self.dataset_override = dataset  # an in-memory Dataset (tests, benchmarks)
        self.history = RunHistory()
        self.run = RunController(self, self.history)
        self.bridge = self.run.bridge
        self.entries: dict[str, ModelEntry] = {}
        self.user_models: dict[str, Any] = {}
        self._form_model: str | None = None  # the model whose defaults the form holds

    # ---- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≋")
        with TabbedContent(initial="model", id="tabs"):
            yield ModelTab("Model [dim]1[/]", self.user_models, id="model")
            with TabPane("Train [dim]2[/]", id="train"):
                yield RunView(self.history, SystemPane(id="system", compact=True),
                              id="train-row", prefix="train", log_id="mini-log",
                              arrangement="under", side_top=(TrainForm(id="form"),))
            with TabPane("Log [dim]3[/]", id="log"):
                yield EventLog(id="event-log")
            with TabPane("Insight [dim]4[/]", id="insight"):
                yield InsightPane(self.bridge.insight, id="insight-pane")
        yield SteadyFooter()

    def on_mount(self) -> None:
        self.title = "tui-nn"
        self.run.mount()
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
        from tui_nn.tui.catalog import dataset_entries, device_line, zoo_entries

        models = zoo_entries()
        datasets = dataset_entries()
        device = device_line(self.pass_through.get("device", "auto"))
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
        self.query_one(ModelTab).open_source(source)

    @on(UserModelLoaded)
    def _user_model_loaded(self, event: UserModelLoaded) -> None:
        if event.error is not None or event.entry is None:
            self.notify(event.error or "could not load the model", title="model",
                        severity="error", timeout=8, markup=False)
            self._log(f"cannot open {event.source}: {event.error}", "error")
            return
        self.entries[event.source] = event.entry  # the tab has registered the model
        self.model_source = event.source
        self._log(f"opened {event.source}: {event.entry.description}", "good")

    def watch_model_source(self, source: str | None) -> None:
        if source is None:
            return
        initial_input = None
        if source == self.initial_model and self.initial_input is not None:
            initial_input, self.initial_input = self.initial_input, None
        self.query_one(ModelTab).show_model(source, self.entries[source], initial_input)
        self.sub_title = self._subtitle()
        if self.run_state not in LIVE_STATES and self._form_model != source:  # (a resumed run's
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
            self.query_one("#inspector").input_text = event.input_text

    # ---- training (the run itself: screens/run_control.py) ---------------------------------
    def action_start_training(self) -> None:
        source = self.model_source
        if self.run.refuse_if_running():
            return
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
        from tui_nn.engine import ConfigError, TrainConfig

        ignored = sorted(set(self.pass_through) - set(self.run.known_options(self.pass_through)))
        if ignored:
            self._log(f"ignoring options this engine does not know: {', '.join(ignored)}",
                      "warning")
        options = self.run.known_options(INSIGHT_OPTIONS)
        options["on_nan"] = "pause"  # in the app a NaN pauses: the user decides
        options.update(self.run.known_options(self.pass_through))
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

        self.pass_through.pop("run_dir", None)  # --run-dir names one run: the next gets its own
        self.run.start(config, factory=build if source in self.user_models else None,
                       dataset=self.dataset_override)
        self._log(f"starting {source}: {describe(config)}")

    def action_resume_run(self) -> None:
        """Choose a stopped (or failed, or finished) run and continue it from last.pt."""
        if self.run.refuse_if_running():
            return
        from tui_nn.tui.screens.resume import ResumeScreen

        def chosen(run_dir: str | None) -> None:
            if run_dir:
                self.resume_run(run_dir)

        self.app.push_screen(ResumeScreen(self.pass_through.get("runs_root") or "runs"), chosen)

    def resume_run(self, run_dir: str, with_cli_options: bool = False) -> None:
        """Continue the run in ``run_dir`` from its last.pt: the saved config, model, optimizer
        and RNG state (Trainer resume_from). The picker, the form and the curves show the run's
        own model, settings and history. Only the device comes from this app, and with
        ``with_cli_options`` (`tui-nn train --resume DIR --epochs 8`) the options typed."""
        from tui_nn.engine import TrainConfig
        from tui_nn.tui.screens.resume import describe_run_dir

        if self.run.refuse_if_running():
            return
        info, error = describe_run_dir(Path(run_dir))
        if error is not None:
            self.notify(error, title="cannot resume", severity="error", timeout=10,
                        markup=False)
            self._log(f"cannot resume {run_dir}: {error}", "error")
            return
        typed = {**self.pass_through, **self.form_overrides} if with_cli_options else None
        options = self.run.resume_options(self.pass_through, typed)
        self._show_run(info["model"], resume_settings(run_dir, options))
        self.run.start(TrainConfig(model=info["model"], **options),
                       dataset=self.dataset_override, resume_from=run_dir)
        self.show_tab("train")
        self._log(f"resuming {run_dir} ({info['model']} on {info['dataset']}, "
                  f"{info['progress']})")

    def _show_run(self, model: str, settings: dict[str, Any]) -> None:
        """Select a resumed run's model and put its settings in the form (the form is locked
        while it trains; afterwards Start trains a new run with them)."""
        picker = self.query_one(ModelPicker)
        if model in self.entries:
            picker.highlight(model)
            self.model_source = model  # fills the form with the model's defaults first
        else:
            self._open_source(model)  # a model from a file: the picker lists it once loaded
        self.query_one(TrainForm).fill(**{k: settings.get(k) for k in FORM_FIELDS})
        self._form_model = model

    def action_halve_lr(self) -> None:
        self.run.halve_lr()

    def action_toggle_pause(self) -> None:
        self.run.toggle_pause()

    def action_stop_training(self) -> None:
        self.run.stop()

    def action_checkpoint(self) -> None:
        self.run.checkpoint()

    @on(msg.RunMessage)
    def _run_message(self, message: msg.RunMessage) -> None:
        self.run.handle(message)

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        """The one place worker failures surface: as a notification, never a crash."""
        text = notify_worker_error(self, event)
        if text is None:
            return
        self._log(f"{event.worker.name} failed: {text}", "error")
        if event.worker.name == WORKER_NAME:
            self.run.worker_failed()
        elif event.worker.name == "catalog":
            self.run_state = "idle"

    # ---- state -------------------------------------------------------------------------------
    def watch_run_state(self, old: str, new: str) -> None:
        # The state class goes on the widgets that style by it, not on the screen: a class
        # change re-applies CSS to the whole subtree below it.
        self.query_one(RunStatus).state = new
        buttons = self.query_one("#run-buttons")
        buttons.remove_class(f"-{old}")
        buttons.add_class(f"-{new}")
        self.query_one(TrainForm).locked = new in LIVE_STATES
        self._animate_only_when_idle(new in LIVE_STATES)
        self.sub_title = self._subtitle()
        self.refresh_bindings()
        pause = self.query_one("#pause")
        pause.label = "Resume" if new == "paused" else "Pause"
        if new not in LIVE_STATES and self.model_source and self._form_model != self.model_source \
                and new != "loading":
            self._fill_form(self.model_source)

    def _animate_only_when_idle(self, run_live: bool) -> None:
        # A tab switch slides the underline for 0.3 s at 60 frames a second: about 18 screen
        # updates, 40 ms of the UI thread per switch that a run on the same cores pays for. While
        # a run is live it jumps. TEXTUAL_ANIMATIONS, when set, is the user's choice: kept.
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            self.app.animation_level = "none" if run_live else self._idle_animation_level

    def _subtitle(self) -> str:
        parts = [self.model_source or "no model", STATE_LABELS.get(self.run_state, "")]
        return " · ".join(p for p in parts if p)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        state = self.run_state
        if action in ("start_training", "resume_run"):
            return True if state not in LIVE_STATES and state != "loading" else None
        if action in ("toggle_pause", "checkpoint", "halve_lr"):
            return True if state in ("running", "paused") else None
        if action == "stop_training":
            return True if state in ("starting", "running", "paused") else None
        return True

    # ---- small actions -----------------------------------------------------------------------
    def action_show_insight(self, view: str) -> None:
        """The Insight tab, on one of its views (flow, vanish, fit, classes)."""
        self.show_tab("insight")
        self.query_one(InsightPane).show(view)

    def show_tab(self, tab: str) -> None:
        """Switch tabs and focus the new tab's main widget (otherwise focus would stay on a
        hidden widget, and TabbedContent follows focus back to the old tab)."""
        self.query_one("#tabs", TabbedContent).active = tab
        self.query_one(TAB_FOCUS[tab]).focus()

    action_show_tab = show_tab

    def action_edit_input(self) -> None:
        self.show_tab("model")
        self.query_one("#input-shape").focus()

    def action_open_source(self) -> None:
        self.show_tab("model")
        self.query_one("#source").focus()

    def action_mark_model(self) -> None:
        self.query_one(ModelTab).mark()

    def action_diff_models(self) -> None:
        self.query_one(ModelTab).diff()

    def action_sort_saved(self) -> None:
        self.query_one(ModelTab).sort_saved()

    def action_depth(self, delta: int) -> None:
        self.query_one(ModelTab).depth(delta)

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
        self.query_one(RunView).note(text, level)
