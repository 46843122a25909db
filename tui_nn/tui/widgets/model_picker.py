"""Model selection: the zoo with one-line descriptions, plus a model opened from a source
(``path/to/model.py:Class`` or ``package.module:factory``, the same sources as ``tui-nn inspect``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Label, LoadingIndicator, OptionList
from textual.widgets.option_list import Option


if TYPE_CHECKING:
    from tui_nn.tui.catalog import ModelEntry


class ModelPicker(Vertical):
    """Lists models; moving the cursor selects (the inspector follows), Enter confirms."""

    @dataclass
    class Selected(Message):
        """The highlighted model changed (``confirmed``: the user pressed Enter on it)."""

        source: str
        confirmed: bool = False

    loading: reactive[bool] = reactive(True)
    """True until the zoo is known (torch is imported in the background)."""

    def compose(self) -> ComposeResult:
        yield Label("[b]Models[/b] [dim]↑↓ · enter: train[/]", id="picker-title")
        yield LoadingIndicator(id="picker-loading")
        yield OptionList(id="zoo")
        yield Input(placeholder="open: file.py:Class / pkg.mod:fn", id="source")

    def watch_loading(self, loading: bool) -> None:
        self.set_class(loading, "-loading")
        if not loading:
            # Hidden, a LoadingIndicator still redraws itself 16 times a second, for the life of
            # the app: each a wake-up of the UI thread that a training run waits on for the GIL.
            self.query("#picker-loading").remove()

    def set_models(self, entries: list["ModelEntry"], selected: str | None = None) -> None:
        option_list = self.query_one("#zoo", OptionList)
        option_list.clear_options()
        for entry in entries:
            option_list.add_option(self._option(entry))
        self.loading = False
        if selected is not None:
            self.highlight(selected)
        elif entries:
            option_list.highlighted = 0

    def add_model(self, entry: "ModelEntry") -> None:
        """A model opened from a source joins the list (once) and is highlighted."""
        option_list = self.query_one("#zoo", OptionList)
        try:
            option_list.get_option(entry.source)
        except Exception:  # noqa: BLE001 - OptionDoesNotExist
            option_list.add_option(self._option(entry))
        self.highlight(entry.source)

    def highlighted_source(self) -> str | None:
        option_list = self.query_one("#zoo", OptionList)
        index = option_list.highlighted
        return None if index is None else option_list.get_option_at_index(index).id

    def highlight(self, source: str) -> None:
        option_list = self.query_one("#zoo", OptionList)
        try:
            index = option_list.get_option_index(source)
        except Exception:  # noqa: BLE001 - OptionDoesNotExist
            return
        option_list.highlighted = index

    @staticmethod
    def _option(entry: "ModelEntry") -> Option:
        # One line per model: the name, then as much of the description as fits.
        prompt = Text(no_wrap=True, overflow="ellipsis", end="")
        source = entry.shown_source  # inert (catalog.ModelEntry)
        prompt.append(f"{source:<9}" if entry.in_zoo else source, style="bold")
        prompt.append(" ")
        prompt.append(entry.description, style="dim")
        return Option(prompt, id=entry.source)

    @on(OptionList.OptionHighlighted, "#zoo")
    @on(OptionList.OptionSelected, "#zoo")
    def _picked(self, event: OptionList.OptionHighlighted | OptionList.OptionSelected) -> None:
        """Moving the cursor selects a model; Enter confirms it."""
        event.stop()
        if event.option.id:
            confirmed = isinstance(event, OptionList.OptionSelected)
            self.post_message(self.Selected(event.option.id, confirmed))

    @on(Input.Submitted, "#source")
    def _open_source(self, event: Input.Submitted) -> None:
        event.stop()
        source = event.value.strip()
        if source:
            self.post_message(self.Selected(source, confirmed=False))
