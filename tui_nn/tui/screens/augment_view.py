"""The augmentation lesson: one batch of digits before and after ``--augment`` (the same
transforms training applies on the device), each sample with its own random draw.

p cycles the spec (the presets, then each transform alone), r draws again.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Static

from tui_nn.tui.screens.lesson_base import LessonScreen
from tui_nn.tui.widgets.insight import image_rows

SPECS = ("digits", "photos", "crop=3", "flip", "rotate=30", "scale=0.3", "jitter=0.5",
         "blur=1.5", "noise=0.2")
N_IMAGES = 8
GAP = 1
SIDE = 14  # pixels per image side on screen: 28×28 digits averaged 2×2, 7 lines each
LEVELS = 16  # gray levels of the image cells


def images_text(images: torch.Tensor) -> Text:
    """(N, H, W) gray images in [0, 1] side by side, two pixel rows per line ('▀' coloured
    top pixel / bottom pixel)."""
    if images.shape[-1] != SIDE:
        images = F.interpolate(images[:, None], size=(SIDE, SIDE), mode="area")[:, 0]
    lines, spans = image_rows(images.clamp(0, 1).tolist(), SIDE, GAP, LEVELS)
    return Text(lines, spans=spans, no_wrap=True, overflow="crop")


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
        from tui_nn.data.augment_spec import PRESETS
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
