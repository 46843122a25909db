"""The hyperparameter form: dataset, epochs, batch size, lr, optimizer, schedule + run buttons.

Fields are checked as you type (the field turns red and the message under the form says why);
the engine's own TrainConfig.validate() has the last word when a run starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Grid, HorizontalGroup, Vertical
from textual.markup import escape
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Input, Label, Select, Static

from tui_nn.engine.config import OPTIMIZERS, SCHEDULES  # torch-free, like the engine package
from tui_nn.tui.markup import markup_data

CUSTOM = "__custom__"
CHECKED = ("dataset-custom", "epochs", "batch-size", "lr")  # the fields _check parses
WHOLE = {"epochs": "epochs", "batch-size": "batch size"}  # fields of whole numbers ≥ 1


class FormError(ValueError):
    """A field holds a bad value; ``field`` is the widget id."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _check(field: str, text: str) -> Any:
    """Parse one field; raise FormError with a user-facing message."""
    text = text.strip()
    if field in WHOLE:
        if not text.isdigit() or int(text) < 1:
            raise FormError(field, f"{WHOLE[field]}: a whole number ≥ 1")
        return int(text)
    if field == "lr":
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise FormError(field, "lr: a number > 0, e.g. 0.01 or 3e-4")
        return value
    if field == "dataset-custom" and not text:
        raise FormError(field, "dataset: type csv:PATH, folder:PATH, longrange:LEN or "
                               "your own FILE.py:build")
    return text


