"""The lesson views in the command palette: one entry per view, each pushing its screen.

Screens are imported when opened, so the palette costs nothing until one is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable, Iterator

LESSONS: list[tuple[str, str, str]] = [
    # (command title, help, view key)
    ("Lesson: activation functions", "sigmoid, tanh, ReLU, leaky ReLU, PReLU, softplus, GELU "
     "and their derivatives", "activations"),
    ("Lesson: loss landscape", "MSE against w (and w×b) with GD, SGD and mini-batch SGD "
     "walking down it, animated", "landscape"),
    ("Lesson: sequence models", "the char RNN learning 'ohlol'; RNN vs LSTM vs GRU as the "
     "sequence grows", "sequences"),
    ("Lesson: autograd graph", "the grad_fn chain of the selected model's loss, as a tree",
     "autograd"),
    ("Lesson: overfitting", "the same net on 256 digits with and without augmentation, "
     "dropout and weight decay: train vs validation loss", "overfitting"),
    ("Lesson: augmentation", "one batch of digits before and after --augment (crop, flip, "
     "rotate, scale, jitter, blur, noise)", "augmentation"),
]


# Each view's module (in tui_nn.tui.screens) and screen class.
SCREENS = {"activations": ("activations", "ActivationsScreen"),
           "landscape": ("landscape", "LandscapeScreen"),
           "sequences": ("sequences", "SequenceScreen"),
           "autograd": ("autograd", "AutogradScreen"),
           "overfitting": ("overfit", "OverfitScreen"),
           "augmentation": ("augment_view", "AugmentScreen")}


def make_screen(view: str, app: Any) -> Any:
    if view not in SCREENS:
        raise ValueError(f"unknown lesson view {view!r}")
    module, name = SCREENS[view]
    screen = getattr(import_module(f"tui_nn.tui.screens.{module}"), name)
    # The autograd view draws the model selected on the main screen.
    return screen.for_main(getattr(app, "main", None)) if view == "autograd" else screen()


def open_lesson(app: Any, view: str) -> None:
    """Push a lesson view (replacing a lesson view already on top, so Escape goes home)."""
    from tui_nn.tui.screens.lesson_base import LessonScreen

    if isinstance(app.screen, LessonScreen):
        app.pop_screen()
    app.push_screen(make_screen(view, app))


def lesson_commands(app: Any) -> Iterator[tuple[str, str, Callable[[], None]]]:
    for title, help_text, view in LESSONS:
        yield title, help_text, (lambda view=view: open_lesson(app, view))
