"""How many lines a text takes once wrapped: the app's status lines wrap rather than end in
"…" (no number is ever cut), and they lay the screen out only when that count changes."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text


def wrapped_height(text: Text | str, width: int, console: Console) -> int:
    """Lines of text word-wrapped to width (its own line count before the widget has one)."""
    text = Text(text) if isinstance(text, str) else text
    if width <= 0:
        return text.plain.count("\n") + 1
    return len(text.wrap(console, width))
