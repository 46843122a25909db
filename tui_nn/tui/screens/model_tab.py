"""The Model tab: the model picker, the shape inspector and the memory line, and models opened
from a file or a factory (built on a worker).

The screen holds which model is selected (MainScreen.model_source) and the catalog's entries;
this tab shows the selected one, loads the ones that are not in the zoo, and answers the
inspector's keys (depth, sort by saved bytes, mark and diff).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.markup import escape
from textual.message import Message
from textual.widgets import TabPane

from tui_nn.textsafe import first_line
from tui_nn.tui.bridge import in_fresh_thread
from tui_nn.tui.widgets.inspector import ShapeInspector
from tui_nn.tui.widgets.memory_line import MemoryLine
from tui_nn.tui.widgets.model_picker import ModelPicker

if TYPE_CHECKING:
    from tui_nn.tui.catalog import ModelEntry
    from tui_nn.tui.screens.model_diff import Side


@dataclass
class UserModelLoaded(Message):
    """A model from a file or a factory was built (or failed to build)."""

    source: str
    entry: "ModelEntry | None"
    model: Any
    error: str | None


class ModelTab(TabPane):
    """Picker and inspector side by side, the memory line under them."""

    def __init__(self, title: str, user_models: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(title, **kwargs)
        self.user_models = user_models  # source -> the model built from it (the screen's)
        self._marked: Side | None = None  # `m`: the model `d` compares the current one with
        self.shown_source = ""  # the inspected source as the picker shows it (inert)

    def compose(self) -> ComposeResult:
        with Horizontal(id="model-row"):
            yield ModelPicker(id="picker")
            yield ShapeInspector(id="inspector")
        yield MemoryLine(id="memory-line")

    def show_model(self, source: str, entry: "ModelEntry", input_text: str | None) -> None:
        """Inspect ``source`` with ``input_text`` (None: the entry's own input)."""
        inspector = self.query_one(ShapeInspector)
        about = escape(entry.description)  # inert (catalog.ModelEntry): data, not markup
        if entry.lesson:
            about += f"\n[dim]→ {escape(entry.lesson)}[/]"
        inspector.about = about
        inspector.source, self.shown_source = source, entry.shown_source
        inspector.input_text = entry.input_text if input_text is None else input_text
        line = self.query_one(MemoryLine)
        line.source = source
        line.input_text = entry.input_text

    # ---- models from files -------------------------------------------------------------------
    def open_source(self, source: str) -> None:
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
            self.post_message(UserModelLoaded(source, None, None, first_line(exc)))
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
        # Registered here first; the message then goes up to the screen, which selects it.
        if event.error is None and event.entry is not None:
            self.user_models[event.source] = event.model
            self.query_one(ShapeInspector).register_model(event.source, event.model)
            self.query_one(MemoryLine).register_model(event.source, event.model)
            self.query_one(ModelPicker).add_model(event.entry)

    @on(ShapeInspector.Inspected)
    def _inspected(self, event: ShapeInspector.Inspected) -> None:
        insp = event.inspection
        if insp is not None and insp.ok:  # the estimate follows the input being inspected
            self.query_one(MemoryLine).input_text = event.input_text
        problem = event.error
        if not problem and insp is not None and not insp.ok:
            problem = insp.diagnosis.text if insp.diagnosis else next(
                (c.text for c in insp.checks if not c.ok), "mismatch")
        if problem:
            self.screen._log(f"inspect {event.source} {event.input_text}: {problem}", "warning")

    # ---- the inspector's keys (bound on the screen: they work from every tab) ---------------
    def _side(self) -> "Side | None":
        from tui_nn.tui.screens.model_diff import Side

        inspector = self.query_one(ShapeInspector)
        source = inspector.source
        if source is None:
            return None
        return Side(source, self.user_models.get(source), inspector.input_text,
                    self.shown_source)

    def mark(self) -> None:
        self._marked = self._side()
        if self._marked is not None:
            self.notify(f"marked {self._marked.source}: pick another model and press d",
                        timeout=4, markup=False)

    def diff(self) -> None:
        from tui_nn.tui.screens.model_diff import ModelDiffScreen

        marked, current = self._marked, self._side()
        if marked is None or current is None or marked.source == current.source:
            self.notify("mark a model with m, pick a second one, then press d", timeout=4)
            return
        self.app.push_screen(ModelDiffScreen(marked, current))

    def sort_saved(self) -> None:
        inspector = self.query_one(ShapeInspector)
        inspector.batch_size = self.query_one(MemoryLine).batch_size  # the form's batch
        inspector.by_saved = not inspector.by_saved

    def depth(self, delta: int) -> None:
        inspector = self.query_one(ShapeInspector)
        inspector.depth = min(max(inspector.depth + delta, 1), max(inspector._max_depth(), 1))