class TrainForm(Vertical):
    """Hyperparameters for the next run and the buttons that drive the current one."""

    class Changed(Message):
        """A field changed (the screen reads the fields it follows)."""

    @dataclass
    class Sampled(Message):
        """Your own Dataset typed in (FILE.py:build) gave a first sample: its shape as the
        inspector's input text ("1x28x28", ":int64" for integer samples), or why it cannot."""

        spec: str
        input_text: str | None
        error: str | None

    locked: reactive[bool] = reactive(False)
    """True while a run is in progress: the hyperparameters cannot change under it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._errors: dict[str, str] = {}
        self._datasets: set[str] = set()
        self._sampled: str | None = None  # the last dataset spec read for its sample

    def compose(self) -> ComposeResult:
        with Grid(id="form-grid"):
            yield Label("dataset", classes="form-label")
            yield Select([], id="dataset", allow_blank=True, prompt="(model default)",
                         compact=True)
            yield Label("", classes="form-label custom-only")
            yield Input(placeholder="csv:PATH / folder:PATH / FILE.py:build", id="dataset-custom",
                        compact=True, classes="custom-only")
            yield Label("epochs", classes="form-label")
            yield Input(id="epochs", type="integer", compact=True)
            yield Label("batch", classes="form-label")
            yield Input(id="batch-size", type="integer", compact=True)
            yield Label("lr", classes="form-label")
            yield Input(id="lr", type="number", compact=True)
            yield Label("optimizer", classes="form-label")
            yield Select([(o, o) for o in OPTIMIZERS], id="optimizer", allow_blank=False,
                         value="sgd", compact=True)
            yield Label("schedule", classes="form-label")
            yield Select([(s, s) for s in SCHEDULES], id="schedule", allow_blank=False,
                         value="none", compact=True)
        yield Static("", id="form-errors")
        with HorizontalGroup(id="run-buttons"):
            yield Button("Start", id="start", variant="success", compact=True,
                         action="screen.start_training", tooltip="Start training (s)")
            yield Button("Pause", id="pause", variant="warning", compact=True,
                         action="screen.toggle_pause", tooltip="Pause / resume (p)")
            yield Button("Stop", id="stop", variant="error", compact=True,
                         action="screen.stop_training", tooltip="Stop and checkpoint (x)")
            yield Button("Save", id="save", variant="primary", compact=True,
                         action="screen.checkpoint", tooltip="Save a checkpoint now (c)")

    # ---- attributes down ----------------------------------------------------------------------
    def set_datasets(self, names: list[tuple[str, str]]) -> None:
        """(name, description) pairs; 'other…' lets the user type csv:/folder: sources."""
        select = self.query_one("#dataset", Select)
        self._datasets = {name for name, _ in names}
        select.set_options([(name, name) for name, _ in names] + [("other…", CUSTOM)])

    def fill(self, *, dataset: str | None, epochs: int | None, batch_size: int | None,
             lr: float | None, optimizer: str | None, schedule: str | None) -> None:
        """Put values in the fields (a model's defaults, or the CLI's options)."""
        select = self.query_one("#dataset", Select)
        if dataset and dataset in self._datasets:
            select.value = dataset
            self.query_one("#dataset-custom", Input).value = ""
        elif dataset:
            select.value = CUSTOM
            self.query_one("#dataset-custom", Input).value = dataset
            self._sample(dataset)
        else:
            select.clear()
        for field, value in (("epochs", epochs), ("batch-size", batch_size), ("lr", lr)):
            self.query_one(f"#{field}", Input).value = "" if value is None else f"{value:g}" \
                if isinstance(value, float) else str(value)
        if optimizer in OPTIMIZERS:
            self.query_one("#optimizer", Select).value = optimizer
        if schedule in SCHEDULES:
            self.query_one("#schedule", Select).value = schedule
        self._validate_all()

    def read(self) -> dict[str, Any]:
        """The form as TrainConfig keyword arguments; raises FormError on the first bad field."""
        self._validate_all()
        if self._errors:
            field, message = next(iter(self._errors.items()))
            raise FormError(field, message)
        dataset_value = self.query_one("#dataset", Select).value
        if dataset_value == CUSTOM:
            dataset = _check("dataset-custom", self.query_one("#dataset-custom", Input).value)
        elif dataset_value in (Select.NULL, None):
            dataset = None
        else:
            dataset = str(dataset_value)
        return dict(
            dataset=dataset,
            epochs=_check("epochs", self.query_one("#epochs", Input).value),
            batch_size=_check("batch-size", self.query_one("#batch-size", Input).value),
            lr=_check("lr", self.query_one("#lr", Input).value),
            optimizer=str(self.query_one("#optimizer", Select).value),
            schedule=str(self.query_one("#schedule", Select).value),
        )

    def show_error(self, message: str, field: str | None = None) -> None:
        """Show an error the engine found (TrainConfig.validate) under the form."""
        if field:
            self._errors[field] = message
            self.query_one(f"#{field}").add_class("-invalid")
        self.query_one("#form-errors", Static).update(f"[b]✗[/b] {escape(message)}")
        self.set_class(True, "-has-errors")

    @on(Input.Submitted, "#dataset-custom")
    def _custom_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._sample(event.value.strip())

    def _sample(self, spec: str) -> None:
        """Read your own Dataset's first sample (once per spec) off the UI thread."""
        if spec and spec != self._sampled:
            self._sampled = spec
            self._read_sample(spec)

    @work(thread=True, group="dataset-sample", exclusive=True, exit_on_error=False)
    def _read_sample(self, spec: str) -> None:
        from tui_nn.data.base import DataError
        from tui_nn.data.user_dataset import is_python_spec
        if not is_python_spec(spec):
            return  # the other kinds have no code to run: the run checks them
        from tui_nn.engine.loader import sample_of
        from tui_nn.tui.catalog import shape_text
        try:
            shape, dtype = sample_of(spec)
        except DataError as e:
            self.post_message(self.Sampled(spec, None, str(e)))
            return
        self.post_message(self.Sampled(spec, shape_text(shape, dtype), None))

    # ---- validation as you type -----------------------------------------------------------
    def watch_locked(self, locked: bool) -> None:
        for widget in self.query("#form-grid Input, #form-grid Select"):
            widget.disabled = locked

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._validate_field(event.input.id or "")
        self._show_errors()

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id == "dataset":
            custom = event.value == CUSTOM
            self.set_class(custom, "-custom-dataset")
            self._errors.pop("dataset-custom", None)
            if custom:
                self._validate_field("dataset-custom")
            self._show_errors()

    def _validate_field(self, field: str) -> None:
        if field not in CHECKED:
            return
        if field == "dataset-custom" and self.query_one("#dataset", Select).value != CUSTOM:
            return
        widget = self.query_one(f"#{field}", Input)
        try:
            _check(field, widget.value)
        except FormError as e:
            self._errors[field] = str(e)
            widget.add_class("-invalid")
        else:
            self._errors.pop(field, None)
            widget.remove_class("-invalid")

    def _validate_all(self) -> None:
        for field in CHECKED:
            self._validate_field(field)
        self._show_errors()

    def _show_errors(self) -> None:
        # Messages quote typed or resumed values (a dataset path from a run's config).
        text = "\n".join(f"[b]✗[/b] {markup_data(m)}" for m in self._errors.values())
        self.query_one("#form-errors", Static).update(text)
        self.set_class(bool(self._errors), "-has-errors")
        self.post_message(self.Changed())
