"""The app around one read-only viewer screen (`tui-nn watch` on a run or a TensorBoard log):
q quits, a signal exits 128+signal (nothing to save), notifications and titles are cleaned
(they quote paths and errors from files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen

from tui_nn.textsafe import clean, clean_line
from tui_nn.tui.exits import install_signal_exits, signal_code


class InertText:
    """An app whose every notification and screen title is made inert: they quote paths,
    names and errors that came from files and other programs, and Textual shows them as they
    are (an ESC reaches the terminal). Both apps take it, and their stylesheet and breakpoints."""

    CSS_PATH = Path(__file__).resolve().parent / "app.tcss"  # absolute: subclasses live elsewhere
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide"), (160, "-very-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]

    def notify(self, message: str, *, title: str = "", **kwargs: Any) -> None:
        super().notify(clean(message, 1000), title=clean_line(title, 120), **kwargs)

    def format_title(self, title: str, sub_title: str) -> Content:
        """The Header's one way to a screen's title and sub-title (a run's folder name, the
        model's source as typed)."""
        return super().format_title(*(clean_line(text, 200) for text in (title, sub_title)))


class ViewerApp(InertText, App[None]):
    TITLE = "tui-nn watch"
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("ctrl+q", "quit", "Quit", show=False)]

    def __init__(self, screen: Screen) -> None:
        super().__init__()
        self.watch_screen = screen

    def get_default_screen(self) -> Screen:
        return self.watch_screen

    def on_mount(self) -> None:
        install_signal_exits(self, lambda signum: self.exit(return_code=signal_code(signum)))
