"""The --augment SPEC: parsing and limits, torch-free (validated before the app opens or any
data loads). The transforms themselves are in data/augment.py."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

PRESETS = {
    # Digits and letters: no flip (a mirrored 3 is not a 3), small moves.
    "digits": "crop=2,rotate=10,scale=0.1",
    # Photos: flips and colour changes are natural.
    "photos": "crop=4,flip,rotate=10,jitter=0.2",
}
_EXAMPLES = {"crop": "2", "rotate": "10", "scale": "0.1", "jitter": "0.2", "blur": "1",
             "noise": "0.1"}
# Largest values that still leave a recognisable image.
_LIMITS = {"crop": 64, "rotate": 180.0, "scale": 0.9, "jitter": 1.0, "blur": 10.0, "noise": 1.0}


class AugmentError(ValueError):
    """A bad --augment spec; the message is one line for the user."""


@dataclass(frozen=True)
class AugmentSpec:
    crop: int = 0
    flip: bool = False
    rotate: float = 0.0
    scale: float = 0.0
    jitter: float = 0.0
    blur: float = 0.0
    noise: float = 0.0

    def __str__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is True:
                parts.append(f.name)
            elif value:
                parts.append(f"{f.name}={value:g}")
        return ",".join(parts)

    @property
    def geometric(self) -> bool:
        return bool(self.crop or self.flip or self.rotate or self.scale)


def _usage() -> str:
    return ("give a comma list such as crop=2,flip,rotate=10,scale=0.1,jitter=0.2,blur=1,"
            f"noise=0.1, or a preset: {', '.join(PRESETS)}")


def _parse_item(item: str) -> tuple[str, object]:
    name, sep, raw = (part.strip() for part in item.partition("="))
    name = name.lower()
    known = [f.name for f in fields(AugmentSpec)]
    if name not in known:
        raise AugmentError(f"--augment: unknown transform {name!r}: {_usage()}")
    if name == "flip":
        if sep:
            raise AugmentError("--augment: flip takes no value (write flip, not flip=...)")
        return name, True
    if not sep:
        raise AugmentError(f"--augment: {name} needs a value, e.g. {name}={_EXAMPLES[name]}")
    try:
        value = int(raw) if name == "crop" else float(raw)
    except ValueError:
        kind = "a whole number of pixels" if name == "crop" else "a number"
        raise AugmentError(f"--augment: {name}={raw!r} is not {kind}") from None
    if not (math.isfinite(value) and 0 <= value <= _LIMITS[name]):
        raise AugmentError(f"--augment: {name} must be in 0..{_LIMITS[name]:g} (got {raw})")
    return name, value


def parse_augment(text: str | None) -> AugmentSpec | None:
    """The spec for a --augment string (None or "" or "none": no augmentation)."""
    text = (text or "").strip()
    if text.lower() in ("", "none", "off"):
        return None
    text = PRESETS.get(text.lower(), text)
    values: dict[str, object] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, value = _parse_item(item)
        if name in values:
            raise AugmentError(f"--augment: {name} is given twice")
        values[name] = value
    spec = AugmentSpec(**values)
    return spec if str(spec) else None
