"""Data inside the app's markup strings: a model's words, an error's, a value the user typed."""

from __future__ import annotations

from textual.markup import escape

from tui_nn.textsafe import clean


def markup_data(text: object) -> str:
    """text made inert (textsafe.clean) with its brackets escaped: shown, never read as
    markup ("x[/]" or "[link=...]" in a layer's name stays those characters)."""
    return escape(clean(text))
