"""A Footer that rebuilds its keys only when the keys it shows change.

Textual's Footer recomposes (unmounts and mounts a widget per key, then styles them all) on
every bindings update, and focus moving to another widget is one: switching tabs with 1-4
did it twice a press, though the keys shown stayed the same. Measured in the app (Pilot, a
profile of 8 tab switches): the footer's rebuilds were about a fifth of the UI thread's time
per press, time the training thread waits for the GIL and the terminal for its frame."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.widgets import Footer

if TYPE_CHECKING:
    from textual.screen import Screen


class SteadyFooter(Footer):
    """Footer() whose rebuilds are skipped when the keys it would show are the ones shown."""

    _shown: tuple | None = None  # what the last compose showed (None: nothing yet)

    def _keys(self, screen: "Screen") -> tuple:
        """What compose() draws from: the shown bindings, whether each is enabled, tooltips."""
        palette = self.app.COMMAND_PALETTE_BINDING
        return tuple((key, b.key_display, b.description, b.action, b.group, enabled, tooltip)
                     for key, (_node, b, enabled, tooltip) in screen.active_bindings.items()
                     if b.show or key == palette)

    def bindings_changed(self, screen: "Screen") -> None:
        if self._shown is not None and screen is self.screen \
                and self._keys(screen) == self._shown:
            return
        super().bindings_changed(screen)

    def compose(self) -> ComposeResult:
        self._shown = self._keys(self.screen) if self._bindings_ready else None
        yield from super().compose()
