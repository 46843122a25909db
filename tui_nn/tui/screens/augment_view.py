"""The augmentation lesson: one batch of digits before and after ``--augment`` (the same
transforms training applies on the device), each sample with its own random draw.

p cycles the spec (the presets, then each transform alone), r draws again.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from rich.style import Style
from rich.text import Span, Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Static

from tui_nn.tui.screens.lesson_base import LessonScreen

SPECS = ("digits", "photos", "crop=3", "flip", "rotate=30", "scale=0.3", "jitter=0.5",
         "blur=1.5", "noise=0.2")
N_IMAGES = 8
GAP = 1
SIDE = 14  # pixels per image side on screen: 28×28 digits averaged 2×2, 7 lines each
_LEVELS = 16
_STYLES: dict[tuple[int, int], Style] = {}


def _style(top: float, bottom: float) -> Style:
    key = (int(max(0.0, min(1.0, top)) * _LEVELS), int(max(0.0, min(1.0, bottom)) * _LEVELS))
    style = _STYLES.get(key)
    if style is None:
        t, b = (int(k / _LEVELS * 255) for k in key)
        style = _STYLES[key] = Style(color=f"rgb({t},{t},{t})", bgcolor=f"rgb({b},{b},{b})")
    return style


def images_text(images: torch.Tensor) -> Text:
    """(N, H, W) gray images in [0, 1] side by side, two pixel rows per line ('▀' coloured
    top pixel / bottom pixel)."""
    if images.shape[-1] != SIDE:
        images = F.interpolate(images[:, None], size=(SIDE, SIDE), mode="area")[:, 0]
    n, h, w = images.shape
    if h % 2:
        images = torch.cat([images, torch.zeros(n, 1, w)], dim=1)  # (N, H + 1, W)
    rows = images.clamp(0, 1).tolist()
    parts: list[str] = []
    spans: list[Span] = []
    pos = 0
    for y in range(0, images.shape[1], 2):
        for i in range(n):
            if i:
                parts.append(" " * GAP)
                pos += GAP
            for t, b in zip(rows[i][y], rows[i][y + 1]):
                spans.append(Span(pos, pos + 1, _style(t, b)))
                pos += 1
            parts.append("▀" * w)
        parts.append("\n")
        pos += 1
    return Text("".join(parts), spans=spans, no_wrap=True, overflow="crop")


def augmented_batch(spec: str, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(before, after): the first N_IMAGES validation digits as (N, 28, 28) pixels in [0, 1],
    and the same after the Augmenter, with a seeded draw that leaves torch's RNG untouched."""
    from tui_nn.data.augment import Augmenter, parse_augment
    from tui_nn.data.digits import load_digits

    data = load_digits(n_train=N_IMAGES, n_val=N_IMAGES)
    raw = data.val_x[:N_IMAGES]  # (N, 1, 28, 28) in [0, 1]
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    augment = Augmenter(parse_augment(spec), data.mean, data.std, torch.device("cpu"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        after = augment((raw - mean) / std) * std + mean  # back to pixels
    return raw[:, 0], after[:, 0].clamp(0, 1)


class AugmentScreen(LessonScreen):
    """One batch before and after --augment SPEC."""

    DEFAULT_CSS = """
    AugmentScreen #aug-body { height: 1fr; padding: 0 1; }
    AugmentScreen .aug-title { height: auto; text-style: bold; margin-top: 1; }
    AugmentScreen .aug-images { height: auto; }
    AugmentScreen #aug-help { height: auto; color: $text-muted; margin-top: 1; }
    """

    BINDINGS = [
        Binding("p", "next_spec", "Next spec"),
        Binding("r", "redraw", "Draw again"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.spec_index = 0
        self.seed = 0

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≋")
        with VerticalScroll(id="aug-body"):
            yield Static("before", classes="aug-title")
            yield Static("", id="aug-before", classes="aug-images")
            yield Static("", id="aug-title-after", classes="aug-title")
            yield Static("", id="aug-after", classes="aug-images")
            yield Static("", id="aug-help")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "augmentation"
        self._show()

    def on_resize(self) -> None:
        self._show()

    def action_next_spec(self) -> None:
        self.spec_index = (self.spec_index + 1) % len(SPECS)
        self.seed = 0
        self._show()

    def action_redraw(self) -> None:
        self.seed += 1
        self._show()

    def _show(self) -> None:
        spec = SPECS[self.spec_index]
        before, after = augmented_batch(spec, seed=self.seed)
        fits = max(1, (self.size.width - 2 + GAP) // (SIDE + GAP))  # the body's padding: 2
        before, after = before[:fits], after[:fits]
        from tui_nn.data.augment import PRESETS
        expanded = f" = {PRESETS[spec]}" if spec in PRESETS else ""
        self.query_one("#aug-before", Static).update(images_text(before))
        self.query_one("#aug-title-after", Static).update(
            Text(f"after --augment {spec}{expanded}  (draw {self.seed + 1})"))
        self.query_one("#aug-after", Static).update(images_text(after))
        self.query_one("#aug-help", Static).update(Text(
            "Each sample gets its own random draw, on the training device, every step; "
            "validation images are never augmented. A model that sees shifted, turned and "
            "rescaled digits cannot memorise the training set pixel by pixel: see the "
            "overfitting lesson."))

    def snapshot_state(self) -> dict[str, Any]:
        return {"spec": SPECS[self.spec_index], "seed": self.seed}
